"""`Ref`: a DAG node id with arithmetic operators.

Derivative rules in the op table are written with these operators, so a rule
reads as math (`d * (1 - out * out)`) while it builds shared, folded DAG
nodes through `Graph.add`.
"""

from __future__ import annotations

from .opnames import ADD, DIV, EQ, GT, IPOW, LT, MUL, NEG, SUB, WHERE


class Ref:
    """A node of graph `g`; operators build new nodes of the same graph."""

    __slots__ = ("g", "id")

    def __init__(self, g, node_id: int):
        self.g = g
        self.id = node_id

    @property
    def attr(self):
        return self.g.nodes[self.id].attr

    def _lift(self, other) -> int:
        return other.id if isinstance(other, Ref) else self.g.const(other)

    def _make(self, op: str, *args) -> "Ref":
        return Ref(self.g, self.g.add(op, *(self._lift(a) for a in args)))

    def __add__(self, o): return self._make(ADD, self, o)
    def __radd__(self, o): return self._make(ADD, o, self)
    def __sub__(self, o): return self._make(SUB, self, o)
    def __rsub__(self, o): return self._make(SUB, o, self)
    def __mul__(self, o): return self._make(MUL, self, o)
    def __rmul__(self, o): return self._make(MUL, o, self)
    def __truediv__(self, o): return self._make(DIV, self, o)
    def __rtruediv__(self, o): return self._make(DIV, o, self)
    def __neg__(self): return self._make(NEG, self)
    def __gt__(self, o): return self._make(GT, self, o)
    def __lt__(self, o): return self._make(LT, self, o)
    def __eq__(self, o): return self._make(EQ, self, o)  # builds a node, like SymPy's Eq
    __hash__ = None

    def __pow__(self, k: int) -> "Ref":
        return Ref(self.g, self.g.add(IPOW, self.id, attr=int(k)))


class OutRef(Ref):
    """The output placeholder of a derivative rule applied to placeholder
    inputs: it carries the node's attribute (the exponent of `ipow`), which
    rules read as `out.attr`."""

    __slots__ = ("_attr",)

    def __init__(self, g, node_id: int, attr):
        super().__init__(g, node_id)
        self._attr = attr

    @property
    def attr(self):
        return self._attr


def call(op: str, *args) -> Ref:
    """`op(args)` as a Ref; at least one argument must be a Ref."""
    first = next(a for a in args if isinstance(a, Ref))
    return first._make(op, *args)


def where(cond: Ref, then, otherwise) -> Ref:
    return call(WHERE, cond, then, otherwise)
