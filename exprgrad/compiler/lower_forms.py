"""The special forms of the language: calls that are not ops.

`sum`, `prod`, `len`, `range`, `diff` and `grad` look like functions but
are resolved by lowering: reductions combine their argument's elements,
`range` makes the values a comprehension binds, `diff`/`grad` run reverse
mode on the DAG.  Each is a method of `SpecialForms`, and `FORMS` maps the
name a source file calls to it (a form is one entry here).
"""

from __future__ import annotations

from ..errors import CallError, CompileError, LimitError, Loc, ShapeError
from ..grammar import ast
from . import limits
from .loops import DataArray, RuntimeRange, is_runtime, linear
from .reverse import gradients
from .values import build, flatten, has_runtime_part, shape, whole_parameter


class SpecialForms:
    """Methods of `_Lowering`, one per special form (see FORMS)."""

    def sum_(self, node, args):
        return self._reduce(node, args, "add", 0.0)

    def prod(self, node, args):
        return self._reduce(node, args, "mul", 1.0)

    def _reduce(self, node: ast.Call, args, op: str, empty: float) -> int:
        if len(args) != 1 or isinstance(args[0], (int, tuple, RuntimeRange)):
            raise CallError(f"{node.func}() takes one array or generator, e.g. "
                            f"{node.func}(x[i] for i in range(3))", node.loc)
        if is_runtime(args[0]) or has_runtime_part(args[0]):
            return self._reduce_runtime(args[0], op, empty, node.loc)
        leaves = [self._scalar(x, node.loc) for x in flatten(args[0])]
        if not leaves:
            return self.g.const(empty)
        total = leaves[0]
        for x in leaves[1:]:
            total = self.g.add(op, total, x)
        return total

    def len_(self, node, args):
        if len(args) == 1 and is_runtime(args[0]):
            return self._runtime_len(args[0])
        if len(args) != 1 or not isinstance(args[0], list):
            raise CallError("len() takes one array", node.loc)
        return self.g.const(len(args[0]))

    def range_(self, node, args):
        if not 1 <= len(args) <= 2:
            raise CallError(f"range() takes 1 or 2 arguments, got {len(args)}", node.loc)
        forms = [linear(self.g, self._scalar(a, arg.loc)) for a, arg in zip(args, node.args)]
        if any(f is not None and f[0] is not None and self.g.nodes[f[0]].op == "size"
               for f in forms):
            return self._runtime_range(node, forms)
        for form, arg in zip(forms, node.args):
            if form is None and self.g.has_loops:
                raise CompileError("a range bound must be a compile-time integer, or a size "
                                   "name plus or minus an integer, e.g. range(n - 1)", arg.loc)
        bounds = [self._integer(a, arg.loc, "a range bound") for a, arg in zip(args, node.args)]
        start, stop = (0, bounds[0]) if len(bounds) == 1 else bounds
        if stop - start > limits.MAX_RANGE:
            raise LimitError(f"range({start}, {stop}) has {stop - start:,} elements; the "
                             f"limit is {limits.MAX_RANGE:,}", node.loc)
        return [self.g.const(i) for i in range(start, stop)]

    def diff(self, node, args):
        expr, var = self._derivative_args(node, args)
        if not isinstance(var, int):
            raise ShapeError(f"diff() differentiates with respect to a scalar; for an array "
                             f"use grad({_arg_text(node, 0)}, {_arg_text(node, 1)})",
                             node.args[1].loc)
        self._require_input(var, node.args[1].loc)
        return gradients(self.g, [(expr, self.g.const(1.0))], [var], differentiated_again=True)[0]

    def grad(self, node, args):
        expr, var = self._derivative_args(node, args)
        if isinstance(var, tuple) or is_runtime(var) and not whole_parameter(var):
            raise ShapeError("grad() differentiates with respect to a parameter", node.loc)
        if isinstance(var, DataArray):  # the gradient has the parameter's data axes
            return gradients(self.g, [(expr, self.g.const(1.0))], [var], differentiated_again=True)[0]
        leaves = flatten(var)
        for leaf in leaves:
            self._require_input(leaf, node.args[1].loc)
        partials = iter(gradients(self.g, [(expr, self.g.const(1.0))], leaves, differentiated_again=True))
        return build(shape(var), lambda idx: next(partials)) if leaves else var

    def _derivative_args(self, node, args):
        if len(args) != 2:
            raise CallError(f"{node.func}() takes 2 arguments (expression, variable), got "
                            f"{len(args)}", node.loc)
        return self._scalar(args[0], node.args[0].loc), args[1]

    def _require_input(self, node_id: int, loc: Loc) -> None:
        if not isinstance(node_id, int) or self.g.nodes[node_id].op != "input":
            raise CallError("can only differentiate with respect to a parameter of the "
                            "enclosing function (or a free variable of a check)", loc)


FORMS = {"sum": SpecialForms.sum_, "prod": SpecialForms.prod, "len": SpecialForms.len_,
         "range": SpecialForms.range_, "diff": SpecialForms.diff, "grad": SpecialForms.grad}


def _arg_text(node: ast.Call, i: int) -> str:
    arg = node.args[i]
    return arg.id if isinstance(arg, ast.Name) else "..."
