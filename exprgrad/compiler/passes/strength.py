"""Strength reduction: a cheaper operation with exactly the same result.

Only exact rewrites (bit-identical for every float, nan and inf included):
  x / 2**k      → x * 2**-k    (the same real number, so the same rounding)
Powers are not rewritten: `x ** 2 → x * x` rounds the same but overflows
differently (x * x is inf past the float range, x ** 2 raises OverflowError,
as x ** 3 does), and `x ** -1 → 1 / x` likewise (1 / 5e-324 is inf).
`x ** 3 → x * x * x` also rounds twice, and `exp(a + b)` is never split into
exp(a) * exp(b), which rounds and overflows differently.
`passes.fold` calls `reduce` for every node built, after the identities.
"""

from __future__ import annotations

import math

from ..opnames import DIV, MUL


def reduce(g, op: str, args: tuple[int, ...], attr) -> int | None:
    """An equivalent cheaper node for `op(args)`, or None."""
    if op == DIV:
        a, b = args
        k = g.value(b)
        if k is not None and _is_power_of_two(k) and _is_power_of_two(1.0 / k):
            return g.add(MUL, a, g.const(1.0 / k))
    return None


def _is_power_of_two(value: float) -> bool:
    if not math.isfinite(value) or value == 0.0:
        return False
    mantissa, _ = math.frexp(abs(value))
    return mantissa == 0.5
