"""Lowering of comprehensions over compile-time ranges: unrolled.

`[e for i in range(3)]` and `sum(e for i in ...)` become one element per
binding, nested clauses iterating like nested loops (the last innermost);
a clause over a data axis is handed to `lower_loops.DataAxes`, which keeps
it rolled.  Limits bound what unrolling may build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import math

from ..errors import LimitError, Loc, ShapeError
from ..grammar import ast
from . import limits
from .loops import RuntimeArray, RuntimeRange, is_runtime, loop_of
from .values import describe

if TYPE_CHECKING:
    from .lower import Scope


class Comprehensions:
    """Methods of `_Lowering` for comprehensions and generators."""

    def _comprehension(self, node, scope: Scope) -> list:
        """Unroll `[e for i in ...]` / `e for i in ...`: one element per binding.
        Nested clauses iterate like nested loops, the last one innermost."""
        if self.comprehension_depth + len(node.clauses) > limits.MAX_COMPREHENSION_DEPTH:
            raise LimitError("comprehensions are nested more than "
                             f"{limits.MAX_COMPREHENSION_DEPTH} 'for' clauses deep", node.loc)
        self.comprehension_depth += len(node.clauses)
        try:
            results: list = []
            self._unroll(node, 0, scope, results)
        finally:
            self.comprehension_depth -= len(node.clauses)
        if isinstance(node, ast.ListComp):
            if results and _own_map(self.g, results[0], node):
                return results[0]
            return self._list(ast.ListLiteral(node.loc, ()), results) if results else results
        return results

    def _unroll(self, node, clause_index: int, scope: Scope, results: list) -> None:
        clause = node.clauses[clause_index]
        iterable = self.expr(clause.iterable, scope)
        if is_runtime(iterable) or isinstance(iterable, RuntimeRange):
            self._runtime_clause(node, clause_index, clause, iterable, scope, results)
            return
        items = self._iterable(iterable, clause.iterable.loc)
        total = math.prod(self.loop_sizes) * len(items)
        if total > limits.MAX_UNROLLED:
            raise LimitError(f"these nested loops would unroll to {total:,} elements (the "
                             f"product of their lengths); the limit is "
                             f"{limits.MAX_UNROLLED:,}", clause.loc)
        self.loop_sizes.append(len(items))
        try:
            self._unroll_items(node, clause_index, clause, items, scope, results)
        finally:
            self.loop_sizes.pop()

    def _unroll_items(self, node, clause_index, clause, items, scope, results) -> None:
        for item in items:
            self.unrolled += 1
            if self.unrolled > limits.MAX_UNROLLED:
                raise LimitError(f"the program's loops unroll to more than "
                                 f"{limits.MAX_UNROLLED:,} elements in all", clause.loc)
            inner = scope.child({clause.var: item})
            if clause_index + 1 < len(node.clauses):
                self._unroll(node, clause_index + 1, inner, results)
            else:
                results.append(self.expr(node.element, inner))
                if len(results) > limits.MAX_RANGE:
                    raise LimitError(f"a comprehension makes more than {limits.MAX_RANGE:,} "
                                     "elements", node.loc)

    def _iterable(self, value, loc: Loc) -> list:
        if isinstance(value, list):
            return value
        raise ShapeError(f"can only iterate over range(...) or an array, got "
                         f"{describe(value)}", loc)


def _own_map(g, value, node) -> bool:
    """Whether `value` is the map a comprehension's own first clause made
    (a runtime range), not one of the elements of an unrolled clause."""
    return isinstance(value, RuntimeArray) and loop_of(g, value.index).origin == \
        node.clauses[0].loc
