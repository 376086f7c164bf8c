"""`check lhs == rhs [where ...] [within tol]` statements.

With every free variable given by `where`, both sides are evaluated there at
50 digits.  Otherwise the remaining free variables are sampled at readable
random points (0.37, -1.2: exact rationals, so the counterexample shown is
the point used); a disagreement refutes the check with that point, and
agreement is upgraded to "proved" when SymPy simplifies lhs − rhs to 0.

Tolerance: |lhs − rhs| ≤ tol · max(|lhs|, |rhs|) + 1e-15, tol = `within` or
1e-9.  The small absolute floor absorbs constant folding in double precision
(`sin(pi)` folds to 1.2e-16, not 0).
"""

from __future__ import annotations

import random
import time

import mpmath
import sympy as sp

from .diagnose import diagnose
from .numeric import as_real, close, compile_program, fmt, sample, to_mpf
from .report import AT_POINT, FAILED, NUMERIC, PROVED, UNVERIFIED, Item
from .symbolic import Translator, exact, prove_equal
from ..values import flatten

DEFAULT_WITHIN = 1e-9
ABS = 1e-15


def verify_checks(program, settings) -> list[Item]:
    return [_verify(program, check, settings) for check in program.checks]


def check_text(program, check) -> str:
    lines = program.source.splitlines()
    line = check.source.loc.line
    return lines[line - 1].split("#")[0].strip() if 0 < line <= len(lines) else "check"


def _verify(program, check, settings) -> Item:
    loc = check.source.loc
    item = Item("check", loc.line, loc.column, check_text(program, check), FAILED)
    problem = _shape_problem(check) or _where_problem(check, program.graph)
    if problem:
        item.detail = problem
        return item
    g = program.graph
    tr = Translator(g)
    lhs, rhs = [tr(n) for n in flatten(check.lhs)], [tr(n) for n in flatten(check.rhs)]
    bound = {tr.input_symbol(check.free[name]): exact(g.value(value))
             for name, value in check.where.items()}
    free = {name: tr.input_symbol(node) for name, node in check.free.items()
            if name not in check.where}
    tol = check.within if check.within is not None else DEFAULT_WITHIN
    symbols = list(bound) + list(free.values())
    evaluate = compile_program(tr.program, lhs + rhs, symbols)
    rng = random.Random(f"{program.filename}:{loc.line}:{item.what}")
    points = 0
    attempts = settings.attempts if free else 1
    for attempt_number in range(attempts):
        if points >= settings.points:
            break
        values = list(bound.values()) + sample(rng, len(free), attempt_number, decimals=2)
        with mpmath.workdps(50):
            results = [as_real(v) for v in evaluate(*(to_mpf(v) for v in values))]
        if None in results:
            continue
        points += 1
        point = {name: _show(v) for name, v in zip(list(check.where) + list(free), values)}
        left, right = results[:len(lhs)], results[len(lhs):]
        bad = next((i for i, (a, b) in enumerate(zip(left, right))
                    if not close(a, b, tol, ABS)), None)
        if bad is not None:
            _refute(item, point, left, right, bad)
            exact_point = dict(zip(list(check.where) + list(free), values))
            item.diagnosis = diagnose(program, check, exact_point, settings)
            return item
        if not free:
            item.status = AT_POINT
            item.detail = f"{_where_text(point)}lhs = {_values(left)}, rhs = {_values(right)}"
            return item
    if points == 0:
        item.status = UNVERIFIED
        item.detail = ("a side is undefined at the given point" if not free else
                       f"no sample point where both sides are defined (tried {attempts})")
        return item
    substitute = lambda e: e.xreplace(bound)  # noqa: E731
    deadline = time.monotonic() + settings.proof_seconds  # for the whole check
    proved = all(prove_equal(tr.program, substitute(tr.program.expand(a)),
                             substitute(tr.program.expand(b)), deadline - time.monotonic())
                 for a, b in zip(lhs, rhs))
    item.status = PROVED if proved else NUMERIC
    item.detail = (f"identity in {', '.join(free)}" if proved else
                   f"agree at {points} random points in {', '.join(free)}")
    return item


def _refute(item: Item, point: dict, left, right, index: int) -> None:
    element = "" if len(left) == 1 else f" (element {index})"
    item.detail = (f"{_where_text(point)}lhs = {fmt(left[index])}, rhs = {fmt(right[index])}"
                   f"{element}")
    item.counterexample = {"point": point, "lhs": fmt(left[index]), "rhs": fmt(right[index])}


def _where_text(point: dict) -> str:
    if not point:
        return ""
    return "at " + ", ".join(f"{k}={v}" for k, v in point.items()) + ": "


def _values(values) -> str:
    return ", ".join(fmt(v) for v in values) if len(values) > 1 else fmt(values[0])


def _show(value) -> str:
    if isinstance(value, sp.Rational) and value.q in (1, 10, 100, 1000):
        return str(sp.Float(value, 15)).rstrip("0").rstrip(".") if value.q != 1 else str(value)
    with mpmath.workdps(50):
        return fmt(to_mpf(value))


def _shape_problem(check) -> str | None:
    if _shape(check.lhs) != _shape(check.rhs):
        return (f"the sides have different shapes: {_shape(check.lhs) or 'scalar'} and "
                f"{_shape(check.rhs) or 'scalar'}")
    return None


def _where_problem(check, g) -> str | None:
    for name, value in check.where.items():
        if name not in check.free:
            return f"'where {name}=...' gives a value for '{name}', which the check does not use"
        if not isinstance(value, int):
            return f"'where {name}=...' must give a number"
    return None


def _shape(value):
    if isinstance(value, int):
        return ()
    if isinstance(value, tuple):
        return ("tuple", tuple(_shape(v) for v in value))
    return (len(value),) + (_shape(value[0]) if value else ())

