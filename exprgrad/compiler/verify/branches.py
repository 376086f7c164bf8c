"""Branch coverage for numeric verification.

Random points rarely take every branch of a function: four points in (-2, 2)
never reach the tie branch of `max` in a log-sum-exp, nor `x > 5`.  This
module finds the function's decisions in its SymPy translation and, after
the random points, searches for points that take each branch not yet seen:

* a comparison `a > b` (in a conditional, `relu`, `abs`, `sign`) is a
  decision with two branches, the sign of a − b;
* `min(a1, ..., an)` / `max(...)` is a decision with n branches: which input
  is the result.

A branch is *covered* when the emitted code was compared with SymPy's
derivative at a point that takes it.  The search draws candidate points from
wider and wider ranges (evaluating only the decisions, which is cheap), and
bisects between two compared points that take different branches of a
decision, to compare on both sides of the boundary, within 1e-30 of it (near
ties of `min`/`max`).  A branch never found is reported as not reached:
either unreachable (`x^2 < 0`) or too small a region for the search.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import mpmath
import sympy as sp

from .numeric import UNDEFINED, compile_program

# Ranges for the search, after numeric.RANGES: wider, and close to 0.
SEARCH_RANGES = [(-2.0, 2.0), (-10.0, 10.0), (0.001, 0.1), (-0.1, -0.001), (-100.0, 100.0),
                 (2.0, 20.0), (-20.0, -2.0), (-1000.0, 1000.0)]
CANDIDATES = 300  # points drawn per uncovered branch, at most
BISECTIONS = 110  # halvings of a segment: 2^-110 ≈ 1e-33 of its length


@dataclass(frozen=True)
class Decision:
    kind: str  # "sign" (of exprs[0]), "min" or "max" (which of exprs)
    exprs: tuple

    @property
    def branches(self) -> int:
        return 2 if self.kind == "sign" else len(self.exprs)

    def taken(self, values) -> int | None:
        """The branch these values of `exprs` take; None at a tie or where undefined."""
        if any(v is UNDEFINED or isinstance(v, bool) for v in values):
            return None
        try:
            if self.kind == "sign":
                return None if values[0] == 0 else int(values[0] < 0)
            best = (min if self.kind == "min" else max)(values)
        except TypeError:
            return None
        winners = [i for i, v in enumerate(values) if v == best]
        return winners[0] if len(winners) == 1 else None


def decisions(program, roots) -> list[Decision]:
    """The decisions the definitions needed by `roots` (SymPy symbols) make."""
    found: dict[Decision, None] = {}
    seen: set = set()
    stack = list(roots)
    while stack:
        symbol = stack.pop()
        if symbol in seen or symbol not in program.defs:
            continue
        seen.add(symbol)
        definition = program.defs[symbol]
        for d in _decisions_in(definition):
            found.setdefault(d)
        stack.extend(definition.free_symbols)
    return list(found)


def _decisions_in(expr) -> list[Decision]:
    out = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Min, sp.Max)):
            out.append(Decision("min" if isinstance(node, sp.Min) else "max", tuple(node.args)))
        elif isinstance(node, (sp.Abs, sp.sign, sp.Heaviside)):
            out.append(Decision("sign", (node.args[0],)))
        elif isinstance(node, sp.core.relational.Relational) and not isinstance(
                node, (sp.Eq, sp.Ne)):
            out.append(Decision("sign", (node.lhs - node.rhs,)))
    return out


class Coverage:
    """Which branches of which decisions were taken at compared points."""

    def __init__(self, program, found: list[Decision], symbols):
        self.found = found
        self.total = sum(d.branches for d in found)
        self.covered: set[tuple[int, int]] = set()
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


def boundary(coverage: Coverage, index: int, a, b):
    """Two points within ~1e-33 of each other on the segment a–b (mpf
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
