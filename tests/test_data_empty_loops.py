"""Loops that run zero times, and the values computed before them.

The source evaluates a loop body only at its iterations: `prod(... avg(u)
... for k in range(1, n))` is 1 at n = 0, where `avg(u)` (a mean over
nothing) is not defined.  The rolled DAG hoists loop-invariant values out
of their loops, and the emitted code computes them before the loop; the
fuzzer's data programs met them raising there at n = 0 (a third of its
data-axis FAILED items).  A value only a loop's body reads is computed
under the condition that the loop runs (`schedule_loops._read_guards`), and
what a loop's adjoint flows into outside it too (`loop_gradients`), in both
targets.  The verifier's verdict is tested against what the emitted code
does, so it says FAILED exactly where the emitted code raises.
"""

import pytest
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.verify import FAILED

AVG = "avg(v[m]) = sum(v) / m\n"
# bodies that do not vary with k, walked by reverse mode outside the loop:
# the share of the outer min reads a min over range(n) (fuzz seed
# data:2800012467)
INVARIANT_DIFF = ("f(s, u[n]) = sum(diff(sigmoid(min(min(s for j in range(n)), s)), s) "
                  "for k in range(2, n))\n")
INVARIANT_DIFFS = [INVARIANT_DIFF,
                   INVARIANT_DIFF.replace("sigmoid", "sin").replace("range(2, n)", "range(1, n)")]
# (source, empty-loop length, the source's value there)
EMPTY = [
    (AVG + "f(s, u[n]) = prod((1 + tanh(u[k - 1] + avg(u))) / 2 for k in range(1, n))\n", 0, 1.0),
    (AVG + "f(s, u[n]) = sum(u[k] * s + avg(u) for k in range(n))\n", 0, 0.0),
    ("f(s, u[n]) = sum(s / n for k in range(n))\n", 0, 0.0),
    ("f(s, u[n]) = prod(min(u[j] for j in range(n)) * s for k in range(2, n))\n", 0, 1.0),
] + [(source, 0, 0.0) for source in INVARIANT_DIFFS]


def _runs(source: str, n: int):
    """What the emitted f and f_grad do at length n: the values, or the error."""
    module = exprgrad.compile(source)
    try:
        return module.f(0.5, [0.25] * n), module.f_grad(0.5, [0.25] * n)
    except (ArithmeticError, ValueError) as error:
        return error


@pytest.mark.parametrize("source, n, value", EMPTY)
def test_a_loop_that_runs_zero_times_evaluates_nothing_of_its_body(source, n, value):
    result = _runs(source, n)
    assert not isinstance(result, Exception), result
    (forward, (value_grad, grads)) = result
    assert forward == value_grad == value
    assert grads[0] == 0.0 and grads[1] == [0.0] * n


@pytest.mark.parametrize("source", INVARIANT_DIFFS)
def test_an_invariant_body_differentiated_at_an_empty_loop_in_the_array_target(source):
    """The array target evaluates both sides of a conditional; the count
    of an empty loop is a 0-d array there, so a division by it on the side
    not taken is inf, quietly, not a ZeroDivisionError."""
    np = pytest.importorskip("numpy")
    module = exprgrad.compile(source, target="array")
    value, (d_s, d_u) = module.f_grad(0.5, np.zeros(0))
    assert float(value) == 0.0 and float(d_s) == 0.0 and d_u.shape == (0,)


@settings(max_examples=4, deadline=None)
@given(case=st.sampled_from(EMPTY))
def test_check_says_failed_exactly_where_the_emitted_code_raises_at_an_empty_loop(case):
    source, n, _ = case
    raises = isinstance(_runs(source, n), Exception)
    report = exprgrad.check(source, timeout=2.0)
    failed = [i for i in report.items if i.status == FAILED and i.kind == "gradient"
              and i.what.startswith("gradient of f ")]
    assert bool(failed) == raises, report.text()
    assert all(f"at n = {n}:" in i.detail and "the emitted code raises" in i.detail
               for i in failed), report.text()


