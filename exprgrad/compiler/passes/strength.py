"""Strength reduction: a cheaper operation with exactly the same result.

Only exact rewrites (bit-identical for every float, nan and inf included):
  x ** 2        → x * x        (one rounding either way)
  x ** -1       → 1 / x
  x / 2**k      → x * 2**-k    (the same real number, so the same rounding)
`x ** 3 → x * x * x` rounds twice and is left alone, as is `exp(a + b)`
(never split into exp(a) * exp(b), which rounds and overflows differently).
`passes.fold` calls `reduce` for every node built, after the identities.
"""

from __future__ import annotations

import math

from ..opnames import DIV, IPOW, MUL


def reduce(g, op: str, args: tuple[int, ...], attr) -> int | None:
    """An equivalent cheaper node for `op(args)`, or None."""
    if op == IPOW:
        (x,) = args
        if attr == 2:
            return g.add(MUL, x, x)
        if attr == -1:
            return g.add(DIV, g.const(1.0), x)
        return None
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
