"""The array printer: `program.Function`s → an Array API module.

It renders the scheduler's statements, as the Python printer does, with the
array text of each op (`array_ops.py`) and these rules:

* **Arguments.**  The namespace `xp` comes from the data arguments
  (`_namespace`); a data parameter (a dimension that is a size name) becomes
  a floating array (`_data`), every other parameter a 0-d or small array of
  the data's dtype (`_scalar`; a tuple of them for a tuple, `_parts`),
  unpacked into its elements as in the plain target, within the plain
  target's `UNPACK_LIMIT` (its `large_params`): a larger one is read by
  subscript, `w[3, 17]`, and a result that copies a part of it is one call,
  `_outs(w)`, `*_outs(w[3, 5:900])` (python.py's `structure` finds them).
  A size name is bound to its length, `n = X.shape[0]`, and every
  parameter that shares it is checked against it.
* **Loops.**  A `For` is not a loop: its body runs once, on arrays whose
  axis `d` is the iterations of the loop at nesting depth `d`.  Inside `D`
  nested loops every value that depends on a loop has `D + 1` axes (length
  1 along the loops it does not depend on), so values of outer loops
  broadcast against inner ones: an outer value gets `[:, None]`, a load
  `X[k + 1][3]` becomes the slice `X[1:n, 3]`, the loop variable an
  `xp.arange`.  An accumulation into a name bound outside the loop
  (`s = s + term`) is the reduction of the term over the loop's axes
  (`xp.sum(term, axis=D)`; `*`, `min`, `max` likewise); a term that does
  not depend on the loop is multiplied by the count instead.  A map (`Append`)
  is its element broadcast to the lengths of the loops around it, so a map of
  maps, appended in the inner loop, is an `(n, m)` array.
* **Names.**  A name bound once outside conditions has the same value
  wherever it is read, so its statement is deferred: the patterns below
  read through it (the scheduler names every load, `X_k_2 = X[k][2]`, and
  every product an accumulation adds), and it is printed, in its place,
  only if a printed statement still reads it.  A row of `X` times a row of
  a parameter (`w[i] * X[k][i]` summed over a range of i) is one
  `xp.matmul`, and so are a row of accumulations `d_w_i += t * X[k][i]`
  over a range of columns (a gradient's column sums): one pass over the
  row-major X instead of one strided pass per column.
* **Conditions.**  An `If` is not a branch either: both sides are computed
  for every element and `xp.where` picks.  An accumulation under a
  condition adds `xp.where(c, term, 0.0)`; a name bound on both sides is
  `xp.where(c, then, else)`; a name bound on one side is used only under the
  same condition, so it needs no `where`.  A side that contains an op that
  can fail (`PARTIAL_OPS`) reads its array inputs through `_safe`, so the
  elements not taken repeat an element that is taken and raise, warn or
  poison nothing (docs/array-target.md); a side that rebinds such an input
  reads the new value through a new safe copy (`resafe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..array_ops import PARTIAL_OPS, TEMPLATE_HELPERS, array_template
from ..array_runtime import helper_source as runtime_source
from ..ops import ADD, ATOM, OPS
from ..program import (Append, Assign, Call, Const, For, Function, If, Name, NewList, Return,
                       element_names, walk)
from .python import (INDENT, ResultParts, Subscripts, assign, const_text, docstring, large_note,
                     large_params, module_header, printable_filename, statement, structure,
                     unpack_target, wrap)

# Accumulating ops → (the reduction along a loop's axis, the identity a masked term gets).
REDUCTIONS = {"add": ("xp.sum", "0.0"), "sub": ("xp.sum", "0.0"), "mul": ("xp.prod", "1.0"),
              "min": ("xp.min", "math.inf"), "max": ("xp.max", "-math.inf")}


@dataclass
class Binding:
    """Where a name was bound: the loop depth (-1: outside every loop), the
    If sides around it, and the loops it depends on."""

    depth: int
    path: tuple  # the If sides it was bound in, outermost first (ids)
    deps: frozenset = frozenset()


@dataclass(frozen=True)
class SafeInput:
    """How a safe input of a branch was made: the mask of the side it
    guards, the loops that mask depends on, the loop depth it was made at,
    and the side's id (a copy remade after a rebinding keeps them)."""

    mask: str
    mask_deps: frozenset
    depth: int
    origin: int


@dataclass
class Loop:
    var: str
    start: int
    size: str
    offset: int
    masks: int = 0  # how many If sides are around the loop (where its min/max may raise)

    def stop(self) -> str:
        if not self.offset:
            return self.size
        return f"{self.size} {'+' if self.offset > 0 else '-'} {abs(self.offset)}"

    def length(self) -> str:
        shift = self.offset - self.start
        if not shift:
            return self.size
        if shift > 0:
            return f"{self.size} + {shift}"
        return f"max({self.size} - {-shift}, 0)"  # an empty range has no negative length

    def bounds(self, shift: int) -> str:
        """The slice of a data axis read at `var + shift`."""
        start = self.start + shift
        stop = self.offset + shift
        lo = str(start) if start else ""
        hi = "" if stop == 0 else (f"{self.size} - {-stop}" if stop < 0 else f"{self.size} + {stop}")
        return f"{lo}:{hi}"


@dataclass
class Scope:
    loops: list[Loop] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)  # condition texts, outermost first
    path: list[int] = field(default_factory=list)  # the If sides we are in (ids), as masks
    mask_deps: list[frozenset] = field(default_factory=list)  # the loops each depends on
    names: dict[str, Binding] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)  # safe inputs of a branch

    @property
    def depth(self) -> int:
        return len(self.loops) - 1


