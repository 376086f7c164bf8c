"""The numbers of a DAG at a point: each node's value, computed from the DAG
itself (each op's `fn` in id order, which is a topological order), never
from generated code.  Drawings and explanations of the backward pass both
show these numbers."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ..compiler.graph import Graph
from ..compiler.loops import OVER_OPS, DataArray, levels, loop_of
from ..compiler.ops import OPS
from ..compiler.options import Options
from ..compiler.values import point_mismatch

# The DAG with the operations the user wrote: `x^2` stays a power (drawn
# `**2`) instead of becoming x*x.  Strength reduction is exact, so every
# number is the same as with the default options.
AS_WRITTEN = Options(strength=False)


class PointError(ValueError):
    """A point that does not fit the function (a missing or unknown name, a
    wrong shape, something that is not a number)."""


class _Undefined:
    """The value of a node whose op has no value at the point (log(-1), 1/0)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


def evaluate(g: Graph, roots: list[int], known: dict[int, object]) -> dict[int, object]:
    """Values of `roots` and their ancestors, given the values of input nodes.

    A lazy input (a conditional's branches) is undefined without harm unless
    it is the one taken, so an undefined value in the other branch does not
    spread, as in generated code."""
    values = dict(known)
    for n in g.ancestors(roots):
        if n in values:
            continue
        node = g.nodes[n]
        if node.op in ("const", "bool"):
            values[n] = node.attr
        elif node.op == "input":
            raise PointError(f"no value was given for the input '{g.names.get(n, node.attr)}'")
        else:
            values[n] = _apply(node, [values[a] for a in node.args])
    return values


def _apply(node, args: list) -> object:
    spec = OPS[node.op]
    if any(a is UNDEFINED for i, a in enumerate(args) if i not in spec.lazy):
        return UNDEFINED
    try:
        return spec.evaluate(args, node.attr)
    except (ArithmeticError, ValueError):
        return UNDEFINED


class AtSample:
    """The numbers of a DAG with runtime loops, at one iteration of each loop.

    `binding` fixes loop index nodes to iterations (k = 2): a node inside
    those loops gets its value at that iteration, a reduction runs its whole
    loop, and every other node is computed once.  Each binding of a loop
    variable is a frame of values; a node lives in the frame of the most
    recently bound loop it depends on, so a reduction over a loop that is
    also bound (the tie count of a `max`'s gradient) recomputes what varies
    with it in fresh frames and never reads the sample's values by mistake.
    As in `evaluate`, a value an op has no value for is UNDEFINED."""

    def __init__(self, g: Graph, point: "Point", binding: dict[int, int]):
        self.g, self.point = g, point
        self.level: dict[int, frozenset] = {}
        self.base: dict[int, object] = dict(point.inputs)
        self.frames: list[tuple[int, int, dict]] = []  # (loop index node, k, values)
        self.top: dict[int, int] = {}  # loop index node → its innermost frame
        self._bodies: dict[int, tuple[list[int], list[int]]] = {}
        for index in sorted(binding, key=lambda i: (loop_of(g, i).depth, i)):
            self._push(index, binding[index])

    def values(self, roots: list[int]) -> dict[int, object]:
        """Values of `roots` and their ancestors that the binding determines
        (all of them when every loop they are inside is bound)."""
        order = self.g.ancestors(roots)
        self.level.update(levels(self.g, order))
        self._fill(order)
        return {n: self._get(n) for n in order if self._bound(n)}

    # --- frames ------------------------------------------------------------
    def _push(self, index: int, k: int) -> None:
        self.frames.append((index, k, {}))
        self.top[index] = len(self.frames) - 1

    def _pop(self, index: int, previous: int | None) -> None:
        self.frames.pop()
        if previous is None:
            del self.top[index]
        else:
            self.top[index] = previous

    def _frame(self, n: int) -> dict:
        level = self.level.get(n)
        if not level:
            return self.base
        return self.frames[max(self.top[i] for i in level)][2]

    def _bound(self, n: int) -> bool:
        return all(i in self.top for i in self.level.get(n, ()))

    def _get(self, n: int):
        return self._frame(n)[n]

    def _fill(self, order: list[int]) -> None:
        """Compute, in topological order, the nodes of `order` that the
        bound loops determine and that their frame does not hold yet."""
        for n in order:
            if self._bound(n):
                frame = self._frame(n)
                if n not in frame:
                    frame[n] = self._compute(n)

    # --- one node ------------------------------------------------------------
    def _compute(self, n: int):
        node = self.g.nodes[n]
        op = node.op
        if op in ("const", "bool"):
            return node.attr
        if op == "input":
            raise PointError(f"no value was given for the input '{self.g.names.get(n, node.attr)}'")
        if op == "size":
            return float(self.point.sizes[node.attr])
        if op == "loop_index":
            return float(self.frames[self.top[n]][1])
        if op == "load":
            return self._load(node)
        if op in OVER_OPS:
            return self._reduce(n)
        return _apply(node, [self._get(a) for a in node.args])

    def _load(self, node) -> float:
        param, index = node.attr
        value = self.point.data[param]
        for entry in index:
            if isinstance(entry, int):
                value = value[entry]
            else:
                position, offset = entry
                value = value[self.frames[self.top[node.args[position]]][1] + offset]
        return value

    def _reduce(self, n: int):
        body, index = self.g.nodes[n].args
        loop = loop_of(self.g, index)
        steps = range(loop.start, self.point.sizes[loop.size] + loop.offset)
        invariant, varying = self._body(n)
        self._fill(invariant)
        if index not in self.level.get(body, ()):  # the same value every iteration
            terms = [self._get(body)] * len(steps)
        else:
            terms = []
            previous = self.top.get(index)
            for k in steps:
                self._push(index, k)
                self._fill(varying)
                terms.append(self._get(body))
                self._pop(index, previous)
        return _combine(self.g.nodes[n].op, terms)

    def _body(self, n: int) -> tuple[list[int], list[int]]:
        """A reduction's body split into what its loop leaves unchanged and
        what varies with it, each in topological order (kept per reduction)."""
        if n not in self._bodies:
            body, index = self.g.nodes[n].args
            order = self.g.ancestors([body])
            varying = [a for a in order if index in self.level.get(a, ())]
            invariant = [a for a in order if index not in self.level.get(a, ())]
            self._bodies[n] = (invariant, varying)
        return self._bodies[n]


