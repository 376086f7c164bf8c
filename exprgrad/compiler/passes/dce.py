"""Dead-code elimination: keep only what the results need.

Lowering and reverse mode leave nodes no result uses (the forward function
does not need the adjoints; a `diff` inside a check builds nodes the
functions never read).  The code generator emits only `live` nodes, and
`prune` copies them into a fresh, compact graph when a smaller graph itself
is wanted (to free memory before code generation, or to compare sizes).
"""

from __future__ import annotations


def live(g, roots) -> list[int]:
    """Ids of `roots` and everything they use, ascending (a topological order)."""
    return g.ancestors(list(roots))


def prune(g, roots):
    """(new graph, new root ids): the live part of `g`, nodes copied as they
    are (names and source locations kept), ids renumbered densely."""
    from ..graph import Graph, Node

    out = Graph()
    mapping: dict[int, int] = {}
    for n in live(g, roots):
        node = g.nodes[n]
        copy = Node(node.op, tuple(mapping[a] for a in node.args), node.attr)
        out.loc = g.locs[n]
        new_id = out._append(copy)
        out._index[_key(copy)] = new_id
        mapping[n] = new_id
        if n in g.names:
            out.names[new_id] = g.names[n]
    return out, [mapping[r] for r in roots]


def _key(node):
    """The hash-consing key `Graph` uses for a node."""
    if node.op == "const":
        return ("const", float(node.attr).hex())
    return node
