"""compile_value: the generated function agrees with eager backward() at
points other than the one the graph was recorded at."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given, settings, strategies as st

from exprgrad import Value, compile_value, nn
from exprgrad.compiler.ops import OPS
from micrograd_programs import readme_graph

SETTINGS = settings(max_examples=30, deadline=None)
finite = st.floats(-4, 4)
readme = readme_graph


def eager(program, point):
    leaves = [Value(x) for x in point]
    out = program(*leaves)
    out.backward()
    return out.data, tuple(v.grad for v in leaves)


def assert_agree(got, expected):
    value, grads = got
    assert value == pytest.approx(expected[0], rel=1e-12, abs=1e-12)
    assert grads == pytest.approx(expected[1], rel=1e-9, abs=1e-9)


@SETTINGS
@given(a=finite, b=finite)
def test_readme_expression_at_new_points(a, b):
    leaves = [Value(-4.0, label="a"), Value(2.0, label="b")]
    fn = compile_value(readme(*leaves), leaves)
    try:
        expected = eager(readme, (a, b))
    except ZeroDivisionError:
        with pytest.raises(ZeroDivisionError):
            fn(a, b)
        return
    assert_agree(fn(a, b), expected)


def test_source_is_readable_python_named_after_labels():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    e = a * b
    e.label = "e"
    out = (e + a).tanh()
    fn = compile_value(out, [a, b], name="neuron_grad")
    assert "def neuron_grad(a, b):" in fn.source
    assert "d_e = " in fn.source  # the adjoint of e, named after it
    assert "math.tanh" in fn.source
    assert fn(2.0, -3.0)[0] == math.tanh(-4.0)


BUILTINS = sorted(o.builtin for o in OPS.values() if o.builtin and o.grad is not None)


@SETTINGS
@given(name=st.sampled_from(BUILTINS), x=st.floats(0.1, 0.9), y=st.floats(0.1, 0.9),
       z=st.floats(0.1, 0.9))
def test_every_builtin_compiles_like_eager(name, x, y, z):
    arity = OPS[name].arity or 3

    def program(*args):
        shift = 1.0 if name == "acosh" else 0.0  # inside every domain at the recorded point
        return (getattr(args[0] * 1.5 + shift, name)(*args[1:arity]) * args[0]).exp()
    point = (x, y, z)
    leaves = [Value(v) for v in (0.5, 0.25, 0.75)]
    fn = compile_value(program(*leaves), leaves)
    try:
        expected = eager(program, point)
    except (ValueError, OverflowError):
        assume(False)
    assert_agree(fn(*point), expected)


def test_mlp_loss_compiled_over_parameters_tracks_eager_training():
    random.seed(2)
    model = nn.MLP(3, [4, 4, 1], activation="tanh")
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]

    def loss_of(m):
        return sum((m(x) - y) ** 2 for x, y in zip(xs, ys))
    params = model.parameters()
    fn = compile_value(loss_of(model), params)
    for _ in range(3):  # the compiled function at the parameters eager training reaches
        value, grads = fn(*(p.data for p in params))
        loss = loss_of(model)
        model.zero_grad()
        loss.backward()
        assert value == pytest.approx(loss.data, rel=1e-12)
        assert list(grads) == pytest.approx([p.grad for p in params], rel=1e-9, abs=1e-12)
        for p in params:
            p.data -= 0.1 * p.grad


def test_other_leaves_are_constants_and_unused_inputs_get_zero():
    x, k, unused = Value(3.0), Value(2.0), Value(1.0)
    fn = compile_value(x * k + k, [x, unused])
    k.data = 100.0  # the recorded value is baked in
    assert fn(5.0, 7.0) == (12.0, (2.0, 0.0))


def test_relu_branch_follows_the_new_inputs():
    x = Value(2.0)
    fn = compile_value((x * 3).relu(), [x])
    assert fn(2.0) == (6.0, (3.0,))
    assert fn(-2.0) == (0.0, (0.0,))


def test_deep_chain_is_lowered_iteratively():
    x = Value(1.0)
    y = x
    for i in range(3000):
        y = (y * 1.0001).tanh() if i % 2 else y + 0.5
    fn = compile_value(y, [x])
    assert_agree(fn(0.3), eager(lambda v: _chain(v, 3000), (0.3,)))


def _chain(x, n):
    y = x
    for i in range(n):
        y = (y * 1.0001).tanh() if i % 2 else y + 0.5
    return y


def test_bad_inputs_are_reported():
    a, b = Value(1.0), Value(2.0)
    c = a + b
    with pytest.raises(ValueError, match="leaves"):
        compile_value(c * 2, [c])
    with pytest.raises(ValueError, match="twice"):
        compile_value(c, [a, a])
    with pytest.raises(TypeError):
        compile_value(c, [1.0])
    with pytest.raises(TypeError, match="x0"):
        compile_value(c, [a, b])("one", 2.0)


def test_keywords_are_refused_as_names():
    import pytest
    import exprgrad
    x = exprgrad.Value(1.0)
    for name in ("import", "class", "None", "_x", "1a", 3):
        with pytest.raises(ValueError, match="name must be a Python identifier"):
            exprgrad.compile_value(x * x, [x], name=name)