class ArrayFunctionPrinter:
    def __init__(self, filename: str):
        self.filename = printable_filename(filename)
        self.helpers: set[str] = set()
        self.counter = 0
        self.targets: dict[str, str] = {}  # assignment targets renamed on an If's then side
        self.safe: dict[str, SafeInput] = {}  # the safe copies of names made so far
        self.pending: list[str] = []  # lines the current statement needs before it
        self.indent = INDENT

    def comment(self, loc) -> str:
        return f"{self.filename}:{loc.line}:{loc.column}" if loc is not None else ""

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}_"

    # --- the function ------------------------------------------------------------
    def function(self, fn: Function) -> list[str]:
        self.scope = Scope()
        self.sources = {p.source: p.name for p in fn.params}
        # w_2 → ('w', (), 2); W1_3_2 → ('W1', (3,), 2): an unpacked parameter element
        self.unpacked: dict[str, tuple[str, tuple, int]] = {}
        large = large_params(fn)
        self.large = Subscripts(large) if large else None  # the parameters read by subscript
        self.parts = ArrayResultParts(self)
        self.assigned = _assignment_counts(fn.body)
        self.defs: dict[str, object] = {}  # a deferred name's value (see `deferrable`)
        self.deferred: dict[str, tuple[list[str], set[str]]] = {}  # its lines, what they read
        self.reads: list[set[str]] = [set()]  # the names each statement being printed reads
        self.maps: set[str] = set()  # the arrays Appends have made
        lines = wrap("", f"def {fn.name}({', '.join(p.name for p in fn.params)}):")
        lines += docstring(fn.doc, INDENT)
        lines += self.prologue(fn)
        lines += self.block(fn.body, INDENT)
        return self.without_dead(lines)

    def deferrable(self, s) -> bool:
        """A name bound once, outside conditions: its value is the same
        wherever it is read, so a pattern may read through it (a row times
        a vector, a column sum) and its statement is printed only if some
        printed statement still reads it."""
        return (isinstance(s, Assign) and self.assigned.get(s.target) == 1
                and not self.scope.masks and s.target not in self.scope.names
                and s.target not in self.targets)

    def without_dead(self, lines: list[str]) -> list[str]:
        """The function's lines with each deferred statement in its place
        if a printed statement reads it (directly or through other deferred
        ones), and left out if none does."""
        live, stack = set(), list(self.reads[0])
        while stack:
            name = stack.pop()
            if name in live:
                continue
            live.add(name)
            if name in self.deferred:
                stack.extend(self.deferred[name][1])
        out: list[str] = []
        for line in lines:
            if line.startswith(_DEFERRED):
                name = line[len(_DEFERRED):]
                if name in live:
                    out += self.deferred[name][0]
            else:
                out.append(line)
        return out

    def prologue(self, fn: Function) -> list[str]:
        data = [p for p in fn.params if _is_data(p.shape)]
        self.helpers |= {"_namespace", "_data", "_scalar", "_dtype", "_out"}
        names = ", ".join(p.name for p in data)
        lines = wrap(INDENT, f"xp = _namespace({names})")
        sizes: dict[str, str] = {}
        for p in data:
            lines += wrap(INDENT, f"{p.name} = _data(xp, {p.name}, {p.source!r}, {len(p.shape)})")
        lines += wrap(INDENT, f"dtype = _dtype(xp, {names})" if data else "dtype = xp.float64")
        for p in data:
            for axis, size in enumerate(p.shape):
                if not isinstance(size, str):
                    lines += _check_fixed(p, axis, size)
                elif size not in sizes:
                    sizes[size] = f"{p.source!r} axis {axis}"
                    lines.append(INDENT + f"{size} = {p.name}.shape[{axis}]")
                    self.scope.names[size] = Binding(-1, ())
                else:
                    lines += _check_size(p, axis, size, sizes[size])
        large = set(self.large.shapes) if self.large else set()
        for p in fn.params:
            if not _is_data(p.shape):
                lines += self.fixed(p, p.name in large)
        return lines

    def fixed(self, p, large: bool) -> list[str]:
        """A parameter without a data axis as an array of the data's dtype
        (a tuple of them for a tuple) and, unless it is large, unpacked into
        its elements' names; a large one is read by subscript (`w[3, 17]`),
        as in the plain target (python.py says why)."""
        if isinstance(p.shape, list):
            call = f"_parts(xp, {p.name}, {p.source!r}, {p.shape!r}, dtype)"
            self.helpers.add("_parts")
        else:
            call = f"_scalar(xp, {p.name}, {p.source!r}, {tuple(p.shape)!r}, dtype)"
        lines = statement(INDENT, f"{p.name} = ", call, comment=large_note(p) if large else "")
        if large:
            return lines
        for v in element_names(p.elements):
            self.scope.names[v] = Binding(-1, ())
        target = unpack_target(p.elements)
        if target != p.name:
            lines += assign(INDENT, [target], [p.name])
        if isinstance(p.shape, tuple) and len(p.shape) == 1:
            self.unpacked.update({v: (p.name, (), j) for j, v in enumerate(p.elements)})
        elif isinstance(p.shape, tuple) and len(p.shape) == 2:
            self.unpacked.update({v: (p.name, (i,), j) for i, row in enumerate(p.elements)
                                  for j, v in enumerate(row)})
        return lines

    def element_of(self, name: str):
        """(parameter, leading index, position) when `name` is an element
        of a 1-d or 2-d array parameter, unpacked or read by subscript, else
        None: the weights of a row-times-vector product (`dot_product`)."""
        found = self.unpacked.get(name)
        if found is None and self.large is not None:
            param, path = self.large.paths.get(name, (None, ()))
            if param is not None and isinstance(self.large.shapes[param], tuple) \
                    and len(path) in (1, 2):
                found = (param, path[:-1], path[-1])
        return found

    # --- statements -----------------------------------------------------------------
    def block(self, statements: list, indent: str) -> list[str]:
        lines: list[str] = []
        i = 0
        while i < len(statements):
            group = self.column_group(statements, i)
            if len(group) > 1:
                lines += self.column_sums(group, indent)
                i += len(group)
                continue
            lines += self.statement(statements[i], indent)
            i += 1
        return lines

    def column_group(self, statements: list, i: int) -> list:
        """Statements from `i` on that add `e * X[k][c]` to a name bound
        outside a single loop, for one `e` and one row, each column once,
        the columns a range (in any order): a gradient's `d_w_c += t * X[k][c]`."""
        group: list = []
        columns: list[int] = []
        for s in statements[i:]:
            parts = self._column_term(s)
            if parts is None:
                break
            if group:
                first = self._column_term(group[0])
                if parts[0] != first[0] or parts[1] != first[1] or parts[2] in columns:
                    break
            group.append(s)
            columns.append(parts[2])
        if columns and sorted(columns) != list(range(min(columns), min(columns) + len(columns))):
            return group[:1]  # not a range of columns: one reduction each
        return group

    def _column_term(self, s):
        """(the factor, the load's row entries, the column) of `T = T + e * load`,
        reading through deferred names (`T = T + p` where `p = e * X_k_c`)."""
        if self.scope.depth != 0 or self.scope.masks or not isinstance(s, Assign):
            return None
        v = s.value
        bound = self.scope.names.get(s.target)
        if (bound is None or bound.depth != -1 or not isinstance(v, Call) or v.op != "add"
                or v.args[0] != Name(s.target)):
            return None
        term = self.definition(v.args[1])
        if not isinstance(term, Call) or term.op != "mul":
            return None
        for factor, load in (term.args, reversed(term.args)):
            load = self.definition(load)
            if (isinstance(load, Call) and load.op == "load" and len(load.attr[1]) == 2
                    and isinstance(load.attr[1][1], int)
                    and load.args == (Name(self.scope.loops[0].var),)):
                return factor, (load.attr[0], load.attr[1][0], load.args), load.attr[1][1]
        return None

    def definition(self, e):
        """The value of a deferred name (through chains of them), else `e`:
        what a pattern sees through the scheduler's names."""
        while (isinstance(e, Name) and e.id in self.defs and e.id not in self.scope.rename):
            e = self.defs[e.id]
        return e

    def columns(self, param: str, row, first: int, stop: int) -> str:
        """`X[:, first:stop]`: columns of a 2-d data parameter read in the
        single loop at row `k + shift`."""
        rows = self.scope.loops[0].bounds(row[1])
        return f"{self.sources.get(param, param)}[{rows}, {first}:{stop}]"

    def column_sums(self, group: list, indent: str) -> list[str]:
        """One vector-matrix product for the group: `e @ X[:, a:b]` reads
        the columns in one pass, instead of one reduction per column."""
        factor, (param, row, _), _ = self._column_term(group[0])
        first = min(self._column_term(s)[2] for s in group)
        columns = self.columns(param, row, first, first + len(group))
        text, prec, deps = self.expr(factor)
        if 0 not in deps:
            return [line for s in group for line in self.statement(s, indent)]
        product = self.fresh("columns")
        lines = statement(indent, f"{product} = ", f"xp.matmul({text}, {columns})",
                          comment=self.comment(group[0].loc))
        for s in group:
            j = self._column_term(s)[2] - first
            lines += statement(indent, f"{s.target} = ", f"{s.target} + {product}[{j}]",
                               comment=self.comment(s.loc))
        return lines

    def statement(self, s, indent: str) -> list[str]:
        """A statement's lines, after those its expressions need first (the
        guarded sides of conditional expressions)."""
        saved, self.pending, self.indent = self.pending, [], indent
        if self.deferrable(s):
            self.reads.append(set())
            lines = self.assign(s, indent)
            self.deferred[s.target] = (self.pending + lines, self.reads.pop())
            self.defs[s.target] = s.value
            self.pending = saved
            return [_DEFERRED + s.target]
        if isinstance(s, Assign):
            lines = self.assign(s, indent)
        elif isinstance(s, If):
            lines = self.branch(s, indent)
        elif isinstance(s, For):
            lines = self.loop(s, indent)
        elif isinstance(s, Return):
            lines = statement(indent, "return ", self.structure(s.value),
                              comment=self.comment(s.loc))
        elif isinstance(s, NewList):
            lines = []  # the map is the whole array its loop's Append makes
        elif isinstance(s, Append):
            lines = self.append(s, indent)
        else:  # pragma: no cover
            raise TypeError(f"not a statement: {s!r}")
        lines, self.pending = self.pending + lines, saved
        return lines

    def assign(self, s: Assign, indent: str) -> list[str]:
        note = self.comment(s.loc)
        target = self.targets.get(s.target, s.target)
        bound = self.scope.names.get(s.target)
        v = s.value
        if (bound is not None and isinstance(v, Call) and v.op in REDUCTIONS
                and v.args[0] == Name(s.target)
                and (bound.depth < self.scope.depth
                     or self.level(bound) < len(self.scope.masks))):
            return (self.accumulate(s.target, bound, v, indent, note)
                    + self.resafe(s.target, indent))
        text, _, deps = self.expr(v)
        if bound is not None and self.level(bound) < len(self.scope.masks):
            # a reassignment under a condition keeps the old value where it fails
            for mask, mask_deps in zip(reversed(self.scope.masks[self.level(bound):]),
                                       reversed(self.scope.mask_deps[self.level(bound):])):
                text = f"xp.where({mask}, {text}, {s.target})"
                deps |= mask_deps | bound.deps
        self.scope.names[s.target] = Binding(self.scope.depth, tuple(self.scope.path), deps)
        return statement(indent, f"{target} = ", text, comment=note) + self.resafe(s.target, indent)

    def resafe(self, name: str, indent: str) -> list[str]:
        """After a side rebinds a name it reads through a safe input (`d_z
        += t`, then `pick = d_z`), the reads after the rebinding must see
        the new value: a new safe copy of it, made as the first was."""
        made = self.safe.get(self.scope.rename.get(name))
        return self.safe_copy(name, made, indent) if made is not None else []

    def safe_copy(self, name: str, made: SafeInput, indent: str) -> list[str]:
        """`name_7_, = (_safe(xp, mask, name),)` of the name's current value
        (under its then-side name, if it has one), read as `name` from now on;
        deferred, so it is printed only if something reads it."""
        self.helpers.add("_safe")
        variable = self.targets.get(name, name)
        bound = self.scope.names.get(name) or self.scope.names[variable]
        depth = max(made.depth, bound.depth)
        text = variable
        if bound.deps and bound.depth < depth:
            text += "[" + ", ".join([":"] * (bound.depth + 1) + ["None"] * (depth - bound.depth)) + "]"
        copy = self.fresh(name)
        self.scope.names[copy] = Binding(depth, tuple(self.scope.path),
                                         bound.deps | made.mask_deps)
        self.safe[copy] = made
        self.scope.rename[name] = copy
        lines = statement(indent, f"{copy}, = ", f"(_safe(xp, {made.mask}, {text}),)")
        self.deferred[copy] = (lines, {variable})
        return [_DEFERRED + copy]

    def append(self, s: Append, indent: str) -> list[str]:
        """A map's elements: the iteration's value broadcast to the lengths of
        all the loops around it (axis d: the loop at depth d), a row of values
        stacked along the axis after them, one column each; a map nested in
        the element (a map of maps) is an array with those axes already."""
        depth = self.scope.depth
        lengths = [loop.length() for loop in self.scope.loops]
        shape = "(" + ", ".join(lengths) + ("," if len(lengths) == 1 else "") + ")"

        def part(e) -> str:
            if isinstance(e, (list, tuple)):
                if not e:
                    return f"xp.zeros(({', '.join(lengths)}, 0), dtype=dtype)"
                return f"xp.stack([{', '.join(part(x) for x in e)}], axis={depth + 1})"
            if isinstance(e, Name) and e.id in self.maps:
                return e.id
            return f"xp.broadcast_to({self.expr(e)[0]}, {shape})"
        self.maps.add(s.target)
        self.scope.names[s.target] = Binding(-1, ())
        return statement(indent, f"{s.target} = ", part(s.value), comment=self.comment(s.loc))

    def level(self, bound: Binding) -> int:
        """How many of the current conditions were around `bound` too: a
        value bound under fewer (or other) conditions keeps its old value
        where the conditions since then fail."""
        level = 0
        for a, b in zip(bound.path, self.scope.path):
            if a != b:
                break
            level += 1
        return level

    def accumulate(self, target: str, bound: Binding, v: Call, indent: str, note: str):
        """`target = target op term` across loops and conditions: the term,
        masked by the conditions since the target was bound, reduced over the
        loops since then."""
        function, identity = REDUCTIONS[v.op]
        term, _, deps = self.expr(v.args[1])
        for mask, mask_deps in zip(reversed(self.scope.masks[self.level(bound):]),
                                   reversed(self.scope.mask_deps[self.level(bound):])):
            term = f"xp.where({mask}, {term}, {identity})"
            deps |= mask_deps
        axes = list(range(bound.depth + 1, self.scope.depth + 1))
        if axes:
            term = self.reduce(function, term, deps, axes, note)
        if v.op in ("min", "max"):
            text = f"xp.{'minimum' if v.op == 'min' else 'maximum'}({target}, {term})"
        else:
            symbol = {"add": "+", "sub": "-", "mul": "*"}[v.op]
            text = f"{target} {symbol} {term}"
        self.scope.names[target] = Binding(bound.depth, bound.path,
                                           bound.deps | frozenset(d for d in deps
                                                                  if d <= bound.depth))
        return statement(indent, f"{target} = ", text, comment=note)

    def reduce(self, function: str, term: str, deps, axes: list[int], note: str) -> str:
        """The reduction of `term` over the loops at `axes`.  Along a loop the
        term does not vary on it has length 1: the loop's count scales
        (sum) or powers (prod) it; a term of no loop at all is a number."""
        counts = " * ".join(f"({self.scope.loops[a].length()})" for a in axes if a not in deps)
        outer = sorted(d for d in deps if d < axes[0])  # the loops the result varies on
        # the axes the term is reduced along: of no outer loop, the result is a number
        reduced = (axes if outer else list(range(self.scope.depth + 1))) if deps else []
        if function in ("xp.min", "xp.max"):
            self.helpers.add("_nonempty")
            lengths = ", ".join(self.scope.loops[a].length() for a in axes)
            # in If sides, an empty range raises only where they are taken
            around = self.scope.masks[:self.scope.loops[axes[0]].masks]
            taken = "".join(f", {mask}" for mask in around)
            term = f"_nonempty({term}, ({lengths},), {tuple(reduced)!r}, " \
                f"{note or 'a min or max'!r}, xp{taken})"
        if deps:
            axis = reduced[0] if len(reduced) == 1 else tuple(reduced)
            term = f"{function}({term}, axis={axis!r})"
        if counts and function == "xp.sum":  # a loop that runs no times adds 0, not inf * 0
            scaled = f"{term} * {counts}" if deps else f"({term}) * {counts}"
            term = f"({scaled} if {counts} else {self.zeros(outer, axes[0])})"
        elif counts and function == "xp.prod":
            term = f"{term} ** ({counts})" if deps else f"({term}) ** ({counts})"
        return term

    def zeros(self, varying: list[int], depth: int) -> str:
        """0 in the shape of a value of the loops above `depth` that varies on
        those at `varying` (a 0-d array if on none: a Python 0.0 would make a
        division by it, masked away on the side not taken, raise
        ZeroDivisionError instead of giving inf; fuzz seed data:2800012467),
        without computing the value."""
        if not varying:
            return "xp.asarray(0.0, dtype=dtype)"
        lengths = [self.scope.loops[d].length() if d in varying else "1" for d in range(depth)]
        return f"xp.zeros(({', '.join(lengths)}{',' if depth == 1 else ''}), dtype=dtype)"

    def branch(self, s: If, indent: str) -> list[str]:
        note = self.comment(s.loc)
        cond, _, cond_deps = self.expr(s.cond)
        lines: list[str] = []
        if not _simple(cond):
            name = self.fresh("cond")
            lines += statement(indent, f"{name} = ", cond, comment=note)
            cond = name
        both = sorted(self.new_names(s.then) & self.new_names(s.orelse))
        picks = {name: self.fresh(name) for name in both}  # the then side's values
        lines += self.side(s.then, cond, cond_deps, indent, picks)
        lines += self.side(s.orelse, f"xp.logical_not({cond})", cond_deps, indent, {})
        for name in both:  # bound on both sides: pick
            lines += statement(indent, f"{name} = ", f"xp.where({cond}, {picks[name]}, {name})",
                               comment=note)
            bound, then = self.scope.names[name], self.scope.names[picks[name]]
            # the pick varies wherever either side or the condition does
            self.scope.names[name] = Binding(bound.depth, tuple(self.scope.path),
                                             bound.deps | then.deps | cond_deps)
        return lines

    def new_names(self, statements: list) -> set[str]:
        return {s.target for s in walk(statements)
                if isinstance(s, Assign) and s.target not in self.scope.names}

    def side(self, statements: list, mask: str, mask_deps: frozenset, indent: str,
             picks: dict[str, str]) -> list[str]:
        """One side of an If, computed everywhere, under `mask`; the names
        in `picks` are bound under other names (the other side binds them)."""
        if not statements:
            return []
        lines: list[str] = []
        saved = dict(self.scope.rename)
        guarded = _has_partial(statements)
        if guarded:
            free = self.free_arrays(statements)
            if free:
                self.helpers.add("_safe")
                lines += self.safe_inputs(free, mask, mask_deps, indent)
        self.scope.rename.update(picks)
        saved_targets, self.targets = self.targets, {**self.targets, **picks}
        self.scope.masks.append(mask)
        self.scope.mask_deps.append(mask_deps)
        self.counter += 1
        self.scope.path.append(self.counter)
        if guarded:
            self.helpers.add("_quiet")
            lines.append(indent + f"with _quiet(xp, {mask}):")
            lines += self.block(statements, indent + INDENT)
        else:
            lines += self.block(statements, indent)
        self.scope.masks.pop()
        self.scope.mask_deps.pop()
        self.scope.path.pop()
        self.targets = saved_targets
        for name, pick in picks.items():  # the picked name is this side's value
            self.scope.names[pick] = self.scope.names.pop(name)
        inner, self.scope.rename = self.scope.rename, saved
        lines += self.rebound_safe_inputs(statements, inner, indent)
        return lines

    def rebound_safe_inputs(self, statements: list, inner: dict, indent: str) -> list[str]:
        """The safe inputs of the sides around a side that rebinds them: the
        copy the side last made for the same outer side is still current;
        otherwise (the side made its own, for its mask) the outer one is
        made again from the new value."""
        lines: list[str] = []
        rebound = {s.target for s in walk(statements) if isinstance(s, Assign)}
        for name in sorted(rebound):
            outer = self.safe.get(self.scope.rename.get(name))
            if outer is None:
                continue
            last = inner.get(name)
            if last in self.safe and self.safe[last].origin == outer.origin:
                self.scope.rename[name] = last
            else:
                lines += self.safe_copy(name, outer, indent)
        return lines

    def safe_inputs(self, free: list, mask: str, mask_deps: frozenset,
                    indent: str) -> list[str]:
        """`x_1_, y_2_ = _safe(xp, mask, x, y[1:])`, and reads of them renamed."""
        self.helpers.add("_safe")
        safe, texts = [], []
        self.counter += 1
        made = SafeInput(mask, mask_deps, self.scope.depth, self.counter)
        for item in free:
            if isinstance(item, str):
                text, _, deps = self.name(item)
                hint = item
            else:
                text, _, deps = self.load(item)
                hint = self.sources.get(item.attr[0], item.attr[0])
            name = self.fresh(hint)
            self.scope.names[name] = Binding(self.scope.depth, tuple(self.scope.path),
                                             deps | mask_deps)
            if isinstance(item, str):  # a name the side may rebind (see `resafe`)
                self.safe[name] = made
            safe.append(name)
            texts.append(text)
        for item, name in zip(free, safe):
            self.scope.rename[item] = name
        value = (f"(_safe(xp, {mask}, {texts[0]}),)" if len(free) == 1
                 else f"_safe(xp, {mask}, {', '.join(texts)})")
        return statement(indent, ", ".join(safe) + ("," if len(safe) == 1 else "") + " = ", value)

    def free_arrays(self, statements: list) -> list:
        """What `statements` read from before them that is an array: names
        (ids) and loads (Calls) whose loop variables are bound before."""
        inside: set[str] = set()
        free: list = []
        for s in walk(statements):
            for e in _expressions(s):
                for name in _names(e):
                    b = self.scope.names.get(name)
                    if name not in inside and name not in free and b is not None and b.deps:
                        free.append(name)
                for load in _loads(e):
                    if load not in free and not any(a.id in inside for a in load.args):
                        free.append(load)
            if isinstance(s, Assign):
                inside.add(s.target)
            elif isinstance(s, For):
                inside.add(s.var)
        return free

    def loop(self, s: For, indent: str) -> list[str]:
        size, offset = s.stop
        loop = Loop(s.var, s.start, size, offset, len(self.scope.masks))
        self.scope.loops.append(loop)
        depth = self.scope.depth
        self.scope.names[s.var] = Binding(depth, tuple(self.scope.path), frozenset({depth}))
        lines: list[str] = []
        if _uses_var(s.body, s.var):
            shape = ", ".join("-1" if d == depth else "1" for d in range(depth + 1))
            lines += statement(indent, f"{s.var} = ",
                               f"xp.reshape(xp.astype(xp.arange({s.start}, {loop.stop()}), "
                               f"dtype), ({shape},))" if depth else
                               f"xp.astype(xp.arange({s.start}, {loop.stop()}), dtype)",
                               comment=self.comment(s.loc))
        lines += self.block(s.body, indent)
        self.scope.loops.pop()
        return lines

    # --- expressions -------------------------------------------------------------------
    def expr(self, e) -> tuple[str, int, frozenset]:
        """Array text of an expression, its precedence, the loops it depends on."""
        if isinstance(e, Const):
            text, prec = const_text(e.value)
            return text, prec, frozenset()
        if isinstance(e, Name):
            return self.name(e.id)
        if e.op == "load":
            return self.load(e)
        if e.op == "size":  # a 0-d array: `/ n` at n = 0 is NumPy's, in a side not taken too
            return f"xp.asarray({e.attr}, dtype=dtype)", ATOM, frozenset()
        if e.op == "add" and self.scope.depth == 0:
            dot = self.dot_product(e)
            if dot is not None:
                return dot
        op = OPS[e.op]
        template, prec, _ = array_template(op)
        if e.op in TEMPLATE_HELPERS:
            self.helpers.add(TEMPLATE_HELPERS[e.op])
        if e.op == "where" and any(_has_partial_expr(a) for a in e.args[1:]):
            return self.safe_where(e)
        parts, deps = [], frozenset()
        needed = array_template(op)[2]
        for i, a in enumerate(e.args):
            text, p, d = self.expr(a)
            deps |= d
            need = needed[min(i, len(needed) - 1)]
            parts.append(f"({text})" if p < need else text)
        if callable(template):
            return template(parts), prec, deps
        return template.format(*parts, args=", ".join(parts), attr=e.attr), prec, deps

    def dot_product(self, e: Call):
        """A sum with terms `w[j] * X[k][c]` for consecutive j and c (a row
        of X times a parameter vector) as one `xp.matmul(X[:, a:b], w[i:j])`,
        which reads X in one pass instead of one per column; other terms
        are added as they are."""
        terms, stack = [], [e]
        while stack:
            x = stack.pop()
            if isinstance(x, Call) and x.op == "add":
                stack.extend(reversed(x.args))
            else:
                terms.append(x)
        keyed = sorted((k, i) for i, t in enumerate(terms)
                       if (k := self._weighted_column(t)) is not None)
        runs: list[list] = []
        for key, i in keyed:
            run = runs[-1] if runs else None
            if run and run[-1][0][0] == key[0] and (run[-1][0][1] + 1, run[-1][0][2] + 1) \
                    == key[1:]:
                run.append((key, i))
            else:
                runs.append([(key, i)])
        long = [[key for key, _ in run] for run in runs if len(run) > 1]
        if not long:
            return None
        grouped = {i for run in runs if len(run) > 1 for _, i in run}
        rest = [t for i, t in enumerate(terms) if i not in grouped]
        parts, deps = [], frozenset({0})
        for run in long:
            (param, row, (vector, lead)), column, element = run[0]
            columns = self.columns(param, row, column, column + len(run))
            entries = [str(i) for i in lead] + [f"{element}:{element + len(run)}"]
            parts.append(f"xp.matmul({columns}, {vector}[{', '.join(entries)}])")
        for term in rest:
            text, p, d = self.expr(term)
            deps |= d
            parts.append(text)
        return " + ".join(parts), ADD, deps

    def _weighted_column(self, term):
        """((data param, row entry, (vector, its leading index)), column, element)
        of `w[j] * X[k][c]` or `W[i][j] * X[k][c]` (X read through a deferred name
        or not)."""
        if not isinstance(term, Call) or term.op != "mul":
            return None
        for weight, load in (term.args, tuple(reversed(term.args))):
            load = self.definition(load)
            found = self.element_of(weight.id) if isinstance(weight, Name) else None
            if (found is not None and weight.id not in self.scope.rename
                    and isinstance(load, Call) and load.op == "load" and len(load.attr[1]) == 2
                    and isinstance(load.attr[1][1], int) and load not in self.scope.rename
                    and load.args == (Name(self.scope.loops[0].var),)):
                vector, lead, element = found
                return ((load.attr[0], load.attr[1][0], (vector, lead)), load.attr[1][1],
                        element)
        return None

    def safe_where(self, e: Call) -> tuple[str, int, frozenset]:
        """A conditional expression whose side can fail: each such side is
        a statement before this one, on safe inputs, under `_quiet`."""
        cond, _, deps = self.expr(e.args[0])
        if not _simple(cond):
            name = self.fresh("cond")
            self.pending += statement(self.indent, f"{name} = ", cond)
            cond = name
        sides = []
        for i, side in enumerate(e.args[1:]):
            if not _has_partial_expr(side):
                text, _, d = self.expr(side)
                deps |= d
                sides.append(text)
                continue
            mask = cond if i == 0 else f"xp.logical_not({cond})"
            saved = dict(self.scope.rename)
            free = [n for n in _names(side) if (b := self.scope.names.get(n)) is not None
                    and b.deps] + _loads(side)
            if free:
                self.pending += self.safe_inputs(free, mask, deps, self.indent)
            text, _, d = self.expr(side)
            self.scope.rename = saved
            deps |= d
            value = self.fresh("side")
            self.helpers.add("_quiet")
            self.pending.append(self.indent + f"with _quiet(xp, {mask}):")
            self.pending += statement(self.indent + INDENT, f"{value} = ", text)
            sides.append(value)
        return f"xp.where({cond}, {sides[0]}, {sides[1]})", ATOM, deps

    def name(self, id: str) -> tuple[str, int, frozenset]:
        if self.large is not None and id in self.large.paths:  # an element of a large parameter
            param, path = self.large.paths[id]
            return subscript(param, path, self.large.shapes[param]), ATOM, frozenset()
        self.reads[-1].add(id)
        text = self.scope.rename.get(id, id)
        self.reads[-1].add(text)  # a safe copy is printed if read (`safe_copy`)
        b = self.scope.names.get(text) or self.scope.names.get(id)
        deps = b.deps if b is not None else frozenset()
        if b is not None and b.deps and b.depth < self.scope.depth:
            text += "[" + ", ".join([":"] * (b.depth + 1)
                                    + ["None"] * (self.scope.depth - b.depth)) + "]"
        return text, ATOM, deps

    def load(self, e: Call) -> tuple[str, int, frozenset]:
        """`X[k + a][3]` → `X[a:n + a, 3]` with axes at the loops' depths."""
        if e in self.scope.rename:  # a safe input of a branch
            return self.name(self.scope.rename[e])
        param, index = e.attr
        name = self.sources.get(param, param)
        depths = [self.scope.names[e.args[entry[0]].id].depth for entry in index
                  if not isinstance(entry, int)]
        if len(set(depths)) < len(depths):
            return self.diagonal(e, name)
        entries, axes, windows = [], [], []
        for entry in index:
            if isinstance(entry, int):
                entries.append(str(entry))
                continue
            position, shift = entry
            var = e.args[position].id
            depth = self.scope.names[var].depth
            loop = self.scope.loops[depth]
            if loop.start + shift < 0 or loop.offset + shift > 0:
                entries.append(":")  # read through a window (`window`) below
                windows.append((len(axes), loop, shift))
            else:
                entries.append(loop.bounds(shift))
            axes.append(depth)
        text = name if all(x == ":" for x in entries) else f"{name}[{', '.join(entries)}]"
        for axis, loop, shift in windows:
            text = self.window(text, axis, loop, shift, len(axes))
        if axes != sorted(axes):
            order = sorted(range(len(axes)), key=lambda i: axes[i])
            text = f"xp.permute_dims({text}, {tuple(order)!r})"
            axes = sorted(axes)
        missing = [d for d in range(self.scope.depth + 1) if d not in axes]
        if missing:
            expanded = []
            for d in range(self.scope.depth + 1):
                expanded.append(":" if d in axes else "None")
            text = f"{text}[{', '.join(expanded)}]"
        return text, ATOM, frozenset(axes)

    def diagonal(self, e: Call, name: str) -> tuple[str, int, frozenset]:
        """A read along two axes by one loop (`A[i][i + 1]`, a diagonal): the
        elements at the positions' offsets in the flattened array, one index
        array with the loops' axes (each position clipped to its axis, as a
        window's: a read that may leave the array is used only where it
        does not)."""
        param, index = e.attr
        ndim = self.scope.depth + 1
        terms, axes = [], set()
        for axis, entry in enumerate(index):
            stride = "".join(f" * {name}.shape[{b}]" for b in range(axis + 1, len(index)))
            if isinstance(entry, int):
                terms.append(f"{entry}{stride}")
                continue
            position, shift = entry
            depth = self.scope.names[e.args[position].id].depth
            loop = self.scope.loops[depth]
            end = loop.offset + shift
            stop = loop.size if not end else f"{loop.size} {'+' if end > 0 else '-'} {abs(end)}"
            positions = f"xp.clip(xp.arange({loop.start + shift}, {stop}), 0, " \
                        f"{name}.shape[{axis}] - 1)"
            if ndim > 1:
                shape = ", ".join("-1" if d == depth else "1" for d in range(ndim))
                positions = f"xp.reshape({positions}, ({shape}))"
            terms.append(f"{positions}{stride}")
            axes.add(depth)
        flat = self.fresh("diagonal")
        self.pending += statement(self.indent, f"{flat} = ", " + ".join(terms))
        text = (f"xp.reshape(xp.take(xp.reshape({name}, (-1,)), xp.reshape({flat}, (-1,))), "
                f"{flat}.shape)")
        return text, ATOM, frozenset(axes)

    def window(self, text: str, axis: int, loop: Loop, shift: int, axes: int) -> str:
        """A read along `axis` that may leave the array (a gradient's shifted
        read, used only under the condition that it does not): the positions
        outside repeat the edge element, which the condition then discards."""
        end = loop.offset + shift
        stop = loop.size if not end else f"{loop.size} {'+' if end > 0 else '-'} {abs(end)}"
        positions = f"xp.clip(xp.arange({loop.start + shift}, {stop}), 0, {loop.size} - 1)"
        return f"xp.take({text}, {positions}" + (f", axis={axis})" if axes > 1 else ")")

    def structure(self, value) -> str:
        return structure(value, self.large, self.parts)


