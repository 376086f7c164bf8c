"""Branch coverage for numeric verification.

Random points rarely take every branch of a function: four points in (-2, 2)
never reach the tie branch of `max` in a log-sum-exp, nor `x > 5`.  This
module reads the function's decisions from its DAG (SymPy's translation may
have folded a branch away) and, after the random points, searches for points
that take each branch not yet seen:

* a comparison `a > b` (in a conditional, `relu`, `abs`, `sign`) is a
  decision with two branches, the sign of a − b;
* `min(a1, ..., an)` / `max(...)` is a decision with n branches: which input
  is the result;
* the argument of `sqrt`, `log`, `acos`, ... against its domain's edge, and
  a denominator against 0, are searched the same way (not counted as
  branches): emitted code that evaluates `sqrt(x)` or `1/x` in a branch not
  taken fails only beyond that edge, or at it.

A branch is *covered* when the emitted code was compared with SymPy's
derivative at a point that takes it.  The search draws candidate points from
wider and wider ranges (evaluating only the decisions, which is cheap), and
bisects between two compared points that take different branches of a
decision, to compare on both sides of the boundary, within 1e-10 of it (near
ties of `min`/`max`); exact ties are tried where they are easy to hit (two
inputs equal, an input 0 or a constant of the function that a double holds
exactly).  A branch never found is reported as not reached:
either unreachable (`x^2 < 0`) or too small a region for the search.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import mpmath

from .numeric import UNDEFINED, compile_program

# Ranges for the search, after numeric.RANGES: wider, and close to 0.
SEARCH_RANGES = [(-2.0, 2.0), (-10.0, 10.0), (0.001, 0.1), (-0.1, -0.001), (-100.0, 100.0),
                 (2.0, 20.0), (-20.0, -2.0), (-1000.0, 1000.0)]
CANDIDATES = 600  # points drawn to cover the branches not yet taken, at most
# Halvings of a segment: 2^-34 ≈ 6e-11 of its length.  Closer to the boundary
# the emitted code (constants as doubles: sin(2) rounded) and the source
# (exact reals) may see different sides of it, which is no error.
BISECTIONS = 34


SIGNS = ("sign", "domain", "zero")  # decisions on the sign of one expression


@dataclass(frozen=True)
class Decision:
    kind: str  # "sign" (of exprs[0]), "min" or "max" (which of exprs); "domain" and
    exprs: tuple  # "zero" (see decisions()): searched for, not counted as branches

    @property
    def branches(self) -> int:
        return 2 if self.kind in SIGNS else len(self.exprs)

    @property
    def counted(self) -> bool:
        """A branch of the function (not a domain edge)."""
        return self.kind not in ("domain", "zero")

    def taken(self, values) -> int | None:
        """The branch these values of `exprs` take; None at a tie or where undefined."""
        if any(v is UNDEFINED or isinstance(v, bool) for v in values):
            return None
        try:
            if self.kind in SIGNS:
                return None if values[0] == 0 else int(values[0] < 0)
            best = (min if self.kind == "min" else max)(values)
        except TypeError:
            return None
        winners = [i for i, v in enumerate(values) if v == best]
        return winners[0] if len(winners) == 1 else None

    def tied(self, values) -> bool:
        """At a tie: a − b = 0, or two inputs of min/max equal to the result."""
        if any(v is UNDEFINED or isinstance(v, bool) for v in values):
            return False
        try:
            if self.kind in SIGNS:
                return values[0] == 0
            best = (min if self.kind == "min" else max)(values)
        except TypeError:
            return False
        return sum(1 for v in values if v == best) > 1

    def near_tie(self, values) -> bool:
        """Within a hair of a tie (NEAR), not at it: a − b nearly 0, or an
        input of min/max nearly equal to the result, an exact tie's third
        input included (the double makes it a three-way tie, the real a
        two-way one)."""
        if any(v is UNDEFINED or isinstance(v, bool) for v in values):
            return False
        try:
            if self.kind in SIGNS:
                return 0 < abs(values[0]) < NEAR
            best = (min if self.kind == "min" else max)(values)
        except TypeError:
            return False
        hair = NEAR * max(1, abs(best))
        return any(0 < abs(v - best) < hair for v in values)


# Closer than this to a tie (relative), and not at it: too close to call.  The
# emitted code holds a constant as a double (1e-3 is 0.001000…0208, and a
# folded exp(sin(0.25)) is the double nearest it), the source as a real (1/1000,
# the double's shortest decimal): at a point a double tie, `min(1e-3, u)` ties
# in the emitted code and not in the source, `u > 1e-3` is false there and true
# in the source; both are right about their own numbers, and their gradients
# differ.  (BISECTIONS keeps a boundary search 6e-11 away for the same reason.)
NEAR = 1e-13


_SIGN_OPS = {"lt", "le", "gt", "ge"}  # a op b: the sign of a − b
# Functions defined on one side of a boundary: emitted code that evaluates one
# of them where the source does not (a branch not taken) fails only beyond it.
_DOMAIN_EDGES = {"sqrt": 0, "log": 0, "log2": 0, "log10": 0, "log1p": -1, "acosh": 1,
                 "asin": 1, "acos": 1, "atanh": 1}


def decisions(g, tr, roots) -> list[Decision]:
    """The decisions of the DAG nodes `roots` use (read from the DAG, not from
    SymPy's simplified translation, which may have folded a branch away),
    with their inputs as SymPy expressions of the translator `tr`."""
    found: dict[Decision, None] = {}
    for n in g.ancestors(roots):
        node = g.nodes[n]
        if node.op in _SIGN_OPS:
            a, b = (tr(x) for x in node.args)
            found.setdefault(Decision("sign", (a - b,)))
        elif node.op in ("relu", "abs"):
            found.setdefault(Decision("sign", (tr(node.args[0]),)))
        elif node.op in ("min", "max") and len(node.args) > 1:
            found.setdefault(Decision(node.op, tuple(tr(x) for x in node.args)))
        elif node.op == "div":  # x/0 fails only at 0: tried as a tie
            found.setdefault(Decision("zero", (tr(node.args[1]),)))
        elif node.op in _DOMAIN_EDGES:
            u, edge = tr(node.args[0]), _DOMAIN_EDGES[node.op]
            found.setdefault(Decision("domain", (abs(u) - edge if node.op in (
                "asin", "acos", "atanh") else u - edge,)))
    return [d for d in found if not all(e.is_Number for e in d.exprs)]


class Coverage:
    """Which branches of which decisions were taken at compared points."""

    def __init__(self, program, found: list[Decision], symbols):
        self.found = found
        self.total = sum(d.branches for d in found if d.counted)
        self.covered: set[tuple[int, int]] = set()
        self.ties: set[int] = set()  # decisions compared exactly at a tie
        exprs = [e for d in found for e in d.exprs]
        self._evaluate = compile_program(program, exprs, symbols) if exprs else None

    def branches_at(self, values) -> list[int | None]:
        """The branch each decision takes at a point (mpf inputs)."""
        if self._evaluate is None:
            return []
        with mpmath.workdps(50):
            flat = self._evaluate(*values)
        taken, i = [], 0
        for d in self.found:
            taken.append(d.taken(flat[i:i + len(d.exprs)]))
            i += len(d.exprs)
        return taken

    def record(self, values) -> None:
        for index, branch in enumerate(self.branches_at(values)):
            if branch is not None:
                self.covered.add((index, branch))

    def counts(self) -> tuple[int, int, int, int]:
        """(branches taken, branches, ties taken, decisions that can tie)."""
        counted = [i for i, d in enumerate(self.found) if d.counted]
        return (sum(1 for i, _ in self.covered if i in counted), self.total,
                sum(1 for i in self.ties if i in counted), len(counted))

    def record_ties(self, values) -> None:
        self.ties |= self.tied_at(values)

    def many_way_tie(self, values) -> bool:
        """Three or more inputs of a min/max equal to its result: exprgrad
        shares the gradient among them all, SymPy's Heaviside(0) = 1/2 only
        between two (and Min(0, u, 0) is Min(0, u) to SymPy), so the
        reference does not hold there."""
        flat, i = self._flat(values), 0
        for d in self.found:
            part = flat[i:i + len(d.exprs)]
            i += len(d.exprs)
            if d.kind in ("min", "max") and d.tied(part):
                best = (min if d.kind == "min" else max)(part)
                if sum(1 for v in part if v == best) > 2:
                    return True
        return False

    def near_tie(self, values) -> bool:
        """Whether a decision is within a hair of a tie at a point."""
        flat, i = self._flat(values), 0
        for d in self.found:
            part = flat[i:i + len(d.exprs)]
            i += len(d.exprs)
            if d.near_tie(part):
                return True
        return False

    def tied_at(self, values) -> set[int]:
        """The decisions at a tie at a point."""
        flat, i, tied = self._flat(values), 0, set()
        for index, d in enumerate(self.found):
            if d.tied(flat[i:i + len(d.exprs)]):
                tied.add(index)
            i += len(d.exprs)
        return tied

    def _flat(self, values):
        with mpmath.workdps(50):
            return self._evaluate(*values) if self._evaluate is not None else []

    def missing(self) -> list[tuple[int, int]]:
        return [(i, b) for i, d in enumerate(self.found) for b in range(d.branches)
                if (i, b) not in self.covered]


def candidates(rng: random.Random, count: int):
    """Random points (floats) from the search ranges, wider as they go."""
    for k in range(CANDIDATES):
        low, high = SEARCH_RANGES[min(k * len(SEARCH_RANGES) // CANDIDATES,
                                      len(SEARCH_RANGES) - 1)]
        yield [rng.uniform(low, high) if rng.random() < 0.8 else rng.choice(
            (low, high, (low + high) / 2)) for _ in range(count)]


def tie_candidates(point, constants):
    """Points near `point` where ties are likely: two inputs equal, an input
    0, or an input equal to a constant of the function (max(x, 1) at x = 1)."""
    n = len(point)
    for i in range(n):
        for j in range(n):
            if i != j:
                yield [point[i] if k == j else v for k, v in enumerate(point)]
        for c in [0, *constants]:
            yield [c if k == i else v for k, v in enumerate(point)]


def boundary(coverage: Coverage, index: int, a, b):
    """Two points within ~1e-10 of each other on the segment a–b (mpf
    vectors) on both sides of where decision `index` changes branch, or None."""
    taken_a = coverage.branches_at(a)[index]
    taken_b = coverage.branches_at(b)[index]
    if taken_a is None or taken_b is None or taken_a == taken_b:
        return None
    with mpmath.workdps(50):
        low, high = mpmath.mpf(0), mpmath.mpf(1)
        point = lambda t: [x + t * (y - x) for x, y in zip(a, b)]  # noqa: E731
        for _ in range(BISECTIONS):
            middle = (low + high) / 2
            taken = coverage.branches_at(point(middle))[index]
            if taken == taken_a:
                low = middle
            elif taken == taken_b:
                high = middle
            else:
                break  # a third branch or a tie: compare where we are
        return point(low), point(high)
