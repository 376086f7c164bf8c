"""Reverse-mode differentiation on the DAG.

Nodes are visited in reverse id order (a reverse topological order), each
node's adjoint is complete when it is reached, and the op table's derivative
rule turns it into one contribution per input that needs a gradient: the
rule's template (`rules.py`) is replayed for the node, so only the wanted
contributions are built. Contributions are new DAG nodes, so they are shared
and folded like any other node; an input that no contribution reaches simply
has no adjoint (no zero-initialised sums).

The same function serves `f_grad`/`f_vjp` and `diff(...)`/`grad(...)` inside
source, which is why second derivatives work: the adjoints are ordinary nodes
that can be differentiated again.
"""

from __future__ import annotations

from .graph import Graph
from .ops import OPS
from .rules import rule_template


def gradients(g: Graph, seeds: list[tuple[int, int]], wrt: list,
              differentiated_again: bool = False) -> list:
    """Adjoints of the `wrt` nodes for outputs seeded with cotangents:
    `seeds` pairs an output node with the node holding its cotangent.  A
    `wrt` entry may be a `DataArray` (a parameter with a data axis), whose
    adjoint is a runtime array (`loop_gradients.py`).  `differentiated_again`
    says the adjoints will be differentiated in turn (`diff` and `grad` in
    source): a product over a data axis then writes out the derivatives of
    its share at zero factors, which a gradient never reads."""
    if not wrt:
        return []
    if g.has_loops:
        from .loop_gradients import gradients_with_loops
        return gradients_with_loops(g, seeds, wrt, differentiated_again)
    order = g.ancestors([out for out, _ in seeds], stop_below=min(wrt))
    active = depends_on(g, order, set(wrt))
    adjoints: dict[int, int] = {}

    def accumulate(node: int, contribution: int) -> None:
        if g.value(contribution) == 0.0:
            return  # a zero adjoint propagates nothing (see contributions)
        previous = adjoints.get(node)
        adjoints[node] = contribution if previous is None else g.add("add", previous, contribution)

    saved_loc = g.loc
    for out, cotangent in seeds:
        if out in active:
            accumulate(out, cotangent)
    for n in reversed(order):
        if n not in adjoints:
            continue
        _name_adjoint(g, n, adjoints[n])
        args = g.nodes[n].args
        if not args:
            continue
        g.loc = g.locs[n]
        for arg, contribution in per_input(g, args, contributions(g, n, adjoints[n], active),
                                           active):
            accumulate(arg, contribution)
    g.loc = saved_loc
    return [adjoints[w] if w in adjoints else g.const(0.0) for w in wrt]


def per_input(g: Graph, args, parts: list[int | None], active) -> list[tuple[int, int]]:
    """A node's contributions (`parts`, one per argument) to its active
    inputs, one per input: an input the node reads twice (`x - x`, `x * x`)
    gets the sum of its two before that joins the input's adjoint, so `d -
    d` cancels to 0 at once instead of after the input's other terms (`(a +
    d) - d` is 0, not a, once d is 1e300)."""
    merged: dict[int, int] = {}
    for arg, part in zip(args, parts):
        if part is not None and arg in active:
            merged[arg] = part if arg not in merged else g.add("add", merged[arg], part)
    return list(merged.items())


def contributions(g: Graph, n: int, adjoint: int, active=None) -> list[int | None]:
    """Apply n's derivative rule to its adjoint (see _masked_contributions).

    An adjoint that is a sum of terms some of which flow only under a
    condition (`log(x)` used under two conditions) is split into its terms
    when n's op can fail (`Op.total` is false): each term's contributions
    then keep that term's condition, so `1/x` is never evaluated where no
    branch that reads `log(x)` is taken.  A total op takes the sum at once.
    """
    node = g.nodes[n]
    if not OPS[node.op].total and g.nodes[adjoint].op == "add":
        terms = _terms(g, adjoint)
        if any(g.nodes[t].op == "where" for t in terms):
            total: list[int | None] | None = None
            for t in terms:
                parts = _masked_contributions(g, n, t, active)
                total = parts if total is None else [
                    x if y is None else y if x is None else g.add("add", x, y)
                    for x, y in zip(total, parts)]
            return total or []
    return _masked_contributions(g, n, adjoint, active)


def _terms(g: Graph, node: int, limit: int = 64) -> list[int]:
    """The addends of a sum (a chain of adds), without recursion; a sum of
    more than `limit` terms is taken as one."""
    terms, stack = [], [node]
    while stack:
        m = stack.pop()
        if g.nodes[m].op == "add" and len(terms) + len(stack) < limit:
            stack.extend(reversed(g.nodes[m].args))
        else:
            terms.append(m)
    return terms


def _masked_contributions(g: Graph, n: int, adjoint: int, active=None) -> list[int | None]:
    """Apply n's derivative rule to its adjoint.

    An adjoint that only flows under a condition, `where(c, a, 0)`, is
    unwrapped first and the condition put back around each contribution:
    the rule is linear in the adjoint, and the contributions then stay inside
    the branch, where the code generator evaluates them only when it is taken
    (so log(x) in `log(x) if x > 0 else 0` is never differentiated at x ≤ 0).
    A contribution that folds to zero is not accumulated at all: the branch
    of `s if c else 1` in `0 * s` receives nothing, rather than `0 / sqrt(x)`
    evaluated outside the branch that guards sqrt (JAX's symbolic zeros).
    """
    adjoint, masks = unmask(g, adjoint)
    node = g.nodes[n]
    if not node.args or OPS[node.op].grad is None:
        return []
    wanted = [active is None or a in active for a in node.args]
    results = rule_template(node.op, node.attr, len(node.args)).apply(
        g, adjoint, n, node.args, wanted)
    return [None if c is None else remask(g, c, masks) for c in results]


def unmask(g: Graph, value: int, keeps=lambda cond: True) -> tuple[int, list]:
    """`where(c, v, 0)` (or `where(c, 0, v)`), nested: the inner v and the
    masks [(c, taken side)], outermost first, while `keeps(c)` holds."""
    masks = []
    while g.nodes[value].op == "where":
        cond, then, otherwise = g.nodes[value].args
        if not keeps(cond):
            break
        if g.value(otherwise) == 0.0:
            masks.append((cond, True))
            value = then
        elif g.value(then) == 0.0:
            masks.append((cond, False))
            value = otherwise
        else:
            break
    return value, masks


def remask(g: Graph, value: int, masks: list) -> int:
    """`value` under the masks `unmask` took off, in their order."""
    if not masks:
        return value
    zero = g.const(0.0)
    for cond, taken in reversed(masks):
        value = g.add("where", cond, value, zero) if taken else g.add("where", cond, zero, value)
    return value


def depends_on(g: Graph, order: list[int], sources: set[int]) -> set[int]:
    """The nodes of `order` (ascending) that `sources` reach."""
    active = set(s for s in sources)
    nodes = g.nodes
    for n in order:
        if n not in active and any(a in active for a in nodes[n].args):
            active.add(n)
    return active


def _name_adjoint(g: Graph, n: int, adjoint: int) -> None:
    name = g.names.get(n)
    if name is not None:
        if adjoint not in g.names and g.nodes[adjoint].args:
            g.adjoint_of[adjoint] = n  # the code generator names it d_ + n's variable
        g.name(adjoint, "d_" + name)
