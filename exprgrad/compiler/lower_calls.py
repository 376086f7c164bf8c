"""Lowering of calls: built-in ops, special forms, the library and user
functions.

Each user function is lowered once, into a *template* whose parameters are
`input` placeholder nodes; a call substitutes the arguments for the
placeholders.  So `diff(expr, x)` differentiates with respect to x's own
placeholder, whatever argument a caller later passes (even the same node for
two parameters), and a top-level function's template is exactly the DAG its
generated code computes.  A callee with data axes is lowered at the call
site instead (`lower_loops.DataAxes._inline_body`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import (CallError, ConstantOverflowError, LimitError, Loc,
                      NameResolutionError, ShapeError)
from ..grammar import ast
from . import library, limits
from .graph import Graph
from .loops import has_data_axis, is_runtime
from .lower_forms import FORMS
from .ops import BUILTINS, OPS
from .values import describe, flatten, has_runtime_part, rebuild, shape

if TYPE_CHECKING:
    from .lower import LoweredFunction, Scope


class Calls:
    """Methods of `_Lowering` for calls and function templates."""

    def _template(self, name: str, call_loc: Loc) -> LoweredFunction:
        """The function lowered once with placeholder parameters."""
        if name in self.templates:
            return self.templates[name]
        if name in self.in_progress:
            chain = " → ".join(self.in_progress[self.in_progress.index(name):] + [name])
            raise CallError(f"recursive call ({chain}); exprgrad inlines every call, so "
                            "functions cannot call themselves", call_loc)
        if len(self.in_progress) >= limits.MAX_CALL_DEPTH:
            raise LimitError(f"calls are nested more than {limits.MAX_CALL_DEPTH} functions "
                             "deep", call_loc)
        self.in_progress.append(name)
        outer_loops, self.loop_sizes = self.loop_sizes, []  # a template is lowered once
        try:
            lowered = self._lower_function(self.functions[name])
        finally:
            self.in_progress.pop()
            self.loop_sizes = outer_loops
        self.templates[name] = lowered
        return lowered

    def _call(self, node: ast.Call, args: list, scope: Scope):
        name = node.func
        if scope.lookup(name) is not None and name not in self.functions:
            raise NameResolutionError(f"'{name}' is a variable here, not a function", node.loc)
        if name in self.functions:
            return self._inline(node, args)
        if name in FORMS:
            return FORMS[name](self, node, args)
        if name in BUILTINS:
            return self._builtin(node, BUILTINS[name], args)
        if name in library.FUNCTIONS:
            return library.call(self.g, node, args)
        raise NameResolutionError(library.unknown_function(name, self.functions), node.loc)

    def _builtin(self, node: ast.Call, op: str, args: list):
        spec = OPS[op]
        if spec.arity is None:  # min/max: several scalars, or one array
            if len(args) == 1 and (is_runtime(args[0]) or has_runtime_part(args[0])):
                return self._reduce_runtime(args[0], op, None, node.loc)
            if len(args) == 1 and isinstance(args[0], list):
                args = flatten(args[0])
            if not args:
                raise CallError(f"{node.func}() needs at least one argument", node.loc)
            return self.g.add(op, *(self._scalar(a, node.loc) for a in args))
        if len(args) != spec.arity:
            raise CallError(f"{node.func}() takes {spec.arity} argument"
                            f"{'s' if spec.arity != 1 else ''}, got {len(args)}", node.loc)
        if spec.arity == 1 and (isinstance(args[0], list) or is_runtime(args[0])):
            return self._elementwise(op, args[0], None, node.loc)
        scalars = [self._scalar(a, arg.loc) for a, arg in zip(args, node.args)]
        return self.g.add(op, *scalars)

    def _inline(self, node: ast.Call, args: list):
        callee = self.functions[node.func]
        if any(has_data_axis(p.shape) for p in callee.params) or any(map(is_runtime, args)):
            return self._inline_body(node, args)
        template = self._template(node.func, node.loc)
        params = template.params
        if len(args) != len(params):
            raise CallError(f"{node.func}() takes {len(params)} argument"
                            f"{'s' if len(params) != 1 else ''}, got {len(args)}", node.loc)
        mapping: dict[int, int] = {}
        for param, arg, arg_node in zip(params, args, node.args):
            if isinstance(arg, tuple) or shape(arg) != param.shape:
                expected = "a scalar" if not param.shape else f"shape {list(param.shape)}"
                raise ShapeError(f"argument '{param.name}' of {node.func}() must be {expected}, "
                                 f"got {describe(arg)}", arg_node.loc)
            for placeholder, value in zip(flatten(param.placeholders), flatten(arg)):
                mapping[placeholder] = self._scalar(value, arg_node.loc)
        try:
            return _substitute_value(self.g, template.output, mapping)
        except ConstantOverflowError as error:
            raise self._at_call(error, node) from None

    def _at_call(self, error: ConstantOverflowError, call: ast.Call) -> ConstantOverflowError:
        """A constant that overflows only with a call's arguments (`h(400)` of
        `h(x) = 10^x`) is the call's error: reported there, saying which
        function computes it where (that line alone would blame `h` for what
        every other call of it does fine)."""
        defined = [f for f in self.functions.values() if f.loc.line <= error.line]
        where = max(defined, key=lambda f: f.loc.line).name if defined else call.func
        return ConstantOverflowError(f"{error.message}: with this call's arguments, {where}() "
                                     f"computes it at line {error.line}:{error.column}",
                                     call.loc)


def substitute(g: Graph, roots: list[int], mapping: dict[int, int]) -> list[int]:
    """Rebuild `roots` with the nodes of `mapping` replaced (a call's arguments
    for a template's placeholders); nodes that do not depend on them are kept."""
    if not mapping:
        return list(roots)
    new = dict(mapping)
    for n in g.ancestors(roots, stop_below=min(mapping)):
        if n not in new:
            rebuilt = g.rebuilt(n, new)
            if rebuilt is not None:
                new[n] = rebuilt
    return [new.get(r, r) for r in roots]


def _substitute_value(g: Graph, value, mapping: dict[int, int]):
    replaced = iter(substitute(g, flatten(value), mapping))
    return rebuild(value, replaced)
