"""Gradient verification where doubles cannot follow the exact computation,
or where SymPy folds away what the program evaluates.

The 50-digit reference is SymPy's translation of the DAG, and SymPy folds
`1**u` to 1 as it is built: `u` (x**0.5 at x < 0, 1e-300**x at x = -2,
sqrt(x) whose derivative the gradient multiplies by 0) is gone from it,
while the emitted code still evaluates it and raises.  And at 50 digits
`x * 4.9e-324` or `1e-300**x = 1e558` are exact where a double overflows
or keeps one digit.  Before each compared point the verifier runs the
source's DAG itself (`numeric.SourceDag`): a point where a node it
evaluates (or a local derivative the chain rule needs) is undefined is not
compared, nor one where a number leaves the normal double range, and the
item's detail counts the latter.  Each example below was a FAILED gradient
item of a stress program (tests/fuzz_long.py).
"""

import mpmath
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import exprgrad
from exprgrad.compiler.pipeline import differentiate, front_end, generate
from exprgrad.compiler.values import flatten
from exprgrad.verify import FAILED, NUMERIC, PROVED, UNVERIFIED, check
from exprgrad.verify.numeric import (DEFINED, DOUBLE_MAX, NORMAL_MIN, OUT_OF_RANGE,
                                     UNDEFINED_HERE, SourceDag)

QUICK = dict(timeout=1.0)
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def verdict(source: str, *values, wrt=None) -> str:
    """SourceDag's verdict on the first function of `source` at `values`
    (one per input, in parameter order); `wrt`: the parameters differentiated."""
    program = front_end(source)
    f = program.functions[0]
    inputs = [x for p in f.params for x in flatten(p.placeholders)]
    wrt_nodes = None if wrt is None else {
        x for p in f.params if p.name in wrt for x in flatten(p.placeholders)}
    dag = SourceDag(program.graph, flatten(f.output), wrt_nodes)
    return dag.at(dict(zip(inputs, (mpmath.mpf(v) for v in values))))


def outside_normal_range(value) -> bool:
    return abs(value) >= DOUBLE_MAX or 0 < abs(value) < NORMAL_MIN


# --- the range rule ------------------------------------------------------------------
EXTREMES = [4.9e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-10, 3.0, 1e300, 1e308,
            1.7976931348623157e308]


@FEW
@given(x=st.floats(-1e3, 1e3, allow_nan=False), c=st.sampled_from(EXTREMES))
def test_a_product_outside_the_normal_double_range_is_out_of_range(x, c):
    exact = mpmath.mpf(x) * mpmath.mpf(c)  # the constant as the program holds it
    expected = OUT_OF_RANGE if outside_normal_range(mpmath.mpf(c)) or \
        outside_normal_range(exact) else DEFINED
    assert verdict(f"f(x) = x * {c!r}", x) == expected


@FEW
@given(x=st.floats(-50, 50, allow_nan=False))
def test_a_power_is_out_of_range_where_a_double_cannot_hold_it(x):
    """1e-300**x: 1e558 at x = -1.86 overflows, 1e-600 at x = 2 underflows."""
    with mpmath.workdps(50):
        exact = mpmath.power(mpmath.mpf(1e-300), x)
    expected = OUT_OF_RANGE if outside_normal_range(exact) else DEFINED
    assert verdict("f(x) = x + 1 ** (1e-300 ** x)", x) == expected


def test_a_constant_only_compared_with_is_not_range_checked():
    """A comparison with 4.9e-324 or inf is what doubles do too (the
    library's log_softmax compares its shift with inf)."""
    assert verdict("f(x) = 2 * x if x > 4.9e-324 else x", 1) == DEFINED
    assert verdict("f(z[3]) = -log_softmax(z)[0] + mean(softmax(z))", 1, 2, 3) == DEFINED
    assert verdict("f(x) = 2 * x if x > 1 else x * 4.9e-324", 2) == DEFINED
    assert verdict("f(x) = 2 * x if x > 1 else x * 4.9e-324", 0.5) == OUT_OF_RANGE


# --- what SymPy folds away is still evaluated ---------------------------------------
@FEW
@given(x=st.floats(-10, 10, allow_nan=False))
def test_an_undefined_power_under_one_to_the_power_is_undefined(x):
    """SymPy reads 1**(x**0.5) as 1; the program evaluates x**0.5 (a domain
    error at x < 0) and the gradient multiplies its derivative (infinite at
    0) by 0."""
    expected = UNDEFINED_HERE if x <= 0 else DEFINED
    assert verdict("f(x) = x + 1 ** (x ** 0.5)", x) == expected


