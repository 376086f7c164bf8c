"""The DAG as SymPy: a straight-line program of small definitions.

Every op node becomes a real symbol `t<id>` defined by the op table's SymPy
constructor applied to its inputs' symbols, so a DAG with heavy sharing stays
as small in SymPy as it is in exprgrad (translating it into one expression
tree would double in size with every shared level).  Conditions stay inline
(they are Booleans, not numbers).

`sympy_adjoints` derives the gradient of such a program with SymPy's own
derivatives: each definition is differentiated by `sympy.diff` with respect
to the symbols it uses, and the chain rule combines them backwards, again as
definitions (`a<id>`).  Nothing of exprgrad's derivative rules or reverse
mode is used, so agreement with the emitted gradient is evidence, not an echo.

For a proof the definitions are substituted back (`Program.expand`) and the
difference is simplified under a time limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from ..compiler.graph import Graph
from ..compiler.ops import OPS, REALS
from .numeric import DomainError, power

# Doubles that stand for well-known reals: those the op table's derivative
# rules and the language's `pi` and `e` write as floats (ops.REALS), and a
# few a source commonly builds from them.
_KNOWN = [real(sp) for real in REALS.values()] + [
    1 / sp.log(2), 1 / sp.log(10), sp.sqrt(2), sp.sqrt(sp.pi), sp.pi / 2, sp.pi / 4, 2 * sp.pi]
KNOWN_CONSTANTS = {float(c): c for c in _KNOWN}


def exact(value: float) -> sp.Expr:
    """The real number a constant denotes: an integer, a known constant
    (the double nearest ln 2 is ln 2), else its shortest decimal (0.1 is 1/10)."""
    value = float(value)
    if math.isnan(value):
        return sp.nan
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if value.is_integer():
        return sp.Integer(int(value))
    if value in KNOWN_CONSTANTS:
        return KNOWN_CONSTANTS[value]
    if -value in KNOWN_CONSTANTS:
        return -KNOWN_CONSTANTS[-value]
    return sp.Rational(repr(value))


@dataclass
class Program:
    """Ordered definitions `symbol = expression` over input symbols."""

    inputs: dict[int, sp.Symbol] = field(default_factory=dict)  # input node → symbol
    defs: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)  # in definition order
    _full: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)

    def define(self, symbol: sp.Symbol, expr: sp.Expr) -> sp.Symbol:
        self.defs[symbol] = expr
        return symbol

    def expand(self, expr: sp.Expr) -> sp.Expr:
        """`expr` with every defined symbol replaced by what it stands for.
        Each definition is small and refers to earlier results, so building
        the expansion is linear; only its tree (not its memory) can be large."""
        full = self._full
        for symbol, definition in self.defs.items():
            if symbol not in full:
                full[symbol] = definition.xreplace(
                    {s: full[s] for s in definition.free_symbols if s in full})
        return expr.xreplace({s: full[s] for s in expr.free_symbols if s in full})


class Translator:
    """Node ids → SymPy, memoised, in id order, into a shared `Program`."""

    def __init__(self, g: Graph, program: Program | None = None):
        self.g = g
        self.program = program or Program()
        self.value: dict[int, sp.Expr] = {}

    def input_symbol(self, node_id: int) -> sp.Symbol:
        symbol = self.program.inputs.get(node_id)
        if symbol is None:
            symbol = self.program.inputs[node_id] = sp.Symbol(f"x{node_id}", real=True)
        return symbol

    def constant(self, value: float) -> sp.Expr:
        """The real number a constant of the program stands for."""
        return exact(value)

    def __call__(self, node_id: int) -> sp.Expr:
        if node_id in self.value:
            return self.value[node_id]
        for n in self.g.ancestors([node_id]):
            if n not in self.value:
                self.value[n] = self._translate(n)
        return self.value[node_id]

    def _translate(self, n: int) -> sp.Expr:
        node = self.g.nodes[n]
        if node.op == "input":
            return self.input_symbol(n)
        if node.op == "const":
            return self.constant(node.attr)
        if node.op == "bool":
            return sp.true if node.attr else sp.false
        spec = OPS[node.op]
        args = [self.value[a] for a in node.args]
        expr = _numbers_as_the_program_computes(node.op, spec, args, node.attr)
        if expr is None:
            try:
                expr = spec.symbolic(sp, args, node.attr)
            except (TypeError, ValueError):  # SymPy cannot order nan or zoo (x/0)
                if not any(a.has(sp.nan, sp.zoo) for a in args):
                    raise
                return sp.nan  # an undefined operand: undefined here too
        if spec.kind == "bool" or expr.is_Atom:
            return expr
        return self.program.define(sp.Symbol(f"t{n}", real=True), expr)

    def structure(self, value):
        """A lowered value (id, nested lists, tuple) → the same shape of SymPy."""
        if isinstance(value, int):
            return self(value)
        items = [self.structure(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items


# What x/0 or 0/0 stands for inside a condition, which SymPy cannot compare:
# numeric evaluation binds it to an undefined value (numeric.UNDEFINED).
NAN = sp.Symbol("undefined_", real=True)


# An exact power of numbers longer than this many digits is taken as a
# 60-digit Float: the program computes a double, and 1.0001^19683 (from
# `1.0001^3^3^2^1^x`, whose top SymPy folds to 1) is a fraction of 160,000 digits.
MAX_EXACT_POWER_DIGITS = 1000


def _numbers_as_the_program_computes(op: str, spec, args, attr):
    """The few cases where SymPy's exact arithmetic on numbers is not what
    the program computes, or would never finish: a comparison with NaN is
    false (SymPy raises), and a power of numbers beyond a double's range
    (2^2^2^2^2, 1e300^1e300) is undefined — NaN, as the program fails there
    — instead of an exact integer of a million digits; one in range but of
    more than MAX_EXACT_POWER_DIGITS exact digits is a Float.  None: SymPy's own."""
    if not all(isinstance(a, sp.Number) for a in args):
        return None
    if spec.kind == "bool" and any(a is sp.nan for a in args):
        args = [NAN if a is sp.nan else a for a in args]  # undefined when evaluated
        return spec.symbolic(sp, args, attr)
    if op == "pow" and not any(a is sp.nan for a in args):
        base, exponent = (_mpf(a) for a in args)
        try:
            if power(base, exponent) == 0 and base != 0:
                return sp.Integer(0)  # a double underflows to 0
            if _exact_power_digits(*args) > MAX_EXACT_POWER_DIGITS:
                with mpmath.workdps(60):  # of the doubles, as the program computes it:
                    # 1.000000000000001^1e15 is e^1.11 there, not the decimal's e^1
                    return sp.Float(power(*(_double(a) for a in args)), 60)
        except DomainError:
            return sp.nan if args[0] >= 0 or args[1].is_Integer else None
    return None


