"""A data parameter's fixed width does not make compiling quadratic: with a
data axis n and a width N, `X[k][i]` in a loop unrolled over i builds the
row `X[k]` once, not once per i; reverse mode re-indexes the row's adjoints
in one walk; the scheduler walks the body of a map once for all the
reductions of its gradient.  Work is counted (graph look-ups, the
scheduler's segment tests), never timed: time is measured in
bench/compile_scale.py."""

from __future__ import annotations

import pytest

import exprgrad
from exprgrad.compiler.graph import Graph
from exprgrad.compiler.schedule_loops import _LoopScheduler

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


def work(source: str, target: str, monkeypatch) -> tuple[int, int]:
    """How many times compiling `source` asks the graph for a node, and how
    many times the scheduler asks whether a node is in a segment."""
    adds = tests = 0
    add, inside_of = Graph.add, _LoopScheduler._inside

    def counted_add(self, *args, **kwargs):
        nonlocal adds
        adds += 1
        return add(self, *args, **kwargs)

    def counted_inside_of(self, *args):
        inside = inside_of(self, *args)

        def counted(n):
            nonlocal tests
            tests += 1
            return inside(n)
        return counted

    with monkeypatch.context() as patch:
        patch.setattr(Graph, "add", counted_add)
        patch.setattr(_LoopScheduler, "_inside", counted_inside_of)
        exprgrad.emit(source, "width.expr", target=target)
    return adds, tests


@pytest.mark.parametrize("target", ["python", "array"])
@pytest.mark.parametrize("template", SOURCES)
def test_doubling_the_width_about_doubles_the_work(template, target, monkeypatch):
    small, large = (work(template.replace("N", str(width)), target, monkeypatch)
                    for width in (40, 80))
    for what, before, after in zip(("graph look-ups", "segment tests"), small, large):
        assert after < 2.5 * before, (what, before, after)  # quadratic work: close to 4x