# Loop bodies reading loop-invariant values that raise where their loop
# runs zero times: a mean, a division by the length, a log of x, a min over
# the data, an inner loop over another length.
INVARIANTS = ["avg(u)", "s / n", "log(s)", "min(u)", "sum(u) / m", "1 / (n - 1)"]
LOOPS = ["sum(u[k] * s + {t} for k in range(n))",
         "prod((1 + tanh(u[k - 1] * {t})) / 2 for k in range(1, n))",
         "sum({t} for k in range(2, n))",
         "sum(sum(w[j] * {t} for j in range(m)) for k in range(n))",
         "max(u[k] + {t} for k in range(n)) if n > 0 else s"]


def _reference_of(source: str, s: float, u: list, w: list):
    """The interpreter's value and gradient (lazy as the language), or its error."""
    from exprgrad.compiler.interpret import evaluate
    from exprgrad.compiler.loops import DataArray
    from exprgrad.compiler.pipeline import differentiate, front_end
    program = front_end(source, "t.expr")
    f = program.function("f")
    grad = {e.name: e for e in differentiate(program)}["f_grad"]
    inputs = {p.placeholders: s for p in f.params if not isinstance(p.placeholders, DataArray)}
    try:
        return evaluate(program.graph, grad.result, inputs, {"u": u, "w": w},
                        {"n": len(u), "m": len(w)})
    except (ArithmeticError, ValueError) as error:
        return error


def _close(a, b) -> bool:
    import math
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(loop=st.sampled_from(LOOPS), term=st.sampled_from(INVARIANTS),
       s=st.sampled_from([-1.0, 0.5, 2.0]),
       u=st.lists(st.sampled_from([-1.0, 0.25, 2.0]), max_size=3),
       w=st.lists(st.sampled_from([-0.5, 1.5]), max_size=3))
def test_what_only_a_loop_reads_is_computed_only_when_it_runs(loop, term, s, u, w):
    """Both targets give the interpreter's value and gradient wherever it
    has them (lengths 0..3), the array target under NumPy's strict mode."""
    np = pytest.importorskip("numpy")
    source = AVG + f"f(s, u[n], w[m]) = {loop.format(t=term)}\n"
    want = _reference_of(source, s, u, w)
    if isinstance(want, Exception):
        return
    value, (d_s, d_u, d_w) = want
    plain = exprgrad.compile(source, "t.expr")
    got = plain.f_grad(s, u, w)
    assert _close(plain.f(s, u, w), value) and _close(got[0], value), source
    assert _close(list(got[1]), [d_s, d_u, d_w]), source
    array = exprgrad.compile(source, "t.expr", target="array")
    with np.errstate(all="raise"):
        got = array.f_grad(s, np.asarray(u, dtype=float), np.asarray(w, dtype=float))
        assert _close(array.f(s, np.asarray(u, dtype=float), np.asarray(w, dtype=float)), value)
    assert _close(got[0], value), source
    assert _close([got[1][0], list(np.asarray(got[1][1])), list(np.asarray(got[1][2]))],
                  [d_s, d_u, d_w]), source


def test_an_invariant_min_in_a_products_conditional_term_at_no_data():
    module = exprgrad.compile("f(t, u[n]) = prod((1 + (t if min(u[j] for j in range(n)) < -1 "
                              "else min(u[j] for j in range(n)))) for k in range(n))\n")
    assert module.f(1.0, []) == 1.0
    assert module.f_grad(1.0, []) == (1.0, (0.0, []))


def test_a_guarded_divisor_read_by_a_max_tie_in_the_gradient():
    """A max's tie test in the gradient divides by a value computed only
    under `n >= 1e3`: it is tested only there (found by the long fuzz run,
    seed data:700003967)."""
    source = ("f(u[n]) = sum((sum(max(n, u[j] / (1 + n^2)) * u[k] "
              "for j in range(n)) if n >= 1e3 else n) for k in range(n))\n")
    module = exprgrad.compile(source)
    assert module.f([-0.4, 1.0, 2.0]) == 9.0
    assert module.f_grad([-0.4, 1.0, 2.0]) == (9.0, ([0.0, 0.0, 0.0],))
    np = pytest.importorskip("numpy")
    array = exprgrad.compile(source, target="array")
    value, (d_u,) = array.f_grad(np.asarray([-0.4, 1.0, 2.0]))
    assert value == 9.0 and list(d_u) == [0.0, 0.0, 0.0]


