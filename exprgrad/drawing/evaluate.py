"""The numbers of a DAG at a point: each node's value, computed from the DAG
itself (each op's `fn` in id order, which is a topological order), never
from generated code.  Drawings and explanations of the backward pass both
show these numbers."""

from __future__ import annotations

from ..compiler.graph import Graph
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


def point_inputs(function, at: dict) -> dict[int, float]:
    """Input node → value for a point `{param: number or nested list}`."""
    problem = point_mismatch(function.name, [p.name for p in function.params], at)
    if problem:
        raise PointError(problem)
    known: dict[int, float] = {}
    for p in function.params:
        pairs = [(p.placeholders, at[p.name], p.name)]
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
    return known


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PointError(f"{where} must be a number, not {value!r}"[:200])
    try:
        return float(value)
    except OverflowError:
        raise PointError(f"{where} is too large for a float") from None


def parameter_labels(function) -> dict[int, str]:
    labels: dict[int, str] = {}
    for p in function.params:
        pairs = [(p.placeholders, p.name)]
        while pairs:
            node, text = pairs.pop()
            if isinstance(node, int):
                labels.setdefault(node, text)
            else:
                pairs.extend((n, f"{text}[{i}]") for i, n in enumerate(node))
    return labels
