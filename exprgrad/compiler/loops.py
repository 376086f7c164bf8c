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
