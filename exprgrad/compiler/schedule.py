"""The scheduler: a function of the DAG → a `program.Function`.

It decides, for the nodes a function's results need:

* where each is evaluated.  Blocks form a tree: block 0 is the function
  body and every conditional (`where`) evaluated in a block has two child
  blocks, one per branch; conditionals on one condition in one block share
  them.  A node is evaluated in the innermost block every path through which
  needs it: a use inside a branch needs it only when that branch runs.  If
  its uses are spread over blocks no single path covers (the two `log(x)` of
  `(log(x) if x > 0 else 0) + (log(x) if x > 0.5 else 1)`), it is evaluated
  in each of them, unless it is built only of total ops (`Op.total`, which
  cannot raise), which are hoisted to the blocks' common ancestor instead.
  So moving code never evaluates something the source would not have.
* which get a name: one used more than once, one too long to inline, a
  conditional whose branches need statements, a sum that accumulates
  conditional terms; the rest are inlined into their single user.
* how conditional terms are summed: `s = a + (v if c else 0)` becomes
  `s = a` and, under `c`, `s = s + v` (no `else: t = 0.0` branches).
* the order of the statements: a topological order in which statements
  under one condition are kept together, so they share one If.
* the names: source names where the node has one (`h1_3`), `d_X` for the
  adjoint of the emitted `X` (and nothing else), a name after the op
  otherwise (`sum`, `prod`, `cond`).
"""

from __future__ import annotations

import builtins
import gc
import heapq
import keyword
import re
from contextlib import contextmanager
from dataclasses import dataclass

from .array_ops import ARRAY_RESERVED
from .graph import Graph
from .ops import OPS
from .program import Assign, Call, Const, Function, If, Name, Param, Return
from .values import flatten

MAX_INLINE = 90  # characters (as printed): a longer expression gets its own statement
MAX_BLOCK_DEPTH = 40  # deeper conditionals are evaluated as expressions in their parent block

# Names generated code relies on (Python's keywords and built-ins, the
# modules and helpers it calls); no generated variable may shadow them.
HELPERS = ({"_float", "_floats", "_arguments", "_sequence", "_array", "_rows", "_nested"}
           | {op.py.split("(")[0] for op in OPS.values() if op.helper})
RESERVED = (set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {"math"}
            | HELPERS | ARRAY_RESERVED)

_PLACEHOLDER = re.compile(r"\{(\d+|args|attr)\}")
_LEAVES = ("input", "const", "bool")
_HINTS = {"add": "total", "sub": "diff", "mul": "prod", "div": "ratio", "neg": "neg",
          "where": "pick", "ipow": "power", "pow": "power", "min": "least", "max": "most",
          "abs": "magnitude"}


