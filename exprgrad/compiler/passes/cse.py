"""Common-subexpression elimination by hash-consing.

`Graph.add` looks every node up by `(op, args, attr)` before creating it, and
`a + b` / `b + a` (and `*`) are one node, so a graph built through `add` has
no duplicates: CSE costs one dict lookup per node and needs no pass of its
own.  `share` re-runs it over an existing graph — a graph assembled node by
node without `add`, or one whose nodes became equal after a rewrite — and
also re-applies the folding rules, since every node goes through `add`.
"""

from __future__ import annotations


def share(g, roots):
    """(new graph, new root ids): the live part of `g` rebuilt through
    `Graph.add`, so equal nodes become one and every rule of `passes.fold`
    and `passes.strength` applies.  Names and source locations are kept."""
    from ..graph import Graph

    out = Graph()
    mapping: dict[int, int] = {}
    for n in g.ancestors(list(roots)):
        node = g.nodes[n]
        out.loc = g.locs[n]
        if node.op == "const":
            new_id = out.const(node.attr)
        else:
            new_id = out.add(node.op, *(mapping[a] for a in node.args), attr=node.attr)
        mapping[n] = new_id
        if n in g.names:
            out.names.setdefault(new_id, g.names[n])
    return out, [mapping[r] for r in roots]
