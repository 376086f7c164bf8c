"""The numbers of a DAG at a point: each node's value, computed from the DAG
itself (each op's `fn` in id order, which is a topological order), never
from generated code.  Drawings and explanations of the backward pass both
show these numbers.

A point may hold data (`X=[[...], ...]` for `X[n][5]`): `read_point` checks
it against the parameters' shapes and size names, and `AtSample` gives the
numbers of a DAG with runtime loops at one iteration of each loop, which is
what a drawing of a loop's body shows."""

from __future__ import annotations

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
        self._bodies: dict[int, _Body] = {}
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
        if len(level) == 1:
            (index,) = level
            return self.frames[self.top[index]][2]
        return self.frames[max(self.top[i] for i in level)][2]

    def _bound(self, n: int) -> bool:
        return all(i in self.top for i in self.level.get(n, ()))

    def _get(self, n: int):
        return self._frame(n)[n]

    def _fill(self, order: list[int]) -> None:
        """Compute, in topological order, the nodes of `order` that the
        bound loops determine and that their frame does not hold yet."""
        for position, n in enumerate(order):
            if not self._bound(n):
                continue
            frame = self._frame(n)
            if n in frame:
                continue
            if self.g.nodes[n].op in OVER_OPS:
                self._reduce(self._together(n, order[position + 1:], frame), frame)
            else:
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

    def _together(self, n: int, later: list[int], frame: dict) -> list[int]:
        """Reduction n and the reductions of `later` over the same loop that
        can share its iterations (the gradient of a loss over data is one sum
        over the loop per parameter): in the same frame, not computed yet,
        and not depending on one another."""
        g = self.g
        index = g.nodes[n].args[1]
        batch = [n]
        for m in later:
            node = g.nodes[m]
            if node.op in OVER_OPS and node.args[1] == index and self._bound(m) \
                    and self._frame(m) is frame and m not in frame \
                    and not any(b in self._body(m).uses for b in batch):
                batch.append(m)
        return batch

    def _reduce(self, batch: list[int], frame: dict) -> None:
        """Run the loop of the reductions `batch` once, each accumulating its
        body's value at every iteration."""
        g = self.g
        index = g.nodes[batch[0]].args[1]
        loop = loop_of(g, index)
        bodies = [self._body(m) for m in batch]
        self._fill(sorted(set().union(*(b.invariant for b in bodies))))
        varying = sorted(set().union(*(b.varying for b in bodies)))
        # what the iteration determines: all of it lives in the iteration's frame
        varying = [n for n in varying if all(i in self.top or i == index
                                             for i in self.level[n])]
        totals = [_Accumulator(g.nodes[m].op) for m in batch]
        previous = self.top.get(index)
        for k in range(loop.start, self.point.sizes[loop.size] + loop.offset):
            self._push(index, k)
            self._iterate(varying)
            for total, m in zip(totals, batch):
                total.add(self._get(g.nodes[m].args[0]))
            self._pop(index, previous)
        for total, m in zip(totals, batch):
            frame[m] = total.result()

    def _iterate(self, varying: list[int]) -> None:
        """`_fill` for one iteration's fresh frame: every node is computed."""
        frame = self.frames[-1][2]
        nodes = self.g.nodes
        for position, n in enumerate(varying):
            if nodes[n].op not in OVER_OPS:
                frame[n] = self._compute(n)
            elif n not in frame:
                self._reduce(self._together(n, varying[position + 1:], frame), frame)

    def _body(self, n: int) -> "_Body":
        if n not in self._bodies:
            body, index = self.g.nodes[n].args
            order = self.g.ancestors([body])
            self._bodies[n] = _Body(
                invariant=[a for a in order if index not in self.level.get(a, ())],
                varying=[a for a in order if index in self.level.get(a, ())],
                uses=set(order))
        return self._bodies[n]


@dataclass
class _Body:
    """A reduction's body: what its loop leaves unchanged and what varies
    with it (each in topological order), and every node it uses."""

    invariant: list[int]
    varying: list[int]
    uses: set[int]


class _Accumulator:
    """A reduction's running value, in iteration order as the generated loop
    accumulates it; UNDEFINED once any term is."""

    def __init__(self, op: str):
        self.op, self.value, self.count = op, (1.0 if op == "prod_over" else 0.0), 0

    def add(self, term) -> None:
        self.count += 1
        if self.value is UNDEFINED or term is UNDEFINED:
            self.value = UNDEFINED
        elif self.op == "sum_over":
            self.value += term
        elif self.op == "prod_over":
            self.value *= term
        elif self.count == 1 or (term < self.value if self.op == "min_over"
                                 else term > self.value):
            self.value = term

    def result(self):
        if self.count == 0 and self.op in ("min_over", "max_over"):
            return UNDEFINED  # min/max over nothing raise in generated code
        return self.value


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
