"""The grammar: Python's precedence, the documented examples, the AST."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.grammar import ast, parse

DOCS = Path(__file__).resolve().parent.parent / "docs"


def doc_examples(name: str) -> list[str]:
    return re.findall(r"```expr\n(.*?)```", (DOCS / name).read_text(), re.S)


@pytest.mark.parametrize("index", range(len(doc_examples("language.md"))))
def test_every_example_of_the_language_reference_compiles(index):
    exprgrad.compile(doc_examples("language.md")[index], f"language-{index}.expr")


def test_documented_conventions_hold():
    m = exprgrad.compile("g(x) = log(x) if x > 0 else 0\np(x) = -x^2 + 2^3^2 / 64 - (-x)**2\n"
                         "r(x) = relu(x) + abs(x)\nm(x, y) = min(x, y)\n")
    assert m.g_grad(-1.0) == (0.0, (0.0,))
    assert m.p(3.0) == -9.0 + 512 / 64 - 9.0
    assert m.r_grad(0.0) == (0.0, (0.0,))
    assert m.m_grad(2.0, 2.0) == (2.0, (0.5, 0.5))


# Random arithmetic over numbers with minimal parentheses: exprgrad's reading of
# the text must be Python's.
ATOMS = st.sampled_from(["2", "3", "0.5", "1.5", "x", "(x + 1)"])


def _expr():
    return st.recursive(
        ATOMS,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(" ".join),
            st.tuples(st.sampled_from(["-", "+"]), inner).map("".join),
            st.tuples(ATOMS, st.sampled_from(["**", "^"]), st.sampled_from(["2", "-1", "3"])
                      ).map("".join),
            inner.map(lambda e: f"({e})")),
        max_leaves=8)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(text=_expr(), x=st.sampled_from([0.75, 1.25, 2.0, -1.5]))
def test_precedence_is_pythons(text, x):
    python = text.replace("^", "**")
    try:
        expected = eval(python, {"x": x})
    except ZeroDivisionError:
        return
    if isinstance(expected, complex) or not math.isfinite(expected):
        return
    m = exprgrad.compile(f"f(x) = {text}\n")
    assert m.f(x) == pytest.approx(expected, rel=1e-12, abs=1e-12), text


def test_ast_keeps_locations_and_statements():
    module = parse("k = 2\nf(x) = x\ndef g(x) wrt x:\n    y = x\n    return y, x\n"
                   "check f(1) == 1\n", "m.expr")
    kinds = [type(s).__name__ for s in module.statements]
    assert kinds == ["Constant", "Function", "Function", "Check"]
    g = module.statements[2]
    assert g.loc.line == 3 and [n.id for n in g.wrt] == ["x"]
    assert len(g.result.values) == 2
    binary = parse("f(x) = x + 1\n").statements[0].result.values[0]
    assert isinstance(binary, ast.Binary) and binary.loc.column == 10


def test_newlines_inside_brackets_and_comments():
    m = exprgrad.compile("f(x) = (x +   # a comment\n      1)\n\n# trailing\nv = [1,\n 2]\n")
    assert m.f(1.0) == 2.0


def test_tabs_and_crlf():
    m = exprgrad.compile("def f(x):\r\n\ty = x*2\r\n\treturn y\r\n")
    assert m.f_grad(3.0) == (6.0, (2.0,))


@pytest.mark.parametrize("text,value", [("1e-3", 1e-3), (".5", 0.5), ("12", 12.0),
                                        ("1.5E2", 150.0), ("3.", 3.0)])
def test_number_forms(text, value):
    assert exprgrad.compile(f"f(x) = x * {text}\n").f(1.0) == value
