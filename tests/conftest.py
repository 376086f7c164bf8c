"""Shared helpers for the test suite: random well-formed `.expr` expressions
with their SymPy counterparts, and high-precision reference derivatives."""

from __future__ import annotations

import os

from dataclasses import dataclass

import mpmath
import sympy as sp
from hypothesis import settings, strategies as st

# CI (CI=true) runs the property tests on a fixed sequence of examples, so a
# submission's run is the run that was made before it; locally every run
# explores new examples.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

X, Y = sp.symbols("x y", real=True)
DPS = 50  # mpmath digits for reference values
FD_STEP = mpmath.mpf("1e-20")  # central differences at 50 digits: error ~1e-30


@dataclass(frozen=True)
class Term:
    """One expression as `.expr` text and as SymPy, plus the expressions that
    must stay away from zero at a test point (kinks, ties, switch points)."""

    text: str
    sym: object
    kinks: tuple = ()


def _relu(a):
    return sp.Piecewise((a, a > 0), (0, True))


# Unary wrappers that keep any real input inside the function's domain.
UNARY = [
    ("sin({0})", sp.sin, False), ("cos({0})", sp.cos, False), ("tanh({0})", sp.tanh, False),
    ("atan({0})", sp.atan, False), ("erf({0})", sp.erf, False),
    ("sigmoid({0})", lambda a: 1 / (1 + sp.exp(-a)), False),
    ("exp(sin({0}))", lambda a: sp.exp(sp.sin(a)), False),
    ("expm1(tanh({0}))", lambda a: sp.exp(sp.tanh(a)) - 1, False),
    ("log(1 + {0}*{0})", lambda a: sp.log(1 + a * a), False),
    ("log(softplus(tanh({0})))", lambda a: sp.log(sp.log(1 + sp.exp(sp.tanh(a)))), False),
    ("log2(2 + cos({0}))", lambda a: sp.log(2 + sp.cos(a), 2), False),
    ("log10(1 + {0}^2)", lambda a: sp.log(1 + a ** 2, 10), False),
    ("log1p({0}**2)", lambda a: sp.log(1 + a ** 2), False),
    ("sqrt(1 + {0}*{0})", lambda a: sp.sqrt(1 + a * a), False),
    ("asin(tanh({0})/2)", lambda a: sp.asin(sp.tanh(a) / 2), False),
    ("acos(tanh({0})/2)", lambda a: sp.acos(sp.tanh(a) / 2), False),
    ("atanh(tanh({0})/2)", lambda a: sp.atanh(sp.tanh(a) / 2), False),
    ("acosh(2 + {0}^2)", lambda a: sp.acosh(2 + a ** 2), False),
    ("asinh({0})", sp.asinh, False),
    ("sinh(tanh({0}))", lambda a: sp.sinh(sp.tanh(a)), False),
    ("cosh(sin({0}))", lambda a: sp.cosh(sp.sin(a)), False),
    ("tan(tanh({0}))", lambda a: sp.tan(sp.tanh(a)), False),
    ("softplus({0})", lambda a: sp.log(1 + sp.exp(a)), False),
    ("relu({0})", _relu, True),
    ("abs({0})", sp.Abs, True),
    ("(-{0})", lambda a: -a, False),
    ("(({0})^2)", lambda a: a ** 2, False),
    ("(({0})**3)", lambda a: a ** 3, False),
    ("((1 + {0}*{0}) ** -2)", lambda a: (1 + a * a) ** -2, False),
]

CONSTANTS = ["0.5", "1", "1.5", "2", "3", "0.25"]


