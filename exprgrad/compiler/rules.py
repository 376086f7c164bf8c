"""A derivative rule as a template: the op table's rule applied once to
placeholder inputs `d, out, a, b, ...`.

Reverse mode replays a template for each node it differentiates, building
only the contributions of inputs that need a gradient; the runtime `Value`
emits a template as a small Python function.  Either way the rule is written
once, in `ops.py`.
"""

from __future__ import annotations

import functools

from .graph import Graph
from .opnames import BOOL, CONST
from .ops import OPS
from .options import DEFAULT
from .refs import OutRef, Ref


class RuleTemplate:
    """The rule of `op` (with attribute `attr`, on `arity` inputs) built on
    placeholders: a small DAG whose `results` are the contributions, one per
    input (None where no gradient flows)."""

    def __init__(self, op: str, attr, arity: int):
        self.graph = t = Graph(DEFAULT)  # one template per op, whatever a program's options
        self.names = ["d", "out", *placeholder_names(arity)]
        # Placeholders first, so they are ids 0 .. arity + 1.
        self.placeholders = [t.input(("rule", name), name) for name in self.names]
        d, out, *args = self.placeholders
        built = OPS[op].grad(Ref(t, d), OutRef(t, out, attr), *(Ref(t, a) for a in args))
        self.results = [None if r is None else r.id if isinstance(r, Ref) else t.const(r)
                        for r in built]
        self.zero = t.const(0.0)  # what an input without a gradient receives, if asked
        self.size = len(t)
        self._plans: dict[tuple[bool, ...], list] = {}

    def apply(self, g: Graph, adjoint: int, out: int, args, wanted) -> list[int | None]:
        """The contributions for node `out` of `g` with inputs `args`, for
        the inputs whose `wanted` flag is set (None for the others): the
        template nodes they need are replayed, in order, through `Graph.add`,
        so they fold and are shared as if the rule had been written out."""
        wanted = tuple(wanted)
        values: list = [adjoint, out, *args]
        values += [None] * (self.size - len(values))
        for k, op, operands, attr in self._plan(wanted):
            values[k] = (g.const(attr) if op == CONST else
                         g.boolean(attr) if op == BOOL else
                         g.add(op, *[values[a] for a in operands], attr=attr))
        return [values[r] if r is not None and want else None
                for r, want in zip(self.results, wanted)]

    def _plan(self, wanted: tuple[bool, ...]) -> list:
        """(template id, op, operand ids, attr) of every template node the
        wanted results use, in order; found once per pattern of wanted inputs
        (one walk of the template, so a rule over n inputs costs O(n))."""
        plan = self._plans.get(wanted)
        if plan is None:
            t = self.graph
            roots = [r for r, want in zip(self.results, wanted) if want and r is not None]
            first = len(self.placeholders)
            plan = self._plans[wanted] = [(k, *t.nodes[k]) for k in t.ancestors(roots)
                                          if k >= first]
        return plan


@functools.cache
def rule_template(op: str, attr, arity: int) -> RuleTemplate:
    """The template of an op's rule, built once per (op, attribute, arity)."""
    return RuleTemplate(op, attr, arity)


def placeholder_names(arity: int) -> list[str]:
    return list("abc"[:arity]) if arity <= 3 else [f"x{i}" for i in range(arity)]
