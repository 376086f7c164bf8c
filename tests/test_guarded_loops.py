"""Loops over data axes under conditions, and diff() in data-axis functions.

* A loop whose result is used only in one side of a conditional runs only
  when that side is taken (`max(u) if n > 0 else 0` at n = 0, `sum(log(u))
  if min(u) > 0 else 0` with a negative u), in value and gradient, in both
  targets: random conditionals choosing between reductions are compared
  with the reference interpreter (`compiler/interpret.py`, lazy as the
  language is), on random data of lengths 0..4.
* `diff(e, s)` in a function with data axes is with respect to its
  parameter `s`, whatever the caller passes for it (a constant, an
  expression, the same node as another argument), as in a scalar function.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.compiler.interpret import evaluate
from exprgrad.compiler.loops import DataArray
from exprgrad.compiler.pipeline import differentiate, front_end

# Sides of a conditional: reductions over u that raise on some data (max of
# nothing, log or sqrt of a negative), and ones that do not.
SIDES = [
    "max(u[k] * x for k in range(n))",
    "min(u)",
    "sum(log(u[k]) for k in range(n))",
    "sum(sqrt(u[k]) * x for k in range(n))",
    "prod(u[k] + x for k in range(n))",
    "sum((log(x) * u[k] if x > 0 else u[k]) for k in range(n))",
    "log(x) * sum(u)",
    "x * 2",
]
CONDITIONS = ["n > 0", "n > 1", "x > 0", "min(u) > 0", "sum(u) > 1",
              "max(u[k] for k in range(n)) < 1"]
FAILURES = (ValueError, ArithmeticError)


def _program(condition: str, then: str, orelse: str) -> str:
    return f"f(x, u[n]) = ({then}) if {condition} else ({orelse})\n"


def _reference(source: str, x: float, u: list[float]):
    """The interpreter's value and gradient, or the exception it raises."""
    program = front_end(source, "t.expr")
    f = program.function("f")
    grad = {e.name: e for e in differentiate(program)}["f_grad"]
    inputs = {p.placeholders: x for p in f.params if not isinstance(p.placeholders, DataArray)}
    try:
        return evaluate(program.graph, grad.result, inputs, {"u": u}, {"n": len(u)})
    except FAILURES as error:
        return error


def _close(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                             abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(condition=st.sampled_from(CONDITIONS), then=st.sampled_from(SIDES),
       orelse=st.sampled_from(SIDES), x=st.sampled_from([-1.5, 0.0, 0.5, 2.0]),
       u=st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.25, 1.0, 3.0]), max_size=4))
def test_a_loop_in_a_side_not_taken_is_not_run(condition, then, orelse, x, u):
    source = _program(condition, then, orelse)
    want = _reference(source, x, u)
    module = exprgrad.compile(source, "t.expr")
    if isinstance(want, Exception):
        with pytest.raises(FAILURES):
            module.f_grad(x, u)
        return
    value, (d_x, d_u) = want
    got_value, (got_x, got_u) = module.f_grad(x, u)
    assert _close(got_value, value) and _close(module.f(x, u), value)
    assert _close(got_x, d_x) and _close(list(got_u), d_u)
    if u:  # where the unrolled function has a gradient, the rolled one has it
        unrolled = exprgrad.compile(source + f"g(x, v[{len(u)}]) = f(x, v)\n", "t.expr")
        try:
            reference = unrolled.g_grad(x, u)
        except FAILURES:
            return
        assert _close(reference, (got_value, (got_x, list(got_u))))


@settings(max_examples=40, deadline=None)
@given(condition=st.sampled_from(CONDITIONS), then=st.sampled_from(SIDES),
       orelse=st.sampled_from(SIDES), x=st.sampled_from([-1.5, 0.5, 2.0]),
       u=st.lists(st.sampled_from([-2.0, -0.5, 0.25, 1.0, 3.0]), max_size=4))
def test_the_array_target_runs_no_loop_of_a_side_not_taken(condition, then, orelse, x, u):
    """Where the interpreter has a value the array target has it too, and
    under NumPy's strict mode nothing of a side not taken warns."""
    np = pytest.importorskip("numpy")
    source = _program(condition, then, orelse)
    want = _reference(source, x, u)
    if isinstance(want, Exception):
        return  # the array target's domain errors are nan/inf (docs/array-target.md)
    module = exprgrad.compile(source, "t.expr", target="array")
    data = np.asarray(u, dtype=float)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        value, (d_x, d_u) = module.f_grad(x, data)
        plain = module.f(x, data)
    assert _close(value, want[0]) and _close(plain, want[0])
    assert _close(d_x, want[1][0]) and _close(list(np.asarray(d_u)), want[1][1])


