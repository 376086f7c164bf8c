"""The numerics policy of generated code (docs/reliability.md, "Numerics"):
Python's float and `math` semantics for values, PyTorch's conventions for
derivatives at kinks, and errors that name the `.expr` line."""

from __future__ import annotations

import math
import traceback

import pytest
from hypothesis import given, settings, strategies as st

import exprgrad

SOURCE = """\
lg(x) = log(x)
sq(x) = sqrt(x)
half(x) = x**0.5
pw(a, b) = pow(a, b)
dv(a, b) = a / b
ex(x) = exp(x)
rl(x) = relu(x)
ab(x) = abs(x)
mx(a, b) = max(a, b)
mn(a, b, c) = min(a, b, c)
sq2(x) = x*x
cube(x) = x^3
inv(x) = x**-1
sel(x) = log(x) if x > 0 else 0*x
"""


@pytest.fixture(scope="module")
def m():
    return exprgrad.compile(SOURCE, "numerics.expr")


@pytest.mark.parametrize("call, args, error", [
    ("lg", (0.0,), ValueError), ("lg", (-1.0,), ValueError),  # log of non-positive
    ("sq", (-1.0,), ValueError),  # sqrt of a negative number: never complex
    ("pw", (-8.0, 1 / 3), ValueError),  # negative base, non-integer exponent (math.pow)
    ("pw", (0.0, -1.0), ValueError),  # 0 to a negative power
    ("dv", (1.0, 0.0), ZeroDivisionError), ("dv", (0.0, 0.0), ZeroDivisionError),
    ("inv", (0.0,), ZeroDivisionError),
    ("ex", (1000.0,), OverflowError),  # exp overflows: an error, not inf
    ("cube", (1e200,), OverflowError),  # so does ** (Python's float power)
])
def test_domain_errors_and_overflow_raise_like_python(m, call, args, error):
    with pytest.raises(error):
        getattr(m, call)(*args)
    with pytest.raises(error):
        getattr(m, call + "_grad")(*args)


def test_arithmetic_overflow_is_ieee_inf_like_python(m):
    assert m.sq2(1e200) == math.inf == 1e200 * 1e200
    assert m.ex(-1000.0) == 0.0 and m.ex_grad(-1000.0) == (0.0, (0.0,))


def test_derivative_of_sqrt_at_zero_raises_and_value_is_zero(m):
    """sqrt and x**0.5 are 0 at 0, where their derivative is infinite: the
    gradient raises (ZeroDivisionError for sqrt's 0.5/sqrt(x), ValueError
    for math.pow(0, -0.5)) instead of returning inf silently."""
    assert m.sq(0.0) == 0.0 and m.half(0.0) == 0.0
    with pytest.raises(ZeroDivisionError):
        m.sq_grad(0.0)
    with pytest.raises(ValueError):
        m.half_grad(0.0)
    assert math.isnan(_value_grad(lambda v: v.sqrt(), 0.0)[1][0])  # Value: nan, as PyTorch's


@settings(max_examples=50, deadline=None)
@given(st.floats(1e-300, 1e300))
def test_power_one_half_agrees_with_sqrt(x):
    m = exprgrad.compile("sq(x) = sqrt(x)\nhalf(x) = x**0.5\n")
    assert m.half(x) == pytest.approx(m.sq(x), rel=1e-15)
    assert m.half_grad(x)[1][0] == pytest.approx(m.sq_grad(x)[1][0], rel=1e-14)
    assert m.sq_grad(x)[1][0] == pytest.approx(0.5 / math.sqrt(x), rel=1e-15)


def test_kinks_follow_pytorch(m):
    assert m.rl_grad(0.0) == (0.0, (0.0,))  # relu'(0) = 0
    assert m.rl_grad(-0.0)[1] == (0.0,)
    assert m.ab_grad(0.0) == (0.0, (0.0,))  # abs'(0) = 0
    assert m.mx_grad(1.0, 1.0) == (1.0, (0.5, 0.5))  # ties split evenly
    assert m.mn_grad(2.0, 2.0, 2.0)[1] == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert m.mn_grad(1.0, 1.0, 3.0) == (1.0, (0.5, 0.5, 0.0))
    assert m.pw_grad(0.0, 2.0) == (0.0, (0.0, 0.0))  # d/db a**b at a = 0 is 0, not nan


def test_nan_and_inf_inputs_propagate(m):
    value, (slope,) = m.ex_grad(math.nan)
    assert math.isnan(value) and math.isnan(slope)
    assert m.ex_grad(math.inf) == (math.inf, (math.inf,))
    assert m.lg_grad(math.inf) == (math.inf, (0.0,))
    value, (slope,) = m.rl_grad(math.nan)  # nan passes through relu; no gradient flows
    assert math.isnan(value) and slope == 0.0
    value, (slope,) = m.ab_grad(math.nan)
    assert math.isnan(value) and slope == 0.0