class ArrayResultParts(ResultParts):
    """A result's parts in the array target: each element through `_out`;
    a copy of a whole part of a large parameter, or a run of one of its
    rows, through `_outs` (nested lists of what `_out` gives, so a copy is
    what unpacking and `_out` on every element would give)."""

    def __init__(self, printer: ArrayFunctionPrinter):
        self.printer = printer

    def element(self, e, large) -> str:
        return f"_out({self.printer.expr(e)[0]})"

    def copy(self, param: str, prefix: tuple, depth: int) -> str:
        self.printer.helpers.add("_outs")
        return f"_outs({subscript(param, prefix, self.printer.large.shapes[param])})"

    def run(self, param: str, prefix: tuple, start: int, stop: int) -> str:
        self.printer.helpers.add("_outs")
        shape = self.printer.large.shapes[param]
        return f"*_outs({subscript(param, prefix, shape, f'{start}:{stop}')})"


def subscript(param: str, path: tuple, shape, last: str = "") -> str:
    """`w[3, 17]`: the element (or part) at `path` of a large parameter of
    `shape`, the parts of a tuple indexed one by one (`ct[0][17]`), and
    `last` (a slice) as the last entry."""
    text, entries = param, list(path)
    while isinstance(shape, list) and entries:
        text += f"[{entries[0]}]"
        shape = shape[entries.pop(0)]
    entries = [str(i) for i in entries] + ([last] if last else [])
    return f"{text}[{', '.join(entries)}]" if entries else text