def _combine(op: str, terms: list):
    """A reduction of the body's values, in iteration order as the
    generated loop accumulates them."""
    if any(t is UNDEFINED for t in terms):
        return UNDEFINED
    if op == "sum_over":
        total = 0.0
        for t in terms:
            total += t
        return total
    if op == "prod_over":
        return float(math.prod(terms))
    if not terms:
        return UNDEFINED  # min/max over nothing raise in generated code
    return min(terms) if op == "min_over" else max(terms)


def point_inputs(function, at: dict) -> dict[int, float]:
    """Input node → value for a point `{param: number or nested list}` of a
    function without data parameters."""
    point = read_point(function, at)
    if point.data:
        shown = ", ".join(_declared(p) for p in function.params if p.name in point.data)
        raise PointError(f"{function.name} reads data ({shown}); this needs a function "
                         "whose parameters have no data axis")
    return point.inputs


@dataclass
class Point:
    """A point of a function: values of its input nodes, the data
    parameters' arrays by name, and the lengths of its size names."""

    inputs: dict[int, float]
    data: dict[str, object] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


def read_point(function, at: dict) -> Point:
    """The point `{param: number, nested list or array}` checked against the
    function's parameters: shapes, numbers, and one length per size name."""
    problem = point_mismatch(function.name, [p.name for p in function.params], at)
    if problem:
        raise PointError(problem)
    point = Point({})
    first_seen: dict[str, str] = {}  # size name → the array whose length set it
    for p in function.params:
        if isinstance(p.placeholders, DataArray):
            point.data[p.name] = _data_array(p, at[p.name], point.sizes, first_seen)
        else:
            _scalar_inputs(p, at[p.name], point.inputs)
    return point


def _scalar_inputs(p, given, known: dict[int, float]) -> None:
    pairs = [(p.placeholders, given, p.name)]
    while pairs:  # placeholders and value side by side, element by element
        node, value, where = pairs.pop()
        if isinstance(node, int):
            known[node] = _number(value, where)
            continue
        if not isinstance(value, (list, tuple)) or len(value) != len(node):
            raise PointError(f"{where} must be a list of {len(node)} "
                             f"{'numbers' if node and isinstance(node[0], int) else 'lists'}, "
                             f"not {value!r}"[:200])
        pairs.extend((n, v, f"{where}[{i}]") for i, (n, v) in enumerate(zip(node, value)))


def _data_array(p, given, sizes: dict[str, int], first_seen: dict[str, str]) -> list:
    """A data parameter's value as nested lists of floats, its lengths along
    size names recorded in `sizes` (every array must agree on each)."""
    given = given.tolist() if hasattr(given, "tolist") else given  # a NumPy array
    result: list = []
    pairs = deque([(given, p.shape, p.name, result)])
    while pairs:  # breadth first, so rows are checked in order
        value, shape, where, into = pairs.popleft()
        dim, rest = shape[0], shape[1:]
        what = "numbers" if not rest else "lists"
        if not isinstance(value, (list, tuple)):
            raise PointError(f"{where} must be a list of {what}, not {value!r}"[:200])
        if isinstance(dim, int) and len(value) != dim:
            raise PointError(f"{where} must be a list of {dim} {what}, not {len(value)}")
        if isinstance(dim, str):
            _agree(sizes, first_seen, dim, len(value), where)
        for i, v in enumerate(value):
            if rest:
                into.append([])
                pairs.append((v, rest, f"{where}[{i}]", into[-1]))
            else:
                into.append(_number(v, f"{where}[{i}]"))
    return result


def _agree(sizes: dict[str, int], first_seen: dict[str, str], size: str, length: int,
           where: str) -> None:
    known = sizes.get(size)
    if known is None:
        sizes[size] = length
        first_seen[size] = where
    elif known != length:
        raise PointError(f"{size} must be one length: {where} has {length} elements but "
                         f"{first_seen[size]} has {known}")


def _declared(p) -> str:
    return p.name + "".join(f"[{d}]" for d in p.shape)


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PointError(f"{where} must be a number, not {value!r}"[:200])
    try:
        return float(value)
    except OverflowError:
        raise PointError(f"{where} is too large for a float") from None


def parameter_labels(function) -> dict[int, str]:
    """Input node → its name as written (`x`, `w[0]`, `W[1][2]`); data
    parameters have no input nodes (their elements are loads)."""
    labels: dict[int, str] = {}
    for p in function.params:
        if isinstance(p.placeholders, DataArray):
            continue
        pairs = [(p.placeholders, p.name)]
        while pairs:
            node, text = pairs.pop()
            if isinstance(node, int):
                labels.setdefault(node, text)
            else:
                pairs.extend((n, f"{text}[{i}]") for i, n in enumerate(node))
    return labels
