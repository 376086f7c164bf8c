"""Scheduling a function with data axes: the scalar scheduler, per loop.

A function's DAG with runtime loops (`loops.py`) is cut into *segments*:
the nodes outside every loop, and for each loop the nodes of one iteration
(those that vary with its index).  Each segment is scheduled by the scalar
scheduler (`schedule.statements`), on a copy of its nodes in which every
value computed elsewhere (outside the loop, by an inner loop, a load of a
data parameter, the loop variable) is a named leaf.  So names, inlining,
branches and `d_X` work in a loop body exactly as in straight-line code.

A reduction is a `For` whose body ends with an accumulation (`s = s + t`);
reductions over one loop that do not depend on each other share one `For`
(a value and its gradient over the same data, say).  One that depends on
another (the backward loop of `log(sum(...))`, whose adjoint needs the
sum) runs in a later `For`, which recomputes the iteration's values it
needs rather than storing them: memory stays independent of the data's
length.  A map returned by the function is a `For` that appends; a map of
maps (a result with two data axes, the gradient of `A[n][m]`) is a `For`
whose body builds a row list with an inner `For` and appends the row.
"""

from __future__ import annotations

from ..errors import LimitError
from . import limits
from .graph import Graph, Node
from .loops import OVER_OPS, DataArray, RuntimeArray, levels, linear, loop_of
from .ops import OPS
from .program import Append, Assign, Call, Const, For, Function, If, Name, NewList, Param, Return
from .schedule import MAX_INLINE, RESERVED, Names, _Scheduler, statements
from .values import flatten

ACCUMULATE = {"sum_over": "add", "prod_over": "mul", "min_over": "min", "max_over": "max"}
START = {"sum_over": 0.0, "prod_over": 1.0, "min_over": float("inf"),
         "max_over": float("-inf")}
HINTS = {"sum_over": "total", "prod_over": "product", "min_over": "least", "max_over": "most"}
EMPTY = frozenset()


def schedule_with_loops(g: Graph, name, params, result, doc, wrt, primal, checked,
                        inline) -> Function:
    builder = _LoopScheduler(g, MAX_INLINE if inline else -1, result, name)
    fn_params = builder.parameters(params, checked)
    body = builder.prologue()
    lengths = len(body)
    values = _runtime_parts(result)
    for value in values:
        body += builder.map_output(value, EMPTY)
    body += builder.segment(EMPTY, None, flatten(_without_maps(result)))
    body[lengths:lengths] = builder.late_lengths  # after the lengths the DAG reads
    value = builder.structure(result)
    leaves = flatten(result)
    loc = g.locs[leaves[0]] if leaves else None
    body.append(Return(value, loc))
    return Function(name, fn_params, doc, body, tuple(wrt), checked, builder.helpers)


