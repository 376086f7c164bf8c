"""Random well-formed programs, compiled through `exprgrad.compile`: values
agree with SymPy, gradients agree with SymPy's derivative and with central
differences computed at 50 digits with mpmath.

Points are drawn away from kinks (relu, abs, min/max ties) and switch points
of conditionals, where a derivative is a convention rather than a limit; the
conventions themselves are tested in test_ops.py.
"""

from __future__ import annotations

import math

import mpmath
import sympy as sp
from hypothesis import HealthCheck, given, settings, strategies as st

import exprgrad
from conftest import (DPS, X, Y, ExprDrawer, away_from_kinks, central_difference,
                      exact_value, mp_function, mp_point)

REL = 1e-9
COORD = st.floats(-2.0, 2.0, allow_nan=False).map(lambda v: round(v, 6))
POINTS = st.lists(st.tuples(COORD, COORD), min_size=2, max_size=2)
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HUGE = 1e12  # values beyond this make the float comparison about cancellation, not exprgrad


def close(actual: float, expected, scale: float = 1.0) -> bool:
    expected = float(expected)
    return math.isclose(actual, expected, rel_tol=REL, abs_tol=REL * scale)


def usable(sym, kinks, point) -> bool:
    if not away_from_kinks(kinks, point):
        return False
    value = exact_value(sym, point)
    return mpmath.isfinite(value) and abs(value) < HUGE


_DERIVATIVES: dict = {}


def derivative(sym, *wrt):
    """SymPy's derivative as an mpmath function of (x, y), cached."""
    key = (sym, wrt)
    if key not in _DERIVATIVES:
        if len(_DERIVATIVES) > 256:
            _DERIVATIVES.clear()
        _DERIVATIVES[key] = mp_function(sp.diff(sym, *wrt))
    return _DERIVATIVES[key]


def assert_gradient(sym, point, grads, scale=1.0):
    """`grads` are the emitted partials of `sym` w.r.t. x and y at `point`."""
    for i, (s, got) in enumerate(zip((X, Y), grads)):
        with mpmath.workdps(DPS):
            symbolic = derivative(sym, s)(*mp_point(point))
        numeric = central_difference(sym, point, i)
        assert abs(symbolic - numeric) <= 1e-15 * (1 + abs(numeric)), (sym, point)
        assert close(got, symbolic, scale), f"d/d{s} at {point}: {got} vs SymPy {symbolic}"


def scale_of(sym, point) -> float:
    """A bound on float rounding: cancellation can only lose digits relative
    to the size of the value and the derivative terms it came from."""
    return 1.0 + float(abs(exact_value(sym, point)))


@SETTINGS
@given(data=st.data(), points=POINTS)
def test_one_line_functions(data, points):
    term = ExprDrawer(data, {"x": X, "y": Y}).draw(3)
    m = exprgrad.compile(f"f(x, y) = {term.text}\n", "prop.expr")
    for point in points:
        if not usable(term.sym, term.kinks, point):
            continue
        value, grads = m.f_grad(*point)
        assert m.f(*point) == value
        scale = scale_of(term.sym, point)
        assert close(value, exact_value(term.sym, point), scale), term.text
        assert_gradient(term.sym, point, grads, scale=scale * 10)


