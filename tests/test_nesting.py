"""Deeply nested conditionals compile to code linear in their depth.

A value that may raise and is needed on some paths only is evaluated once,
in a guard block that runs exactly when a path to one of its uses is taken;
before, it was evaluated in each branch that needed it, and a chain of
conditionals each reading the last one in two branches (`abs`'s derivative,
`a if p > t else (2*a if p < -t else 0)`) doubled the code with every link.
Each chain here is 60 links deep: exponential code would not finish.  The
generated value and gradient are compared with the reference interpreter
(which evaluates the DAG, adjoints included, lazily and branch by branch)
and the gradient with central differences.
"""

from __future__ import annotations

import math

import pytest

import exprgrad
from exprgrad.compiler.interpret import evaluate
from exprgrad.compiler.pipeline import differentiate, front_end

DEPTH = 60
BASE = "log(p*p + 0.5)"  # may raise (log is not total): the case that needs guards
CHAINS = {  # one link: A is the previous link, I its number
    "abs": ("abs(A)", "p", "log(E)"),
    "max": ("max(A, 0.01*I)", BASE, "E"),
    "three-way if": ("A if p > 0.01*I else (2*A if p < -0.01*I else 0)", BASE, "E"),
    "if on itself": ("A if A > 0.01*I else (-A if A < -0.01*I else 0)", BASE, "E"),
    "relu": ("relu(A - 0.001*I)", BASE, "sqrt(E + 1)"),
}
POINTS = [-0.7531, -0.2468, 0.1357, 0.4826, 0.9173]


def chain(name: str, depth: int = DEPTH) -> str:
    step, base, result = CHAINS[name]
    lines = ["def f(p):", f"    a0 = {base}"]
    for i in range(depth):
        lines.append(f"    a{i + 1} = " + step.replace("A", f"a{i}").replace("I", str(i + 1)))
    lines.append("    return " + result.replace("E", f"a{depth}"))
    return "\n".join(lines) + "\n"


def reference(source: str, p: float):
    """(value, gradient) by the reference interpreter."""
    program = front_end(source, "chain.expr")
    grad = next(e for e in differentiate(program) if e.name == "f_grad")
    (placeholder,) = [s.placeholders for s in grad.params]
    value, (slope,) = evaluate(program.graph, grad.result, {placeholder: p}, {}, {})
    return value, slope


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_a_deep_chain_compiles_to_code_linear_in_its_depth(name):
    short, deep = exprgrad.emit(chain(name, DEPTH // 2)), exprgrad.emit(chain(name))
    grown = deep.count("\n") - short.count("\n")
    assert grown < 2.5 * (short.count("\n") - 20), (name, short.count("\n"), deep.count("\n"))


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_a_deep_chain_has_the_reference_value_and_gradient(name):
    source = chain(name)
    module = exprgrad.compile(source, "chain.expr")
    for p in POINTS:
        value, (slope,) = module.f_grad(p)
        want_value, want_slope = reference(source, p)
        assert value == pytest.approx(want_value, rel=1e-12, abs=1e-12)
        assert slope == pytest.approx(want_slope, rel=1e-9, abs=1e-12)
        h = 1e-6
        numeric = (module.f(p + h) - module.f(p - h)) / (2 * h)
        assert slope == pytest.approx(numeric, rel=1e-4, abs=1e-6), (name, p)


def test_a_value_under_two_conditions_is_evaluated_once_under_either():
    text = exprgrad.emit("a(x) = (log(x) if x > 0 else 0) + (log(x) if x > 0.5 else 1)\n")
    forward = text[text.index("def a(x)"):text.index("def a_grad")]
    assert forward.count("math.log(") == 1 and " or " in forward
    m = exprgrad.compile("a(x) = (log(x) if x > 0 else 0) + (log(x) if x > 0.5 else 1)\n")
    assert m.a(-1.0) == 1.0 and m.a_grad(-1.0) == (1.0, (0.0,))
    assert m.a(0.25) == pytest.approx(math.log(0.25) + 1)


def test_abs_derivative_is_the_adjoint_times_the_sign():
    m = exprgrad.compile("f(x) = abs(x)\ng(x) = abs(abs(x) - 1)\n")
    assert [m.f_grad(x)[1][0] for x in (-2.0, 0.0, 3.0)] == [-1.0, 0.0, 1.0]
    assert [m.g_grad(x)[1][0] for x in (-3.0, -0.5, 0.5, 3.0)] == [-1.0, 1.0, -1.0, 1.0]


def test_checking_a_deep_chain_ends_within_its_time_budget():
    """`exprgrad check` of a 40-link chain: each item stops at its budget
    (an exponential schedule would not reach the comparison at all)."""
    from exprgrad.verify.report import FAILED
    report = exprgrad.check(chain("three-way if", 40), "chain.expr", timeout=1.0)
    assert report.error is None and report.items
    assert all(item.status != FAILED for item in report.items), report.summary()
