"""Reverse mode over runtime loops (data axes, `loops.py`).

The walk is the scalar one of `reverse.py`, done per loop level.  At a
reduction `r = sum_over(body, L)` with adjoint `d`, the body's own adjoint is
`d` (for `sum`), `d` times the product of the other factors (`prod`, built
without dividing by a zero factor: `_product_of_others`) or `d` shared among
the iterations equal to `r` (`min`/`max`, PyTorch's tie rule); the body is
then walked at the
inner level, one iteration's DAG, and every input that lives outside the loop
receives the sum over the loop of what reached it: `sum_over(adjoint, L)`,
again one node.  So the gradient of a loop is a loop, built once, whatever
the data's length.

A `load` of a data parameter collects its per-iteration adjoint; the adjoint
of the whole parameter is a `RuntimeArray` over fresh loops along its data
axes, each element the sum of the loads that read it (shifted reads land on
their shifted element, guarded to the range they were read in).
"""

from __future__ import annotations

from collections import defaultdict

from .graph import Graph
from .loops import (OVER_OPS, DataArray, Loop, LoopSubstitution, RuntimeArray, levels, loop_of,
                    map_element, runs_condition, runs_range, unneeded_run_guards)
from .reverse import _name_adjoint, contributions, depends_on, per_input, remask, unmask
from .values import flatten

EMPTY = frozenset()


def gradients_with_loops(g: Graph, seeds, wrt: list, differentiated_again: bool = False) -> list:
    outputs = [out for out, _ in seeds]
    order = g.ancestors(outputs)
    level = levels(g, order)
    data = {w.param: w for w in wrt if isinstance(w, DataArray)}
    sources = {w for w in wrt if isinstance(w, int)}
    sources |= {n for n in order if g.nodes[n].op == "load" and g.nodes[n].attr[0] in data}
    walk = _Walk(g, order, level, depends_on(g, order, sources),
                 ZERO_FACTORS_EXACT if differentiated_again else 0)
    top = frozenset().union(*(level.get(out, EMPTY) for out, _ in seeds))
    adjoints = walk.run(top, None, {}, seeds)
    results = []
    for w in wrt:
        if isinstance(w, DataArray):
            results.append(_data_adjoint(g, w, walk.loads.get(w.param, []), top))
        else:
            results.append(adjoints.get(w, g.const(0.0)))
    new = unneeded_run_guards(g, flatten(results))
    return [map_element(r, lambda n: new.get(n, n)) for r in results]


