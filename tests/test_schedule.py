"""The scheduler and the Python printer: the statement program's promises.

Over every example and random programs: `d_X` is only ever the adjoint of a
variable `X` of the same function, no two consecutive statements are ifs on
one condition, every emitted text compiles and fits in 100 columns.  Code
motion never evaluates what the source would not (values raising where the
branch-by-branch reference is finite), and arguments must be sequences.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import exprgrad
from exprgrad.compiler.pipeline import build
from exprgrad.compiler.printers.python import WIDTH
from exprgrad.compiler.program import (Assign, Call, Const, For, Function, If, Name, NewList,
                                       Return, element_names, walk)
from fuzz_strategies import random_program

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.expr"))


def _bound(fn: Function) -> set[str]:
    names = {v for p in fn.params for v in element_names(p.elements)}
    names |= {p.name for p in fn.params if p.elements is None}  # data: d_ + its name
    for s in walk(fn.body):
        if isinstance(s, (Assign, NewList)):
            names.add(s.target)
    return names


def assert_well_formed(text: str, functions: list[Function]) -> None:
    compile(text, "<emitted>", "exec")
    long = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not long, long[:3]
    for fn in functions:
        bound = _bound(fn)
        for s in walk(fn.body):
            # (`d_1` is the source's `d` renamed, not an adjoint: 1 is no name)
            if isinstance(s, Assign) and s.target.startswith("d_") and s.target[2:].isidentifier():
                # d_X_2: the same adjoint d_X evaluated again in another branch
                instance = re.sub(r"_\d+$", "", s.target)
                assert s.target[2:] in bound or (instance != s.target and instance in bound), \
                    f"{fn.name}: {s.target} has no primal"
        # A name is bound by one statement (or one If, one per side): every
        # target, the array one included, can evaluate every block.
        binders: dict[str, int] = {}
        for s in walk(fn.body):
            if isinstance(s, If):
                for name in {a.target for a in s.then + s.orelse
                             if isinstance(a, Assign) and not a.accumulates}:
                    binders[name] = binders.get(name, 0) + 1
        assert all(count == 1 for count in binders.values()), (fn.name, binders)
        for block in _blocks(fn.body):
            for first, second in zip(block, block[1:]):
                if isinstance(first, If) and isinstance(second, If):
                    assert first.cond != second.cond, f"{fn.name}: two ifs on {first.cond}"


def _blocks(body: list):
    yield body
    for s in walk(body):
        if isinstance(s, If):
            yield s.then
            yield s.orelse
        elif isinstance(s, For):
            yield s.body


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_well_formed(path):
    text, functions = build(path.read_text(), str(path.relative_to(ROOT)))
    assert_well_formed(text, functions)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2 ** 32 - 1))
def test_random_programs_are_well_formed(seed):
    program = random_program(random.Random(seed), 3)
    text, functions = build(program.source, "fuzz.expr")
    assert_well_formed(text, functions)


def test_mlp_has_no_zero_else_branches_and_merged_ifs():
    text, functions = build((ROOT / "examples" / "mlp.expr").read_text(), "mlp.expr")
    grad = next(f for f in functions if f.name == "loss_grad")
    ifs = [s for s in walk(grad.body) if isinstance(s, If)]
    zero_else = [s for s in ifs for a in s.orelse
                 if isinstance(a, Assign) and a.value == Const(0.0)]
    assert not zero_else
    accumulated = [s for s in walk(grad.body) if isinstance(s, Assign) and s.accumulates]
    assert accumulated and any(a.target.startswith("d_") for a in accumulated)
    assert len(ifs) <= 48  # 130 before the blocks of one condition were merged


def test_adjoint_names_follow_the_emitted_primal():
    text, functions = build((ROOT / "examples" / "lecture.expr").read_text(), "lecture.expr")
    grad = next(f for f in functions if f.name == "readme_grad")
    targets = [s.target for s in walk(grad.body) if isinstance(s, Assign)]
    for t in targets:
        if t.startswith("d_") and t[2:].isidentifier():
            assert t[2:] in targets or t[2:] in _bound(grad)
    assert grad.wrt == ("a", "b")


def test_a_long_one_element_array_name_compiles():
    source = "f(hidden_layer_bias_vector_01[1]) = 2*hidden_layer_bias_vector_01[0]\n"
    module = exprgrad.compile(source, "long.expr")
    assert module.f_grad([3.0]) == (6.0, ([2.0],))


def test_long_expressions_wrap_at_the_width():
    terms = " + ".join(f"very_long_parameter_name_{i}*very_long_parameter_name_{i}"
                       for i in range(12))
    params = ", ".join(f"very_long_parameter_name_{i}" for i in range(12))
    text, functions = build(f"f({params}) = {terms}\n", "wide.expr")
    assert_well_formed(text, functions)
    namespace: dict = {}
    exec(compile(text, "wide", "exec"), namespace)
    assert namespace["f"](*range(12)) == sum(i * i for i in range(12))


# --- code motion: nothing is evaluated that the source would not evaluate ------------
def test_a_subexpression_under_two_conditions_is_not_hoisted():
    m = exprgrad.compile("a(x) = (log(x) if x > 0 else 0) + (log(x) if x > 0.5 else 1)\n")
    assert m.a(-1.0) == 1.0
    assert m.a_grad(-1.0) == (1.0, (0.0,))
    assert m.a(0.25) == pytest.approx(math.log(0.25) + 1)
    assert m.a_grad(2.0)[1][0] == pytest.approx(1.0)


def test_an_inlined_helper_twice_keeps_its_branches():
    m = exprgrad.compile("u(n) = 1.2 if n < 2 else log(-1)\nc(x) = u(u(x))\n")
    assert m.c(0.5) == 1.2
    assert m.c_grad(0.5) == (1.2, (0.0,))


def test_tuple_results_keep_branches_in_the_vjp():
    m = exprgrad.compile("def t(x):\n    return (log(x) if x > 0 else 0), (log(x) if x > 1 else 2)\n")
    assert m.t(-1.0) == (0.0, 2.0)
    assert m.t_vjp(-1.0, (1.0, 1.0)) == ((0.0, 2.0), (0.0,))


GUARDED = [  # (source of an expression in x, the same in Python with math.)
    ("log(x - {a}) if x > {a} + 0.25 else {k}", "math.log(x - {a}) if x > {a} + 0.25 else {k}"),
    ("sqrt(x - {a}) if x >= {a} + 0.25 else {k}",
     "math.sqrt(x - {a}) if x >= {a} + 0.25 else {k}"),
    ("{k} if x < {a} else 1/(x - {a} + 0.5)", "{k} if x < {a} else 1/(x - {a} + 0.5)"),
    ("acos(x / ({a} + 4)) if x*x < ({a} + 3)*({a} + 3) else {k}",
     "math.acos(x / ({a} + 4)) if x*x < ({a} + 3)*({a} + 3) else {k}"),
]


@st.composite
def guarded_sums(draw, shared: bool):
    """A sum of products of guarded terms, source and Python.  `shared`: a
    term may occur twice (hash-consing makes it one node under different
    conditions); else every term is distinct."""
    source, python, seen = [], [], set()
    for _ in range(draw(st.integers(2, 4))):
        factors = []
        for _ in range(draw(st.integers(1, 2))):
            template = draw(st.sampled_from(GUARDED))
            a = draw(st.sampled_from([0, 1, -1]))
            k = draw(st.sampled_from([0, 1, 2]))
            if not shared and (template, a) in seen:
                continue
            seen.add((template, a))
            factors.append(tuple(t.format(a=a, k=k) for t in template))
        if factors:
            source.append(" * ".join(f"({s})" for s, _ in factors))
            python.append(" * ".join(f"({p})" for _, p in factors))
    return " + ".join(source), " + ".join(python)


POINTS = st.sampled_from([-3.0, -1.0, -0.5, 0.1, 0.6, 1.3, 2.5, 5.0])


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(guarded_sums(shared=True), POINTS)
def test_untaken_branches_never_raise_in_values(expr, x):
    source, python = expr
    module = exprgrad.compile(f"g(x) = {source}\n", "guarded.expr")
    assert module.g(x) == pytest.approx(eval(python, {"math": math, "x": x}))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(guarded_sums(shared=False), POINTS)
def test_untaken_branches_never_raise_in_gradients(expr, x):
    """(A term shared under two conditions can still have its derivative
    evaluated outside them: reverse mode masks an adjoint only when it is one
    conditional, not a sum of them.)"""
    source, python = expr
    module = exprgrad.compile(f"g(x) = {source}\n", "guarded.expr")
    value, (slope,) = module.g_grad(x)
    assert value == pytest.approx(eval(python, {"math": math, "x": x})) and math.isfinite(slope)


# --- arguments ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", [{1.0, 2.0}, {0: 1.0, 1: 2.0}, iter([1.0, 2.0]), "ab"])
def test_array_arguments_must_be_sequences(bad):
    m = exprgrad.compile("f(w[2]) = w[0] - w[1]\n")
    with pytest.raises(TypeError, match="w must be a sequence"):
        m.f(bad)
    with pytest.raises(TypeError, match="w must be a sequence"):
        m.f_grad(bad)


def test_sequences_of_any_kind_are_accepted():
    m = exprgrad.compile("f(w[2][2]) = w[0][0] - w[1][1]\n")
    assert m.f(((1, 2), [3, 4.5])) == -3.5
    assert m.f_grad([range(2), range(2, 4)]) == (-3.0, ([[1.0, 0.0], [0.0, -1.0]],))


# --- the program is plain data ------------------------------------------------------
def test_the_program_is_target_neutral_data():
    _, functions = build("def f(x, w[2]):\n    h = log(x) if x > 0 else w[0]\n    "
                         "return h*h + w[1]\n", "p.expr")
    allowed = (Assign, If, For, Return, Call, Name, Const, str, float, bool, int, tuple, list,
               type(None))
    for fn in functions:
        for s in walk(fn.body):
            stack = [getattr(s, "value", None), getattr(s, "cond", None)]
            while stack:
                e = stack.pop()
                assert isinstance(e, allowed), type(e)
                if isinstance(e, Call):
                    stack.extend(e.args)
                elif isinstance(e, (list, tuple)):
                    stack.extend(e)


@pytest.mark.parametrize("source, call, expected", [
    ("def smoothness(u[n]):\n    return sum((u[k] - u[k-1])^2 for k in range(1, n))\n",
     "smoothness_grad", (14.0, ([-4.0, 6.0, -8.0, 6.0],))),
    ("f(u[n]) = u\n", "f", [1.0, 3.0, 2.0, 5.0]),
    ("g(u[n]) = [u[k]*2 for k in range(n)]\n", "g_vjp", ([2.0, 6.0, 4.0, 10.0],
                                                        ([2.0, 2.0, 2.0, 2.0],))),
])
def test_data_axes_are_emitted_as_loops(source, call, expected):
    module = exprgrad.compile(source, "data.expr")
    args = ([1.0, 3.0, 2.0, 5.0],) + (([1.0] * 4,) if call.endswith("_vjp") else ())
    assert getattr(module, call)(*args) == expected
    assert "for k in range(" in exprgrad.emit(source, "data.expr")