class ExprDrawer:
    """Draws random expressions over the names in `env` (name → SymPy value)."""

    def __init__(self, data, env: dict, functions: dict | None = None):
        self.data = data
        self.env = env
        # user function name → (arity, SymPy of a call, kinks of a call)
        self.functions = functions or {}

    def draw(self, depth: int) -> Term:
        d = self.data.draw
        if depth <= 0 or d(st.integers(0, 4), label="leaf?") == 0:
            return self.leaf()
        kind = d(st.sampled_from(["unary", "binary", "binary", "div", "pow", "extremum",
                                  "cond", "hypot", "atan2", "call"]), label="kind")
        if kind == "call" and not self.functions:
            kind = "binary"
        return getattr(self, kind)(depth - 1)

    def leaf(self) -> Term:
        d = self.data.draw
        if d(st.integers(0, 3), label="const?") == 0:
            text = d(st.sampled_from(CONSTANTS), label="const")
            return Term(text, sp.Rational(text))
        name = d(st.sampled_from(sorted(self.env)), label="name")
        return Term(name, self.env[name])

    def unary(self, depth):
        template, fn, kink = self.data.draw(st.sampled_from(UNARY), label="unary")
        a = self.draw(depth)
        return Term(template.format(a.text), fn(a.sym), a.kinks + ((a.sym,) if kink else ()))

    def binary(self, depth):
        op = self.data.draw(st.sampled_from(["+", "-", "*"]), label="op")
        a, b = self.draw(depth), self.draw(depth)
        sym = {"+": a.sym + b.sym, "-": a.sym - b.sym, "*": a.sym * b.sym}[op]
        return Term(f"({a.text} {op} {b.text})", sym, a.kinks + b.kinks)

    def div(self, depth):
        a, b = self.draw(depth), self.draw(depth)
        return Term(f"({a.text} / (2 + sin({b.text})))", a.sym / (2 + sp.sin(b.sym)),
                    a.kinks + b.kinks)

    def pow(self, depth):
        a, b = self.draw(depth), self.draw(depth)
        if self.data.draw(st.booleans(), label="pow form"):
            return Term(f"pow(1 + {a.text}*{a.text}, 3*tanh({b.text}))",
                        (1 + a.sym * a.sym) ** (3 * sp.tanh(b.sym)), a.kinks + b.kinks)
        return Term(f"((2 + cos({a.text})) ** sin({b.text}))",
                    (2 + sp.cos(a.sym)) ** sp.sin(b.sym), a.kinks + b.kinks)

    def extremum(self, depth):
        name = self.data.draw(st.sampled_from(["min", "max"]), label="extremum")
        n = self.data.draw(st.integers(2, 3), label="extremum arity")
        # over leaves and one-level terms: SymPy's Min/Max of deep terms can take
        # minutes to differentiate, or fail when it rewrites Abs
        args = [self.draw(min(depth, 1)) for _ in range(n)]
        sym = (sp.Min if name == "min" else sp.Max)(*(a.sym for a in args))
        ties = tuple(a.sym - b.sym for i, a in enumerate(args) for b in args[i + 1:])
        return Term(f"{name}({', '.join(a.text for a in args)})", sym,
                    sum((a.kinks for a in args), ()) + ties)

    def comparison(self, depth) -> tuple[str, object, tuple]:
        a, b = self.draw(depth), self.draw(depth)
        op = self.data.draw(st.sampled_from(["<", "<=", ">", ">="]), label="compare")
        rel = {"<": sp.StrictLessThan, "<=": sp.LessThan, ">": sp.StrictGreaterThan,
               ">=": sp.GreaterThan}[op]
        return f"{a.text} {op} {b.text}", rel(a.sym, b.sym), a.kinks + b.kinks + (a.sym - b.sym,)

    def condition(self, depth) -> tuple[str, object, tuple]:
        form = self.data.draw(st.sampled_from(["cmp", "cmp", "and", "or", "not"]), label="cond")
        text, sym, kinks = self.comparison(depth)
        if form == "not":
            return f"not {text}", sp.Not(sym), kinks
        if form in ("and", "or"):
            text2, sym2, kinks2 = self.comparison(depth)
            combine = sp.And if form == "and" else sp.Or
            return f"{text} {form} {text2}", combine(sym, sym2), kinks + kinks2
        return text, sym, kinks

    def cond(self, depth):
        a, b = self.draw(depth), self.draw(depth)
        text, sym, kinks = self.condition(depth)
        return Term(f"({a.text} if {text} else {b.text})",
                    sp.Piecewise((a.sym, sym), (b.sym, True)), a.kinks + b.kinks + kinks)

    def hypot(self, depth):
        a, b = self.draw(depth), self.draw(depth)
        return Term(f"hypot({a.text}, {b.text})", sp.sqrt(a.sym ** 2 + b.sym ** 2),
                    a.kinks + b.kinks + (a.sym ** 2 + b.sym ** 2,))

    def atan2(self, depth):
        a, b = self.draw(depth), self.draw(depth)
        return Term(f"atan2({a.text}, 2 + cos({b.text}))", sp.atan2(a.sym, 2 + sp.cos(b.sym)),
                    a.kinks + b.kinks)

    def call(self, depth):
        name = self.data.draw(st.sampled_from(sorted(self.functions)), label="function")
        arity, build, kinks = self.functions[name]
        args = [self.draw(depth) for _ in range(arity)]
        syms = [a.sym for a in args]
        return Term(f"{name}({', '.join(a.text for a in args)})", build(*syms),
                    sum((a.kinks for a in args), kinks(*syms)))


# Away from kinks (the only points tested) the singular parts of derivatives vanish.
_MPMATH = [{"DiracDelta": lambda *args: mpmath.mpf(0)}, "mpmath"]


def mp_function(sym, symbols=(X, Y)):
    return sp.lambdify(symbols, sym, modules=_MPMATH)


def mp_point(values):
    return [mpmath.mpf(v) for v in values]  # exact: a float converts without rounding


def away_from_kinks(kinks, point, symbols=(X, Y), margin=1e-6) -> bool:
    with mpmath.workdps(DPS):
        for k in kinks:
            value = mp_function(k, symbols)(*mp_point(point))
            if not mpmath.isfinite(value) or abs(value) < margin:
                return False
    return True


def central_difference(sym, point, index, symbols=(X, Y)):
    """d sym / d symbols[index] by a central difference at 50 digits."""
    f = mp_function(sym, symbols)
    with mpmath.workdps(DPS):
        at = mp_point(point)
        up, down = list(at), list(at)
        up[index] += FD_STEP
        down[index] -= FD_STEP
        return (f(*up) - f(*down)) / (2 * FD_STEP)


def exact_value(sym, point, symbols=(X, Y)):
    with mpmath.workdps(DPS):
        return mp_function(sym, symbols)(*mp_point(point))