class _Walk:
    def __init__(self, g: Graph, order: list[int], level: dict, active: set[int],
                 zero_factors_exact: int = 0):
        self.g = g
        self.level = level
        self.active = active
        self.primal = set(order)  # nodes whose loops `level` knows (not built by the walk)
        self.by_level: dict[frozenset, list[int]] = defaultdict(list)
        for n in reversed(order):
            self.by_level[level.get(n, EMPTY)].append(n)
        # a data parameter's loads: (load, adjoint, the loops the walk is in)
        self.loads: dict[str, list[tuple[int, int, frozenset]]] = defaultdict(list)
        self.zero_factors_exact = zero_factors_exact  # see _other_zeros_product

    def run(self, at: frozenset, loop: int | None, boundary: dict, seeds) -> dict:
        """Walk from `seeds` the body of `loop` (the nodes that vary with it,
        inside the loops `at`), or at the top (`loop` None) every node of the
        levels within `at`; contributions to nodes outside the body go to
        `boundary`.  Returns the adjoints of the nodes walked."""
        g = self.g
        adjoints: dict[int, int] = {}

        def accumulate(table: dict, node: int, contribution: int) -> None:
            if g.value(contribution) == 0.0:
                return  # a zero adjoint propagates nothing (reverse.contributions)
            previous = table.get(node)
            table[node] = contribution if previous is None else _add_guarded(g, previous,
                                                                             contribution)

        def inside(node: int) -> bool:
            return loop is None or loop in self.level.get(node, EMPTY)

        for out, cotangent in seeds:
            if out in self.active:
                accumulate(adjoints if inside(out) else boundary, out, cotangent)
        saved_loc = g.loc
        for n in self._nodes(at, loop):
            if n not in adjoints:
                continue
            d = adjoints[n]
            _name_adjoint(g, n, d)
            node = g.nodes[n]
            g.loc = g.locs[n]
            if node.op == "load":
                self.loads[node.attr[0]].append((n, d, at))
                continue
            if node.op in OVER_OPS:
                for u, c in self._reduction(n, d, at).items():
                    accumulate(adjoints if inside(u) else boundary, u, c)
                continue
            for arg, c in per_input(g, node.args, contributions(g, n, d, self.active),
                                    self.active):
                accumulate(adjoints if inside(arg) else boundary, arg, c)
        g.loc = saved_loc
        return adjoints

    def _nodes(self, at: frozenset, loop: int | None) -> list[int]:
        nodes = [n for lv, ns in self.by_level.items()
                 if lv <= at and (loop is None or loop in lv) for n in ns]
        return sorted(nodes, reverse=True)

    def _reduction(self, n: int, d: int, at: frozenset) -> dict[int, int]:
        """The contributions of reduction `n` (adjoint `d`) to the nodes
        outside its loop, each a sum over the loop, under the condition
        that the loop runs: the source differentiates its body only at its
        iterations, so what the sums flow into (`/ n` in `d_s` of `sum(s /
        n for k in range(n))`, the mean's `/ m` in `sum(u[k] + avg(u) ...)`)
        is computed only when there are some.  The guards that change
        nothing go once the walk is done (`loops.unneeded_run_guards`)."""
        g = self.g
        body, index = g.nodes[n].args
        if body not in self.active:
            return {}
        inner = at | {index}
        seed = iteration_adjoint(g, n, d, self.zero_factors_exact)
        boundary: dict[int, int] = {}
        if index in self.level.get(body, EMPTY):
            self.run(inner, index, boundary, [(body, seed)])
        else:  # the body does not vary with the loop: every iteration adds the same
            boundary[body] = seed
        runs, zero = runs_condition(g, index), g.const(0.0)
        return {u: g.add("where", runs, self._sum_over(c, index), zero)
                for u, c in boundary.items()}

    def _sum_over(self, c: int, index: int) -> int:
        """`sum_over(c, index)`, with the conditions of `c` that do not vary
        with the loop (`where(x > 0, u[k], 0)`) outside the sum: so the sum
        and what multiplies it (`/ x` of `log(x)`) flow only under them
        (`reverse._masked_contributions`), where the scheduler runs them only
        when they hold."""
        g = self.g
        c, masks = unmask(g, c, lambda cond: runs_range(g, cond) is not None or (
            cond in self.primal and index not in self.level.get(cond, EMPTY)))
        return remask(g, g.add("sum_over", c, index), masks)


def _add_guarded(g: Graph, a: int, b: int) -> int:
    """a + b, with a loop's run guard (`runs_condition`) that masks both
    taken outside: `where(n > 2, x, 0) + where(n > 0, where(n > 2, y, 0), 0)`
    is `where(n > 2, x + where(n > 0, y, 0), 0)`.  An adjoint that flows only
    where a loop runs then says so as a whole, and the local derivatives it
    meets (the share of `min(m, s)`, which reads m, a min over another axis)
    are computed only there: the body of `sum(diff(...) for k in range(2,
    n))` does not vary with k, is walked outside the loop, and at n = 0 its
    min over range(n) is never evaluated (fuzz seed data:2800012467).  A run
    guard is a comparison of a length with a constant, so moving it outward
    never evaluates anything that could fail."""
    a_inner, a_masks = unmask(g, a)
    b_inner, b_masks = unmask(g, b)
    shared = [m for m in a_masks if m[1] and m in b_masks and runs_range(g, m[0]) is not None]
    if not shared:
        return g.add("add", a, b)
    rest = lambda masks: [m for m in masks if m not in shared]  # noqa: E731
    total = g.add("add", remask(g, a_inner, rest(a_masks)), remask(g, b_inner, rest(b_masks)))
    return remask(g, total, shared)