# --- small helpers ------------------------------------------------------------------
_DEFERRED = "\0deferred "  # a line that stands for a deferred statement (without_dead)


def _assignment_counts(statements: list) -> dict[str, int]:
    """How many Assigns bind each name, nested statements included."""
    counts: dict[str, int] = {}
    for s in walk(statements):
        if isinstance(s, Assign):
            counts[s.target] = counts.get(s.target, 0) + 1
    return counts


def _is_data(shape) -> bool:
    return isinstance(shape, tuple) and any(isinstance(s, str) for s in shape)


def _check_size(p, axis: int, size: str, first: str) -> list[str]:
    return _check(p.name, axis, size, f"{p.source} axis {axis} has length ",
                  f"{{{p.name}.shape[{axis}]}}", f", but {first} has {{{size}}} ({size})")


def _check_fixed(p, axis: int, size: int) -> list[str]:
    return _check(p.name, axis, size, f"{p.source} axis {axis} must have length {size}, ",
                  f"got {{{p.name}.shape[{axis}]}}")


def _check(name: str, axis: int, size, *message: str) -> list[str]:
    """`if X.shape[1] != m: raise ValueError(f"...")`; a message too long
    for the line is its parts joined by `+`, where the line can break."""
    raises = wrap(INDENT * 2, f'raise ValueError(f"{"".join(message)}")')
    if len(raises) > 1:
        parts = " + ".join(f'f"{part}"' for part in message)
        raises = wrap(INDENT * 2, f"raise ValueError({parts})")
    return statement(INDENT, "if ", f"{name}.shape[{axis}] != {size}", ":") + raises


