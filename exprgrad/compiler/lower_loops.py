"""Lowering of data axes: runtime ranges, maps and reductions kept rolled.

`_Lowering` (lower.py) unrolls every loop whose length is known at compile
time; this mixin handles the rest.  A comprehension over `range(n)` binds its
variable to a `loop_index` node and lowers its element ONCE, the DAG of one
iteration, giving a `RuntimeArray`; a reduction over it is one `sum_over`
(`prod_over`, ...) node; `X[k - 1]` is a `load`, proved in bounds from the
range `k` runs over.  See loops.py for the nodes.
"""

from __future__ import annotations

from ..grammar import ast
from ..errors import (CallError, CompileError, ConstantOverflowError, Loc, NameResolutionError,
                      ShapeError)
from .lower_calls import substitute
from .loops import (REDUCTIONS, DataArray, Loop, RuntimeArray, RuntimeRange, is_runtime,
                    linear, loop_of, make_load, map_element, substitute_loops)
from .schedule import RESERVED
from .values import build, flatten, has_runtime_part, shape


class DataAxes:
    """Methods of `_Lowering` for values of runtime length."""

    runtime_depth = 0

    # --- parameters and sizes ------------------------------------------------
    def _data_parameter(self, f, p, names: dict) -> DataArray:
        """A parameter with a data axis; its size names become visible as
        numbers (the lengths), bound once per function."""
        for dim in p.shape:
            if not isinstance(dim, str):
                continue
            if any(q.name == dim for q in f.params):
                raise NameResolutionError(
                    f"'{dim}' is both a parameter and the size of '{p.name}'; give the size "
                    "its own name", p.loc)
            if dim in RESERVED:  # the generated code's variable for the length
                raise NameResolutionError(
                    f"'{dim}' cannot be a size name: generated code uses it (a Python keyword, "
                    f"built-in or helper); call it e.g. '{dim}_len'", p.loc)
            names.setdefault(dim, self.g.add("size", attr=dim))
        self.g.has_loops = True
        return DataArray(p.name, tuple(p.shape))

    # --- ranges and comprehensions ---------------------------------------------
    def _runtime_range(self, node, bounds: list[tuple]) -> RuntimeRange:
        """`range(a, n + c)`: `bounds` are `linear()` forms of the arguments."""
        *starts, stop = bounds
        start = starts[0] if starts else (None, 0)
        if start is None or start[0] is not None:
            raise CompileError("the start of a range over a data axis must be a compile-time "
                               "integer, e.g. range(1, n)", node.args[0].loc)
        if stop is None or stop[0] is None or self.g.nodes[stop[0]].op != "size":
            raise CompileError("a range's end must be a compile-time integer or a size name "
                               "plus or minus one, e.g. range(n) or range(n - 1)",
                               node.args[-1].loc)
        return RuntimeRange(start[1], self.g.nodes[stop[0]].attr, stop[1])

    def _runtime_clause(self, node, clause_index: int, clause, iterable, scope,
                        results: list) -> None:
        """One `for` clause over a runtime range or array: the rest of the
        comprehension is lowered once, for one iteration."""
        if isinstance(node, ast.ListComp) and len(node.clauses) > 1:
            raise ShapeError("a list comprehension over a data axis takes one 'for' clause; "
                             "nest them instead: [[e for i in range(3)] for k in range(n)]",
                             clause.loc)
        runtime_range = self._range_of(iterable, clause.iterable.loc)
        loop = Loop(clause.var, self.runtime_depth, runtime_range.start, runtime_range.size,
                    runtime_range.offset, clause.loc)
        index = self.g.add("loop_index", attr=loop)
        self.g.name(index, clause.var)
        self.g.has_loops = True
        bound = index if isinstance(iterable, RuntimeRange) else \
            self._element_at(iterable, index, 0, clause.iterable.loc)
        inner = scope.child({clause.var: bound})
        self.runtime_depth += 1
        try:
            items: list = []
            if clause_index + 1 < len(node.clauses):
                self._unroll(node, clause_index + 1, inner, items)
                element = items
            else:
                element = self.expr(node.element, inner)
            if isinstance(element, tuple):
                raise ShapeError("a comprehension's element cannot be a tuple",
                                 node.element.loc)
            element = self._as_maps(element, node.element.loc)
        finally:
            self.runtime_depth -= 1
        results.append(RuntimeArray(index, element))

    def _range_of(self, value, loc: Loc) -> RuntimeRange:
        if isinstance(value, RuntimeRange):
            return value
        if isinstance(value, RuntimeArray):
            loop = loop_of(self.g, value.index)
            return RuntimeRange(0, loop.size, loop.offset - loop.start)
        if isinstance(value, DataArray):
            dim = value.rest[0]
            if isinstance(dim, str):
                return RuntimeRange(0, dim, 0)
        raise ShapeError("can only iterate over range(...) or an array", loc)

    def _as_map(self, value, loc: Loc) -> RuntimeArray:
        """A data parameter as a map over its leading data axis (`sum(y)`)."""
        runtime_range = self._range_of(value, loc)
        depth = self.runtime_depth
        loop = Loop("k" if depth == 0 else f"k{depth}", depth, runtime_range.start,
                    runtime_range.size, runtime_range.offset, loc)
        index = self.g.add("loop_index", attr=loop)
        self.g.name(index, loop.var)
        return RuntimeArray(index, self._element_at(value, index, 0, loc))

    # --- indexing ------------------------------------------------------------
    def _index_runtime(self, node, value, index: int):
        loc = node.index.loc
        if isinstance(value, DataArray):
            return self._index_data(value, index, loc)
        return self._element_at(value, index, None, loc)

    def _element_at(self, value, index: int, offset: int | None, loc: Loc):
        """`value[index + offset]` for a runtime array or data parameter;
        `offset` None: `index` is any expression, checked to be a loop
        variable plus or minus an integer."""
        if offset is not None:
            index = index if offset == 0 else self.g.add("add", index, self.g.const(offset))
        if isinstance(value, DataArray):
            return self._index_data(value, index, loc)
        base, shift = self._loop_position(index, loc)
        own = loop_of(self.g, value.index)
        length = own.offset - own.start
        self._check_bounds(base, shift, own.size, length, "this array", loc)
        return _substitute(self.g, value.element, {value.index: (base, shift + own.start)})

    def _index_data(self, value: DataArray, index: int, loc: Loc):
        dim = value.rest[0]
        if isinstance(dim, int):
            i = self._integer(index, loc, "an index along a compile-time dimension")
            if not -dim <= i < dim:
                raise ShapeError(f"index {i} is out of range for length {dim}", loc)
            entry = i % dim
        else:
            base, shift = self._loop_position(index, loc)
            self._check_bounds(base, shift, dim, 0, f"'{value.param}'", loc)
            entry = (base, shift)
        taken = DataArray(value.param, value.shape, value.prefix + (entry,))
        if any(isinstance(d, str) for d in taken.rest):
            return taken
        return self._loads(taken, loc)

    def _loads(self, value: DataArray, loc: Loc):
        """The scalar loads of a data parameter indexed along every data axis,
        built once per (parameter, shape, index) and shared after: `X[k][i]`
        in a loop unrolled over `i` takes the row `X[k]` of length N once per
        `i`, and rebuilding the row each time would cost N² graph look-ups
        for N loads.  Sharing is safe because hash-consing would return the
        same nodes (first location and name win either way) and lowered
        values are never changed in place."""
        key = (value.param, value.shape, value.prefix)
        if key not in self.load_rows:
            self.load_rows[key] = self._build_loads(value, loc)
        return self.load_rows[key]

    def _build_loads(self, value: DataArray, loc: Loc):
        loops = [e[0] for e in value.prefix if not isinstance(e, int)]
        prefix, position = [], 0
        for e in value.prefix:
            if isinstance(e, int):
                prefix.append(e)
            else:
                prefix.append((position, e[1]))
                position += 1
        names = [value.param] + [_index_text(self.g, e) for e in value.prefix]

        def build(rest: tuple, idx: tuple):
            if not rest:
                name = "_".join(names + [str(i) for i in idx])
                return make_load(self.g, value.param, (*prefix, *idx), loops, loc, name)
            return [build(rest[1:], (*idx, i)) for i in range(rest[0])]
        return build(value.rest, ())

    def _loop_position(self, index: int, loc: Loc) -> tuple[int, int]:
        form = linear(self.g, self._scalar(index, loc))
        if form is None or form[0] is None or self.g.nodes[form[0]].op != "loop_index":
            raise CompileError("an index along a data axis must be a loop variable plus or "
                               "minus an integer, e.g. X[k] or X[k - 1] in a comprehension over "
                               "range(n); to reduce an array use sum(...) or max(...)", loc)
        return form

    def _check_bounds(self, index: int, shift: int, size: str, end: int, what: str,
                      loc: Loc) -> None:
        """Prove `index + shift` in bounds of an axis of length `len(size) + end`
        for every value the loop of `index` takes."""
        loop = loop_of(self.g, index)
        name = loop.var + (f" + {shift}" if shift > 0 else f" - {-shift}" if shift else "")
        if loop.size != size:
            raise ShapeError(f"{what} has length {size}{_signed(end)} but '{loop.var}' runs "
                             f"over {loop.range_text()}; index it within a loop over its own "
                             "length", loc)
        if loop.start + shift < 0:
            raise ShapeError(f"index {name} reads before the start of {what}: '{loop.var}' "
                             f"starts at {loop.start} in {loop.range_text()}; start the range "
                             f"at {-shift}", loc)
        if loop.offset + shift > end:
            raise ShapeError(f"index {name} reads past the end of {what} (length "
                             f"{size}{_signed(end)}): '{loop.var}' runs to "
                             f"{loop.stop_text()} - 1 in {loop.range_text()}; end the range at "
                             f"{size}{_signed(end - shift)}", loc)

    # --- reductions, lengths, elementwise maps -----------------------------------
    def _reduce_runtime(self, value, op: str, empty: float | None, loc: Loc) -> int:
        """A reduction over a value with runtime parts: nested lists combine
        as today, a runtime array becomes one reduction node over its loop."""
        g = self.g
        if isinstance(value, int):
            return self._scalar(value, loc)
        if isinstance(value, DataArray):
            value = self._as_map(value, loc)
        if isinstance(value, RuntimeArray):
            return g.add(REDUCTIONS[op], self._reduce_runtime(value.element, op, empty, loc),
                         value.index)
        parts = [self._reduce_runtime(v, op, empty, loc) for v in value]
        if not parts:
            if empty is None:
                raise CallError("min()/max() of nothing", loc)
            return g.const(empty)
        if op in ("min", "max"):
            return g.add(op, *parts)
        total = parts[0]
        for p in parts[1:]:
            total = g.add(op, total, p)
        return total

    def _runtime_len(self, value) -> int:
        if isinstance(value, DataArray):
            dim = value.rest[0]
            return self.g.const(dim) if isinstance(dim, int) else self.g.add("size", attr=dim)
        loop = loop_of(self.g, value.index)
        return self.g.add("add", self.g.add("size", attr=loop.size),
                          self.g.const(loop.offset - loop.start))

    def _map_elementwise(self, op: str, a, b, loc: Loc):
        """`op` element by element where an operand has runtime length."""
        a, b = self._as_maps(a, loc), self._as_maps(b, loc)
        if isinstance(a, RuntimeArray) and isinstance(b, RuntimeArray):
            own, other = loop_of(self.g, a.index), loop_of(self.g, b.index)
            if (own.size, own.offset - own.start) != (other.size, other.offset - other.start):
                raise ShapeError(f"arrays of lengths {own.stop_text()} - {own.start} and "
                                 f"{other.stop_text()} - {other.start} do not match", loc)
            element = _substitute(self.g, b.element, {b.index: (a.index, other.start -
                                                                 own.start)})
            return RuntimeArray(a.index, self._elementwise(op, a.element, element, loc))
        if isinstance(a, RuntimeArray):
            return RuntimeArray(a.index, self._elementwise(op, a.element, b, loc))
        if isinstance(b, RuntimeArray):
            return RuntimeArray(b.index, self._elementwise(op, a, b.element, loc))
        return self._elementwise(op, a, None, loc)  # a unary op on a runtime array

    def _output(self, value, loc: Loc):
        """A result: a data parameter returned whole is a map over its axis."""
        return self._as_maps(value, loc)

    def _as_maps(self, value, loc: Loc):
        """`value` with every part of a data parameter in it a map over the
        parameter's data axes, one inside the other (`A[n][m]` returned whole
        is `[[A[i][j] for j in range(m)] for i in range(n)]`): what a result
        or a map's element holds is nodes, lists and maps only."""
        if isinstance(value, DataArray):
            value = self._as_map(value, loc)
        if isinstance(value, RuntimeArray):
            if not _holds_data(value.element):
                return value
            self.runtime_depth += 1
            try:
                element = self._as_maps(value.element, loc)
            finally:
                self.runtime_depth -= 1
            return RuntimeArray(value.index, element, value.name)
        if isinstance(value, (list, tuple)) and _holds_data(value):
            items = [self._as_maps(v, loc) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        return value

    # --- calls with runtime-length arguments --------------------------------------
    def _inline_body(self, node, args: list):
        """A call whose callee has data axes is lowered at the call site, its
        size names bound to the arguments' lengths (constants when the
        arguments have compile-time length: the loops then unroll).  Its
        parameters given numbers or lists are bound to placeholders, the
        arguments substituted once the body is lowered: as for a template
        (lower_calls.py), `diff(e, s)` is with respect to the parameter `s`,
        whatever the caller passes for it (a constant, the same node twice)."""
        f = self.functions[node.func]
        if len(args) != len(f.params):
            raise CallError(f"{node.func}() takes {len(f.params)} arguments, got {len(args)}",
                            node.loc)
        if node.func in self.in_progress:
            chain = " → ".join(self.in_progress[self.in_progress.index(node.func):] +
                               [node.func])
            raise CallError(f"recursive call ({chain}); exprgrad inlines every call, so "
                            "functions cannot call themselves", node.loc)
        names: dict = {}
        sizes: dict = {}
        arguments: dict[int, int] = {}  # placeholder → the argument's node
        for param, arg, arg_node in zip(f.params, args, node.args):
            self._bind_dims(node.func, param, arg, arg_node.loc, sizes)
            names[param.name] = self._placeholders(node.func, param, arg, arg_node.loc,
                                                   arguments)
        for size, (node_id, _) in sizes.items():
            names.setdefault(size, node_id)
        self.in_progress.append(node.func)
        try:
            scope = self.globals.child(names)
            for statement in f.body:
                self._assign(statement, scope)
            values = [self._output(self.expr(v, scope), v.loc) for v in f.result.values]
        finally:
            self.in_progress.pop()
        output = values[0] if len(values) == 1 else tuple(values)
        try:
            return _substitute_nodes(self.g, output, arguments)
        except ConstantOverflowError as error:
            raise self._at_call(error, node) from None

    def _placeholders(self, fname: str, param, arg, loc: Loc, arguments: dict):
        """What parameter `param` is bound to in an inlined body: an input
        node per element of a number or a compile-time list (recorded in
        `arguments` with the argument's node), or the argument itself when it
        has runtime length (a data parameter or map: no element to stand for)."""
        if is_runtime(arg) or has_runtime_part(arg) or isinstance(arg, tuple):
            return arg
        for leaf in flatten(arg):
            self._scalar(leaf, loc)
        self.g.reserve(len(flatten(arg)))
        placeholders = build(shape(arg), lambda idx: self.g.input(
            ("argument", fname, param.name, idx), "_".join([param.name, *map(str, idx)])))
        arguments.update(zip(flatten(placeholders), flatten(arg)))
        return placeholders

    def _bind_dims(self, fname: str, param, arg, loc: Loc, sizes: dict) -> None:
        lengths, rest = self._lengths(arg, len(param.shape))
        empty = bool(lengths) and self.g.value(lengths[-1]) == 0 and rest is None
        if (len(lengths) < len(param.shape) and not empty) or rest is not None:
            raise ShapeError(f"argument '{param.name}' of {fname}() must have "
                             f"{len(param.shape)} dimension{'s' if len(param.shape) != 1 else ''}"
                             f" ({_shape_text(param.shape)})", loc)
        for dim, length in zip(param.shape, lengths):
            if isinstance(dim, int):
                if self.g.value(length) != dim:
                    raise ShapeError(f"argument '{param.name}' of {fname}() must have length "
                                     f"{dim} here, got {_length_text(self.g, length)}", loc)
            elif dim in sizes and sizes[dim][0] != length:
                raise ShapeError(
                    f"{fname}(): '{param.name}' and '{sizes[dim][1]}' share the size '{dim}' "
                    f"but have lengths {_length_text(self.g, length)} and "
                    f"{_length_text(self.g, sizes[dim][0])}", loc)
            else:
                sizes.setdefault(dim, (length, param.name))

    def _lengths(self, value, depth: int) -> tuple[list[int], object]:
        """The lengths of `value` along its first `depth` dimensions (nodes),
        and None if nothing is left below them (else what is)."""
        lengths: list[int] = []
        while len(lengths) < depth:
            if isinstance(value, list):
                lengths.append(self.g.const(len(value)))
                if not value:  # empty: nothing to check below it
                    return lengths, None
                value = value[0]
            elif isinstance(value, DataArray):
                for dim in value.rest:
                    lengths.append(self.g.const(dim) if isinstance(dim, int) else
                                   self.g.add("size", attr=dim))
                value = None
            elif isinstance(value, RuntimeArray):
                lengths.append(self._runtime_len(value))
                value = value.element
            else:
                break
        if isinstance(value, int) and len(lengths) == depth:
            value = None
        return lengths, value


def _holds_data(value) -> bool:
    """Whether a lowered value has a data parameter (a `DataArray`) in it."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, DataArray):
            return True
        if isinstance(v, RuntimeArray):
            stack.append(v.element)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return False


def _shape_text(shape) -> str:
    return "".join(f"[{d}]" for d in shape)


def _substitute_nodes(g, value, mapping: dict[int, int]):
    """`value` with the nodes of `mapping` replaced (arguments for an
    inlined body's placeholders), maps and all."""
    leaves = flatten(value)
    replaced = iter(substitute(g, leaves, mapping))
    return map_element(value, lambda _: next(replaced)) if leaves else value


def _substitute(g, value, mapping):
    leaves = flatten(value)
    replaced = iter(substitute_loops(g, leaves, mapping))
    return map_element(value, lambda _: next(replaced)) if leaves else value


def _index_text(g, entry) -> str:
    if isinstance(entry, int):
        return str(entry)
    loop = loop_of(g, entry[0])
    return loop.var + (f"p{entry[1]}" if entry[1] > 0 else f"m{-entry[1]}" if entry[1] else "")


def _signed(k: int) -> str:
    return f" + {k}" if k > 0 else f" - {-k}" if k < 0 else ""


def _length_text(g, node: int) -> str:
    value = g.value(node)
    if value is not None:
        return str(int(value))
    form = linear(g, node)
    if form and form[0] is not None:
        return f"{g.nodes[form[0]].attr}{_signed(form[1])}"
    return "a runtime length"