def node_adjoints(g: Graph, output: int, wanted: list[int]) -> dict[int, int]:
    """Node → the node of d output / d node, for every node of `wanted` that
    the output depends on.  Inside a runtime loop that is one iteration's
    adjoint: the walk visits each loop body once, and this keeps the
    adjoints of every level it visits, which `gradients_with_loops` keeps to
    itself because generated code needs only the parameters'.  (Drawings
    and explanations show them.)"""
    seed = [(output, g.const(1.0))]
    order = g.ancestors([output])
    walk = _RecordingWalk(g, order, levels(g, order), depends_on(g, order, set(wanted)))
    walk.run(frozenset(), None, {}, seed)
    return {n: walk.recorded[n] for n in wanted if n in walk.recorded}


class _RecordingWalk(_Walk):
    """The reverse-mode walk over loops, keeping the adjoint of every node
    it reaches, loop bodies included (a body walked for two reductions gets
    the sum of both)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.recorded: dict[int, int] = {}

    def run(self, at, loop, boundary, seeds):
        adjoints = super().run(at, loop, boundary, seeds)
        for n, d in adjoints.items():
            previous = self.recorded.get(n)
            self.recorded[n] = d if previous is None else self.g.add("add", previous, d)
        return adjoints


def iteration_adjoint(g: Graph, n: int, d: int, zero_factors_exact: int = 0) -> int:
    """One iteration's share of a reduction's adjoint.  An adjoint that flows
    only under a condition (`where(c, d, 0)`: the reduction is read in one
    side of a conditional) is unwrapped first and the condition put back
    around the share, as `reverse._masked_contributions` does: what the
    share computes (the count of ties, the product of the other factors:
    more loops) then stays in that side, where the scheduler runs it only
    when the side is taken (`max(u) if n > 0 else 0` at n = 0)."""
    d, masks = unmask(g, d)
    return remask(g, _unmasked_share(g, n, d, zero_factors_exact), masks)


def _unmasked_share(g: Graph, n: int, d: int, zero_factors_exact: int) -> int:
    node = g.nodes[n]
    body, index = node.args
    if node.op == "sum_over":
        return d
    if node.op == "prod_over":
        return g.add("mul", d, _product_of_others(g, n, zero_factors_exact))
    hit = g.add("eq", body, n)  # min/max: the iterations equal to the result share d
    count = g.add("sum_over", g.add("where", hit, g.const(1.0), g.const(0.0)), index)
    return g.add("where", hit, g.add("div", d, count), g.const(0.0))


def _product_of_others(g: Graph, n: int, zero_factors_exact: int) -> int:
    """For `n = prod_over(body, L)`, one iteration's product of the other
    factors, as PyTorch's prod backward computes it: `n / body` at a nonzero
    factor (0 once another factor is 0, since then n is 0); at a zero factor,
    the product of the nonzero factors times that of the other zero factors
    (`_other_zeros_product`).  Both are written `(at_zero if is_zero else n)
    / nonzero`, `nonzero` being the factor with 0 replaced by 1: the division
    is never inside a branch and its divisor is never 0, so no target (the
    plain one evaluates one side of a `where`, the array one both) ever
    divides by zero."""
    body, index = g.nodes[n].args
    one, zero = g.const(1.0), g.const(0.0)
    is_zero = _named(g, g.add("eq", body, zero), "is_zero")
    nonzero = _named(g, g.add("where", is_zero, one, body), "nonzero")
    counted = _named(g, g.add("where", is_zero, one, zero), "zero_count")
    zeros = _named(g, g.add("sum_over", counted, index), "zeros")
    rest = _named(g, g.add("prod_over", nonzero, index), "nonzero_product")
    at_zero = _named(g, _other_zeros_product(g, body, index, is_zero, zeros, rest,
                                             zero_factors_exact), "product_at_zero")
    return g.add("div", g.add("where", is_zero, at_zero, n), nonzero)


ZERO_FACTORS_EXACT = 2  # other zero factors whose product a `diff` of a product writes out


def _other_zeros_product(g: Graph, body: int, index: int, is_zero: int, zeros: int,
                         rest: int, exact: int) -> int:
    """At a zero factor, the product of the other factors: `rest` (the
    nonzero ones) times the product of the other zero factors, `e_z`, z of
    them.  Its value is `rest` at z = 0 and 0 beyond, but its derivatives
    are not 0: a gradient of `diff(prod(u[k] - t ...), t)` at two u[k] equal
    to t is the product of the factors other than the two zeros.  So `e_z`
    is written as the elementary symmetric polynomial of the other zero
    factors, by Newton's identities from their power sums (each a sum over
    L of `where(is_zero, body, 0)^m`, 0 in value, the factor in its
    derivatives), up to z = `exact`; beyond, 0, whose derivatives are right
    to that order (those of e_z vanish below order z).  So the derivatives
    of a product over data are exact to order `exact` + 1 wherever its zero
    factors are.  A gradient never differentiated again (`exact` 0) needs
    the value only: `rest` at one zero factor, else 0."""
    one, zero = g.const(1.0), g.const(0.0)
    own = _named(g, g.add("where", is_zero, body, zero), "zero_factor")
    powers, sums = [one], [None]  # own^m; the other zero factors' power sums p_m
    for m in range(1, exact + 1):
        powers.append(own if m == 1 else g.add("mul", powers[-1], own))
        total = _named(g, g.add("sum_over", powers[m], index), f"zero_power_sum_{m}"
                       if m > 1 else "zero_factor_sum")
        sums.append(g.add("sub", total, powers[m]))
    elementary = [one]  # e_z = (1/z) Σ_{m=1..z} (-1)^(m-1) e_{z-m} p_m
    for z in range(1, exact + 1):
        terms = [g.add("mul", elementary[z - m], sums[m]) for m in range(1, z + 1)]
        signed = terms[0]
        for m, term in enumerate(terms[1:], start=2):
            signed = g.add("sub" if m % 2 == 0 else "add", signed, term)
        elementary.append(signed if z == 1 else g.add("div", signed, g.const(float(z))))
    product = zero
    for z in reversed(range(exact + 1)):
        times_rest = rest if z == 0 else g.add("mul", rest, elementary[z])
        product = g.add("where", g.add("eq", zeros, g.const(float(z + 1))), times_rest, product)
    return product


def _named(g: Graph, node: int, name: str) -> int:
    g.name(node, name)
    return node


def _data_adjoint(g: Graph, param: DataArray, loads: list, top: frozenset):
    """The adjoint of a data parameter: nested lists along its compile-time
    dimensions and runtime arrays along its data axes, over loops of its own
    (located where the gradient is taken: each function has its own)."""
    shape = param.shape
    loops = {}
    for depth, dim in enumerate(d for d in shape if isinstance(d, str)):
        loop = Loop("k" if depth == 0 else f"k{depth}", depth, 0, dim, 0, g.loc)
        loops[depth] = g.add("loop_index", attr=loop)
        g.name(loops[depth], loop.var)
    by_position: dict[tuple, int] = {}
    substitutions: dict[tuple, LoopSubstitution] = {}  # one per mapping, shared by the loads
    for load, d, at in loads:
        key, value = _land(g, load, d, loops, at - top, substitutions)
        previous = by_position.get(key)
        by_position[key] = value if previous is None else g.add("add", previous, value)

    def build(dims: tuple, key: tuple, runtime: int):
        if not dims:
            return by_position.get(key, g.const(0.0))
        head, rest = dims[0], dims[1:]
        if isinstance(head, int):
            return [build(rest, (*key, i), runtime) for i in range(head)]
        return RuntimeArray(loops[runtime], build(rest, (*key, None), runtime + 1),
                            "d_" + param.param)
    return build(tuple(shape), (), 0)


def _land(g: Graph, load: int, d: int, loops, around: frozenset,
          substitutions: dict) -> tuple[tuple, int]:
    """Where a load's adjoint lands: the position along the compile-time
    dimensions, and the adjoint re-indexed by the parameter's own loops
    (`X[k - 1]` read in `range(1, n)` lands on element j = k - 1, for j in
    `range(0, n - 1)`, so the adjoint at j is the body's at k = j + 1),
    summed over the loops `around` the read that its index does not use
    (`u[j]` read inside a loop over i gets a contribution from every i).
    A read along two axes by one loop (`A[i][i]`, a diagonal) lands only
    where the two positions agree (`k1 == k`)."""
    node = g.nodes[load]
    _, index = node.attr
    key, mapping, guards, diagonal = [], {}, [], []
    runtime = 0
    for entry in index:
        if isinstance(entry, int):
            key.append(entry)
            continue
        position, offset = entry
        loop_node = node.args[position]
        target = loops[runtime]
        if loop_node in mapping:  # a diagonal, A[i + a][i + c]: lands where k1 = k - a + c
            first, shift = mapping[loop_node]
            diagonal.append((target, g.add("add", first, g.const(shift + offset))
                             if shift + offset else first))
            key.append(None)
            runtime += 1
            continue
        mapping[loop_node] = (target, -offset)
        loop = loop_of(g, loop_node)
        if offset != 0 or loop.start != 0 or loop.offset != 0:
            guards.append((target, loop.start + offset, loop.offset + offset, loop.size))
        key.append(None)
        runtime += 1
    for loop_node in sorted(around - set(node.args), reverse=True):
        d = g.add("sum_over", d, loop_node)
    value = _substitute(g, d, mapping, substitutions)
    for target, low, high, size in guards:
        inside = g.add("and", g.add("ge", target, g.const(low)),
                       g.add("lt", target, g.add("add", g.add("size", attr=size),
                                                 g.const(high))))
        value = g.add("where", inside, _guard_reads(g, value, inside, frozenset(loops.values())),
                      g.const(0.0))
    for target, position in diagonal:
        value = g.add("where", g.add("eq", target, position), value, g.const(0.0))
    return tuple(key), value


def _substitute(g: Graph, d: int, mapping: dict, substitutions: dict) -> int:
    """`substitute_loops(g, [d], mapping)[0]`, sharing the work with every
    earlier load of the same mapping (the loads of one row, `X[k][i]` for
    each i, have adjoints with most of their ancestors in common)."""
    if not mapping:
        return d
    key = tuple(sorted(mapping.items()))
    if key not in substitutions:
        substitutions[key] = LoopSubstitution(g, mapping)
    return substitutions[key]([d])[0]


def _guard_reads(g: Graph, value: int, inside: int, targets: frozenset) -> int:
    """`value` with every read under a reduction in it that may leave its
    array (a shifted index along one of the parameter's loops `targets`)
    under the condition `inside` too: a reduction is computed before the
    `where` that would skip it, and what its loop reads from outside is
    computed before the loop (`sum(v[j] + v[i + 1] for j ...)` landing on
    u[i] reads v[n] at i = n - 1).  Where the condition holds nothing
    changes; where it fails the result is discarded."""
    order = g.ancestors([value])
    level = levels(g, order)
    bodies = [g.nodes[n].args[0] for n in order
              if g.nodes[n].op in OVER_OPS and not targets.isdisjoint(level.get(n, EMPTY))]
    if not bodies:
        return value
    new: dict[int, int] = {}
    for n in g.ancestors(bodies):
        if _may_leave(g, n, targets):
            saved, g.loc = g.loc, g.locs[n]
            new[n] = g.add("where", inside, n, g.const(0.0))
            g.loc = saved
    if not new:
        return value
    for n in order:
        if n not in new and not targets.isdisjoint(level.get(n, EMPTY)):
            rebuilt = g.rebuilt(n, new)
            if rebuilt is not None:
                new[n] = rebuilt
    return new.get(value, value)


def _may_leave(g: Graph, n: int, targets: frozenset) -> bool:
    """A load at a parameter's loop index shifted by a nonzero offset."""
    node = g.nodes[n]
    return node.op == "load" and any(
        not isinstance(entry, int) and entry[1] != 0 and node.args[entry[0]] in targets
        for entry in node.attr[1])