# A shifted read's adjoint lands where the index is in range; at the
# length given the gradient's loop runs but no index is, and the source
# never computes the loop-invariant term (which raises at s = -1).
SHIFTED = [("prod((1 + tanh(u[k - 1] * log(s))) / 2 for k in range(1, n))", 1),
           ("sum(u[k - 2] * log(s) for k in range(2, n))", 2),
           ("sum(u[k + 1] * log(s) for k in range(n - 1))", 1),
           ("sum(u[k + 1] * u[k] / (s + 1) for k in range(n - 1))", 1),
           ("sum(u[k - 1] * sqrt(s) for k in range(3, n))", 3)]


@pytest.mark.parametrize("body, n", SHIFTED)
def test_a_shifted_reads_gradient_skips_what_no_iteration_reads(body, n):
    """(Found by the property test above: `log(s)` was computed for the
    gradient of `u[k - 1]` at n = 1, where range(1, n) is empty.)"""
    source = f"f(s, u[n]) = {body}\n"
    empty = 1.0 if body.startswith("prod") else 0.0
    plain = exprgrad.compile(source, "t.expr")
    assert plain.f_grad(-1.0, [0.5] * n) == (empty, (0.0, [0.0] * n))
    np = pytest.importorskip("numpy")
    array = exprgrad.compile(source, "t.expr", target="array")
    with np.errstate(all="raise"):
        value, (d_s, d_u) = array.f_grad(-1.0, np.full(n, 0.5))
    assert (value, d_s, list(d_u)) == (empty, 0.0, [0.0] * n)


def test_a_tie_test_read_under_a_test_that_can_raise_nests_inside_it():
    """The gradient's loop reads a max's tie test only where `1 / s < 2`
    (the max's branch), and the tie test divides by `exp(s)`, which the
    loop reads only there too: the tie test is made inside `1 / s < 2`,
    not around it (fuzz seed data:1500005215: the emitted gradient divided
    by the guarded `exp(s)`, zero where the test fails)."""
    piece = "diff((s - z1[i]) if z1[i] >= 1.5 else z1[i], s) * v[j]"
    total = f"sum({piece} for i in range(n))"
    source = ("def f(s, v[n]):\n"
              "    z1 = [v[k] + 1 / exp(s) for k in range(n)]\n"
              "    c2 = 1 / s\n"
              f"    return sum((max({total} * (1.5 if {total} >= 3 else 2) for j in range(n))"
              " if c2 < 2 else c2) for k in range(n))\n")
    module = exprgrad.compile(source)
    assert module.f(0.5, [1.0]) == 2.0  # c2 = 2: the max's branch is not taken
    assert module.f_grad(0.5, [1.0]) == (2.0, (-4.0, [0.0]))
    np = pytest.importorskip("numpy")
    array = exprgrad.compile(source, target="array")
    value, (d_s, d_v) = array.f_grad(0.5, np.asarray([1.0]))
    assert (value, d_s, list(d_v)) == (2.0, -4.0, [0.0])


def test_a_condition_read_under_a_condition_that_can_raise():
    """A loop reads a tie test (`z1[j] ... == max`) guarded by another
    test that can raise; both guarded, the program still schedules (fuzz
    seed data:900012495 raised IndexError in the scheduler) and its
    gradient matches finite differences."""
    source = ("f(u[n]) = max(exp(sin(1 if u[k] > 3 else u[k])) / (1 + relu(prod(sigmoid("
              "log(1 + (1 if u[j] > 3 else u[j])^2) / (1 + relu(max(sin((1 if u[i] > 3 else u[i])"
              " - (1 if u[j] > 3 else u[j])) for i in range(n)))^2) - (1 if u[k] > 3 else u[k]))"
              " for j in range(n)))^2) for k in range(n))\n")
    module = exprgrad.compile(source)
    u = [0.5, 3.5, -1.0]
    value, (d_u,) = module.f_grad(u)
    assert value == module.f(u)
    for got, want in zip(d_u, _differences_in_u(module.f, u)):
        assert abs(got - want) < 1e-6


