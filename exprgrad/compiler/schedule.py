"""The scheduler: a function of the DAG → a `program.Function`.

It decides, for the nodes a function's results need:

* where each is evaluated: in one block.  Blocks form a tree: block 0 is
  the function body and every conditional (`where`) evaluated in a block has
  two child blocks, one per branch; conditionals on one condition in one
  block share them.  A node is evaluated in the innermost block every path
  through which needs it: a use inside a branch needs it only when that
  branch runs.  If its uses are spread over blocks no single path covers
  (the two `log(x)` of `(log(x) if x > 0 else 0) + (log(x) if x > 0.5 else
  1)`), it is evaluated in a guard block of their common ancestor, which
  runs when a path to a use is taken (`if x > 0 or x > 0.5:`), unless it is
  built only of total ops (`Op.total`, which cannot raise), which are
  hoisted to the common ancestor instead.  So moving code never evaluates
  something the source would not have, and a chain of conditionals gives
  code linear in its length.  (A node whose guard would read a condition
  computed from the node itself is evaluated in each block needing it.)
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


_TOTAL = frozenset(name for name, op in OPS.items() if op.total)


def total_nodes(g: Graph, needed: list[int], also: set[int] = frozenset()) -> set[int]:
    """The nodes built only of total ops (nothing below them can raise);
    the nodes of `also` count as total ops (a loop that cannot raise)."""
    nodes = g.nodes
    safe: set[int] = set()
    for n in needed:
        node = nodes[n]
        if node.op in _TOTAL or n in also:
            for a in node.args:
                if a not in safe:
                    break
            else:
                safe.add(n)
    return safe


class _Blocks:
    """The block tree: block 0 is the body, each other block one branch of a
    condition evaluated in its parent, or a guard: a block of its parent
    that runs when a formula over the conditions below the parent holds
    (`cond` is then -1 and `guard` holds the formula)."""

    def __init__(self) -> None:
        self.parent = [-1]
        self.depth = [0]
        self.cond = [-1]
        self.side = [0]
        self.guard: dict[int, object] = {}
        self._child: dict[tuple[int, int, int], int] = {}

    def _new(self, of: int, cond: int, side: int) -> int:
        self.parent.append(of)
        self.depth.append(self.depth[of] + 1)
        self.cond.append(cond)
        self.side.append(side)
        return len(self.parent) - 1

    def branch(self, cond: int, side: int, of: int) -> int:
        """The block of branch `side` (1: taken, 2: not) of `cond` in `of`."""
        key = (cond, side, of)
        found = self._child.get(key)
        if found is None:
            if self.depth[of] >= MAX_BLOCK_DEPTH:
                return of  # no block of its own: both branches are expressions in `of`
            found = self._child[key] = self._new(of, cond, side)
        return found

    def guarded(self, formula, of: int) -> int:
        """The block of `of` that runs when `formula` holds (one per formula,
        so values needed on the same paths share one If)."""
        key = (formula, 0, of)
        found = self._child.get(key)
        if found is None:
            found = self._child[key] = self._new(of, -1, 1)
            self.guard[found] = formula
        return found

    def common(self, a: int, b: int) -> int:
        depth, parent = self.depth, self.parent
        while depth[a] > depth[b]:
            a = parent[a]
        while depth[b] > depth[a]:
            b = parent[b]
        while a != b:
            a, b = parent[a], parent[b]
        return a

    def toward(self, outer: int, inner: int) -> int:
        """The child of `outer` on the way down to `inner` (inner != outer)."""
        parent = self.parent
        while parent[inner] != outer:
            inner = parent[inner]
        return inner

    def within(self, inner: int, outer: int) -> bool:
        depth, parent = self.depth, self.parent
        while depth[inner] > depth[outer]:
            inner = parent[inner]
        return inner == outer

    def cover(self, block: int, uses: set[int]) -> list[int]:
        """The fewest blocks below `block`, each needing a value on every
        path through it, that together serve every use in `uses`."""
        if block in uses:
            return [block]
        by_child: dict[int, set[int]] = {}
        for u in uses:
            by_child.setdefault(self.toward(block, u), set()).add(u)
        if len(by_child) == 2:
            (a, group_a), (b, group_b) = by_child.items()
            if (self.cond[a] == self.cond[b] >= 0 and self.cover(a, group_a) == [a]
                    and self.cover(b, group_b) == [b]):
                return [block]  # both branches of one condition need it throughout
        out: list[int] = []
        for child in sorted(by_child):
            group = by_child[child]
            top = None
            for u in group:
                top = u if top is None else self.common(top, u)
            out += self.cover(top, group)
        return out


# --- formulas: when a value is needed ----------------------------------------------
# A formula is True (on every path) or a tuple:
#   ("if", cond, block, then, otherwise)  `cond`, read in `block`, selects the
#       side: each side is True, a formula, or None (not needed on that side)
#   ("guard", formula, rest)               a guard block's formula, and `rest`
#       of the paths inside it
#   ("or", (formula, ...))
# Formulas are tuples (hashable): a guard block is found again by its formula.


def _either(terms: list):
    """The formula of any of `terms`.  A guard's term whose paths inside
    the guard are another term's (`g and not c`, beside `not c` read
    outside the guard) adds nothing, and goes: so the formulas of a chain of
    conditionals stay the size of one link."""
    if any(t is True for t in terms):
        return True
    plain = {_unplaced(t) for t in terms}
    kept, seen = [], set()
    for t in terms:
        shape = _unplaced(t)
        if shape in seen or t[0] == "guard" and _unplaced(_inside_guards(t)) in plain:
            continue
        seen.add(shape)
        kept.append(t)
    return kept[0] if len(kept) == 1 else ("or", tuple(kept))


def _inside_guards(formula):
    """What a guard's term asks of the paths inside its guards."""
    while formula is not True and formula[0] == "guard":
        formula = formula[2]
    return formula