def _exact_power_digits(base: sp.Number, exponent: sp.Number) -> int:
    """About how many digits SymPy's exact `base ** exponent` has: the
    integer part of the exponent times the digits of base's fraction
    (integer arithmetic: the exponent may be past a double's range)."""
    if not (base.is_Rational and exponent.is_finite) or abs(base) in (0, 1):
        return 0
    bits = abs(base.p).bit_length() + base.q.bit_length()
    return int(abs(exponent)) * bits * 30103 // 100000  # log10(2) = 0.30103


def _mpf(number):
    if number in (sp.oo, -sp.oo):
        return mpmath.inf if number > 0 else -mpmath.inf
    return mpmath.mpf(sp.Float(number, 30)._mpf_)


def _double(number):
    """The double nearest a SymPy number (what the program holds), as mpmath's."""
    try:
        return mpmath.mpf(float(number))
    except OverflowError:
        return mpmath.inf if number > 0 else -mpmath.inf


def sympy_adjoints(tr: Translator, seeds: list[tuple[int, sp.Expr]],
                   wrt: list[int]) -> list[sp.Expr]:
    """d(Σ cotangent·output)/d(wrt) by SymPy's derivatives and the chain rule,
    as symbols `a<id>` defined in the translator's program."""
    program = tr.program
    for out, _ in seeds:
        tr(out)
    contributions: dict[sp.Symbol, list[sp.Expr]] = {}
    for out, cotangent in seeds:
        contributions.setdefault(tr(out), []).append(cotangent)
    targets = {tr(w) for w in wrt}
    needed = _dependents(program, targets)
    adjoint: dict[sp.Symbol, sp.Expr] = {}
    for symbol in reversed(list(program.defs)):
        if symbol not in contributions or symbol not in needed:
            continue
        total = sp.Add(*contributions.pop(symbol))
        a = total if total.is_Atom else program.define(sp.Symbol("a" + symbol.name[1:],
                                                                 real=True), total)
        adjoint[symbol] = a
        definition = program.defs[symbol]
        for used in sorted(definition.free_symbols & needed, key=lambda s: s.name):
            partial = sp.diff(definition, used).xreplace({definition: symbol})
            if partial != 0:
                if not partial.is_Number:  # its own definition: see numeric.UNNEEDED
                    partial = program.define(sp.Symbol(f"p{symbol.name[1:]}_{used.name}",
                                                       real=True), partial)
                contributions.setdefault(used, []).append(a * partial)
    results = []
    for w in wrt:
        s = tr(w)
        if s in adjoint:
            results.append(adjoint[s])
        else:
            results.append(sp.Add(*contributions.get(s, [sp.Integer(0)])))
    return results


