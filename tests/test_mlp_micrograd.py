"""examples/mlp.expr against micrograd's own nn.MLP(3, [4, 4, 1]).

micrograd is the reference: the compiled loss must give the same loss and
the same 41 gradients for micrograd's randomly initialised weights, and
gradient descent must follow the same path in both."""

import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

import exprgrad

micrograd_nn = pytest.importorskip("micrograd.nn")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]


@pytest.fixture(scope="module")
def model():
    return exprgrad.load(EXAMPLES / "mlp.expr")


def micrograd_mlp(seed: int):
    random.seed(seed)
    return micrograd_nn.MLP(3, [4, 4, 1])


def micrograd_loss(mlp):
    """The lecture's loss, built the lecture's way."""
    predictions = [mlp(x) for x in XS]
    return sum((out - target) ** 2 for target, out in zip(YS, predictions))


def compiled_arguments(mlp):
    """micrograd's weights as the arguments of loss(W1, b1, W2, b2, w3, b3)."""
    arguments = []
    for layer in mlp.layers:
        arguments.append([[w.data for w in n.w] for n in layer.neurons])
        arguments.append([n.b.data for n in layer.neurons])
    arguments[4] = arguments[4][0]  # the output layer has one neuron: w3[4], b3
    arguments[5] = arguments[5][0]
    return arguments


def in_micrograd_order(grads):
    """Compiled gradients flattened like micrograd's parameters(): per neuron,
    its weights then its bias, layer by layer."""
    dW1, db1, dW2, db2, dw3, db3 = grads
    flat = []
    for dW, db in ((dW1, db1), (dW2, db2), ([dw3], [db3])):
        for row, bias in zip(dW, db):
            flat += [*row, bias]
    return flat


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("seed", [1337, 0, 7])
def test_loss_and_all_41_gradients_match_micrograd(model, seed):
    mlp = micrograd_mlp(seed)
    assert len(mlp.parameters()) == 41
    loss = micrograd_loss(mlp)
    mlp.zero_grad()
    loss.backward()

    value, grads = model.loss_grad(*compiled_arguments(mlp))

    assert close(value, loss.data), (value, loss.data)
    expected = [p.grad for p in mlp.parameters()]
    got = in_micrograd_order(grads)
    assert len(got) == 41
    mismatched = [(i, g, e) for i, (g, e) in enumerate(zip(got, expected)) if not close(g, e)]
    assert not mismatched
    assert any(g != 0.0 for g in got)  # the comparison is not between zeros


def test_25_steps_of_gradient_descent_side_by_side(model):
    mlp = micrograd_mlp(1337)
    arguments = compiled_arguments(mlp)
    rate = 0.05
    history = []
    for step in range(25):
        loss = micrograd_loss(mlp)
        mlp.zero_grad()
        loss.backward()
        value, grads = model.loss_grad(*arguments)
        assert close(value, loss.data), (step, value, loss.data)
        history.append(value)
        for p in mlp.parameters():
            p.data -= rate * p.grad
        arguments = _descend(arguments, grads, rate)
    assert history[-1] < history[0]  # training really moved the weights


def _descend(value, grad, rate):
    if isinstance(value, list):
        return [_descend(v, g, rate) for v, g in zip(value, grad)]
    return value - rate * grad


def test_predictions_match_micrograd(model):
    mlp = micrograd_mlp(42)
    arguments = compiled_arguments(mlp)
    predictions = model.predict(*arguments)
    assert len(predictions) == 4
    for x, got in zip(XS, predictions):
        assert close(got, mlp(x).data)
        assert close(model.mlp(x, *arguments), mlp(x).data)


def run_train_mlp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / "train_mlp.py"), *args],
                          capture_output=True, text=True, timeout=120)


def step_losses(stdout: str) -> list[float]:
    return [float(line.split()[-1]) for line in stdout.splitlines() if line.startswith("step")]


def test_train_mlp_on_the_lecture_samples_reaches_the_target():
    run = run_train_mlp("--lecture")
    assert run.returncode == 0, run.stderr
    losses = step_losses(run.stdout)
    assert len(losses) > 1 and losses[0] > 0.5
    assert losses[-1] < 0.01
    assert "predictions:" in run.stdout


def test_train_mlp_trains_on_a_data_set_read_at_run_time_as_micrograd_does(tmp_path):
    """The toy data set is written to a missing --data file, read back, and
    trained through data_loss; micrograd's own MLP, trained beside it from
    the same weights, has the same loss at every step."""
    data = tmp_path / "moons.csv"
    run = run_train_mlp("--data", str(data), "--samples", "24", "--steps", "20", "--micrograd")
    assert run.returncode == 0, run.stderr
    assert data.read_text().startswith("x0,x1,x2,label\n") and f"wrote 24 samples to {data}" \
        in run.stdout
    losses = step_losses(run.stdout)
    assert len(losses) > 2 and losses[-1] < 0.6 * losses[0]
    assert "micrograd: the same loss at all 20 steps" in run.stdout


def test_train_mlp_reads_a_data_file_it_did_not_write(tmp_path):
    data = tmp_path / "lecture.csv"
    data.write_text("".join(f"{x[0]},{x[1]},{x[2]},{y}\n" for x, y in zip(XS, YS)))
    run = run_train_mlp("--data", str(data), "--steps", "40")
    assert run.returncode == 0, run.stderr
    assert "wrote" not in run.stdout and "accuracy: 4/4 samples" in run.stdout
    losses = step_losses(run.stdout)
    assert losses[-1] < losses[0]
    data.write_text("x0,x1\n1,2\n")
    run = run_train_mlp("--data", str(data))
    assert run.returncode == 1 and run.stderr.strip() == \
        f"{data}: expected 4 columns (x0, x1, x2, label)"


@pytest.mark.parametrize("seed", [1337, 7])
def test_the_data_axis_loss_on_the_lecture_samples_is_the_unrolled_loss(model, seed):
    """data_loss (a loop over samples given at call time) and loss (the four
    samples compiled in, unrolled) add the same terms in the same order; the
    gradients' sums are accumulated in another order, so they agree to
    rounding."""
    arguments = compiled_arguments(micrograd_mlp(seed))
    value, grads = model.loss_grad(*arguments)
    data_value, data_grads = model.data_loss_grad(*arguments, XS, YS)
    assert data_value == value
    got, expected = in_micrograd_order(data_grads), in_micrograd_order(grads)
    assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-14) for a, b in zip(got, expected))
    assert any(g != 0.0 for g in got)
