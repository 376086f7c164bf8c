"""Data axes: runtime loops kept rolled in the scalar DAG.

A dimension written as a size name (`X[n][5]`) has its length fixed at call
time.  The DAG stays scalar: the body of a runtime loop is the DAG of ONE
iteration, whose nodes depend on a `loop_index` leaf.  A node that depends on
no loop index is loop-invariant, so hash-consing hoists it out of every loop
for free.  The ops (entries of `ops.py` marked `loop=True`):

  size        leaf; attr = a size name.  The runtime length, as a float.
  loop_index  leaf; attr = a `Loop`.  The loop variable, as a float when used
              as a number.
  load        args = loop indices; attr = (parameter, index): one entry per
              dimension, an int for a compile-time dimension or
              (argument position, offset) for `args[position] + offset`.
  sum_over, prod_over, min_over, max_over
              args = (body, loop_index): a reduction over the loop's range.

Lowered values of runtime length are `RuntimeArray`s (a map: the element of
one iteration, which may be a map itself: a value with two data axes) and
`DataArray`s (a parameter, or part of one, not yet
indexed down to scalars); `RuntimeRange` is what `range(n - 1)` lowers to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Loc

REDUCTIONS = {"add": "sum_over", "mul": "prod_over", "min": "min_over", "max": "max_over"}
OVER_OPS = set(REDUCTIONS.values())


@dataclass(frozen=True)
class Loop:
    """`for var in range(start, len(size) + offset)` at runtime-loop depth
    `depth`; `origin` (the comprehension's location) keeps two loops apart
    that happen to look alike, so one can never capture the other's index."""

    var: str
    depth: int
    start: int
    size: str
    offset: int
    origin: Loc | None = None

    def stop_text(self) -> str:
        return self.size if not self.offset else \
            f"{self.size} {'+' if self.offset > 0 else '-'} {abs(self.offset)}"

    def range_text(self) -> str:
        stop = self.stop_text()
        return f"range({stop})" if self.start == 0 else f"range({self.start}, {stop})"

    def same_range(self, other: "Loop") -> bool:
        return (self.start, self.size, self.offset) == (other.start, other.size, other.offset)


@dataclass(frozen=True)
class RuntimeRange:
    """`range(start, len(size) + offset)` before a comprehension binds it."""

    start: int
    size: str
    offset: int


@dataclass(frozen=True)
class RuntimeArray:
    """A map of runtime length: `element` (a lowered value) is one iteration
    of the loop whose `loop_index` node is `index`."""

    index: int
    element: object
    name: str | None = field(default=None, compare=False)  # what generated code calls it


@dataclass(frozen=True)
class DataArray:
    """A data parameter (or a slice of one along its compile-time leading
    dimensions): `shape` is the declared shape, `prefix` the indices taken so
    far (ints, or (loop_index node, offset) pairs)."""

    param: str
    shape: tuple
    prefix: tuple = ()

    @property
    def rest(self) -> tuple:
        return self.shape[len(self.prefix):]


def is_runtime(value) -> bool:
    return isinstance(value, (RuntimeArray, DataArray))


def has_data_axis(shape) -> bool:
    return any(isinstance(d, str) for d in shape)


def loop_of(g, index: int) -> Loop:
    return g.nodes[index].attr


def linear(g, node: int):
    """`node` as `base + offset` with an integer offset: (base, offset) where
    base is a `size` or `loop_index` node, or (None, value) for a constant
    integer; None when it is anything else."""
    offset = 0
    while True:
        n = g.nodes[node]
        if n.op == "const":
            value = n.attr
            return (None, offset + int(value)) if float(value).is_integer() else None
        if n.op in ("size", "loop_index"):
            return node, offset
        if n.op in ("add", "sub") and len(n.args) == 2:
            a, b = n.args
            if g.is_const(b) and float(g.value(b)).is_integer():
                offset += int(g.value(b)) * (1 if n.op == "add" else -1)
                node = a
                continue
            if n.op == "add" and g.is_const(a) and float(g.value(a)).is_integer():
                offset += int(g.value(a))
                node = b
                continue
        return None


def levels(g, order: list[int], known: dict | None = None) -> dict[int, frozenset]:
    """The loop indices each node of `order` (ascending) depends on; nodes
    that depend on none are left out (they are loop-invariant).  `known`:
    the levels of nodes before `order` already worked out (not copied)."""
    found: dict[int, frozenset] = {} if known is None else known
    nodes = g.nodes
    for n in order:
        node = nodes[n]
        if node.op == "loop_index":
            found[n] = frozenset((n,))
            continue
        inner = [found[a] for a in node.args if a in found]
        if not inner:
            continue
        level = frozenset().union(*inner)
        if node.op in OVER_OPS:
            level = level - {node.args[1]}
        if level:
            found[n] = level
    return found


def substitute_loops(g, roots: list[int], mapping: dict[int, tuple[int, int]]) -> list[int]:
    """Rebuild `roots` with each loop index `L` of `mapping` replaced by
    `M + shift` for `mapping[L] = (M, shift)`: a map's element read at another
    loop's index (`z[k - 1]`).  Loads shift their offsets; a loop index used as
    a number becomes `M + shift`."""
    if not mapping:
        return list(roots)
    return LoopSubstitution(g, mapping)(roots)


class LoopSubstitution:
    """`substitute_loops` for one mapping over many calls, each node rebuilt
    once: reverse mode re-indexes the adjoint of every load of a data row
    (`X[k][i]` for each i) by the same mapping, and those adjoints share
    most of their ancestors, so walking them afresh per load would be
    quadratic in the row's width.  A call visits only nodes no earlier call
    reached, in ascending order as one call over all the roots would, so
    the graph built is the same node for node."""

    def __init__(self, g, mapping: dict[int, tuple[int, int]]) -> None:
        self.g, self.mapping = g, mapping
        self.stop_below = min(mapping)
        self.loops = set(mapping)
        self.new: dict[int, int] = {}
        for loop, (target, shift) in mapping.items():
            self.new[loop] = target if shift == 0 else g.add("add", target, g.const(shift))
        self.free: dict[int, frozenset] = {}  # a reduction over L binds L: only free uses change
        self.seen: set[int] = set()

    def __call__(self, roots: list[int]) -> list[int]:
        g, new, free = self.g, self.new, self.free
        order = self._unseen_ancestors(roots)
        levels(g, order, free)
        for n in order:
            if n in self.mapping or not free.get(n, frozenset()) & self.loops:
                continue
            node = g.nodes[n]
            if node.op == "load" and any(a in self.mapping for a in node.args):
                new[n] = _shifted_load(g, n, self.mapping)
                continue
            rebuilt = g.rebuilt(n, new)
            if rebuilt is not None:
                new[n] = rebuilt
        return [new.get(r, r) for r in roots]

    def _unseen_ancestors(self, roots: list[int]) -> list[int]:
        """`roots` and what they use, ids from `stop_below` up, that no
        earlier call visited; ascending."""
        seen, nodes, found = self.seen, self.g.nodes, []
        stack = [r for r in roots if r >= self.stop_below]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            found.append(n)
            stack.extend(a for a in nodes[n].args if a >= self.stop_below and a not in seen)
        found.sort()
        return found


def _shifted_load(g, n: int, mapping) -> int:
    node = g.nodes[n]
    param, index = node.attr
    args = list(node.args)
    new_args = [mapping[a][0] if a in mapping else a for a in args]
    new_index = tuple(entry if isinstance(entry, int) else
                      (entry[0], entry[1] + (mapping[args[entry[0]]][1]
                                             if args[entry[0]] in mapping else 0))
                      for entry in index)
    return make_load(g, param, new_index, new_args, g.locs[n], g.names.get(n))


def make_load(g, param: str, index: tuple, loops: list[int], loc, name=None) -> int:
    """A load with its loop arguments deduplicated and in a canonical order."""
    order = sorted(set(loops))
    position = {a: order.index(a) for a in order}
    canonical = tuple(entry if isinstance(entry, int) else
                      (position[loops[entry[0]]], entry[1]) for entry in index)
    saved, g.loc = g.loc, loc
    node = g.add("load", *order, attr=(param, canonical))
    g.loc = saved
    if name:
        g.name(node, name)
    return node


def map_element(value, fn):
    """Apply `fn` to every node id of a value (lists, tuples, the elements of
    runtime arrays), in the order `values.flatten` lists them."""
    if isinstance(value, int):
        return fn(value)
    if isinstance(value, RuntimeArray):
        return RuntimeArray(value.index, map_element(value.element, fn), value.name)
    if isinstance(value, tuple):
        return tuple(map_element(v, fn) for v in value)
    return [map_element(v, fn) for v in value]


def runs_condition(g, index: int) -> int:
    """The condition that the loop over `index` runs at least once:
    `len(size) + offset > start`, built as `size > start - offset`
    (`n > 0` for `range(n)`, `n > 2` for `range(2, n)`).  A value only the
    loop's body needs is needed only where it holds."""
    loop = loop_of(g, index)
    saved, g.loc = g.loc, g.locs[index]
    cond = g.add("gt", g.add("size", attr=loop.size), g.const(float(loop.start - loop.offset)))
    g.loc = saved
    return cond


def runs_range(g, cond: int) -> tuple[str, float] | None:
    """(size, start - offset) if `cond` is `size > constant`: the condition
    that every loop over `range(start, len(size) + offset)` with that
    difference runs (`runs_condition`); None for any other node."""
    node = g.nodes[cond]
    if node.op != "gt":
        return None
    size, bound = (g.nodes[a] for a in node.args)
    if size.op != "size" or bound.op != "const":
        return None
    return size.attr, bound.attr


def unneeded_run_guards(g, roots: list[int]) -> dict[int, int]:
    """The nodes among `roots` and below them that change when every
    `where(size > b, x, 0)` (`runs_condition`) whose `x` is 0 and cannot
    raise when the loops that condition is about run zero times is replaced
    by `x`: node → its replacement.  Reverse mode guards what a loop's
    adjoint flows into with the loop running (`d_s = sum(1) / n` of `sum(s
    / n for k in range(n))`), so that what only the loop's iterations
    differentiate is computed only when there are some; where the guarded
    value is a multiple of a sum over the loop built of ops that cannot
    raise (`d_x = sum(u[k])`, nearly every sum) the guard changes nothing,
    and goes: the code stays what it was."""
    order = g.ancestors(roots)
    checks: dict[tuple, _EmptyLoops] = {}
    new: dict[int, int] = {}
    for n in order:
        node = g.nodes[n]
        if node.op == "where" and g.value(node.args[2]) == 0.0:
            cond, then = node.args[0], new.get(node.args[1], node.args[1])
            about = runs_range(g, cond)
            if about is not None:
                check = checks.get(about)
                if check is None:
                    check = checks[about] = _EmptyLoops(g, *about)
                if check.vanishes(then) and check.safe(then):
                    new[n] = then
                    _keep_names(g, n, then)
                    continue
        rebuilt = g.rebuilt(n, new)
        if rebuilt is not None:
            new[n] = rebuilt
            _keep_names(g, n, rebuilt)
    return new


def _keep_names(g, old: int, new: int) -> None:
    """The adjoint a node stood for (`d_w`) is the one its replacement does."""
    if old in g.names:
        g.name(new, g.names[old])
    primal = g.adjoint_of.get(old)
    if primal is not None and g.nodes[new].args:
        g.adjoint_of.setdefault(new, primal)


class _EmptyLoops:
    """What nodes are when the loops over `range(start, len(size) +
    offset)` with `start - offset == bound` run zero times."""

    def __init__(self, g, size: str, bound: float):
        self.g, self.size, self.bound = g, size, bound
        self._vanishes: dict[int, bool] = {}
        self._safe: dict[int, bool] = {}

    def _about(self, reduction: int) -> bool:
        loop = loop_of(self.g, self.g.nodes[reduction].args[1])
        return loop.size == self.size and loop.start - loop.offset == self.bound

    def vanishes(self, n: int) -> bool:
        """Whether n is 0 there: a sum over such a loop, a product with
        such a factor, a sum or a choice of such terms."""
        return _memo(self._vanishes, n, self.g, self._vanish_step)

    def safe(self, n: int) -> bool:
        """Whether computing n cannot raise there: total ops, loads in
        bounds, sums and products over such a loop (whose bodies do not
        run), and other sums and products of safe bodies."""
        return _memo(self._safe, n, self.g, self._safe_step)

    def _vanish_step(self, n: int):
        node = self.g.nodes[n]
        op = node.op
        if op == "const":
            return node.attr == 0.0
        if op == "sum_over":
            return True if self._about(n) else ([node.args[0]], all)
        if op == "mul":
            return list(node.args), any
        if op in ("add", "sub"):
            return list(node.args), all
        if op in ("neg", "div"):
            return [node.args[0]], all
        if op == "where":
            return list(node.args[1:]), all
        return False

    def _safe_step(self, n: int):
        from .ops import OPS
        node = self.g.nodes[n]
        op = node.op
        if op in ("size", "loop_index"):
            return True
        if op == "load":
            return _in_bounds(self.g, n)
        if op in ("sum_over", "prod_over"):
            return True if self._about(n) else ([node.args[0]], all)
        if op in OVER_OPS or not OPS[op].total:
            return False
        return list(node.args), all


def _memo(memo: dict, root: int, g, step) -> bool:
    """`step(n)` is a bool, or (args, all/any): n's value from its args'.
    Evaluated without recursion, each node once."""
    stack = [root]
    pending: dict[int, tuple] = {}
    while stack:
        n = stack[-1]
        if n in memo:
            stack.pop()
            continue
        if n not in pending:
            found = step(n)
            if found is True or found is False:
                memo[n] = found
                stack.pop()
                continue
            pending[n] = found
            stack.extend(a for a in found[0] if a not in memo)
            continue
        args, combine = pending.pop(n)
        memo[n] = combine(memo[a] for a in args)
        stack.pop()
    return memo[root]


def _in_bounds(g, n: int) -> bool:
    """A load its loops read within the parameter at every iteration."""
    node = g.nodes[n]
    for entry in node.attr[1]:
        if not isinstance(entry, int):
            loop = loop_of(g, node.args[entry[0]])
            if loop.start + entry[1] < 0 or loop.offset + entry[1] > 0:
                return False
    return True