def test_read_guards_nest_in_one_order():
    """Guards of several loops' reads nest in one order, so the scheduler
    finds an order for the statements (fuzz seed data:1000009795 raised
    IndexError when conditions that can raise were nested innermost)."""
    source = (
        "def f(s, u[n]):\n"
        "    z1 = [(min(relu(min((1e-3 - u[k])^2 for j in range(n))), 3) if u[k] > 0.25 "
        "else 2) for k in range(n)]\n"
        "    return min(max(atan((sigmoid(relu(z1[j])) if z1[j] > 1e3 else s) - u[k - 2]) "
        "for j in range(n)) * u[k - 2] for k in range(2, n)) - max(z1[k + 1] "
        "for k in range(n - 1))\n")
    module = exprgrad.compile(source)
    s, u = 0.3, [0.1, 0.7, 1.3, -0.4]
    value, (d_s, d_u) = module.f_grad(s, u)
    assert value == module.f(s, u)
    h = 1e-6
    assert abs(d_s - (module.f(s + h, u) - module.f(s - h, u)) / (2 * h)) < 1e-6
    for got, want in zip(d_u, _differences_in_u(module.f, u, s)):
        assert abs(got - want) < 1e-6


def test_two_risky_tests_each_read_where_the_other_holds():
    """A max's tie test and `z1[k] > -1` each guard a value the other's
    guard reads; the scheduler evaluates such a node once per block instead
    of under a guard that waits for it (fuzz seed data:1100012347 raised
    IndexError in the scheduler)."""
    source = (
        "def d0(t, u[batch], s):\n"
        "    z1 = [max((sum(softplus(tanh((prod(tanh(((1e-3 + 1e-3) if exp(sin(u[j2])) >= 0.5"
        " else exp(sin(u[j2]))) - u[j]) for j2 in range(batch)) if u[j] > 0.25 else 0.25)"
        " - u[k])) for j in range(batch)) - u[k]), relu(sum(softplus(tanh((prod(tanh(((1e-3"
        " + 1e-3) if exp(sin(u[j2])) >= 0.5 else exp(sin(u[j2]))) - u[j]) for j2 in"
        " range(batch)) if u[j] > 0.25 else 0.25) - u[k])) for j in range(batch)))) for k in"
        " range(batch)]\n"
        "    return min(((z1[k] / (1 + 1e-3^2)) if z1[k] > -1 else z1[k]) for k in range(batch))\n")
    module = exprgrad.compile(source)
    t, s, u = 0.2, 0.7, [0.1, 0.9, -0.3]
    value, (d_t, d_u, d_s) = module.d0_grad(t, u, s)
    assert value == module.d0(t, u, s) and d_t == d_s == 0.0
    for got, want in zip(d_u, _differences_in_u(lambda t, u: module.d0(t, u, s), u, t)):
        assert abs(got - want) < 1e-6


