"""High-precision evaluation: the emitted Python text and SymPy programs.

The emitted module is executed as written, with `import math` answered by a
shim whose functions are mpmath's at 50 digits and `_float` accepting mpmath
numbers, so the very statements a user runs are evaluated without rounding
noise.  Like `math`, the shim raises ValueError outside a function's real
domain (mpmath would silently return a complex number or an infinity).

SymPy programs (`symbolic.Program`) are printed once to Python with SymPy's
mpmath printer, one statement per definition.  A definition that cannot be
evaluated at a point (the log of a negative number in a branch not taken)
becomes UNDEFINED, and anything that then really uses it fails, so the
sample point is discarded rather than compared.
"""

from __future__ import annotations

import builtins
import functools
import random
import types

import mpmath
import sympy as sp
from sympy.printing.pycode import MpmathPrinter

from ..ops import OPS

DIGITS = 50


class DomainError(ValueError):
    """A value outside the real domain (mirrors `math`'s ValueError)."""


def _real(value):
    if isinstance(value, type(mpmath.pi)):  # mpmath.pi, mpmath.e, ... as numbers
        value = +value
    if isinstance(value, mpmath.mpf) and mpmath.isfinite(value):
        return value
    if isinstance(value, (int, float)) and mpmath.isfinite(value):
        return mpmath.mpf(value)
    raise DomainError("math domain error")


def _wrap(function):
    def real_only(*args):
        return _real(function(*args))
    return real_only


def _math_shim() -> types.SimpleNamespace:
    """`math` at 50 digits: each op's `math` function from the op table's
    mpmath counterpart, and the few names the argument checks use."""
    mp = mpmath
    shim = {op.math_function: _wrap(functools.partial(op.numeric, mp))
            for op in OPS.values() if op.math_function}
    shim.update(
        pi=mp.pi, e=mp.e, inf=mp.inf, nan=mp.nan,
        isnan=mp.isnan, isinf=mp.isinf, isfinite=mp.isfinite,
        fsum=mp.fsum,
    )
    return types.SimpleNamespace(**shim)


class _MpmathShim:
    """`mpmath` for printed SymPy code: real-valued functions only."""

    def __getattr__(self, name):
        value = getattr(mpmath, name)
        if callable(value) and name not in ("mpf", "mpc") and not isinstance(
                value, type(mpmath.pi)):
            return _wrap(value)
        return value


def _float(value, name):
    """The generated `_float`, accepting mpmath numbers at full precision."""
    if isinstance(value, mpmath.mpf):
        return value
    try:
        return mpmath.mpf(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None


def load_emitted(text: str) -> dict:
    """Execute generated module text with `math` at 50 digits; its namespace."""
    shim = _math_shim()
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        return shim if name == "math" else real_import(name, *args, **kwargs)

    namespace = {"__builtins__": dict(vars(builtins), __import__=fake_import),
                 "__name__": "exprgrad_verified"}
    exec(compile(text, "<exprgrad emitted module>", "exec"), namespace)
    namespace["_float"] = _float
    # The argument prologue's fast path converts with `float(+x)`: keep mpf.
    namespace["float"] = lambda value: _float(value, "argument")
    namespace["math"] = shim
    return namespace


UNDEFINED = object()


class _Printer(MpmathPrinter):
    def _print_Heaviside(self, expr):  # H(0) = 1/2, as SymPy defines it
        x = self._print(expr.args[0])
        return f"(1 if ({x}) > 0 else (0 if ({x}) < 0 else mpmath.mpf(1)/2))"


def compile_program(program, results: list[sp.Expr], inputs: list[sp.Symbol]):
    """A Python function of `inputs` (mpf) returning `results`, evaluating the
    definitions of `program` that the results need."""
    needed = _needed(program, results)
    printer = _Printer({"fully_qualified_modules": True})
    lines = [f"def _evaluate({', '.join(s.name for s in inputs)}):"]
    for symbol, definition in program.defs.items():
        if symbol in needed:
            lines += [f"    try: {symbol.name} = {printer.doprint(definition)}",
                      f"    except _Failed: {symbol.name} = _UNDEFINED"]
    lines.append(f"    return [{', '.join(printer.doprint(r) for r in results)}]")
    namespace = {"mpmath": _MpmathShim(), "_UNDEFINED": UNDEFINED,
                 "_Failed": (ArithmeticError, ValueError, TypeError)}
    exec("\n".join(lines), namespace)
    return namespace["_evaluate"]


def _needed(program, results) -> set:
    needed: set = set()
    stack = [s for r in results for s in r.free_symbols]
    while stack:
        s = stack.pop()
        if s in needed:
            continue
        needed.add(s)
        if s in program.defs:
            stack.extend(program.defs[s].free_symbols - needed)
    return needed


def as_real(value):
    """An mpf, or None if the value is undefined, complex or infinite."""
    try:
        return _real(value)
    except (DomainError, TypeError):
        return None


def close(a, b, rel: float, absolute: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b)) + absolute


def fmt(value) -> str:
    if value is None:
        return "undefined"
    text = mpmath.nstr(value, 10, min_fixed=-6, max_fixed=12)
    return text[:-2] if text.endswith(".0") else text


# Sample ranges, tried at random per variable: a point outside a function's
# domain (log of a negative, acosh below 1) is discarded and drawn again.
RANGES = [(-2.0, 2.0), (0.1, 2.0), (1.05, 3.0), (-0.95, 0.95), (-2.0, -0.1)]


def sample(rng: random.Random, count: int, attempt_number: int, decimals: int | None = None):
    """`count` random floats; early attempts use (-2, 2), later ones any range.
    With `decimals`, readable values such as 0.37 (never 0) as exact rationals."""
    values = []
    for _ in range(count):
        low, high = RANGES[0] if attempt_number < 4 else rng.choice(RANGES)
        x = rng.uniform(low, high)
        if decimals is None:
            values.append(x)
            continue
        q = sp.Rational(round(x * 10 ** decimals), 10 ** decimals)
        values.append(q if q != 0 else sp.Rational(1, 10 ** decimals) * rng.choice((-7, 7)))
    return values


def to_mpf(value) -> mpmath.mpf:
    """A float, int or SymPy rational as an mpf at the working precision."""
    if isinstance(value, sp.Rational):
        return mpmath.mpf(int(value.p)) / int(value.q)
    if isinstance(value, sp.Basic):
        return mpmath.mpf(sp.Float(value, DIGITS + 5)._mpf_)
    return mpmath.mpf(value)
