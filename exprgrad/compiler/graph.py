"""The scalar op DAG: plain data, hash-consed, in topological order.

A node is `(op, args, attr)`; `args` are ids of earlier nodes, so ids are a
topological order by construction and every pass is a loop over ids, never a
recursive walk.  Adding a node that already exists returns the existing id
(common subexpressions are shared for free), and every new node first goes
through the peephole rules of `passes.fold` and `passes.strength` the
graph's `Options` turn on, so constants fold and x·1 = x wherever a node is
built: by lowering, by reverse mode, by any pass.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import LimitError, Loc
from . import limits
from .ops import OPS
from .opnames import BOOL, CONST, INPUT
from .options import DEFAULT, Options
from .passes.fold import simplifier


class Node(NamedTuple):
    op: str
    args: tuple[int, ...] = ()
    attr: object = None  # a constant's value, an input's key, an integer exponent


class Graph:
    def __init__(self, options: Options | None = None) -> None:
        """`options` choose the rewrites applied as nodes are built."""
        self.options = DEFAULT if options is None else options
        self._simplify = simplifier(self.options)
        self.nodes: list[Node] = []
        self.locs: list[Loc | None] = []  # where in the source each node was written
        self.names: dict[int, str] = {}  # source names, for readable generated code
        self.adjoint_of: dict[int, int] = {}  # adjoint node → the named primal it is of
        self.loc: Loc | None = None  # the location given to nodes built from now on
        self._index: dict[object, int] = {}
        self.has_loops = False  # set by lowering once a runtime loop exists (compiler/loops.py)

    def __len__(self) -> int:
        return len(self.nodes)

    # --- building ----------------------------------------------------------
    def add(self, op: str, *args: int, attr: object = None) -> int:
        """The id of `op(args)`, simplified, created only if it is new."""
        key = Node(op, args, attr)
        found = self._index.get(key)
        if found is not None:
            return found
        simpler = self._simplify(self, op, args, attr)
        node_id = self._append(key) if simpler is None else simpler
        self._index[key] = node_id
        return node_id

    def find(self, op: str, args: tuple[int, ...], attr: object = None) -> int | None:
        """The id of an existing node, or None (builds nothing)."""
        return self._index.get(Node(op, args, attr))

    def const(self, value: float) -> int:
        value = float(value)
        key = (CONST, value.hex())  # keeps -0.0 apart from 0.0, and nan equal to nan
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = self._append(Node(CONST, (), value))
        return found

    def boolean(self, value: bool) -> int:
        return self.add(BOOL, attr=bool(value))

    def input(self, key: object, name: str | None = None) -> int:
        """A leaf that receives a value at run time (a parameter element, a
        cotangent, a free variable of a check); `key` makes it unique."""
        node_id = self.add(INPUT, attr=key)
        if name:
            self.names.setdefault(node_id, name)
        return node_id

    def rebuilt(self, n: int, new: dict[int, int]) -> int | None:
        """Node n with its arguments replaced as `new` maps them, built at n's
        source location and under n's name; None when no argument changes."""
        node = self.nodes[n]
        args = tuple(new.get(a, a) for a in node.args)
        if args == node.args:
            return None
        saved, self.loc = self.loc, self.locs[n]
        rebuilt = self.add(node.op, *args, attr=node.attr)
        self.loc = saved
        if n in self.names:
            self.name(rebuilt, self.names[n])
        return rebuilt

    def reserve(self, count: int) -> None:
        """Refuse now, before building them, `count` more nodes that would
        pass the DAG limit (an array parameter's elements, say)."""
        if len(self.nodes) + count > limits.MAX_DAG_NODES:
            self._too_many()

    def _too_many(self):
        raise LimitError(f"the program needs more than {limits.MAX_DAG_NODES:,} operations "
                         "once loops are unrolled, calls inlined and derivatives built; "
                         "make it smaller", self.loc)

    def _append(self, node: Node) -> int:
        if len(self.nodes) >= limits.MAX_DAG_NODES:
            self._too_many()
        self.nodes.append(node)
        self.locs.append(self.loc)
        return len(self.nodes) - 1

    # --- reading -----------------------------------------------------------
    def is_const(self, node_id: int) -> bool:
        return self.nodes[node_id].op == CONST

    def value(self, node_id: int) -> float | None:
        node = self.nodes[node_id]
        return node.attr if node.op == CONST else None

    def kind(self, node_id: int) -> str:
        """'number' or 'bool' (comparisons, usable only as conditions)."""
        return OPS[self.nodes[node_id].op].kind

    def name(self, node_id: int, name: str) -> None:
        """Remember a source name for a computed node (first name wins)."""
        if self.nodes[node_id].op not in (CONST, BOOL):
            self.names.setdefault(node_id, name)

    def ancestors(self, roots, stop_below: int = 0) -> list[int]:
        """Ids of `roots` and everything they use, ascending; nodes with ids
        below `stop_below` are left out (they cannot depend on newer nodes).
        One sweep down from the highest root: ids are a topological order,
        so a node is reached only after every node that uses it."""
        roots = [r for r in roots if r >= stop_below]
        if not roots:
            return []
        top = max(roots)
        marked = bytearray(top + 1)
        for r in roots:
            marked[r] = 1
        nodes = self.nodes
        found = []
        for n in range(top, stop_below - 1, -1):
            if marked[n]:
                found.append(n)
                for a in nodes[n].args:
                    marked[a] = 1
        found.reverse()
        return found
