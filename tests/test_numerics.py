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