def _occurrences(template: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in _PLACEHOLDER.findall(template):
        counts[key] = counts.get(key, 0) + 1
    return counts


def _arg_uses(template: str) -> tuple[tuple[int, ...], int]:
    """How often the template reads each input: (counts of {0}, {1}, ...
    while they appear, the count of any other input)."""
    counts = _occurrences(template)
    explicit = []
    while str(len(explicit)) in counts:
        explicit.append(counts[str(len(explicit))])
    return tuple(explicit), counts.get("args", 1)


_ARG_USES = {name: _arg_uses(op.py) for name, op in OPS.items()}
# Characters an op adds around its operands when printed (the inlining measure).
_OVERHEAD = {name: len(_PLACEHOLDER.sub("", op.py)) for name, op in OPS.items()}


@dataclass
class Signature:
    """One parameter of a function to schedule: its source name, its shape
    (a tuple, or a list of shapes for a tuple-shaped cotangent) and the input
    nodes that receive its elements."""

    name: str
    shape: object
    placeholders: object


class Names:
    """Collision-free variable names derived from source names."""

    def __init__(self, reserved: set[str]):
        self.taken = set(reserved)
        self.next_suffix: dict[str, int] = {}  # per base: no smaller suffix is free

    def fresh(self, hint: str | None) -> str:
        """`hint`, or `hint_k` with the smallest free k.  Names are never
        released, so the search resumes where the last one for this base
        stopped: linear in the number of names, not quadratic."""
        base = hint or "t"
        if not base.isidentifier() or base in RESERVED or base.startswith("__"):
            base += "_"
        name, k = base, self.next_suffix.get(base, 1)
        if name in self.taken:
            name = f"{base}_{k}"
            while name in self.taken:
                k += 1
                name = f"{base}_{k}"
            self.next_suffix[base] = k + 1
        self.taken.add(name)
        return name

    def take(self, name: str) -> bool:
        """Claim exactly `name`; False if it is not free."""
        if name in self.taken or not name.isidentifier():
            return False
        self.taken.add(name)
        return True


def total_nodes(g: Graph, needed: list[int]) -> set[int]:
    """The nodes built only of total ops (nothing below them can raise)."""
    nodes = g.nodes
    safe: set[int] = set()
    for n in needed:
        node = nodes[n]
        if OPS[node.op].total and all(a in safe for a in node.args):
            safe.add(n)
    return safe


class _Blocks:
    """The block tree: block 0 is the body, each other block one branch of a
    condition evaluated in its parent."""

    def __init__(self) -> None:
        self.parent = [-1]
        self.depth = [0]
        self.cond = [-1]
        self.side = [0]
        self._child: dict[tuple[int, int, int], int] = {}

    def branch(self, cond: int, side: int, of: int) -> int:
        """The block of branch `side` (1: taken, 2: not) of `cond` in `of`."""
        key = (cond, side, of)
        found = self._child.get(key)
        if found is None:
            if self.depth[of] >= MAX_BLOCK_DEPTH:
                return of  # no block of its own: both branches are expressions in `of`
            found = self._child[key] = len(self.parent)
            self.parent.append(of)
            self.depth.append(self.depth[of] + 1)
            self.cond.append(cond)
            self.side.append(side)
        return found

    def sibling(self, block: int) -> int | None:
        """The other branch of the same condition, if it exists."""
        return self._child.get((self.cond[block], 3 - self.side[block], self.parent[block]))

    def common(self, a: int, b: int) -> int:
        depth, parent = self.depth, self.parent
        while depth[a] > depth[b]:
            a = parent[a]
        while depth[b] > depth[a]:
            b = parent[b]
        while a != b:
            a, b = parent[a], parent[b]
        return a

    def within(self, inner: int, outer: int) -> bool:
        depth, parent = self.depth, self.parent
        while depth[inner] > depth[outer]:
            inner = parent[inner]
        return inner == outer

    def toward(self, outer: int, inner: int) -> int:
        """The child of `outer` on the way down to `inner` (inner != outer)."""
        parent = self.parent
        while parent[inner] != outer:
            inner = parent[inner]
        return inner

    def cover(self, uses) -> list[int]:
        """The blocks to evaluate a node in that may raise and is used in
        `uses`: the fewest blocks, each needing it on every path through it,
        that together serve every use."""
        top = None
        for u in uses:
            top = u if top is None else self.common(top, u)
        return self._cover(top, set(uses))

    def _cover(self, block: int, uses: set[int]) -> list[int]:
        if self._needed_everywhere(block, uses):
            return [block]
        by_child: dict[int, set[int]] = {}
        for u in uses:
            by_child.setdefault(self.toward(block, u), set()).add(u)
        out: list[int] = []
        for child in sorted(by_child):
            group = by_child[child]
            top = None
            for u in group:
                top = u if top is None else self.common(top, u)
            out += self._cover(top, group)
        return out

    def _needed_everywhere(self, block: int, uses: set[int]) -> bool:
        """Every path through `block` reaches a use: one is in the block
        itself, or both branches of one of its conditions need it everywhere."""
        if block in uses:
            return True
        by_child: dict[int, set[int]] = {}
        for u in uses:
            by_child.setdefault(self.toward(block, u), set()).add(u)
        for child, group in by_child.items():
            other = self.sibling(child)
            if other is None or other not in by_child or other < child:
                continue
            if (self._needed_everywhere(child, group)
                    and self._needed_everywhere(other, by_child[other])):
                return True
        return False


class _RootOnly(dict):
    """Placements without conditionals: every node in block 0."""

    def __missing__(self, key: int) -> list[int]:
        return _ROOT


_ROOT = [0]


@dataclass
class _Item:
    """A statement waiting to be ordered: its block, the items it needs."""

    key: int  # ordering preference: the node id
    home: int
    statement: object
    deps: list[int]


class _Scheduler:
    def __init__(self, g: Graph, inline: int):
        self.g = g
        self.inline = inline
        self.names = Names(RESERVED)
        self.blocks = _Blocks()

    # --- placement ---------------------------------------------------------
    def place(self, needed: list[int], outputs: list[int]) -> None:
        """Where each node is evaluated (consumers first, so all of a node's
        uses are known when it is reached) and how often each use reads it."""
        g, blocks = self.g, self.blocks
        nodes = g.nodes
        safe = total_nodes(g, needed)
        uses: dict[int, dict[int, int]] = {}
        for out in outputs:
            if nodes[out].op not in _LEAVES:
                per = uses.setdefault(out, {})
                per[0] = per.get(0, 0) + 1
        place: dict[int, list[int]] = {}
        for n in reversed(needed):
            node = nodes[n]
            args = node.args
            if not args:
                continue
            where = uses[n]
            if len(where) == 1:
                at = list(where)
            elif n in safe:
                top = None
                for u in where:
                    top = u if top is None else blocks.common(top, u)
                at = [top]
            else:
                at = blocks.cover(where)
            place[n] = at
            explicit, default = _ARG_USES[node.op]
            is_where = node.op == "where"
            for p in at:
                for i, a in enumerate(args):
                    if not nodes[a].args:
                        continue
                    b = blocks.branch(args[0], i, p) if is_where and i else p
                    c = explicit[i] if i < len(explicit) else default
                    per = uses.get(a)
                    if per is None:
                        uses[a] = {b: c}
                    else:
                        per[b] = per.get(b, 0) + c
        self.uses, self.placed = uses, place

    def serving(self, n: int, block: int) -> int:
        """The block whose evaluation of `n` a use in `block` reads."""
        at = self.placed[n]
        if len(at) == 1:
            return at[0]
        for p in at:
            if self.blocks.within(block, p):
                return p
        raise AssertionError("a use no evaluation serves")  # pragma: no cover

    # --- without conditionals ------------------------------------------------
    def straight(self, needed: list[int], outputs: list[int], forced: set[int]) -> None:
        """`place` and `decide` for a function without conditionals: one
        block, every node evaluated once, the same naming rule."""
        nodes = self.g.nodes
        names = self.g.names
        count: dict[int, int] = {}
        for out in outputs:
            if nodes[out].args:
                count[out] = count.get(out, 0) + 1
        for n in reversed(needed):
            node = nodes[n]
            explicit, default = _ARG_USES[node.op]
            for i, a in enumerate(node.args):
                if nodes[a].args:
                    count[a] = count.get(a, 0) + (explicit[i] if i < len(explicit) else default)
        size: dict[int, int] = {}
        named: set[tuple[int, int]] = set()
        for n in needed:
            node = nodes[n]
            if not node.args:
                continue
            total = _OVERHEAD[node.op]
            for a in node.args:
                arg = nodes[a]
                if arg.args:
                    total += size[a]
                else:
                    total += 3 if arg.op == "const" else len(names.get(a, "x"))
            if n in forced or count[n] != 1 or total > self.inline:
                named.add((n, 0))
                total = 6
            size[n] = total
        self.placed = _RootOnly()
        self.named, self.cond_if, self.acc, self.absorbed = named, set(), {}, set()
        self.results = set(outputs)

    def straight_body(self, forward: set[int] | None) -> list:
        """The statements of a function without conditionals, in id order."""
        g = self.g
        refs: set = set()
        return [Assign(self.var[n], self.rhs((n, 0), refs), g.locs[n],
                       forward is not None and n not in forward) for n in self._order]

    # --- naming and inlining -------------------------------------------------
    def decide(self, needed: list[int], outputs: list[int], forced: set[int]) -> None:
        """Which evaluations get a statement (in ascending order, so each
        node's operands are decided first), and which sums accumulate."""
        g, blocks = self.g, self.blocks
        nodes = g.nodes
        self.named: set[tuple[int, int]] = set()
        self.cond_if: set[tuple[int, int]] = set()  # conditionals printed as If
        self.acc: dict[tuple[int, int], tuple] = {}  # sum → (base, [(where, op)])
        self.absorbed: set[tuple[int, int]] = set()  # merged into an accumulating sum
        occupied = [False] * 1
        size: dict[tuple[int, int], int] = {}
        count: dict[tuple[int, int], int] = {}
        self.count = count
        self.results = set(outputs)
        names, placed, named_set, uses, limit = g.names, self.placed, self.named, self.uses, \
            self.inline
        for n in needed:
            node = nodes[n]
            if not node.args:
                continue
            is_where = node.op == "where"
            at = placed[n]
            if len(at) == 1:
                count[(n, at[0])] = sum(uses[n].values())
            else:
                for p, c in uses[n].items():
                    key = (n, self.serving(n, p))
                    count[key] = count.get(key, 0) + c
            for p in at:
                key = (n, p)
                total = _OVERHEAD[node.op]
                for i, a in enumerate(node.args):
                    arg = nodes[a]
                    if not arg.args:
                        total += 3 if arg.op == "const" else len(names.get(a, "x"))
                        continue
                    at = placed[a]
                    if len(at) == 1:
                        akey = (a, at[0])
                    else:
                        akey = (a, self.serving(a, blocks.branch(node.args[0], i, p)
                                                if is_where and i else p))
                    total += 6 if akey in named_set else size[akey]
                has_block = False
                if is_where:
                    sides = [blocks.branch(node.args[0], side, p) for side in (1, 2)]
                    while len(occupied) < len(blocks.parent):
                        occupied.append(False)
                    has_block = any(b != p and occupied[b] for b in sides)
                summing = node.op in ("add", "sub")
                named = (has_block or n in forced or count[key] != 1 or total > limit
                         or summing and self._accumulates(n, p))
                if has_block:
                    self.cond_if.add(key)
                if named:
                    named_set.add(key)
                    if summing:
                        self._accumulation(key)
                    if has_block:
                        for b in sides:
                            occupied = self._occupy(occupied, b)
                    elif p:
                        occupied = self._occupy(occupied, p)
                size[key] = total
        absorbing: dict[tuple[int, int], int] = {}  # conditional → the sums adding it
        for _, terms in self.acc.values():
            for w, _ in terms:
                absorbing[w] = absorbing.get(w, 0) + 1
        for w, readers in absorbing.items():
            if readers == count[w]:
                self.absorbed.add(w)


    def _occupy(self, occupied: list[bool], block: int) -> list[bool]:
        while len(occupied) < len(self.blocks.parent):
            occupied.append(False)
        while block > 0 and not occupied[block]:
            occupied[block] = True
            block = self.blocks.parent[block]
        return occupied

    def _branch_of(self, w: tuple[int, int]) -> int:
        """The block an absorbed conditional's nonzero branch runs in."""
        n, p = w
        cond, then, _ = self.g.nodes[n].args
        return self.blocks.branch(cond, 1 if self.g.value(then) != 0.0 else 2, p)

    def _zero_sided(self, a: int, p: int) -> bool:
        """`a` (read in block p) is a conditional printed as If with one
        branch 0: a sum can add its other branch under its condition instead
        (and if every reader does, `a` itself is never assigned)."""
        node = self.g.nodes[a]
        if node.op != "where" or (a, p) not in self.cond_if:
            return False
        return 0.0 in (self.g.value(node.args[1]), self.g.value(node.args[2]))

    def _accumulation(self, key: tuple[int, int]) -> None:
        """`s = L + w` with w a one-sided conditional: s starts as L and adds
        w's branch under w's condition (see `_spine`)."""
        found = self._spine(key[0], key[1])
        if found is not None:
            base, terms, continued = found
            if continued is not None:
                del self.acc[continued]
                self.absorbed.add(continued)
            self.acc[key] = (base, terms)

    def _accumulates(self, n: int, p: int) -> bool:
        node = self.g.nodes[n]
        return (node.op in ("add", "sub") and any(self.g.nodes[a].op == "where" for a in node.args)
                and self._spine(n, p) is not None)

    def _spine(self, n: int, p: int):
        """(base, [(conditional, op)], the accumulating sum it continues or
        None) for a sum whose last terms are
        one-sided conditionals, following the left operand through sums read
        only here; None if `n` is not such a sum.  Only a commuted `add` is
        reordered, so the additions happen in the order the DAG has them."""
        node = self.g.nodes[n]
        if node.op not in ("add", "sub"):
            return None
        left, right = node.args
        if node.op == "add" and not self._zero_sided(right, p) and self._zero_sided(left, p):
            left, right = right, left
        if not self._zero_sided(right, p):
            return None
        term = ((right, p), node.op)
        lkey = (left, p)
        single = self.count.get(lkey) == 1
        if lkey in self.acc and single:
            base, before = self.acc[lkey]
            return base, before + [term], lkey
        if single and lkey not in self.named:
            inner = self._spine(left, p)
            if inner is not None:
                return inner[0], inner[1] + [term], inner[2]
        if self._zero_sided(left, p):
            return None, [(lkey, "add"), term], None  # starts at 0.0
        return left, [term], None

    # --- names ---------------------------------------------------------------
    def name_all(self, variables: dict[int, str]) -> None:
        """A variable per named node (the evaluations of one node in several
        blocks compute one value, so they share it), in ascending order."""
        self.var: dict[int, str] = dict(variables)
        self._names: dict[int, Name] = {}
        self._instance_vars: dict[tuple[int, int], str] = {}
        self._named_nodes = {n for n, _ in self.named}
        self._order = sorted(self._named_nodes)
        for n in self._order:
            self._name(n)

    def _name(self, n: int) -> str:
        """`d_X` for the adjoint of a node emitted as X; the source name; or
        a name after the op (never `d_...`, which only adjoints have)."""
        found = self.var.get(n)
        if found is not None:
            return found
        g = self.g
        primal = g.adjoint_of.get(n)
        name = None
        if primal is not None and (primal in self.var or primal in self._named_nodes):
            candidate = "d_" + self._name(primal)
            if self.names.take(candidate):
                name = candidate
        if name is None:
            hint = g.names.get(n) if primal is None else None
            if hint is None or hint.startswith("d_"):
                hint = "out" if n in self.results else self._op_hint(n)
            name = self.names.fresh(hint)
        self.var[n] = name
        return name

    def _op_hint(self, n: int) -> str:
        """A name after what the node computes: `dot` for a sum of products."""
        node = self.g.nodes[n]
        if OPS[node.op].kind == "bool":
            return "cond"
        if node.op in ("add", "sub") and any(self.g.nodes[a].op == "mul" for a in node.args):
            return "dot"
        return _HINTS.get(node.op, node.op)

    # --- expressions ---------------------------------------------------------
    def expr(self, n: int, block: int, refs: set) -> object:
        """Node n as read in `block`; adds the evaluations it reads to refs."""
        node = self.g.nodes[n]
        if not node.args:
            if node.op == "const":
                return Const(node.attr)
            if node.op == "bool":
                return Const(bool(node.attr))
            return self._name_of(n)
        at = self.placed[n]
        if len(at) == 1:
            key = (n, at[0])
            if key in self.named:
                refs.add(key)
                return self._name_of(n)
            return self.rhs(key, refs)
        key = (n, self.serving(n, block))
        if key in self.named:
            refs.add(key)
            return Name(self._instance_var(key))
        return self.rhs(key, refs)

    def _name_of(self, n: int) -> Name:
        found = self._names.get(n)
        if found is None:
            found = self._names[n] = Name(self.var[n])
        return found

    def _instance_var(self, key: tuple[int, int]) -> str:
        """A node evaluated in several blocks has a variable per block: a
        name is bound once in a function, whatever runs (the array target
        evaluates every block)."""
        found = self._instance_vars.get(key)
        if found is None:
            first = min(self.placed[key[0]])
            found = self.var[key[0]] if key[1] == first else self.names.fresh(self.var[key[0]])
            self._instance_vars[key] = found
        return found

    def rhs(self, key: tuple[int, int], refs: set) -> Call:
        n, p = key
        node = self.g.nodes[n]
        if node.op == "where":
            blocks = self.blocks
            args = tuple(self.expr(a, blocks.branch(node.args[0], i, p) if i else p, refs)
                         for i, a in enumerate(node.args))
        else:
            expr = self.expr
            args = tuple([expr(a, p, refs) for a in node.args])
        return Call(node.op, args, node.attr)

    # --- statements ------------------------------------------------------------
    def items(self, forward: set[int] | None) -> tuple[list[_Item], dict]:
        g, blocks = self.g, self.blocks
        items: list[_Item] = []
        defined: dict[tuple[int, int], list[int]] = {}
        pending: list[tuple[int, set]] = []  # item index, the evaluations it reads
        pairs: list[list[int]] = []  # the two sides of a conditional: one If

        def add(key: int, home: int, statement, refs: set) -> int:
            items.append(_Item(key, home, statement, []))
            pending.append((len(items) - 1, refs))
            return len(items) - 1

        for n in self._order:
            for p in self.placed[n]:
                key = (n, p)
                if key not in self.named or key in self.absorbed:
                    continue
                loc = g.locs[n]
                back = forward is not None and n not in forward
                var = self.var[n] if len(self.placed[n]) == 1 else self._instance_var(key)
                if key in self.acc:
                    base, terms = self.acc[key]
                    refs: set = set()
                    start = Const(0.0) if base is None else self.expr(base, p, refs)
                    # as early as its start allows, so the additions can join the
                    # If that computes each term
                    last = add(base if base is not None else -1, p,
                               Assign(var, start, loc, back), refs)
                    for (w, wp), op in terms:
                        cond, then, otherwise = g.nodes[w].args
                        side = 1 if g.value(then) != 0.0 else 2
                        b = blocks.branch(cond, side, wp)
                        refs = {("item", last)}
                        value = self.expr(g.nodes[w].args[side], b, refs)
                        last = add(w, b, Assign(var, Call(op, (Name(var), value)), g.locs[w], back),
                                   refs)
                    defined[key] = [last]
                elif key in self.cond_if:
                    cond = g.nodes[n].args[0]
                    defined[key] = []
                    for side in (1, 2):
                        b = blocks.branch(cond, side, p)
                        # the else side waits for the then side, so both are one If
                        refs = {("item", defined[key][0])} if defined[key] else set()
                        value = self.expr(g.nodes[n].args[side], b, refs)
                        defined[key].append(add(n, b, Assign(var, value, loc, back), refs))
                    pairs.append(defined[key])
                else:
                    refs = set()
                    defined[key] = [add(n, p, Assign(var, self.rhs(key, refs), loc, back), refs)]
        # Conditions: an item inside a branch reads its condition.
        cond_refs: dict[int, set] = {0: set()}
        for b in range(1, len(blocks.parent)):
            refs = set(cond_refs[blocks.parent[b]])
            self.cond_exprs[b] = self.expr(blocks.cond[b], blocks.parent[b], refs)
            cond_refs[b] = refs
        for index, refs in pending:
            item = items[index]
            deps: list[int] = []
            for r in refs | cond_refs[item.home]:
                if r[0] == "item":
                    deps.append(r[1])
                else:
                    deps.extend(defined[r])
            item.deps = deps
        for first, second in pairs:  # the first side also waits for what the second reads
            items[first].deps += [d for d in items[second].deps if d != first]
        return items, defined

    def arrange(self, block: int, members: list[int], items: list[_Item]) -> list:
        """The statements of `block` from its items (its own and those of
        the blocks below it), ordered so that each follows what it reads and
        the items under one condition are kept together."""
        if not members:
            return []
        blocks = self.blocks
        inside = set(members)
        group: dict[int, int] = {}  # item → the child block it is under (-1: block itself)
        for i in members:
            home = items[i].home
            group[i] = -1 if home == block else blocks.toward(block, home)
        waiting = {i: 0 for i in members}
        readers: dict[int, list[int]] = {}
        for i in members:
            for d in items[i].deps:
                if d in inside:
                    waiting[i] += 1
                    readers.setdefault(d, []).append(i)
        ready: list[tuple[int, int]] = []
        by_cond: dict[int, list[tuple[int, int]]] = {}

        def release(i: int) -> None:
            heapq.heappush(ready, (items[i].key, i))
            g = group[i]
            if g >= 0:
                heapq.heappush(by_cond.setdefault(blocks.cond[g], []), (items[i].key, i))

        for i in members:
            if not waiting[i]:
                release(i)
        done: set[int] = set()
        sequence: list[int] = []
        last_cond = None
        while len(sequence) < len(members):
            queue = by_cond.get(last_cond) if last_cond is not None else None
            heap = queue if queue else ready
            _, i = heapq.heappop(heap)
            if i in done:
                continue
            done.add(i)
            sequence.append(i)
            g = group[i]
            last_cond = blocks.cond[g] if g >= 0 else None
            for r in readers.get(i, ()):
                waiting[r] -= 1
                if not waiting[r]:
                    release(r)
        out: list = []
        k = 0
        while k < len(sequence):
            i = sequence[k]
            g = group[i]
            if g < 0:
                out.append(items[i].statement)
                k += 1
                continue
            cond = blocks.cond[g]
            sides: dict[int, list[int]] = {1: [], 2: []}
            children: dict[int, int] = {}
            while k < len(sequence) and group[sequence[k]] >= 0 and \
                    blocks.cond[group[sequence[k]]] == cond:
                child = group[sequence[k]]
                sides[blocks.side[child]].append(sequence[k])
                children[blocks.side[child]] = child
                k += 1
            first = items[i].statement
            out.append(If(self.cond_exprs[g], self.arrange(children.get(1, -1), sides[1], items),
                          self.arrange(children.get(2, -1), sides[2], items),
                          getattr(first, "loc", None)))
        return out


def _unpack_vars(sched: _Scheduler, params: list[Signature], checked: bool):
    """The variable of every parameter element; the Params of the Function."""
    g = sched.g
    out: list[Param] = []
    variables: dict[int, str] = {}
    for p in params:
        arg = sched.names.fresh(p.name)
        if p.shape == () or not checked:
            variables[p.placeholders] = arg
            out.append(Param(arg, p.name, p.shape, arg))
            continue
        names = {leaf: sched.names.fresh(g.names.get(leaf)) for leaf in flatten(p.placeholders)}
        variables.update(names)
        out.append(Param(arg, p.name, p.shape, _rebuild(p.placeholders, names)))
    return out, variables


def _rebuild(structure, names):
    if isinstance(structure, int):
        return names[structure]
    items = [_rebuild(v, names) for v in structure]
    return tuple(items) if isinstance(structure, tuple) else items


def schedule(g: Graph, name: str, params: list[Signature], result, doc: str, *,
             wrt: tuple[str, ...] = (), primal=None, checked: bool = True,
             inline: bool = True) -> Function:
    """The statements computing `result` (a node id, or a list/tuple
    structure of them) from `params`.  `primal`, for a gradient, is the part
    of the result that is the value: statements it does not need are marked
    `backward`.  `checked=False` binds arguments as given (floats already)."""
    with _collector_paused():
        return _schedule(g, name, params, result, doc, wrt, primal, checked, inline)


@contextmanager
def _collector_paused():
    """Scheduling builds many small acyclic objects; Python's cycle collector
    would traverse the whole DAG again and again while it does (a third of
    the time for a large function), and finds nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _schedule(g, name, params, result, doc, wrt, primal, checked, inline) -> Function:
    if g.has_loops:
        from .schedule_loops import schedule_with_loops
        return schedule_with_loops(g, name, params, result, doc, wrt, primal, checked, inline)
    sched = _Scheduler(g, MAX_INLINE if inline else -1)
    fn_params, variables = _unpack_vars(sched, params, checked)
    outputs = flatten(result)
    needed = g.ancestors(outputs)
    forward = set(g.ancestors(flatten(primal))) if primal is not None else None
    body = statements(sched, needed, outputs, variables, forward)
    refs: set = set()
    value = _structure(result, lambda n: sched.expr(n, 0, refs))
    loc = g.locs[outputs[0]] if outputs else None
    body.append(Return(value, loc))
    helpers = {node.op for node in (g.nodes[n] for n in needed) if OPS[node.op].helper}
    return Function(name, fn_params, doc, body, tuple(wrt), checked, helpers)


def statements(sched: _Scheduler, needed: list[int], outputs: list[int], variables: dict,
               forward: set[int] | None, forced: set[int] = frozenset(),
               results: bool = True) -> list:
    """The statements computing `outputs` (each node of `forced` gets a
    variable of its own) from the leaves bound in `variables`; `results`:
    the outputs are the function's results (named `out` where nameless)."""
    g = sched.g
    forced = set(forced) | _primals_of_adjoints(g, needed)
    if any(g.nodes[n].op == "where" for n in needed):
        sched.place(needed, outputs)
        sched.decide(needed, outputs, forced)
        if not results:
            sched.results = set()
        sched.name_all(variables)
        sched.cond_exprs = {}
        items, _ = sched.items(forward)
        return sched.arrange(0, list(range(len(items))), items)
    sched.straight(needed, outputs, forced)
    if not results:
        sched.results = set()
    sched.name_all(variables)
    return sched.straight_body(forward)


def _primals_of_adjoints(g: Graph, needed: list[int]) -> set[int]:
    """Primals whose adjoint this function computes: they get a variable, so
    the adjoint's `d_X` names something the reader can find."""
    present = set(needed)
    adjoint_of = g.adjoint_of
    return {adjoint_of[n] for n in needed if n in adjoint_of and adjoint_of[n] in present
            and g.nodes[adjoint_of[n]].args}


def _structure(value, leaf):
    if isinstance(value, int):
        return leaf(value)
    items = [_structure(v, leaf) for v in value]
    return tuple(items) if isinstance(value, tuple) else items