def _simple(text: str) -> bool:
    return text.isidentifier()


def _expressions(s) -> list:
    from ..program import expressions
    return expressions(s)


def _names(e) -> list[str]:
    out: list[str] = []
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Name):
            if x.id not in out:
                out.append(x.id)
        elif isinstance(x, Call) and x.op != "load":
            stack.extend(reversed(x.args))
    return out


def _loads(e) -> list:
    """The loads in an expression, each once."""
    out: list = []
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Call):
            if x.op == "load":
                if x not in out:
                    out.append(x)
            else:
                stack.extend(reversed(x.args))
    return out


def _has_partial_expr(e) -> bool:
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Call):
            if x.op in PARTIAL_OPS:
                return True
            stack.extend(x.args)
    return False


def _has_partial(statements: list) -> bool:
    return any(_has_partial_expr(e) for s in walk(statements) for e in _expressions(s))


def _uses_var(statements: list, var: str) -> bool:
    """Whether the loop variable is used as a number (not only as an index)."""
    for s in walk(statements):
        stack = list(_expressions(s))
        while stack:
            x = stack.pop()
            if isinstance(x, Name) and x.id == var:
                return True
            if isinstance(x, Call) and x.op != "load":
                stack.extend(x.args)
    return False


# --- the module -----------------------------------------------------------------------
def module(functions: list[Function], filename: str, header: list[str] | None = None) -> str:
    printer = ArrayFunctionPrinter(filename)
    bodies = [printer.function(fn) for fn in functions]
    lines = list(header if header is not None else module_header(filename))
    if header is None:  # regenerating needs the target too
        lines[1] = lines[1].replace("exprgrad compile ", "exprgrad compile --target array ")
    lines += ["", ""]
    lines.append(runtime_source(printer.helpers))
    for body in bodies:
        lines += ["", ""] + body
    lines += ["", "", f"__all__ = {[fn.name for fn in functions]!r}", ""]
    return "\n".join(lines)