@FEW
@given(x=st.floats(-10, 10, allow_nan=False))
def test_only_the_branch_taken_counts(x):
    """The conditional's other branch, and what `and` short-circuits past,
    are not evaluated (the emitted code must not either: evaluating them is
    what a FAILED item of a branch not taken reports)."""
    assert verdict("f(x) = (1 ** (x ** 0.5)) if x > 0 else x", x) == DEFINED
    assert verdict("f(x) = 2 * x if x > 0 and log(x) > 0 else x", x) == DEFINED


def test_a_local_derivative_counts_only_where_the_chain_rule_needs_it():
    assert verdict("f(x) = x + 1 ** sqrt(x)", 0) == UNDEFINED_HERE  # sqrt'(0) is infinite
    assert verdict("f(x) = x + 1 ** sqrt(x)", 1) == DEFINED
    assert verdict("f(x, y) = x + 1 ** sqrt(y)", 1, 0) == UNDEFINED_HERE
    assert verdict("f(x, y) = x + 1 ** sqrt(y)", 1, 0, wrt=["x"]) == DEFINED
    # sqrt(x) only decides the branch: its derivative is never taken
    assert verdict("f(x) = x if sqrt(x) > 1 else 2 * x", 0) == DEFINED
    # d/db a^b at a < 0 is nan (numerics policy), even where a^b is defined
    assert verdict("f(x) = x + 1 ** (x ** (1 + x*x))", -2) == UNDEFINED_HERE
    # d/da a^b at a = 0, b = 0 (x^x at 0) needs 0^-1
    assert verdict("f(x) = -(2 ** (x ** x)) * x", 0) == UNDEFINED_HERE
    assert verdict("f(x) = x ** 2.5", 0) == DEFINED  # 2.5 * 0^1.5 = 0


# --- the stress programs' FAILED gradient items -------------------------------------
STRESS = {  # as the fuzzer wrote them: a function's points are drawn per line and name
    # (a) a constant below the normal range: its double is 4.94e-324, not 4.9e-324
    "a subnormal constant": "s0(x) = log(x * 4.9e-324)\n",
    # (b) an intermediate overflows (1e-300**x = 1e558 at x = -1.86) under 1**u
    "an overflow folded away": "s0(x) = (10**0.5**1**1e-300**x) * x\n",
    "an overflow in an exponent": "s0(x) = x + 1e-300**1**1.0001**(1+x*x)**1e10**(1+x*x)\n",
    # (c) an undefined power (x**0.5, x**x at x < 0) under 1**u
    "a domain error folded away": "s0(x) = x + 1^x^0.5\n",
    "x to the x folded away": "s0(x) = x + 1**(1+x*x)**0**1.0001**1.0001**x**x\n",
    # (d) a local derivative that is undefined: d/db a^b at a = -2, d/da at 0^0
    "a nan exponent derivative": "s2(x) = x + 3**(1+x*x)**1**10**x**(1+x*x)\n",
    "x to the x at 0": "s1(x) = (-2^x^x) * x\n",
    # (e) a derivative that is exactly 0, from terms of 1e308: 1e258 of rounding noise at
    # 50 digits on both sides, different on each; at 80 digits it moves
    "rounding noise of 1e308": "s0(z[3]) = sum(softmax([z[0], z[1] * 1e308, -z[2]]))\n",
}


@pytest.mark.parametrize("source", STRESS.values(), ids=list(STRESS))
def test_stress_gradients_are_not_failed(source):
    report = check(source, **QUICK)
    assert [item.kind for item in report.items] == ["gradient"]
    assert report.items[0].status != FAILED, report.items[0].text("<string>")


def test_the_item_says_why_no_point_was_compared():
    item, = check("f(x) = log(x * 4.9e-324)\n", **QUICK).items
    assert item.status == UNVERIFIED
    assert "leaves the double range" in item.detail and "points skipped" in item.detail


def test_the_item_counts_the_points_skipped():
    item, = check("f(x) = x + x^1^1e-300^-2^x^2^x\n", **QUICK).items
    assert item.status == NUMERIC
    assert "skipped: an intermediate leaves the double range" in item.detail


def test_a_wrong_gradient_with_large_values_in_range_still_fails():
    """x * 1e300 stays in the double range: the comparison is fair there,
    and a gradient that is off by a factor of two is found."""
    source = "f(x) = x * 1e300\n"
    program = front_end(source)
    text = generate(program, differentiate(program), "python")
    assert "(1e+300,)" in text
    assert check(source, **QUICK).items[0].status == PROVED
    item, = check(source, module_text=text.replace("(1e+300,)", "(2e+300,)"), **QUICK).items
    assert item.status == FAILED


