"""Sizes far beyond Python's recursion limit compile and run: the parser,
lowering, reverse mode and code generation all iterate."""

from __future__ import annotations

import math

import exprgrad


def test_a_100000_term_sum():
    n = 100_000
    source = "f(x, y) = " + " + ".join("x*y" if i % 2 else "x" for i in range(n)) + "\n"
    m = exprgrad.compile(source, "sum.expr")
    value, (dx, dy) = m.f_grad(2.0, 3.0)
    half = n // 2
    assert value == half * 2.0 + half * 6.0
    assert (dx, dy) == (half + half * 3.0, half * 2.0)


def test_10000_nested_parentheses():
    depth = 10_000
    source = "f(x) = " + "(" * depth + "x*x" + ")" * depth + " + 1\n"
    m = exprgrad.compile(source, "parens.expr")
    assert m.f_grad(3.0) == (10.0, (6.0,))


def test_10000_nested_unary_minus_and_calls():
    source = "f(x) = " + "-" * 10_000 + "x\ng(x) = " + "sin(" * 3_000 + "x" + ")" * 3_000 + "\n"
    m = exprgrad.compile(source, "nested.expr")
    assert m.f_grad(2.0) == (2.0, (1.0,))
    value, (slope,) = m.g_grad(0.5)
    assert 0.0 < value < 0.5 and 0.0 < slope < 1.0


def test_5000_rebindings_of_a_local():
    n = 5_000
    body = "".join("    t = t*0.5 + x\n" for _ in range(n))
    source = "def f(x):\n    t = x\n" + body + "    return t\n"
    m = exprgrad.compile(source, "chain.expr")
    value, (slope,) = m.f_grad(2.0)
    assert value == 4.0 - 2.0 * 0.5 ** n  # t_k = 2x - x/2^k
    assert abs(slope - 2.0) < 1e-12


def test_90_nested_function_calls():
    lines = ["f0(x) = x + 1"] + [f"f{i}(x) = f{i - 1}(x) * 1.0001" for i in range(1, 90)]
    m = exprgrad.compile("\n".join(lines) + "\n", "calls.expr")
    value, (slope,) = m.f89_grad(1.0)
    assert abs(value - 2.0 * 1.0001 ** 89) < 1e-12
    assert abs(slope - 1.0001 ** 89) < 1e-12


def test_deep_second_derivative_chain():
    body = "".join("    t = tanh(t) + x\n" for _ in range(1_000))
    source = "def f(x):\n    t = x\n" + body + "    return t\ng(x) = diff(f(x), x)\n"
    m = exprgrad.compile(source, "deep.expr")
    x = 0.3
    t, dt, ddt = x, 1.0, 0.0  # forward mode by hand: t, dt/dx, d2t/dx2
    for _ in range(1_000):
        s = math.tanh(t)
        t, dt, ddt = s + x, (1 - s * s) * dt + 1, -2 * s * (1 - s * s) * dt * dt + (1 - s * s) * ddt
    value, (slope,) = m.g_grad(x)
    assert abs(value - dt) < 1e-9 * abs(dt)
    assert abs(slope - ddt) < 1e-9 * max(1.0, abs(ddt))