class _LoopScheduler:
    def __init__(self, g: Graph, inline: int, result, name: str):
        self.g = g
        self.inline = inline
        self.name = name  # the emitted function's, for `_count_steps`'s error
        self.steps = 0  # nodes the walks of `_externals` went through, all together
        self.names = Names(RESERVED)
        self.var: dict[int, str] = {}  # nodes computed so far → their variable
        self.helpers: set[str] = set()
        self.maps: dict[int, str] = {}  # id of a RuntimeArray output → its list variable
        self.order = g.ancestors(flatten(result))
        self.level = levels(g, self.order)
        self.sources: dict[str, str] = {}  # data parameter → its Python parameter name
        self._raising: set[int] | None = None  # nodes that can raise (`_may_raise`)
        self.late_lengths: list = []  # lengths only a loop's guard reads (`_runs`)
        self.lengths: dict[int, str] = {}  # size node → its float variable
        self.runs: set[int] = set()  # the length tests `_longer_than` built
        self.bounds: dict[int, tuple[str, int]] = {}  # such a test → (size name, bound)
        # values the results need on every path at the top: no loop guards them
        self.always = self._unconditional(flatten(_without_maps(result)),
                                          self._inside(EMPTY, None))
        # per segment (its `inside` test): nodes outside it through which `_externals`
        # reaches nothing of it; every reduction of a map re-walks the map's body,
        # and the variables computed since only cut more paths, so a dead end stays one
        self._dead_ends: dict[object, set[int]] = {}
        # per segment: nodes → whether `_read_guards` must walk them (`_leads_to_guarded`)
        self._leads: dict[object, dict[int, bool]] = {}

    # --- parameters ------------------------------------------------------------------
    def parameters(self, params, checked: bool) -> list[Param]:
        out: list[Param] = []
        for p in params:  # size names are the printers' variables for the lengths
            for dim in p.shape if isinstance(p.shape, tuple) else ():
                if isinstance(dim, str):
                    self.names.take(dim)
        for p in params:
            arg = self.names.fresh(p.name)
            if isinstance(p.placeholders, DataArray):
                out.append(Param(arg, p.name, p.shape, None))
                self.sources[p.name] = arg
                continue
            if p.shape == ():
                self.var[p.placeholders] = arg
                out.append(Param(arg, p.name, p.shape, arg))
                continue
            names = {leaf: self.names.fresh(self.g.names.get(leaf))
                     for leaf in flatten(p.placeholders)}
            self.var.update(names)
            out.append(Param(arg, p.name, p.shape, _rebuild(p.placeholders, names)))
        return out

    def prologue(self) -> list:
        """A size name used as a number is a float variable."""
        out: list = []
        for n in self.order:
            node = self.g.nodes[n]
            if node.op == "size":
                var = self.names.fresh(f"len_{node.attr}")
                self.var[n] = self.lengths[n] = var
                out.append(Assign(var, Call("size", (), node.attr)))
        return out

    def _runs(self, index: int) -> int:
        """The condition that the loop over `index` runs at least once
        (`len_n > 0`, `len_n > 2` for `range(2, n)`): a value only that
        loop's body reads is needed only when it holds."""
        loop = loop_of(self.g, index)
        return self._longer_than(loop.size, loop.start - loop.offset, index)

    def _some_iteration_passes(self, cond: int) -> int | None:
        """For a test that a loop's index is in a range, `low <= k < len_n +
        high` (where the adjoint of a shifted read `u[k - 1]` lands), the
        condition that some iteration of the loop passes it: `len_n > 1`
        for `k < len_n - 1` in `range(n)`.  What only the passing
        iterations read is needed only when it holds.  None for any other
        condition (a test on another length among them)."""
        g = self.g
        node = g.nodes[cond]
        if node.op != "and":
            return None
        ge, lt = (g.nodes[a] for a in node.args)
        if ge.op != "ge" or lt.op != "lt" or ge.args[0] != lt.args[0] or \
                g.nodes[ge.args[0]].op != "loop_index":
            return None
        loop = loop_of(g, ge.args[0])
        low, high = linear(g, ge.args[1]), linear(g, lt.args[1])
        if low is None or low[0] is not None or high is None or high[0] is None or \
                g.nodes[high[0]].op != "size" or g.nodes[high[0]].attr != loop.size:
            return None
        first = max(loop.start, low[1])  # passes for first <= k < len_n + min(...)
        return self._longer_than(loop.size, first - min(loop.offset, high[1]), cond)

    def _longer_than(self, size_name: str, bound: int, at: int) -> int:
        """`len_n > bound`, located at node `at`.  It depends on lengths
        only, so it can be computed in any segment (it is computed where it
        is read: `_copy`)."""
        g = self.g
        saved, g.loc = g.loc, g.locs[at]
        size = g.add("size", attr=size_name)
        cond = g.add("gt", size, g.const(float(bound)))
        g.loc = saved
        if size not in self.lengths:
            var = self.lengths[size] = self.names.fresh(f"len_{size_name}")
            self.late_lengths.append(Assign(var, Call("size", (), size_name)))
        self.var.setdefault(size, self.lengths[size])
        self.runs.add(cond)
        self.bounds[cond] = (size_name, bound)
        return cond

    def _strongest(self, conditions: frozenset) -> frozenset:
        """`conditions` without the length tests another one implies
        (`len_n > 0` beside `len_n > 2`)."""
        bounds = self.bounds
        strongest: dict[str, int] = {}
        for c, side in conditions:
            if side == 1 and c in bounds:
                size, bound = bounds[c]
                strongest[size] = max(bound, strongest.get(size, bound))
        return frozenset((c, side) for c, side in conditions
                         if side != 1 or c not in bounds or
                         bounds[c][1] == strongest[bounds[c][0]])

    # --- segments --------------------------------------------------------------------
    def segment(self, at: frozenset, loop: int | None, outputs: list[int]) -> list:
        """Statements computing `outputs` (nodes of this segment: those that
        vary with `loop` inside the loops `at`, or at the top those outside
        every loop), each bound to a variable afterwards.  A reduction is
        one node of the segment for the scalar scheduler (its loop, printed
        where the node is placed: `_expand`), so a loop whose result is used
        only under a condition runs only under it, as any value that can
        raise does."""
        inside = self._inside(at, loop)
        pending = [o for o in outputs if o not in self.var and inside(o)]
        return self._scalar(pending, inside, at | ({loop} if loop is not None else EMPTY))

    def _inside(self, at: frozenset, loop: int | None):
        level = self.level

        def inside(n: int) -> bool:
            lv = level.get(n, EMPTY)
            return lv <= at if loop is None else loop in lv and lv <= at | {loop}
        return inside

    def _unconditional(self, roots: list[int], inside) -> set[int]:
        """The nodes of a segment that `roots` need on every path: not
        through a branch of a conditional, nor through what a loop reads
        (needed only when it runs).  A loop reading one of them needs no
        guard for it: it is computed anyway."""
        g = self.g
        found: set[int] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n in found or not inside(n):
                continue
            found.add(n)
            node = g.nodes[n]
            if node.op in OVER_OPS:
                continue
            lazy = OPS[node.op].lazy
            stack.extend(a for i, a in enumerate(node.args) if i not in lazy)
        return found

    def _needed(self, roots: list[int], inside) -> tuple[list[int], list[int]]:
        """The segment's nodes the roots need, and the reductions among them
        not computed yet (a reduction's body is another segment's)."""
        g = self.g
        seen: set[int] = set()
        reductions: list[int] = []
        stack = [r for r in roots if r not in self.var]
        while stack:
            n = stack.pop()
            if n in seen or n in self.var or not inside(n):
                continue
            seen.add(n)
            node = g.nodes[n]
            if node.op in OVER_OPS:
                reductions.append(n)
                stack.extend(self._externals([node.args[0]], node.args[1], inside))
                continue
            stack.extend(node.args)
        return sorted(seen), sorted(reductions)

    def _externals(self, roots: list[int], index, inside) -> list[int]:
        """The nodes of this segment that the loop over `index` reads to
        compute `roots` (one iteration's values); `index` may be a set of
        loops, a map's and those of the maps nested in it.  The walk goes
        through every node outside this segment, also those of the loops
        nested in it that do not vary with `index`: they still run inside
        it, so what they read from this segment is computed before it.  A
        node that varies with `index`, or with the index of a reduction the
        walk went through, is one iteration's, never read from outside, even
        where this segment is inside a loop over the same index (a
        gradient's loop over j around a reduction over j).  Dead ends found
        by earlier walks of the segment (with the same loops bound) are
        skipped: the reductions of a map's gradient (`d_w[i]` for each i)
        all walk the map's body, which would cost its size once per
        reduction."""
        g = self.g
        loops = index if isinstance(index, frozenset) else frozenset({index})
        dead = self._dead_ends.setdefault(inside, set())  # (node, loops bound) pairs
        found: set[int] = set()
        live: set[tuple[int, frozenset]] = set()  # outside the segment, reaching a found one
        seen: set[tuple[int, frozenset]] = set()
        stack = [(r, loops, False) for r in roots]
        while stack:
            n, bound, finished = stack.pop()
            node = g.nodes[n]
            inner = bound | {node.args[1]} if node.op in OVER_OPS else bound
            if finished:  # every argument is classified: a DAG has no path back to n
                reaches = any(a in found or (a, inner) in live for a in node.args)
                (live if reaches else dead).add((n, bound))
                continue
            if (n, bound) in seen or n in self.var or (n, bound) in dead:
                continue
            seen.add((n, bound))
            if not inside(n) or self.level.get(n, EMPTY) & bound:
                stack.append((n, bound, True))
                stack.extend((a, inner, False) for a in node.args)
            elif g.nodes[n].op not in ("const", "bool"):
                found.add(n)
        self._count_steps(len(seen), roots)
        return sorted(found)

    def _count_steps(self, steps: int, roots: list[int]) -> None:
        """Reductions nested in reductions are recomputed in each loop of a
        gradient that reads them, so the scheduler's walks through them
        multiply with the nesting: refused past `MAX_SCHEDULE_STEPS`, as a
        DAG is past `MAX_DAG_NODES`, before they take minutes, and past
        `MAX_SCHEDULE_REWALKS` times the DAG's size, where they are mostly
        the same nodes walked again (a wide MLP's walk its DAG about 2.5
        times; one fuzz program's 15 times, for 30 s of compiling and
        checking)."""
        self.steps += steps
        budget = min(limits.MAX_SCHEDULE_STEPS,
                     max(limits.SCHEDULE_STEPS_ALLOWED,
                         limits.MAX_SCHEDULE_REWALKS * len(self.g.nodes)))
        if self.steps > budget:
            raise LimitError(
                f"scheduling {self.name}() walks more than {budget:,} "
                "nodes through its loops over data axes (a gradient recomputes the "
                "reductions nested in a reduction in each loop that reads them); compute "
                "a nested reduction once, as a list (`m = [min(... for j in range(n)) for "
                "k in range(n)]`, then read `m[k]`), or nest fewer reductions in one another",
                self.g.locs[roots[0]])

    def _scalar(self, outputs: list[int], inside, at: frozenset) -> list:
        """Scalar statements for `outputs` of this segment, on a copy of its
        nodes in which everything computed already is a named leaf and each
        reduction a node reading what its loop reads from the segment."""
        outputs = [o for o in outputs if o not in self.var and self.g.nodes[o].args]
        if not outputs:
            return []
        sub, to_sub, from_sub, reads = self._copy(outputs, inside, at)
        sched = _Scheduler(sub, self.inline)
        sched.names = self.names
        # a loop that cannot raise is placed as a total op: where its uses
        # meet, so loops over one range there share one For
        sched.total = {to_sub[r] for r in reads if not self._may_raise(r)}
        variables = {to_sub[n]: v for n, v in self.var.items() if n in to_sub}
        for r in sorted(reads):  # an accumulator is named after the reduction (`d_w`, `total`)
            variables[to_sub[r]] = self.names.fresh(self.g.names.get(r) or
                                                    HINTS[self.g.nodes[r].op])
        sub_outputs = [to_sub[o] for o in outputs]
        forced = set(sub_outputs) | {to_sub[n] for n in reads} | \
            {to_sub[a] for ext in reads.values() for _, a in ext}
        body = statements(sched, sub.ancestors(sub_outputs), sub_outputs, variables, None,
                          forced=forced, results=False)
        body = self._expand(body, at, reads)
        assigned = _always_assigned(body)  # not a value computed in one branch only
        for s, n in from_sub.items():
            if s in sched.var and sched.g.nodes[s].args and sched.var[s] in assigned:
                self.var.setdefault(n, sched.var[s])
        self.helpers |= {sub.nodes[n].op for n in range(len(sub.nodes))
                         if OPS[sub.nodes[n].op].helper}
        return body

    def _copy(self, outputs: list[int], inside, at: frozenset):
        """The nodes `outputs` need in this segment, in a graph of their own:
        nodes computed already, and nodes of other segments, become leaves;
        a reduction not computed yet reads the segment's values its loop
        reads (`reads`: reduction → [(value, the node giving it)], the node
        being the value under the conditions the loop reads it under)."""
        g = self.g
        reads: dict[int, list[tuple[int, int]]] = {}
        edges: dict[int, list[int]] = {}
        always = self.always if not at else self._unconditional(outputs, inside)
        stack = list(outputs)
        while stack:
            n = stack.pop()
            if n in edges:
                continue
            node = g.nodes[n]
            if n in self.var or not inside(n) and n not in self.runs:
                edges[n] = []
            elif node.op in OVER_OPS:
                reads[n] = self._guarded_reads([node.args[0]], frozenset({node.args[1]}),
                                               inside, at, node.args[1], always)
                edges[n] = [w for _, w in reads[n]] or [g.const(0.0)]
            else:
                edges[n] = list(node.args)
            stack.extend(edges[n])
        for n in list(edges):  # the primal an adjoint is named after (`d_t` of `t`)
            primal = g.adjoint_of.get(n)
            if primal is not None and primal in self.var:
                edges.setdefault(primal, [])
        sub = Graph(g.options)
        to_sub: dict[int, int] = {}
        from_sub: dict[int, int] = {}
        for n in _topological(edges):
            node = g.nodes[n]
            leaf = n in self.var or not inside(n) and n not in self.runs or \
                node.op in ("loop_index", "size")
            if leaf and node.op not in ("const", "bool"):
                copy = Node("input", (), ("bound", n))
            else:
                copy = Node(node.op, tuple(to_sub[a] for a in edges[n]),
                            ("loop", n) if n in reads else node.attr)
            sub.nodes.append(copy)
            sub.locs.append(g.locs[n])
            s = len(sub.nodes) - 1
            to_sub[n], from_sub[s] = s, n
            if n in g.names:
                sub.names[s] = g.names[n]
        for adjoint, primal in g.adjoint_of.items():
            if adjoint in to_sub and primal in to_sub:
                sub.adjoint_of[to_sub[adjoint]] = to_sub[primal]
        missing = [n for n in edges if n not in self.var and sub.nodes[to_sub[n]].op ==
                   "input" and g.nodes[n].op != "input"]
        if missing:  # pragma: no cover - every leaf of a segment is computed before it
            raise AssertionError(f"unscheduled inputs {missing}")
        return sub, to_sub, from_sub, reads

    def _guarded_reads(self, roots: list[int], loops: frozenset, inside,
                       at: frozenset, around: int, always=frozenset()) -> list[tuple[int, int]]:
        """What the loops over `loops` read from this segment to compute
        `roots` (`_externals`), the body of the loop over `around`, each with
        the node the loop takes it from: itself, or, for a value that can
        raise and that every iteration reads only under conditions computed
        before the loop (`u[k] * log(x)` in `... if x > 0 else 0`; the loop
        running at all: `_read_guards`), `where(c, value, 0)` on those
        conditions: so it is computed only where the source computes it.
        Inside the loop the conditions hold wherever the value is read, so
        the two agree.  A value of `always` is computed anyway: no guard."""
        externals = self._externals(roots, loops, inside)
        risky = {e for e in externals if self._may_raise(e) and e not in always}
        if not risky:
            return [(e, e) for e in externals]
        guards = self._read_guards(roots, inside, at, around)
        return [(e, self._guarded(e, guards.get(e, EMPTY), guards) if e in risky else e)
                for e in externals]

    def _guarded(self, e: int, conditions: frozenset, guards: dict) -> int:
        """`e`, a value of this segment, computed only where `conditions`
        hold: a number as `where(c, e, 0)` on each; a condition
        (`min(u) < -1`), which has no neutral value, as its guarded 0/1
        (`((1.0 if e else 0.0) if c else 0.0) != 0.0`).

        A condition is tested only where the conditions it is itself read
        under hold (`guards`): a max's tie test on a value the loop reads
        only where `1 / s < 2` nests inside that test, as in the source.
        A condition read under k of the others is inside all of them, so
        nesting by that count keeps every such pair in order; among the
        rest, the conditions that can raise are the inner ones."""
        g = self.g
        zero = g.const(0.0)
        if g.kind(e) == "bool":
            as_number = g.add("where", e, g.const(1.0), zero)
            self._set_level(as_number, self.level.get(e, EMPTY))
            guarded = self._guarded(as_number, conditions, guards)
            w = g.add("ne", guarded, zero)
            self._set_level(w, self.level.get(guarded, EMPTY))
            return w

        def innermost_first(c: tuple[int, int]):
            under = len(guards.get(c[0], EMPTY) & conditions)
            return -under, not self._may_raise(c[0]), c
        w = e
        for cond, side in sorted(self._strongest(conditions), key=innermost_first):
            w = g.add("where", cond, w, zero) if side == 1 else g.add("where", cond, zero, w)
            self._set_level(w, self.level.get(cond, EMPTY) | self.level.get(e, EMPTY))
        if w != e and e in g.names:
            g.name(w, g.names[e])  # `m = total / len_n if len_n > 0.0 else 0.0`
        return w

    def _set_level(self, n: int, level: frozenset) -> None:
        """The loops a node built while scheduling varies with."""
        if level:
            self.level[n] = level

    def _read_guards(self, roots: list[int], inside, at: frozenset,
                     around: int) -> dict[int, frozenset]:
        """For each value of this segment a loop reads, the conditions
        (node, side) that hold on every path of the loop's body to it,
        among those computed before the loop.  The body of a loop is
        evaluated only when the loop runs at least once (`_runs`): the
        roots, the body of the loop over `around`, and the bodies of the
        reductions nested in it, are read under that condition too; a
        branch taken only where the index is in a range, only when some
        iteration is (`_some_iteration_passes`)."""
        g = self.g
        leads = self._leads_to_guarded(roots, inside)
        region: set[int] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n in region or n in self.var:
                continue
            region.add(n)
            if not inside(n):
                stack.extend(a for a in g.nodes[n].args if leads[a])
        runs = frozenset({(self._runs(around), 1)})
        guards: dict[int, frozenset] = {r: runs for r in roots}
        for n in sorted(region, reverse=True):
            if inside(n) or n not in guards:
                continue
            node = g.nodes[n]
            own = guards[n]
            if node.op in OVER_OPS:
                body, index = node.args
                guard = own | {(self._runs(index), 1)}
                guards[body] = guard if body not in guards else guards[body] & guard
                continue
            cond = node.args[0] if node.op == "where" else None
            before = cond is not None and self.level.get(cond, EMPTY) <= at
            passes = None if cond is None or before else self._some_iteration_passes(cond)
            for i, a in enumerate(node.args):
                if before and i:
                    guard = own | {(cond, i)}
                elif passes is not None and i == 1:
                    guard = own | {(passes, 1)}
                else:
                    guard = own
                guards[a] = guard if a not in guards else guards[a] & guard
        return guards

    def _leads_to_guarded(self, roots: list[int], inside) -> dict[int, bool]:
        """For each node `_read_guards` can walk from `roots`: whether its
        guards are read (a node of this segment that can raise, or any
        condition) or it leads to such a node through nodes outside the
        segment.  A node's guards come only from the nodes above it, so the
        walk goes nowhere else: a wide layer's sums read by one guarded
        division are not each walked again for every loop of the segment.
        Kept per segment; the variables computed since only cut paths, so a
        True that is no longer needed costs a little walking, nothing more."""
        g = self.g
        leads = self._leads.setdefault(inside, {})
        new: set[int] = set()
        stack = [r for r in roots if r not in leads]
        while stack:
            n = stack.pop()
            if n in new or n in leads:
                continue
            new.add(n)
            if n not in self.var and not inside(n):
                stack.extend(g.nodes[n].args)
        for n in sorted(new):  # arguments first: ids are topological
            if n in self.var:
                leads[n] = False
            elif inside(n):
                leads[n] = g.kind(n) == "bool" or self._may_raise(n)
            else:
                leads[n] = g.kind(n) == "bool" or any(leads[a] for a in g.nodes[n].args)
        return leads

    def _may_raise(self, n: int) -> bool:
        """Whether computing node n can raise: an op that is not total in
        it.  Loop variables, lengths, loads read in bounds and a division
        by a nonzero constant cannot; a sum or product raises where its
        body does, a min or max also over an empty range."""
        if self._raising is None:
            self._raising = set()
            nodes = self.g.nodes
            for m in self.order:
                node = nodes[m]
                if node.op in ("loop_index", "size") or \
                        node.op == "load" and self._always_in_bounds(m):
                    continue
                if node.op in ("sum_over", "prod_over") or \
                        node.op == "div" and self._nonzero_constant(node.args[1]):
                    raises = node.args[0] in self._raising
                else:
                    raises = not OPS[node.op].total or any(a in self._raising
                                                          for a in node.args)
                if raises:
                    self._raising.add(m)
        return n in self._raising

    def _nonzero_constant(self, n: int) -> bool:
        """A divisor that cannot make `a / b` raise (`len_n / 10`)."""
        node = self.g.nodes[n]
        return node.op == "const" and node.attr != 0.0

    def _expand(self, body: list, at: frozenset, reads: dict) -> list:
        """The scalar scheduler's statements with each reduction's statement
        replaced by its loop; reductions over one loop in one block that do
        not read each other share one `For` (`_joined`)."""
        out: list = []
        # statements still to expand, each list followed by the loop of the group that
        # waits for them (`_joined`'s statements before it, which may join each other)
        stack: list[tuple[list, list | None]] = [(list(body), None)]
        while stack:
            waiting, group = stack[-1]
            if not waiting:
                stack.pop()
                if group is not None:
                    out += self._reductions(group, at, reads)
                continue
            s = waiting.pop(0)
            if isinstance(s, If):
                out.append(If(s.cond, self._expand(s.then, at, reads),
                              self._expand(s.orelse, at, reads), s.loc))
            elif _reduction_of(s) is None:
                out.append(s)
            else:
                joined, before, after = self._joined(s, waiting, reads)
                waiting[:0] = after
                stack.append((before, sorted(joined, key=_reduction_of)))
        return out

    def _joined(self, first: Assign, later: list, reads: dict) -> tuple[list, list, list]:
        """The reductions of `later` (the statements after `first`, taken
        from it) that can run in the loop of `first`: over the same loop,
        reading nothing computed from the loop's results; and the statements
        up to the last of them, split into those that go before the loop
        (they read none of its results) and those that go after (they do: a
        value's `total / n` waits while the gradient's sums join the value's
        loop)."""
        index = self.g.nodes[_reduction_of(first)].args[1]
        tainted = {first.target}
        sources = _sources(first, reads)
        kinds: list[str] = []
        for s in later:
            r = _reduction_of(s)
            read = _reads_of(s)
            if r is not None and self.g.nodes[r].args[1] == index and not read & tainted \
                    and _agree(sources, _sources(s, reads)):
                kinds.append("join")
                tainted.add(s.target)
                sources.update(_sources(s, reads))
            elif read & tainted:
                kinds.append("after")
                tainted |= _assigned_names(s)
            else:
                kinds.append("before")
        if "join" not in kinds:
            return [first], [], []
        last = len(kinds) - 1 - kinds[::-1].index("join")
        scanned = later[:last + 1]
        del later[:last + 1]
        pick = lambda kind: [s for s, k in zip(scanned, kinds) if k == kind]  # noqa: E731
        return [first] + pick("join"), pick("before"), pick("after")

    def _reductions(self, group: list[Assign], at: frozenset, reads: dict) -> list:
        """One For accumulating the reductions of `group` (the scalar
        scheduler's statements for them, over one loop): each reads what its
        loop needs from the variables its statement names."""
        g = self.g
        saved = dict(self.var)
        out: list = []
        accumulators = []
        named: set[int] = set()
        unread: dict[int, tuple[float, int]] = {}  # value → (its folded read, the reduction)
        for s in group:
            r = _reduction_of(s)
            for (value, _), arg in zip(reads[r], s.value.args):
                if isinstance(arg, Name):
                    self.var[value] = arg.id
                    named.add(value)
                elif isinstance(arg, Const):
                    unread.setdefault(value, (arg.value, r))
        # a value one reduction reads and another reads only on paths never taken
        # is read from its variable by both (their loop is one), not as a constant
        for value, (constant, r) in unread.items():
            if value not in named:
                out.append(self._unread(value, constant, g.locs[r]))
        for s in group:
            r = _reduction_of(s)
            node = g.nodes[r]
            if OPS[ACCUMULATE[node.op]].helper:
                self.helpers.add(ACCUMULATE[node.op])
            out.append(Assign(s.target, Const(START[node.op]), g.locs[r], s.backward))
            accumulators.append((r, s.target))
        index = g.nodes[accumulators[0][0]].args[1]
        bodies = [g.nodes[r].args[0] for r, _ in accumulators]
        out.append(self._loop(index, at, bodies, lambda values: [
            Assign(var, Call(ACCUMULATE[g.nodes[r].op], (Name(var), value)), g.locs[r])
            for (r, var), value in zip(accumulators, values)]))
        self.var = saved
        return out

    def _loop(self, index: int, at: frozenset, roots: list[int], finish) -> For:
        """`for k in range(...)`: the loads the iteration reads, the body's
        statements for `roots`, then `finish(root expressions)`."""
        g = self.g
        loop = loop_of(g, index)
        saved = dict(self.var)
        # inside a loop over the same index, the outer iteration's values of it are not this one's
        self.var = {n: v for n, v in self.var.items() if index not in self.level.get(n, EMPTY)}
        var = self.names.fresh(loop.var)
        self.var[index] = var
        inside = self._inside(at, index)
        needed, _ = self._needed(roots, inside)
        loads = [n for n in needed if g.nodes[n].op == "load" and self._always_in_bounds(n)]
        body = [Assign(self._load_name(n), self._load(n), g.locs[n]) for n in loads]
        constants = [r for r in roots if not inside(r)]
        body += self.segment(at, index, [r for r in roots if r not in constants])
        values = [self.expression(r) for r in roots]
        body += finish(values)
        self.var = saved  # one iteration's values are not visible after the loop
        return For(var, loop.start, (loop.size, loop.offset), body, g.locs[index])

    def _unread(self, n: int, value: float, loc) -> Assign:
        """A variable for a value a loop reads only on paths that are never
        taken (under `c` and `not c`: `... if n > 0 else max(u[k] ...)` in
        a loop over `range(n)`), whose guarded read folded to a constant."""
        var = self.var[n] = self.names.fresh("unread")
        return Assign(var, Const(value), loc)

    def _always_in_bounds(self, n: int) -> bool:
        """A load its loop can read at every iteration, so it can be read at
        the top of the body (a gradient's shifted reads are guarded by a
        condition instead, and are evaluated where the scheduler puts them)."""
        node = self.g.nodes[n]
        for entry in node.attr[1]:
            if not isinstance(entry, int):
                loop = loop_of(self.g, node.args[entry[0]])
                if loop.start + entry[1] < 0 or loop.offset + entry[1] > 0:
                    return False
        return True

    def _load_name(self, n: int) -> str:
        name = self.names.fresh(self.g.names.get(n) or "x")
        self.var[n] = name
        return name

    def _load(self, n: int) -> Call:
        node = self.g.nodes[n]
        param, index = node.attr
        return Call("load", tuple(Name(self.var[a]) for a in node.args),
                    (self.sources.get(param, param), index))

    def map_output(self, value: RuntimeArray, at: frozenset, around: int | None = None,
                   name: str | None = None) -> list:
        """`z = []` and a loop appending one element per iteration; a map
        nested in the element (a row of a map of maps: `name` is `row`, or
        `d_X_row` in `d_X`) is built the same way inside the loop, `around`
        being the loop it is in (None: at the top)."""
        var = self.names.fresh(name or value.name or "values")
        self.maps[id(value)] = var
        own, inner = _element_parts(value.element)
        outer = self._inside(at, around)
        at_loop = at | {around} if around is not None else at
        top = around is None and not at
        always = self.always if top else frozenset()
        reads = self._guarded_reads(flatten(value.element), _map_loops(value), outer, at_loop,
                                    value.index, always)
        guarded = [w for e, w in reads if w != e]
        before = self.segment(at, around, self._shared(guarded) + [w for _, w in reads]
                              if top else [w for _, w in reads])
        saved = dict(self.var)
        for e, w in reads:
            if w != e and w in self.var:
                self.var[e] = self.var[w]  # read only where `w` is `e`
            elif w != e and self.g.is_const(w):
                before.append(self._unread(e, self.g.value(w), self.g.locs[value.index]))
        body = self._inside(at_loop, value.index)
        needed = [w for m in inner for _, w in self._guarded_reads(
            flatten(m.element), _map_loops(m), body, at_loop | {value.index}, m.index)]

        def finish(values: list) -> list:
            row = "row" if var == "values" else f"{var}_row"
            rows = [s for m in inner for s in self.map_output(m, at_loop, value.index, row)]
            element = _rebuild_like(value.element, iter(values[:len(own)]), self.maps)
            return rows + [Append(var, element)]
        statement = self._loop(value.index, at_loop, own + needed, finish)
        self.var = saved
        return before + [NewList(var, self.g.locs[value.index]), statement]

    def _shared(self, guarded: list[int]) -> list[int]:
        """The values the results need anyway (`always`) that guarded reads
        of a map computed before the rest are computed from, at their
        edge: computed first, outside the guards, so the rest reads them
        rather than computing them again."""
        g = self.g
        cone = g.ancestors(guarded)
        inside = set(cone)
        edge = set()
        for n in cone:
            if n in self.always:
                continue
            edge |= {a for a in g.nodes[n].args if a in self.always and g.nodes[a].args}
        return sorted(n for n in edge if n in inside)

    def structure(self, value):
        """The function's result: expressions, lists, tuples and maps."""
        if isinstance(value, RuntimeArray):
            return Name(self.maps[id(value)])
        if isinstance(value, int):
            return self.expression(value)
        items = [self.structure(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items

    def expression(self, n: int):
        node = self.g.nodes[n]
        if node.op == "const":
            return Const(node.attr)
        if node.op == "bool":
            return Const(bool(node.attr))
        return Name(self.var[n])


def _runtime_parts(result) -> list[RuntimeArray]:
    """The maps of a result that are not inside another map."""
    if isinstance(result, RuntimeArray):
        return [result]
    if isinstance(result, (list, tuple)):
        return [x for v in result for x in _runtime_parts(v)]
    return []


def _element_parts(element) -> tuple[list[int], list[RuntimeArray]]:
    """A map's element: its own nodes (row-major) and the maps nested in it."""
    return flatten(_without_maps(element)), _runtime_parts(element)


def _map_loops(value: RuntimeArray) -> frozenset:
    """The loop of a map and those of the maps nested in its element."""
    loops = {value.index}
    stack = [value.element]
    while stack:
        v = stack.pop()
        if isinstance(v, RuntimeArray):
            loops.add(v.index)
            stack.append(v.element)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return frozenset(loops)


def _without_maps(result):
    if isinstance(result, RuntimeArray):
        return []
    if isinstance(result, tuple):
        return tuple(_without_maps(v) for v in result)
    if isinstance(result, list):
        return [_without_maps(v) for v in result]
    return result


def _rebuild_like(structure, values, maps: dict):
    """A map's element as expressions: its nodes from `values`, in order, and
    each nested map as the name of its list (`maps`)."""
    if isinstance(structure, int):
        return next(values)
    if isinstance(structure, RuntimeArray):
        return Name(maps[id(structure)])
    return [_rebuild_like(v, values, maps) for v in structure]


def _rebuild(structure, names):
    if isinstance(structure, int):
        return names[structure]
    items = [_rebuild(v, names) for v in structure]
    return tuple(items) if isinstance(structure, tuple) else items


def _always_assigned(body: list) -> set[str]:
    """The variables every run of `body` assigns: at its top level, or on
    both sides of an `If`.  Only those are values a later segment may read;
    one computed in a branch is computed again where it is needed."""
    names: set[str] = set()
    for statement in body:
        if isinstance(statement, Assign):
            names.add(statement.target)
        elif isinstance(statement, If):
            names |= _always_assigned(statement.then) & _always_assigned(statement.orelse)
    return names


def _reduction_of(statement) -> int | None:
    """The reduction a scalar statement of `_scalar` stands for, if any."""
    if isinstance(statement, Assign) and isinstance(statement.value, Call) and \
            statement.value.op in OVER_OPS and isinstance(statement.value.attr, tuple):
        return statement.value.attr[1]
    return None


def _sources(statement: Assign, reads: dict) -> dict[int, str]:
    """Each value a reduction's loop reads → the variable it reads it from
    (a value read under conditions is read from its guarded copy)."""
    pairs = zip(reads[_reduction_of(statement)], statement.value.args)
    return {value: arg.id for (value, _), arg in pairs if isinstance(arg, Name)}


def _agree(a: dict[int, str], b: dict[int, str]) -> bool:
    """Whether two loops read every value they share from one variable."""
    return all(a[v] == name for v, name in b.items() if v in a)


def _reads_of(statement) -> set[str]:
    """The names a statement (and those inside it) reads."""
    names: set[str] = set()
    stack: list = [statement]
    while stack:
        s = stack.pop()
        if isinstance(s, Name):
            names.add(s.id)
        elif isinstance(s, Call):
            stack.extend(s.args)
        elif isinstance(s, Assign):
            stack.append(s.value)
        elif isinstance(s, If):
            stack += [s.cond, *s.then, *s.orelse]
        elif isinstance(s, (list, tuple)):
            stack.extend(s)
    return names


def _assigned_names(statement) -> set[str]:
    names: set[str] = set()
    stack = [statement]
    while stack:
        s = stack.pop()
        if isinstance(s, Assign):
            names.add(s.target)
        elif isinstance(s, If):
            stack += s.then + s.orelse
        elif isinstance(s, For):
            stack += s.body
    return names


def _topological(edges: dict[int, list[int]]) -> list[int]:
    """The nodes of `edges` (node → the nodes it reads), each after those it
    reads; ascending ids where the DAG's order holds (a guarded read, built
    while scheduling, comes after the reduction reading it)."""
    order: list[int] = []
    state: dict[int, int] = {}
    for root in sorted(edges):
        if root in state:
            continue
        stack = [(root, False)]
        while stack:
            n, done = stack.pop()
            if done:
                state[n] = 2
                order.append(n)
                continue
            if n in state:
                continue
            state[n] = 1
            stack.append((n, True))
            stack.extend((a, False) for a in sorted(edges[n], reverse=True) if a not in state)
    return order