def _unplaced(formula):
    """The formula without the blocks its conditions are read in (a
    condition has one value wherever it is read)."""
    if formula is True or formula is None:
        return formula
    if formula[0] == "if":
        return ("if", formula[1], _unplaced(formula[3]), _unplaced(formula[4]))
    if formula[0] == "guard":
        return ("guard", _unplaced(formula[1]), _unplaced(formula[2]))
    return ("or", tuple(_unplaced(f) for f in formula[1]))


def _choice(cond: int, block: int, then, otherwise):
    if then is True and otherwise is True:
        return True
    if then is None and otherwise is None:
        return None
    return ("if", cond, block, then, otherwise)


def formula_reads(formula, out: list) -> list:
    """The (condition, block) pairs a formula reads."""
    stack = [formula]
    while stack:
        f = stack.pop()
        if f is True or f is None:
            continue
        if f[0] == "if":
            out.append((f[1], f[2]))
            stack += [f[3], f[4]]
        elif f[0] == "guard":
            stack += [f[1], f[2]]
        else:
            stack += f[1]
    return out


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
        self.flat = False  # no conditionals: evaluations are keyed by node id
        self.total: set[int] = set()  # nodes of other ops that cannot raise (total_nodes)
        self.instances: dict[int, list[tuple[int, int]]] = {}
        self.copy_of: dict[int, int] = {}

    # --- placement ---------------------------------------------------------
    def place(self, needed: list[int], outputs: list[int]) -> None:
        """The block each node is evaluated in (consumers first, so all of a
        node's uses are known when it is reached) and how often each use
        reads it: `uses[n]` maps a block to the reads of n there."""
        g, blocks = self.g, self.blocks
        nodes = g.nodes
        safe = total_nodes(g, needed, self.total)
        self.uses = uses = {}
        for out in outputs:
            if nodes[out].op not in _LEAVES:
                per = uses.setdefault(out, {})
                per[0] = per.get(0, 0) + 1
        self.home = home = {}
        self.instances: dict[int, list[tuple[int, int]]] = {}  # (block, evaluation) each
        self.copy_of: dict[int, int] = {}
        for n in reversed(needed):
            node = nodes[n]
            args = node.args
            if not args:
                continue
            where = uses[n]
            if len(where) == 1:
                for p in where:
                    break
            else:
                top = None
                for u in where:
                    top = u if top is None else blocks.common(top, u)
                p = top if n in safe else self._home_of(n, top, where)
            if p is None:  # one evaluation per block of the cover
                at = blocks.cover(top, set(where))
                self.instances[n] = [(b, self._copy(n) if i else n) for i, b in enumerate(at)]
                for b, k in self.instances[n]:
                    home[k] = b
            else:
                at = (p,)
                home[n] = p
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

    def _copy(self, n: int) -> int:
        """A second evaluation of node n (another block's): a node of its own,
        equal to n, that hash-consing never returns."""
        g = self.g
        g.nodes.append(g.nodes[n])
        g.locs.append(g.locs[n])
        copy = len(g.nodes) - 1
        self.copy_of[copy] = n
        return copy

    def at(self, n: int, block: int) -> int:
        """The evaluation of n a read in `block` takes: n, or its copy there."""
        found = self.instances.get(n)
        if found is None:
            return n
        for b, k in found:
            if self.blocks.within(block, b):
                return k
        raise AssertionError("a use no evaluation serves")  # pragma: no cover

    def _home_of(self, n: int, top: int, where) -> int:
        """The block for a node that may raise, used in blocks below `top`:
        `top` itself if every path through it needs the node, else a guard
        block of `top` that runs exactly when a path to a use is taken, so
        the node is evaluated once, and only where the source would.  None
        when the guard would read a condition that needs the node itself
        (`u(u(x))` with `u(n) = 1 if n < 2 else log(-1)`): the node is then
        evaluated in each block of the cover instead."""
        blocks = self.blocks
        formula = self._formula(n, top, set(where), (set(), set()))
        if formula is None:
            return None  # a condition of the formula needs n: see _formula
        if formula is True or blocks.depth[top] >= MAX_BLOCK_DEPTH:
            return top
        for c, b in formula_reads(formula, []):
            if self.g.nodes[c].args:
                per = self.uses.setdefault(c, {})
                per[b] = per.get(b, 0) + 1
        return blocks.guarded(formula, top)

    def _formula(self, n: int, block: int, uses: set[int], seen: tuple):
        """When a path through `block` reaches one of `uses` (a formula over
        the conditions below it), or None if one of those conditions needs
        n (`_needs`)."""
        if block in uses:
            return True
        blocks = self.blocks
        groups: dict[int, set[int]] = {}
        for u in uses:
            groups.setdefault(blocks.toward(block, u), set()).add(u)
        terms = []
        sides: dict[int, dict[int, object]] = {}
        for child in sorted(groups):
            inner = self._formula(n, child, groups[child], seen)
            if inner is None:
                return None
            if blocks.cond[child] < 0:
                guard = blocks.guard[child]
                if any(self._needs(c, n, seen) for c, _ in formula_reads(guard, [])):
                    return None
                terms.append(guard if inner is True else ("guard", guard, inner))
            else:
                sides.setdefault(blocks.cond[child], {})[blocks.side[child]] = inner
        for cond, by_side in sides.items():
            if self._needs(cond, n, seen):
                return None
            terms.append(_choice(cond, block, by_side.get(1), by_side.get(2)))
        return _either(terms)

    def _needs(self, c: int, n: int, seen: tuple) -> bool:
        """Whether evaluating condition c needs node n: c is computed from
        n, or from a node evaluated in a block whose condition or guard
        needs n.  A guard of n reading c would then wait for n itself (two
        tests that can raise, each read only where the other holds).  Nodes
        are placed consumers first, so those after n are placed and those
        before it can need nothing of it; `seen` holds the nodes after n and
        the blocks already searched for this n (none of them needs it), so
        each is searched once however many conditions a formula reads."""
        blocks, nodes = self.blocks, self.g.nodes
        seen_nodes, seen_blocks = seen
        stack = [c]
        while stack:
            m = stack.pop()
            if m == n:
                return True
            if m < n or m in seen_nodes:
                continue
            seen_nodes.add(m)
            stack.extend(nodes[m].args)
            for b in self._blocks_of(m):
                while b and b not in seen_blocks:  # a block's conditions, then its parent's
                    seen_blocks.add(b)
                    cond = blocks.cond[b]
                    if cond >= 0:
                        stack.append(cond)
                    else:
                        stack.extend(r for r, _ in formula_reads(blocks.guard[b], []))
                    b = blocks.parent[b]
        return False

    def _blocks_of(self, m: int) -> list[int]:
        """The blocks node m is evaluated in, once placed (none before)."""
        if m in self.instances:
            return [b for b, _ in self.instances[m]]
        return [self.home[m]] if m in self.home else []

    # --- without conditionals ------------------------------------------------
    def straight(self, needed: list[int], outputs: list[int], forced: set[int]) -> None:
        """`place` and `decide` for a function without conditionals: one
        block, every node evaluated once, the same naming rule (keys are
        node ids: an evaluation in block 0 is keyed by its node)."""
        nodes = self.g.nodes
        names = self.g.names
        count: dict[int, int] = {}
        for out in outputs:
            if nodes[out].args:
                count[out] = count.get(out, 0) + 1
        get = count.get
        for n in reversed(needed):
            node = nodes[n]
            args = node.args
            if not args:
                continue
            explicit, default = _ARG_USES[node.op]
            if len(explicit) == len(args):
                for a, c in zip(args, explicit):
                    if nodes[a].args:
                        count[a] = get(a, 0) + c
            else:
                for i, a in enumerate(args):
                    if nodes[a].args:
                        count[a] = get(a, 0) + (explicit[i] if i < len(explicit) else default)
        size: dict[int, int] = {}
        named: set[int] = set()
        limit = self.inline
        for n in needed:
            node = nodes[n]
            if not node.args:
                continue
            total = _OVERHEAD[node.op]
            for a in node.args:
                found = size.get(a)
                if found is not None:
                    total += found
                else:
                    arg = nodes[a]
                    total += 3 if arg.op == "const" else len(names.get(a, "x"))
            if n in forced or count[n] != 1 or total > limit:
                named.add(n)
                total = 6
            size[n] = total
        self.flat = True
        self.named, self.cond_if, self.acc, self.absorbed = named, set(), {}, set()
        self.results = set(outputs)

    def straight_body(self, forward: set[int] | None) -> list:
        """The statements of a function without conditionals, in id order."""
        g = self.g
        nodes, locs, var, expr = g.nodes, g.locs, self.var, self._flat_expr
        body = []
        for n in self._order:
            node = nodes[n]
            value = Call(node.op, tuple([expr(a) for a in node.args]), node.attr)
            body.append(Assign(var[n], value, locs[n], forward is not None and n not in forward))
        return body

    def _flat_expr(self, n: int) -> object:
        """Node n as read in a function without conditionals: its variable
        if it has one, else its expression inlined."""
        found = self._names.get(n)
        if found is not None:
            return found
        node = self.g.nodes[n]
        if not node.args:
            return self._leaf(n, node)
        if n in self.named:
            found = self._names[n] = Name(self.var[n])
            return found
        expr = self._flat_expr
        return Call(node.op, tuple([expr(a) for a in node.args]), node.attr)

    def _leaf(self, n: int, node) -> object:
        found = self._names.get(n)
        if found is None:
            if node.op == "const":
                found = self._names[n] = Const(node.attr)
            elif node.op == "bool":
                found = self._names[n] = Const(bool(node.attr))
            else:
                found = self._name_of(n)
        return found

    # --- naming and inlining -------------------------------------------------
    def decide(self, needed: list[int], outputs: list[int], forced: set[int]) -> None:
        """Which nodes get a statement (in ascending order, so each node's
        operands are decided first), and which sums accumulate."""
        g, blocks = self.g, self.blocks
        nodes = g.nodes
        self.named = named = set()
        self.cond_if: set[int] = set()  # conditionals printed as If
        self.acc: dict[int, tuple] = {}  # sum → (base, [(conditional, op)])
        self.absorbed: set[int] = set()  # merged into an accumulating sum
        occupied = [False] * len(blocks.parent)
        size: dict[int, int] = {}
        self.count = count = {}
        self.results = set(outputs)
        names, home, uses, limit = g.names, self.home, self.uses, self.inline
        instances = self.instances
        for n in needed:
            node = nodes[n]
            args = node.args
            if not args:
                continue
            if n in instances:
                evaluations = [(k, b) for b, k in instances[n]]
                for u, c in uses[n].items():
                    k = self.at(n, u)
                    count[k] = count.get(k, 0) + c
            else:
                evaluations = ((n, home[n]),)
                count[n] = sum(uses[n].values())
            is_where = node.op == "where"
            for key, p in evaluations:
                total = _OVERHEAD[node.op]
                for i, a in enumerate(args):
                    if instances and a in instances:
                        a = self.at(a, blocks.branch(args[0], i, p) if is_where and i else p)
                    found = size.get(a)
                    if found is None:
                        total += 3 if nodes[a].op == "const" else len(names.get(a, "x"))
                    else:
                        total += 6 if a in named else found
                has_block = False
                if is_where:
                    sides = [blocks.branch(args[0], side, p) for side in (1, 2)]
                    while len(occupied) < len(blocks.parent):
                        occupied.append(False)
                    has_block = any(b != p and occupied[b] for b in sides)
                summing = node.op in ("add", "sub")
                if (has_block or n in forced or count[key] != 1 or total > limit
                        or summing and self._accumulates(key, p)):
                    named.add(key)
                    if summing:
                        self._accumulation(key)
                    if has_block:
                        self.cond_if.add(key)
                        for b in sides:
                            self._occupy(occupied, b)
                    elif p:
                        self._occupy(occupied, p)
                size[key] = total
        absorbing: dict[int, int] = {}  # conditional → the sums adding it
        for _, terms in self.acc.values():
            for w, _ in terms:
                absorbing[w] = absorbing.get(w, 0) + 1
        for w, readers in absorbing.items():
            if readers == count[w]:
                self.absorbed.add(w)

    def _occupy(self, occupied: list[bool], block: int) -> None:
        """`block` and the blocks around it hold statements."""
        parent = self.blocks.parent
        while len(occupied) < len(parent):
            occupied.append(False)
        while block > 0 and not occupied[block]:
            occupied[block] = True
            block = parent[block]

    def _branch_of(self, w: int) -> int:
        """The block an absorbed conditional's nonzero branch runs in."""
        cond, then, _ = self.g.nodes[w].args
        return self.blocks.branch(cond, 1 if self.g.value(then) != 0.0 else 2, self.home[w])

    def _zero_sided(self, a: int, p: int) -> bool:
        """`a` (read in block p) is a conditional printed as If with one
        branch 0: a sum can add its other branch under its condition instead
        (and if every reader does, `a` itself is never assigned)."""
        node = self.g.nodes[a]
        if node.op != "where" or a not in self.cond_if or self.home[a] != p:
            return False
        return 0.0 in (self.g.value(node.args[1]), self.g.value(node.args[2]))

    def _accumulation(self, n: int) -> None:
        """`s = L + w` with w a one-sided conditional: s starts as L and adds
        w's branch under w's condition (see `_spine`)."""
        found = self._spine(n, self.home[n])
        if found is not None:
            base, terms, continued = found
            if continued is not None:
                del self.acc[continued]
                self.absorbed.add(continued)
            self.acc[n] = (base, terms)

    def _accumulates(self, n: int, p: int) -> bool:
        nodes = self.g.nodes
        left, right = nodes[n].args
        return ((nodes[left].op == "where" or nodes[right].op == "where")
                and self._spine(n, p) is not None)

    def _spine(self, n: int, p: int):
        """(base, [(conditional, op)], the accumulating sum it continues or
        None) for a sum in block p whose last terms are one-sided
        conditionals, following the left operand through sums read only
        here; None if `n` is not such a sum.  Only a commuted `add` is
        reordered, so the additions happen in the order the DAG has them."""
        node = self.g.nodes[n]
        if node.op not in ("add", "sub"):
            return None
        left, right = self.at(node.args[0], p), self.at(node.args[1], p)
        if node.op == "add" and not self._zero_sided(right, p) and self._zero_sided(left, p):
            left, right = right, left
        if not self._zero_sided(right, p):
            return None
        term = (right, node.op)
        single = self.count.get(left) == 1 and self.home.get(left) == p
        if left in self.acc and single:
            base, before = self.acc[left]
            return base, before + [term], left
        if single and left not in self.named:
            inner = self._spine(left, p)
            if inner is not None:
                return inner[0], inner[1] + [term], inner[2]
        if self._zero_sided(left, p):
            return None, [(left, "add"), term], None  # starts at 0.0
        return left, [term], None

    # --- names ---------------------------------------------------------------
    def name_all(self, variables: dict[int, str]) -> None:
        """A variable per named node, in ascending order."""
        self.var: dict[int, str] = dict(variables)
        self._names: dict[int, Name] = {}
        self._order = sorted(self.named)
        for n in self._order:
            self._name(n)

    def _name(self, n: int) -> str:
        """`d_X` for the adjoint of a node emitted as X; the source name; or
        a name after the op (never `d_...`, which only adjoints have)."""
        found = self.var.get(n)
        if found is not None:
            return found
        source = self.copy_of.get(n, n)
        if source != n and source in self.named:  # the value in another block: `x_2` beside `x`
            found = self.var[n] = self.names.fresh(self._name(source))
            return found
        g = self.g
        primal = g.adjoint_of.get(source)
        name = None
        if primal is not None and (primal in self.var or primal in self.named):
            candidate = "d_" + self._name(primal)
            if self.names.take(candidate):
                name = candidate
        if name is None:
            hint = g.names.get(source) if primal is None else None
            if hint is None or hint.startswith("d_"):
                hint = "out" if source in self.results else self._op_hint(n)
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
    def expr(self, n: int, refs: set, block: int = 0) -> object:
        """Node n as read by a statement in `block`; adds the named nodes
        it reads to refs."""
        if self.flat:
            return self._flat_expr(n)
        if self.instances and n in self.instances:
            n = self.at(n, block)
        if n in self.named:
            refs.add(n)
            found = self._names.get(n)
            return found if found is not None else self._name_of(n)
        node = self.g.nodes[n]
        if not node.args:
            return self._leaf(n, node)
        return self.rhs(n, refs)

    def _name_of(self, n: int) -> Name:
        found = self._names.get(n)
        if found is None:
            found = self._names[n] = Name(self.var[n])
        return found

    def rhs(self, n: int, refs: set) -> Call:
        nodes = self.g.nodes
        node = nodes[n]
        if not self.instances:  # (nearly always: every read is of the one evaluation)
            named, names = self.named, self._names
            args = []
            for a in node.args:
                if a in named:
                    refs.add(a)
                    found = names.get(a)
                    args.append(found if found is not None else self._name_of(a))
                else:
                    arg = nodes[a]
                    args.append(self.rhs(a, refs) if arg.args else self._leaf(a, arg))
            return Call(node.op, tuple(args), node.attr)
        p = self.home[n]
        if node.op == "where":
            blocks = self.blocks
            args = tuple([self.expr(a, refs, blocks.branch(node.args[0], i, p) if i else p)
                          for i, a in enumerate(node.args)])
        else:
            expr = self.expr
            args = tuple([expr(a, refs, p) for a in node.args])
        return Call(node.op, args, node.attr)

    def formula_expr(self, formula, refs: set) -> object:
        """A guard's formula as a condition (`and`, `or`, `not` and `x if c
        else y` are lazy, so each condition is read only where its block's
        would be)."""
        if formula is True:
            return Const(True)
        kind = formula[0]
        if kind == "or":
            parts = [self.formula_expr(f, refs) for f in formula[1]]
            out = parts[0]
            for part in parts[1:]:
                out = Call("or", (out, part))
            return out
        if kind == "guard":
            return Call("and", (self.formula_expr(formula[1], refs),
                                self.formula_expr(formula[2], refs)))
        _, cond, block, then, otherwise = formula
        c = self.expr(cond, refs, block)
        if otherwise is None:
            return c if then is True else Call("and", (c, self.formula_expr(then, refs)))
        if then is None:
            c = Call("not", (c,))
            return c if otherwise is True else Call("and", (c, self.formula_expr(otherwise, refs)))
        if then is True:
            return Call("or", (c, self.formula_expr(otherwise, refs)))
        if otherwise is True:
            return Call("or", (Call("not", (c,)), self.formula_expr(then, refs)))
        return Call("where", (c, self.formula_expr(then, refs), self.formula_expr(otherwise, refs)))

    # --- statements ------------------------------------------------------------
    def items(self, forward: set[int] | None) -> tuple[list[_Item], dict]:
        """The statements to order, each with its block and the items it
        reads (a ref -k-1 is item k; a ref n ≥ 0 is node n's statements)."""
        g, blocks, home = self.g, self.blocks, self.home
        nodes = g.nodes
        items: list[_Item] = []
        defined: dict[int, list[int]] = {}
        pending: list[tuple[int, set]] = []  # item index, what it reads
        pairs: list[list[int]] = []  # the two sides of a conditional: one If

        def add(key: int, block: int, statement, refs: set) -> int:
            items.append(_Item(key, block, statement, []))
            pending.append((len(items) - 1, refs))
            return len(items) - 1

        for n in self._order:
            if n in self.absorbed:
                continue
            p = home[n]
            loc = g.locs[n]
            back = forward is not None and self.copy_of.get(n, n) not in forward
            var = self.var[n]
            if n in self.acc:
                base, terms = self.acc[n]
                refs: set = set()
                start = Const(0.0) if base is None else self.expr(base, refs, p)
                # as early as its start allows, so the additions can join the
                # If that computes each term
                last = add(base if base is not None else -1, p,
                           Assign(var, start, loc, back), refs)
                for w, op in terms:
                    cond, then, otherwise = nodes[w].args
                    side = 1 if g.value(then) != 0.0 else 2
                    b = blocks.branch(cond, side, home[w])
                    refs = {-last - 1}
                    value = self.expr(nodes[w].args[side], refs, b)
                    last = add(w, b, Assign(var, Call(op, (Name(var), value)), g.locs[w], back),
                               refs)
                defined[n] = [last]
            elif n in self.cond_if:
                cond = nodes[n].args[0]
                defined[n] = []
                for side in (1, 2):
                    b = blocks.branch(cond, side, p)
                    # the else side waits for the then side, so both are one If
                    refs = {-defined[n][0] - 1} if defined[n] else set()
                    value = self.expr(nodes[n].args[side], refs, b)
                    defined[n].append(add(n, b, Assign(var, value, loc, back), refs))
                pairs.append(defined[n])
            else:
                refs = set()
                defined[n] = [add(n, p, Assign(var, self.rhs(n, refs), loc, back), refs)]
        # Conditions: an item inside a block reads the conditions of the blocks around it.
        cond_refs: dict[int, set] = {0: set()}
        for b in range(1, len(blocks.parent)):
            refs = set(cond_refs[blocks.parent[b]])
            cond = blocks.cond[b]
            self.cond_exprs[b] = (self.expr(cond, refs, blocks.parent[b]) if cond >= 0 else
                                  self.formula_expr(blocks.guard[b], refs))
            cond_refs[b] = refs
        for index, refs in pending:
            item = items[index]
            deps: list[int] = []
            around = cond_refs[item.home]
            for r in refs.union(around) if around else refs:
                if r < 0:
                    deps.append(-r - 1)
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
        # the If an item joins: its block's condition (a guard block is one of its own)
        test = {g: blocks.cond[g] if blocks.cond[g] >= 0 else -1 - g
                for g in set(group.values()) if g >= 0}
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
                heapq.heappush(by_cond.setdefault(test[g], []), (items[i].key, i))

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
            last_cond = test[g] if g >= 0 else None
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
            cond = test[g]
            sides: dict[int, list[int]] = {1: [], 2: []}
            children: dict[int, int] = {}
            while k < len(sequence) and group[sequence[k]] >= 0 and \
                    test[group[sequence[k]]] == cond:
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
    the time for a large function), and finds nothing to free.  When it is
    back, the young objects (those built meanwhile, nearly all) join the
    oldest generation, which freeze and unfreeze do without a traversal,
    instead of all being traversed by the next young collection (a tenth of
    the time again); not if something else froze objects, which unfreezing
    would release."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
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
    value = _structure(result, lambda n: sched.expr(n, refs))
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