def test_a_guard_that_waits_through_a_value_of_another_guard():
    """The guard of one max's tie test reads another max's, whose guard
    reads a third computed from the first: each is evaluated where its uses
    are instead (fuzz seed data:1200005515 raised IndexError in the
    scheduler)."""
    source = (
        "def d0(u[n], s, X[n][2]):\n"
        "    z1 = [((s / (1 + ((0.5 / (1 + (u[k])^2)))^2)) if u[k] > 1.5 else s) for k in range(n)]\n"
        "    return [((max(atan(min((0.25 * s), (3 * s)) - z1[k]) for j in range(n)) if "
        "max(atan(min((0.25 * s), (3 * s)) - z1[k]) for j in range(n)) >= 0.5 else "
        "max(atan(min((0.25 * s), (3 * s)) - z1[k]) for j in range(n))) * "
        "(max(atan(min((0.25 * s), (3 * s)) - z1[k]) for j in range(n)))^2) for k in range(n)]\n")
    module = exprgrad.compile(source)
    X = [[0.0, 0.0]] * 3
    for s in (0.7, -0.4):
        u = [0.3, 1.9, -1.2]
        value, vjp = module.d0_vjp(u, s, X, [1.0, 0.5, -2.0])
        assert value == module.d0(u, s, X)
        h = 1e-6
        total = lambda s: sum(c * v for c, v in zip([1.0, 0.5, -2.0], module.d0(u, s, X)))
        assert abs(vjp[1] - (total(s + h) - total(s - h)) / (2 * h)) < 1e-6


def _differences_in_u(f, u, *before, h=1e-6):
    """Central differences of f(*before, u) in each element of u."""
    out = []
    for i in range(len(u)):
        up, down = list(u), list(u)
        up[i] += h
        down[i] -= h
        out.append((f(*before, up) - f(*before, down)) / (2 * h))
    return out


# An invariant sum's empty-range 0 keeps the shape of the loops around it
# (once the number 0.0, which the deeper loop then indexed: fuzz seed
# data:1800014003).
NESTED_EMPTY = [
    "f(u[n], v[m]) = sum(sum(u[i] * sum(u[j] for k in range(m)) for i in range(n))"
    " for j in range(n))\n",
    "def f(u[n], v[m]):\n    s = [sum(sqrt(1 + u[j]^2) for k in range(m)) for j in range(n)]\n"
    "    return sum(sum(u[i] / (1 + s[j]^2) for i in range(n)) for j in range(n))\n",
]


@pytest.mark.parametrize("source", NESTED_EMPTY)
@pytest.mark.parametrize("n, m", [(2, 0), (0, 0), (3, 2)])
def test_an_empty_invariant_sum_inside_other_loops_agrees_in_both_targets(source, n, m):
    pytest.importorskip("numpy")
    plain = exprgrad.compile(source)
    arrays = exprgrad.compile(source, target="array")
    u, v = [0.5 * (i + 1) for i in range(n)], [0.25] * m
    value, (du, dv) = plain.f_grad(u, v)
    got, (got_du, got_dv) = arrays.f_grad(u, v)
    assert float(got) == pytest.approx(value) and arrays.f(u, v) == pytest.approx(plain.f(u, v))
    assert list(got_du) == pytest.approx(du) and list(got_dv) == pytest.approx(dv)


@pytest.mark.parametrize("n", [0, 1, 2])
@pytest.mark.parametrize("s", [1.0, -2.0])
def test_a_min_under_a_condition_not_taken_inside_an_empty_map(n, s):
    """The array target reduces a stand-in where no element takes the side
    of a min over an empty range; it was one long on every axis, so an
    empty map of such mins had one element, and its sum was s, not 0 (fuzz
    seed data:2400011891).  Only the reduced axes are one long now, and a
    min of each iteration of an empty map is never taken, so where the side
    is taken (s < -1) it does not raise either: the plain target's loop
    runs no times."""
    pytest.importorskip("numpy")
    source = ("def f(v[n], s):\n    z = [(min(v[j] * v[k] for j in range(n)) if s < -1 else s)"
              " for k in range(n)]\n    return sum(z[k] for k in range(n))\n")
    plain = exprgrad.compile(source)
    arrays = exprgrad.compile(source, target="array")
    v = [0.5 * (i + 1) for i in range(n)]
    value, (dv, ds) = plain.f_grad(v, s)
    got, (got_dv, got_ds) = arrays.f_grad(v, s)
    assert float(arrays.f(v, s)) == pytest.approx(plain.f(v, s))
    assert float(got) == pytest.approx(value) and float(got_ds) == pytest.approx(ds)
    assert list(got_dv) == pytest.approx(dv)