@pytest.mark.parametrize("target", ["python", "array"])
def test_the_reductions_of_the_other_side_at_no_data(target):
    if target == "array":
        pytest.importorskip("numpy")
    module = exprgrad.compile("f(u[n]) = max(u[k] for k in range(n)) if n > 0 else 0\n",
                              target=target)
    assert module.f([]) == 0.0
    value, (d_u,) = module.f_grad([])
    assert value == 0.0 and len(d_u) == 0
    assert module.f([1.0, 3.0]) == 3.0
    logs = exprgrad.compile("f(u[n]) = (sum(log(u[k]) for k in range(n)) if min(u) > 0 "
                            "else 0)\n", target=target)
    assert logs.f([2.0, -1.0]) == 0.0
    assert list(logs.f_grad([2.0, -1.0])[1][0]) == [0.0, 0.0]


@pytest.mark.parametrize("target", ["python", "array"])
def test_a_gradient_sum_under_a_condition_the_loop_reads(target):
    """d/dx of `log(x) * u[k] if x > 0 else u[k]` summed over k is
    sum(u) / x under x > 0: the sum and the division flow under the
    condition, so at x = 0 nothing divides by 0."""
    if target == "array":
        pytest.importorskip("numpy")
    module = exprgrad.compile("f(x, u[n]) = sum((log(x) * u[k] if x > 0 else u[k]) "
                              "for k in range(n))\n", target=target)
    value, (d_x, d_u) = module.f_grad(0.0, [1.0, 2.0])
    assert (value, d_x, list(d_u)) == (3.0, 0.0, [1.0, 1.0])
    value, (d_x, d_u) = module.f_grad(2.0, [1.0, 2.0])
    assert math.isclose(d_x, 1.5) and math.isclose(d_u[0], math.log(2.0))


@settings(max_examples=20, deadline=None)
@given(x=st.sampled_from([-1.0, 0.5, 2.0]), y=st.sampled_from([-1.0, 0.5, 2.0]),
       u=st.lists(st.floats(-2, 2), max_size=3))
def test_two_loops_reading_one_value_under_other_conditions(x, y, u):
    """log(x) is read by both loops, each under its own condition: each
    loop reads it from its own guarded copy (they cannot share one For)."""
    module = exprgrad.compile("f(x, y, u[n]) = sum((log(x) * u[k] if y > 0 else u[k]) for k in "
                              "range(n)) + sum((log(x) * u[k]^2 if y > 1 else u[k]) for k in "
                              "range(n))\n")
    if x <= 0 and y > 0:  # (at no data too: what a loop reads is computed before it)
        if u:
            with pytest.raises(ValueError):
                module.f(x, y, u)
        return
    log = math.log(x) if x > 0 else math.nan
    want = sum(log * a if y > 0 else a for a in u) + sum(log * a * a if y > 1 else a for a in u)
    assert _close(module.f(x, y, u), want)


NESTED = ("f(u[n], A[n][m]) = sum((max(A[i][j] for j in range(m)) if u[i] > 0 else 0) "
          "for i in range(n))\n")


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 3), m=st.integers(0, 2), data=st.data())
def test_a_loop_in_a_loop_under_a_condition_of_the_outer_one(n, m, data):
    """Each row's max is taken only for the rows u[i] > 0 selects, in
    value and gradient (an inner loop, and an inner map of d_A): with no
    columns, only where some row is selected does it raise."""
    values = st.sampled_from([-1.0, 0.5, 2.0])
    u = [data.draw(values) for _ in range(n)]
    A = [[data.draw(values) for _ in range(m)] for _ in range(n)]
    program = front_end(NESTED, "t.expr")
    grad = {e.name: e for e in differentiate(program)}["f_grad"]
    module = exprgrad.compile(NESTED, "t.expr")
    try:
        want = evaluate(program.graph, grad.result, {}, {"u": u, "A": A}, {"n": n, "m": m})
    except ValueError:
        with pytest.raises(ValueError, match="empty range"):
            module.f_grad(u, A)
        return
    value, (d_u, d_A) = module.f_grad(u, A)
    assert _close(value, want[0]) and _close(module.f(u, A), want[0])
    assert _close(d_u, want[1][0]) and _close(d_A, want[1][1])


def test_a_loop_under_a_condition_is_inside_its_if():
    """The emitted text: the loop of the side taken is in the If, as
    docs/generated-code.md shows it (every line of its excerpt, in order)."""
    text = exprgrad.emit("f(u[n]) = max(u[k] for k in range(n)) if n > 0 else 0\n", "f.expr")
    body = text[text.index("def f(u):"):text.index("def f_grad")]
    assert body.index("if len_n > 0.0:") < body.index("for k in range(n):")
    doc = (Path(__file__).resolve().parent.parent / "docs" / "generated-code.md").read_text()
    block = re.search(r"```python\n(    if len_n > 0\.0:.*?)```", doc, re.S).group(1)
    position = 0
    for line in block.splitlines():
        position = body.index(line + "\n", position)


# --- diff() in a function with data axes ----------------------------------------------
HELPER = "def f(s, v[n]):\n    return sum(diff(v[k] * s^3, s) for k in range(n))\n"