def test_only_the_branch_taken_is_evaluated(m):
    assert m.sel(-1.0) == 0.0  # log(-1) is in the branch not taken
    assert m.sel_grad(-1.0) == (0.0, (0.0,))
    assert m.sel_grad(math.e) == (1.0, (1 / math.e,))


def _failing_line(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return frame.line or ""


@pytest.mark.parametrize("call, args, line", [
    ("lg", (-1.0,), 1), ("dv", (1.0, 0.0), 5), ("ex", (1000.0,), 6), ("sq_grad", (0.0,), 2),
])
def test_errors_from_generated_code_name_the_expr_line(m, call, args, line):
    with pytest.raises(ArithmeticError if call != "lg" else ValueError) as info:
        getattr(m, call)(*args)
    shown = _failing_line(info.value)
    assert f"# numerics.expr:{line}:" in shown, shown


def test_errors_from_a_loaded_file_name_the_expr_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRGRAD_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "model.expr"
    path.write_text("# a model\n\ndef f(x):\n    y = x + 1\n    return log(y)\n")
    for _ in range(2):  # compiled, then from the cache
        module = exprgrad.load(path)
        with pytest.raises(ValueError) as info:
            module.f(-1.0)
        assert "model.expr:5:" in _failing_line(info.value)
        formatted = "".join(traceback.format_exception(info.value))
        assert "model.expr:5:" in formatted


# --- one policy per case, the same in generated code and in `Value` ----------------
POLICY = """\
mx(x, y) = max(x, y)
mn(x, y, z) = min(x, y, z)
sq(x) = x^2
cube(x) = x^3
zero(x) = x^0
pw(x, y) = pow(x, y)
"""


@pytest.fixture(scope="module")
def policy():
    return exprgrad.compile(POLICY, "policy.expr")


def _value_grad(build, *xs):
    """Value and gradient of a `Value` expression, as f_grad returns them."""
    leaves = [exprgrad.Value(x) for x in xs]
    out = build(*leaves)
    out.backward()
    return out.data, tuple(v.grad for v in leaves)


def _same(a, b) -> bool:
    """Equal, nan equal to nan, elementwise through tuples."""
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("args, expected", [
    ((math.nan, 1.0), (math.nan, (1.0, 0.0))),
    ((1.0, math.nan), (math.nan, (0.0, 1.0))),  # Python's max(1, nan) is 1; ours is nan
    ((math.nan, math.nan), (math.nan, (0.5, 0.5))),
    ((2.0, 2.0), (2.0, (0.5, 0.5))),
    ((math.inf, 1.0), (math.inf, (1.0, 0.0))),
])
def test_max_with_nan_is_nan_and_the_nan_inputs_share_the_gradient(policy, args, expected):
    """As torch.max over a tensor: a nan input makes the result nan, and the
    gradient is split evenly among the inputs that are nan."""
    assert _same(policy.mx_grad(*args), expected)
    assert _same(_value_grad(lambda x, y: x.max(y), *args), expected)


@given(st.lists(st.sampled_from([math.nan, -1.0, 0.0, 2.0, math.inf]), min_size=3, max_size=3))
@settings(max_examples=60, deadline=None)
def test_min_propagates_nan_in_every_position_and_value_agrees(xs):
    compiled = exprgrad.compile(POLICY, "policy.expr").mn_grad(*xs)
    value, grads = compiled
    nans = [math.isnan(x) for x in xs]
    if any(nans):
        assert math.isnan(value)
        assert grads == tuple(1 / sum(nans) if n else 0.0 for n in nans)
    else:
        assert value == min(xs) and sum(grads) == pytest.approx(1.0)
    assert _same(_value_grad(lambda a, b, c: a.min(b, c), *xs), compiled)


def test_a_square_past_the_float_range_raises_like_any_power(policy):
    """x^2 is emitted as x ** 2 (not x * x, which would be inf), so every
    constant power overflows the same way: OverflowError, also in Value."""
    for f in (policy.sq, policy.sq_grad, policy.cube, policy.cube_grad):
        with pytest.raises(OverflowError):
            f(1e200)
    for k in (2, 3):
        with pytest.raises(OverflowError):
            exprgrad.Value(1e200) ** k
    assert policy.sq_grad(3.0) == (9.0, (6.0,))
    assert exprgrad.compile("f(x) = x*x\n").f(1e200) == math.inf  # * itself is IEEE


@pytest.mark.parametrize("x", [0.0, -0.0, 2.0, math.inf, math.nan])
def test_the_derivative_of_x_to_the_zero_is_zero_everywhere(policy, x):
    assert policy.zero_grad(x) == (1.0, (0.0,))
    assert _value_grad(lambda v: v ** 0, x) == (1.0, (0.0,))


def test_pow_of_a_negative_base_has_its_base_derivative(policy):
    """pow(-2, 3): d/dx = 3 * (-2)^2 = 12; d/dy would need log(-2), so it is
    nan (as PyTorch), in generated code and in Value alike."""
    expected = (-8.0, (12.0, math.nan))
    assert _same(policy.pw_grad(-2.0, 3.0), expected)
    assert _same(_value_grad(lambda x, y: x ** y, -2.0, 3.0), expected)
    assert policy.pw_grad(0.0, 3.0) == (0.0, (0.0, 0.0))
    only_base = exprgrad.compile("pw(x, y) wrt x = pow(x, y)\n")
    assert only_base.pw_grad(-2.0, 3.0) == (-8.0, (12.0,))


@given(st.floats(-50, 50).filter(lambda x: x == 0 or abs(x) > 1e-3), st.integers(-6, 6))
@settings(max_examples=60, deadline=None)
def test_pow_derivatives_match_mpmath_where_defined(x, k):
    import mpmath
    module = exprgrad.compile("pw(x, y) = pow(x, y)\n")
    if x == 0.0 and k <= 0:
        return
    value, (dx, dy) = module.pw_grad(x, float(k))
    with mpmath.workdps(40):
        assert value == pytest.approx(float(mpmath.power(x, k)), rel=1e-12)
        assert dx == pytest.approx(float(k * mpmath.power(x, k - 1)), rel=1e-12, abs=1e-300)
        if x > 0:
            assert dy == pytest.approx(float(mpmath.power(x, k) * mpmath.log(x)), rel=1e-12,
                                       abs=1e-300)
        elif x < 0:
            assert math.isnan(dy)


def test_every_row_of_the_numerics_table_names_a_test_of_this_file():
    import re
    doc = open(__file__.rsplit("/tests/", 1)[0] + "/docs/reliability.md").read()
    table = doc.split("## Numerics", 1)[1].split("\n\n", 3)[2]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) > 10
    for row in rows[1:]:
        named = re.findall(r"`(test_\w+)`", row.rsplit("|", 2)[1])
        assert named or row.rsplit("|", 2)[1].strip() == "same", row
        for name in named:
            assert name in globals(), name


