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

import sympy as sp

from ..graph import Graph
from ..ops import OPS, REALS
from .timelimit import attempt

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
            return exact(node.attr)
        if node.op == "bool":
            return sp.true if node.attr else sp.false
        spec = OPS[node.op]
        args = [self.value[a] for a in node.args]
        expr = spec.symbolic(sp, args, node.attr)
        if spec.kind == "bool" or expr.is_Atom:
            return expr
        return self.program.define(sp.Symbol(f"t{n}", real=True), expr)

    def structure(self, value):
        """A lowered value (id, nested lists, tuple) → the same shape of SymPy."""
        if isinstance(value, int):
            return self(value)
        items = [self.structure(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items


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
        for used in definition.free_symbols & needed:
            partial = sp.diff(definition, used).xreplace({definition: symbol})
            if partial != 0:
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


def prove_equal(program: Program, a: sp.Expr, b: sp.Expr, seconds: float) -> bool:
    """True if SymPy shows a − b ≡ 0 within `seconds` (False: not shown)."""
    def run() -> bool:
        difference = program.expand(a) - program.expand(b)
        if difference == 0:
            return True
        difference = sp.piecewise_fold(difference)
        if sp.expand(difference) == 0:
            return True
        return sp.simplify(difference) == 0
    finished, proved = attempt(run, seconds)
    return bool(finished and proved)
