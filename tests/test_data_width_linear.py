"""A data parameter's fixed width does not make compiling quadratic: with a
data axis n and a width N, `X[k][i]` in a loop unrolled over i builds the
row `X[k]` once, not once per i.  Work is counted (graph look-ups), never
timed: time is measured in bench/compile_scale.py."""

from __future__ import annotations

import pytest

import exprgrad
from exprgrad.compiler.graph import Graph

SOURCES = [
    # the dot product of fixed weights with each row, summed over the rows
    "f(w[N], X[n][N]) = sum(sum(w[i]*X[k][i] for i in range(len(w))) for k in range(n))\n",
    # the row read twice per i, and a second fixed axis inside the row
    "f(w[N], X[n][N][2]) = sum(sum(w[i]*X[k][i][0] - X[k][i][1] for i in range(N)) "
    "for k in range(n))\n",
    # a map over the rows, reduced afterwards
    "def f(w[N], X[n][N]):\n"
    "    z = [sum(w[i]*X[k][i] for i in range(N)) for k in range(n)]\n"
    "    return sum(z[k]^2 for k in range(n))\n",
]


def graph_adds(source: str, target: str, monkeypatch) -> int:
    """How many times compiling `source` asks the graph for a node."""
    calls = 0
    add = Graph.add

    def counted(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        return add(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Graph, "add", counted)
        exprgrad.emit(source, "width.expr", target=target)
    return calls


@pytest.mark.parametrize("target", ["python", "array"])
@pytest.mark.parametrize("template", SOURCES)
def test_doubling_the_width_about_doubles_the_work(template, target, monkeypatch):
    small, large = (graph_adds(template.replace("N", str(width)), target, monkeypatch)
                    for width in (40, 80))
    assert large < 2.5 * small, (small, large)  # quadratic work: close to 4x