@settings(max_examples=25, deadline=None)
@given(c=st.integers(-3, 3), x=st.floats(-2, 2), arity=st.integers(0, 3))
def test_diff_of_a_parameter_given_a_constant(c, x, arity):
    """`f(c, [x, ...])`: d/ds of v[k]·s³ is 3·v[k]·s², at s = c."""
    items = ", ".join(["x"] + [str(i + 1) for i in range(arity - 1)]) if arity else ""
    module = exprgrad.compile(HELPER + f"g(x) = f({c}, [{items}])\n")
    values = [x] + [float(i + 1) for i in range(arity - 1)] if arity else []
    assert math.isclose(module.g(x), 3 * c * c * sum(values), rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(module.g_grad(x)[1][0], 3 * c * c if arity else 0.0, abs_tol=1e-12)


@settings(max_examples=25, deadline=None)
@given(x=st.floats(-2, 2), u=st.lists(st.floats(-2, 2), max_size=4))
def test_diff_of_a_parameter_given_an_argument_that_is_also_the_data(x, u):
    """`f(x, [x, x])` differentiates with respect to s alone (6x³, not the
    9x³ of differentiating x everywhere), and `h(x, u) = f(2x, u)` with
    respect to s = 2x: 3·u[k]·(2x)²."""
    module = exprgrad.compile(HELPER + "g(x) = f(x, [x, x])\nh(x, u[m]) = f(2 * x, u)\n")
    assert math.isclose(module.g(x), 6 * x ** 3, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(module.g_grad(x)[1][0], 18 * x ** 2, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(module.h(x, u), 12 * x * x * sum(u), rel_tol=1e-9, abs_tol=1e-9)
    d_x, d_u = module.h_grad(x, u)[1]
    assert math.isclose(d_x, 24 * x * sum(u), rel_tol=1e-9, abs_tol=1e-9)
    assert all(math.isclose(d, 12 * x * x, rel_tol=1e-12, abs_tol=1e-12) for d in d_u)


# --- vjp of a map at no data --------------------------------------------------------------
@pytest.mark.parametrize("source", ["h(u[n]) = [u[k] * 2 for k in range(n)]\n",
                                    "h(x, u[n]) = [u[k] * x for k in range(n)]\n"])
def test_vjp_with_an_empty_cotangent(source):
    module = exprgrad.compile(source)
    args = [[]] if source.startswith("h(u") else [1.5, []]
    value, grads = module.h_vjp(*args, [])
    assert value == [] and list(grads[-1]) == []
    assert all(g == 0.0 for g in grads[:-1])


@pytest.mark.parametrize("target", ["python", "array"])
def test_a_length_is_a_variable_only_where_something_reads_it(target):
    """A loop's length becomes a float variable (`len_q = float(q)`) for the
    tests of its guards; the guards are worked out only for the values read
    under them (`_read_guards`), so no length of a loop no guard needs is
    emitted (one was, in generated data program 130)."""
    import ast
    import random
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from fuzz_strategies import data_program
    if target == "array":
        pytest.importorskip("numpy")
    for seed in range(200):
        source = data_program(random.Random(seed)).source
        try:
            text = exprgrad.emit(source, "t.expr", target=target)
        except exprgrad.CompileError:
            continue
        for fn in ast.walk(ast.parse(text)):
            if not isinstance(fn, ast.FunctionDef):
                continue
            read = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
                    and isinstance(n.ctx, ast.Load)}
            lengths = {s.targets[0].id for s in ast.walk(fn) if isinstance(s, ast.Assign)
                       and ast.unparse(s.value).startswith(("float(", "xp.asarray("))
                       and isinstance(s.targets[0], ast.Name)}  # len_n = float(n)
            assert lengths <= read, (seed, fn.name, lengths - read)


@pytest.mark.parametrize("target", ["python", "array"])
@pytest.mark.parametrize("s, u, expected", [
    (-1.07, [-0.8, -0.9], 4 * math.exp(-2.14)),  # every iteration 2 exp(2s): a tie
    (0.5, [0.8, 0.9], math.exp(0.5)),
    (0.5, [0.8, -0.9], 0.0),
])
def test_two_reductions_of_one_loop_one_reading_a_value_only_on_paths_never_taken(
        target, s, u, expected):
    """The gradient's two sums over k read the share of the min's else side
    (`ratio * 2` where s < -1): one reads it, the other only on paths never
    taken, where it folded to 0 (`unread = 0.0`).  Joined in one loop, the
    0 replaced the value for both, and d/ds came out 0 (fuzz seed
    data:2300009219)."""
    if target == "array":
        pytest.importorskip("numpy")
    module = exprgrad.compile("f(s, u[n]) = min(diff(exp((s if u[k] >= 0 else 1) if s >= -1 "
                              "else 2 * s), s) for k in range(n))\n", target=target)
    assert float(module.f_grad(s, u)[1][0]) == pytest.approx(expected, rel=1e-12)