@pytest.mark.parametrize("target", ["python", "array"])
def test_an_input_read_twice_by_one_node_gets_its_two_contributions_summed_first(target):
    """`x - x` gives x the contributions d and -d; summed first they cancel
    to 0, where added one by one after x's other terms they took those with
    them once d was 1e300 (d/dx came out 0, not cos(x); fuzz seed
    mutated:2200010705)."""
    if target == "array":
        pytest.importorskip("numpy")
    scalar = exprgrad.compile("def f(x):\n    b = 1 + (x - x)\n    return b^1e300 + sin(x)\n",
                              target=target)
    assert float(scalar.f_grad(0.5)[1][0]) == math.cos(0.5)
    data = exprgrad.compile("f(u[n]) = sum((1 + (u[k] - u[k]))^1e300 + sin(u[k]) "
                            "for k in range(n))\n", target=target)
    assert [float(g) for g in data.f_grad([0.5, 1.5])[1][0]] == [math.cos(0.5), math.cos(1.5)]


@pytest.mark.parametrize("target", ["python", "array"])
def test_second_and_third_derivatives_of_a_product_over_data_at_zero_factors(target):
    """P(t) = prod(u[k] - t): at t = 1 with u = [1, 1, 3, 2] two factors
    are 0, and d/dt of diff(P, t) is the sum over ordered pairs of the
    product of the others, 2 * (3 - 1) * (2 - 1) = 4 (it was 0: fuzz seed
    data:2700027207); with three factors 0, d/dt of diff(diff(P, t), t) is
    -3! * (2 - 1).  docs/reliability.md, Numerics."""
    if target == "array":
        np = pytest.importorskip("numpy")
        data = np.asarray
    else:
        data = list
    once = ("def f(t, u[n]):\n"
            "    return diff(prod(u[k] - t for k in range(n)), t)\n")
    twice = ("def f(t, u[n]):\n"
             "    return diff(diff(prod(u[k] - t for k in range(n)), t), t)\n")
    _, (d_t, d_u) = exprgrad.compile(once, "p.expr", target=target).f_grad(
        1.0, data([1.0, 1.0, 3.0, 2.0]))
    assert float(d_t) == 4.0 and [float(x) for x in d_u] == [-2.0, -2.0, 0.0, 0.0]
    _, (d_t, d_u) = exprgrad.compile(twice, "p.expr", target=target).f_grad(
        1.0, data([1.0, 1.0, 1.0, 2.0]))
    assert float(d_t) == -6.0 and [float(x) for x in d_u] == [2.0, 2.0, 2.0, 0.0]
