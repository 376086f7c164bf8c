"""exprgrad.nn against micrograd's nn: same seed, same numbers."""

from __future__ import annotations

import math
import random

import pytest
from micrograd import nn as micro_nn

from exprgrad import Value, nn

XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]


def mse_loss(model):
    scores = [model(x) for x in XS]
    return sum(((s - y) ** 2 for s, y in zip(scores, YS)), Value(0.0) if
               isinstance(scores[0], Value) else 0.0)


def built(module, seed):
    random.seed(seed)
    return module.MLP(3, [4, 4, 1])


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_mlp_matches_micrograd_weights_outputs_and_gradients(seed):
    ours, theirs = built(nn, seed), built(micro_nn, seed)
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    assert repr(ours) == repr(theirs)
    our_loss, their_loss = mse_loss(ours), mse_loss(theirs)
    our_loss.backward()
    their_loss.backward()
    assert our_loss.data == pytest.approx(their_loss.data, rel=1e-12)
    for mine, reference in zip(ours.parameters(), theirs.parameters()):
        assert mine.grad == pytest.approx(reference.grad, rel=1e-9, abs=1e-12)


def test_training_steps_match_micrograd():
    ours, theirs = built(nn, 3), built(micro_nn, 3)
    for _ in range(5):
        for model in (ours, theirs):
            loss = mse_loss(model)
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.data -= 0.05 * p.grad
    assert [p.data for p in ours.parameters()] == pytest.approx(
        [p.data for p in theirs.parameters()], rel=1e-9)


def test_zero_grad_and_parameter_count():
    model = nn.MLP(3, [4, 4, 1])
    assert len(model.parameters()) == 4 * 4 + 4 * 5 + 5
    mse_loss(model).backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


def test_tanh_activation_option():
    random.seed(5)
    neuron = nn.Neuron(2, activation="tanh")
    x = [0.3, -1.2]
    linear = sum(w.data * xi for w, xi in zip(neuron.w, x)) + neuron.b.data
    assert neuron(x).data == pytest.approx(math.tanh(linear), rel=1e-15)
    model = nn.MLP(2, [3, 1], activation="tanh")
    assert all(n.activation == "tanh" and n.nonlin for n in model.layers[0].neurons)
    assert not model.layers[-1].neurons[0].nonlin  # the output layer stays linear
    assert repr(model.layers[0].neurons[0]) == "tanhNeuron(2)"


def test_layer_returns_a_scalar_for_one_output():
    assert isinstance(nn.Layer(2, 1)([1.0, 2.0]), Value)
    assert len(nn.Layer(2, 3)([1.0, 2.0])) == 3


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match="tanh"):
        nn.MLP(2, [3, 1], activation="swish")


def test_output_activation_makes_the_lecture_network():
    import random
    from exprgrad import nn
    random.seed(3)
    model = nn.MLP(3, [4, 4, 1], activation="tanh", output_activation="tanh")
    assert str(model).endswith("Layer of [tanhNeuron(4)]]")
    out = model([2.0, 3.0, -1.0])
    assert out._op == "tanh" and -1 < out.data < 1
    random.seed(3)
    linear = nn.MLP(3, [4, 4, 1], activation="tanh")
    assert str(linear).endswith("Layer of [LinearNeuron(4)]]")
    import pytest
    with pytest.raises(ValueError, match="unknown activation"):
        nn.MLP(3, [1], output_activation="nope")