ILL_CONDITIONED = """k0 = cosh(tanh(4))
def f0(len_, print, y):
    tmp = (1 + pi / (2 + sin(len_)) / (2 + sin((k0 / cosh(len_))))*(pi / (2 + sin(len_)) / (2 + sin((k0 / cosh(len_))))))**-2
    y += [len_ if y <= tmp else print, prod((1 + tanh(k0)) for j in range(1, 3)), k0 / exp(k0)][1]
    return min(tanh(pow(3.000000e+00, 2) / (2 + sin((y / (2 + sin(tmp)))))), atan(diff(min(k0, print, 7.500000e-01), len_)), +abs(2))
# a comment line
def f1(z, _w[2], self) wrt self:
    z += [f0(k0, self, _w[0]), expm1(tanh(2.000000e+00)), f0(z, _w[-2], _w[len(_w) - 2])][1]
    return relu(sum(_w[1] for n in range(1, 2) for i in range(2))) + z + k0
def f2(y):
    y += 2.0
    y *= pow(1.5 + cos(min(k0, k0)), 1.5) / exp(([k0 for n in range(2)][1] + y))
    y = -y^2
    return (sqrt(1 + (y * y)**2) if (k0 + y) * k0 < ([k0 for n in range(3)][0] if k0 != (k0 if (not k0 <= k0) else y) else cos(k0)) else [0.75 for idx in range(3)][1]) + acos(tanh((1.0^3))/2) * (log1p(2.500000e-01^2) + pi)
f3(_float) = relu(abs(cos(f2(_float))))
"""


def test_an_ill_conditioned_point_is_skipped_not_failed():
    """f3 is cos of a number near 1e10 built from a folded constant: at
    _float = -7.58 the last digit of the double k0 is the fifth of the
    result.  (A program of the long fuzz run, as it was found: check said
    FAILED there.)"""
    report = check(ILL_CONDITIONED, timeout=5.0)
    item = [i for i in report.items if "f3" in i.what][0]
    assert item.status != FAILED, item.detail
    assert "ill-conditioned" in item.detail, item.detail


class _Decisions:
    """A stand-in for branches.Coverage: the branch a point takes is `side`
    of it, and it is at a tie where `tie` says."""

    def __init__(self, side, tie=lambda values: False):
        self.side, self.tie = side, tie

    def tied_at(self, values):
        return {0} if self.tie(values) else set()

    def branches_at(self, values):
        return self.side(values)


class _Reference:
    rebuild = None  # no constants to move (`_constants_matter`)

    def __init__(self, evaluate):
        self.evaluate = evaluate


def test_a_point_every_ulp_move_takes_off_its_branch_is_ill_conditioned():
    """Where each move of the inputs by a few units in the last place lands
    on another branch, the point is that close to a boundary (or its
    decisions that sensitive): doubles may take either side, so it is
    skipped, not FAILED (fuzz seed valid:1300009844: the source's gradient
    went from -2.5e25 to -1.8e27 at the moves).  A move that stays on the
    branch still measures, and a point at a tie is still compared."""
    from exprgrad.verify.gradients import _ill_conditioned
    point = [mpmath.mpf("0.3"), mpmath.mpf("-1.7")]
    steady = _Reference(lambda *values: [mpmath.mpf(2)])
    every_move_flips = _Decisions(lambda values: tuple(values))
    one_side = _Decisions(lambda values: (values[0] > 0,))
    with mpmath.workdps(50):
        assert _ill_conditioned(steady, every_move_flips, point, [mpmath.mpf(2)])
        assert not _ill_conditioned(steady, one_side, point, [mpmath.mpf(2)])
        tied = _Decisions(lambda values: tuple(values), tie=lambda values: True)
        assert not _ill_conditioned(steady, tied, point, [mpmath.mpf(2)])
        moving = _Reference(lambda *values: [mpmath.cos(values[0] * 10 ** 20)])
        assert _ill_conditioned(moving, one_side, point, moving.evaluate(*point))


def test_a_wrong_value_at_well_conditioned_points_still_fails():
    """The skip is not a hole: a mutant whose error does not depend on the
    last digits is still caught (its module text is the emitted text with
    one constant changed)."""
    source = "f(t) = cos(t) * 3\n"
    text = exprgrad.emit(source, "f.expr").replace("3.0", "3.0000001")
    report = check(source, module_text=text, timeout=5.0)
    assert [i.status for i in report.items] == [FAILED]