def _dependents(program: Program, targets: set) -> set:
    """The symbols whose definitions depend on any of `targets` (and targets)."""
    active = set(targets)
    for symbol, definition in program.defs.items():
        if definition.free_symbols & active:
            active.add(symbol)
    return active


Boolean = sp.logic.boolalg.Boolean
MAX_PIECES_TO_EXPAND = 16  # piecewise definitions beyond which no proof is tried
_PIECEWISE = (sp.Piecewise, sp.Min, sp.Max, sp.Abs, sp.Heaviside, sp.sign)


def _piecewise_definitions(program: Program, exprs) -> int:
    """How many definitions that `exprs` use are piecewise (min, max, ...)."""
    seen: set = set()
    stack = [symbol for e in exprs for symbol in e.free_symbols]
    count = 0
    while stack:
        symbol = stack.pop()
        if symbol in seen or symbol not in program.defs:
            continue
        seen.add(symbol)
        definition = program.defs[symbol]
        count += definition.has(*_PIECEWISE)
        stack.extend(definition.free_symbols)
    return count


def _is_condition(e) -> bool:
    """A Boolean expression; not a symbol (SymPy's Symbol is a Boolean too,
    but after expansion a symbol is a real input)."""
    return isinstance(e, Boolean) and not isinstance(e, sp.Symbol)


def prove_equal(program: Program, a: sp.Expr, b: sp.Expr, budget) -> bool | None:
    """True if SymPy shows a ≡ b, False if it finishes without showing it,
    None if the budget (a `timelimit.Budget`) ran out first.  Conditions
    (both sides Boolean) are equal when they are equivalent."""
    def run() -> bool:
        try:
            return _shown_equal(program, a, b)
        except Exception:  # noqa: BLE001 - see below
            # SymPy's evaluation and simplifier raise errors of many types on
            # input they mishandle: a TypeError comparing nan (`x/0 < 1` in a
            # branch), a ValueError on a condition of a non-real value
            # (`log(-1) < 2`), a KeyError from a pattern match inside `imageset`
            # while a condition on `sin` is rebuilt.  What SymPy cannot finish is
            # not shown, and the item keeps its numeric verdict.  The time limit
            # is a BaseException and passes through.
            return False
    finished, proved = budget.run(run, needs_interrupt=True)
    return bool(proved) if finished else None


def _shown_equal(program: Program, a: sp.Expr, b: sp.Expr) -> bool:
    if _piecewise_definitions(program, (a, b)) > MAX_PIECES_TO_EXPAND:
        return False  # see below; and expanding it would already take long
    left, right = program.expand(a), program.expand(b)
    if _is_condition(left) or _is_condition(right):
        return sp.simplify_logic(sp.Equivalent(left, right)) == sp.true
    difference = left - right
    if difference == 0:
        return True
    if difference.has(*_PIECEWISE):
        # simplify() and piecewise_fold() almost never settle a difference of
        # piecewise functions (min, max, abs, conditionals) and spend the whole
        # budget trying: those are compared branch by branch numerically
        # instead, after expand() for a small one.
        return sp.expand(difference) == 0
    return sp.simplify(difference) == 0