@SETTINGS
@given(data=st.data(), points=POINTS)
def test_blocks_with_locals_rebinding_augmented_assignment_and_calls(data, points):
    draw = data.draw
    helper_env = {"u": sp.Symbol("u", real=True), "v": sp.Symbol("v", real=True)}
    helper = ExprDrawer(data, helper_env).draw(2)
    u, v = helper_env["u"], helper_env["v"]

    def substituted(sym, a, b):
        return sym.subs({u: a, v: b}, simultaneous=True)

    env = {"x": X, "y": Y}
    kinks: list = []
    lines = [f"h(u, v) = {helper.text}", "def f(x, y):"]
    drawer = ExprDrawer(data, env, {"h": (2, lambda a, b: substituted(helper.sym, a, b),
                                          lambda a, b: tuple(substituted(k, a, b)
                                                             for k in helper.kinks))})
    for _ in range(draw(st.integers(1, 5), label="statements")):
        target = draw(st.sampled_from(["t", "s", "x", "y"]), label="target")
        op = draw(st.sampled_from(["=", "+=", "-=", "*=", "/="]) if target in env
                  else st.just("="), label="assign op")
        term = drawer.draw(2)
        kinks += term.kinks
        if op == "/=":
            lines.append(f"    {target} /= 2 + cos({term.text})")
            env[target] = env[target] / (2 + sp.cos(term.sym))
        else:
            lines.append(f"    {target} {op} {term.text}")
            old = env.get(target)
            env[target] = {"=": lambda: term.sym, "+=": lambda: old + term.sym,
                           "-=": lambda: old - term.sym, "*=": lambda: old * term.sym}[op]()
    result = drawer.draw(2)
    kinks += result.kinks
    lines.append(f"    return {result.text}")
    source = "\n".join(lines) + "\n"
    m = exprgrad.compile(source, "prop.expr")
    for point in points:
        if not usable(result.sym, kinks, point):
            continue
        value, grads = m.f_grad(*point)
        scale = scale_of(result.sym, point)
        assert close(value, exact_value(result.sym, point), scale), source
        assert_gradient(result.sym, point, grads, scale=scale * 10)


@settings(SETTINGS, max_examples=15)
@given(data=st.data(), points=POINTS)
def test_second_derivatives_through_diff_in_source(data, points):
    term = ExprDrawer(data, {"x": X, "y": Y}).draw(2)
    source = f"g(x, y) = diff({term.text}, x)\n"
    m = exprgrad.compile(source, "prop.expr")
    first = sp.diff(term.sym, X)
    for point in points:
        if not usable(term.sym, term.kinks, point) or not usable(first, (), point):
            continue
        value, (gxx, gxy) = m.g_grad(*point)
        scale = scale_of(first, point) + scale_of(term.sym, point)
        assert close(value, exact_value(first, point), scale), source
        with mpmath.workdps(DPS):
            at = mp_point(point)
            dxx = derivative(term.sym, X, X)(*at)
            dxy = derivative(term.sym, X, Y)(*at)
        assert close(gxx, dxx, scale * 100), (source, point)
        assert close(gxy, dxy, scale * 100), (source, point)


@SETTINGS
@given(data=st.data(), points=POINTS,
       cotangent=st.tuples(st.sampled_from([-1.5, 0.5, 1.0, 2.0]),
                           st.sampled_from([-2.0, 0.25, 1.0, 3.0])))
def test_tuple_outputs_through_vjp(data, points, cotangent):
    drawer = ExprDrawer(data, {"x": X, "y": Y})
    first, second = drawer.draw(3), drawer.draw(3)
    source = f"def h(x, y):\n    return {first.text}, {second.text}\n"
    m = exprgrad.compile(source, "prop.expr")
    combined = cotangent[0] * first.sym + cotangent[1] * second.sym
    for point in points:
        if not (usable(first.sym, first.kinks, point) and
                usable(second.sym, second.kinks, point)):
            continue
        (v1, v2), grads = m.h_vjp(*point, cotangent)
        assert m.h(*point) == (v1, v2)
        assert close(v1, exact_value(first.sym, point), scale_of(first.sym, point))
        assert close(v2, exact_value(second.sym, point), scale_of(second.sym, point))
        scale = 4 * (scale_of(first.sym, point) + scale_of(second.sym, point))
        assert_gradient(combined, point, grads, scale=scale * 10)


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(data=st.data(), points=POINTS)
def test_wrt_selects_the_gradient(data, points):
    term = ExprDrawer(data, {"x": X, "y": Y}).draw(3)
    m = exprgrad.compile(f"f(x, y) wrt y = {term.text}\n", "prop.expr")
    for point in points:
        if not usable(term.sym, term.kinks, point):
            continue
        value, grads = m.f_grad(*point)
        assert len(grads) == 1
        with mpmath.workdps(DPS):
            expected = derivative(term.sym, Y)(*mp_point(point))
        assert close(grads[0], expected, 10 * scale_of(term.sym, point))
