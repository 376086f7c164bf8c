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

from ..compiler.ops import OPS
from ..compiler.reverse import depends_on

DIGITS = 50


class DomainError(ValueError):
    """A value outside the real domain, or beyond the range of a double
    (mirrors `math`'s ValueError and OverflowError)."""


# Beyond this a double is infinite: `math` raises OverflowError or returns inf.
# Evaluating at 50 digits keeps to the same range, so that a value the program
# cannot compute is undefined here too, and no evaluation needs the thousands
# of digits that sin(exp(exp(20))) or 10^(10^300) would take.
DOUBLE_MAX = mpmath.mpf(2) ** 1024
_POWER_BITS = 1100  # |log2| of a power beyond which it overflows (or underflows)


def _real(value):
    if isinstance(value, type(mpmath.pi)):  # mpmath.pi, mpmath.e, ... as numbers
        value = +value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = mpmath.mpf(value)
    if isinstance(value, mpmath.mpf) and mpmath.isfinite(value) and abs(value) < DOUBLE_MAX:
        return value
    raise DomainError("math domain error")


def _in_range(args) -> None:
    for a in args:
        if isinstance(a, mpmath.mpf) and not (mpmath.isfinite(a) and abs(a) < DOUBLE_MAX):
            raise DomainError("math range error")


def _wrap(function):
    def real_only(*args):
        _in_range(args)
        return _real(function(*args))
    return real_only


def power(base, exponent):
    """`math.pow` at 50 digits: a power that a double cannot hold is an
    error (as `math.pow` raises OverflowError), one too small for it is 0,
    and neither is ever computed to its thousands of digits."""
    base, exponent = _real(base), _real(exponent)
    if base == 0 and exponent < 0:
        raise DomainError("math domain error")  # as math.pow(0.0, -1) raises
    if base != 0 and exponent != 0 and abs(base) != 1:
        with mpmath.workprec(64):
            bits = exponent * mpmath.log(abs(base), 2)
        if bits > _POWER_BITS:
            raise DomainError("math range error")
        if bits < -_POWER_BITS:
            return mpmath.mpf(0)
    return _real(mpmath.power(base, exponent))


def _math_shim() -> types.SimpleNamespace:
    """`math` at 50 digits: each op's `math` function from the op table's
    mpmath counterpart, and the few names the argument checks use."""
    mp = mpmath
    shim = {op.math_function: _wrap(functools.partial(op.numeric, mp))
            for op in OPS.values() if op.math_function}
    shim.update(
        pow=power,  # bounded: see power()
        pi=mp.pi, e=mp.e, inf=mp.inf, nan=mp.nan,
        isnan=mp.isnan, isinf=mp.isinf, isfinite=mp.isfinite,
        fsum=mp.fsum,
    )
    return types.SimpleNamespace(**shim)


class _MpmathShim:
    """`mpmath` for printed SymPy code: real-valued functions only."""

    power = staticmethod(power)

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


class _Unneeded:
    """An undefined local derivative (the log of a negative number in a
    branch not taken).  Times an adjoint that is exactly 0 it is 0: the
    branch not taken contributes nothing, which is the language's rule, and
    the gradient there is a number.  Anything else it takes part in fails."""

    def __mul__(self, other):
        if isinstance(other, (mpmath.mpf, int, float)) and other == 0:
            return mpmath.mpf(0)
        raise TypeError("an undefined derivative is used")

    __rmul__ = __mul__


UNNEEDED = _Unneeded()


class _Printer(MpmathPrinter):
    def _print_Heaviside(self, expr):  # H(0) = 1/2, as SymPy defines it
        x = self._print(expr.args[0])
        return f"(1 if ({x}) > 0 else (0 if ({x}) < 0 else mpmath.mpf(1)/2))"

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.args
        if exponent.is_Integer and abs(exponent) <= 64 or exponent == sp.S.Half:
            return super()._print_Pow(expr, rational)
        return f"mpmath.power({self._print(base)}, {self._print(exponent)})"

    # x/0, 0/0 and powers beyond a double are undefined, as in the program:
    # any use of them fails, so the definition that uses them is undefined.
    def _print_ComplexInfinity(self, expr):
        return "undefined_"

    _print_NaN = _print_Infinity = _print_NegativeInfinity = _print_ComplexInfinity


def compile_program(program, results: list[sp.Expr], inputs: list[sp.Symbol]):
    """A Python function of `inputs` (mpf) returning `results`, evaluating the
    definitions of `program` that the results need.  A definition that cannot
    be evaluated is UNDEFINED (a local derivative: UNNEEDED, see above)."""
    needed = _needed(program, results)
    printer = _Printer({"fully_qualified_modules": True})
    lines = [f"def _evaluate({', '.join(s.name for s in inputs)}):"]
    for symbol, definition in program.defs.items():
        if symbol in needed:
            text = printer.doprint(definition)
            if symbol.name.startswith("p"):  # a local derivative
                lines += [f"    try: {symbol.name} = _unneeded_if_undefined({text})",
                          f"    except _Failed: {symbol.name} = _UNNEEDED"]
            else:
                lines += [f"    try: {symbol.name} = {text}",
                          f"    except _Failed: {symbol.name} = _UNDEFINED"]
    lines.append("    results = []")
    for r in results:
        lines += [f"    try: results.append({printer.doprint(r)})",
                  "    except _Failed: results.append(_UNDEFINED)"]
    lines.append("    return results")
    namespace = {"mpmath": _MpmathShim(), "_UNDEFINED": UNDEFINED, "_UNNEEDED": UNNEEDED,
                 "undefined_": UNDEFINED,
                 "_unneeded_if_undefined": lambda v: UNNEEDED if v is UNDEFINED else v,
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


def flat_values(value) -> list:
    """The numbers of a result of emitted code (nested lists and tuples)."""
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in flat_values(v)]
    if getattr(value, "ndim", 0):  # an array of the array target
        return flat_values(value.tolist())
    return [value]


def error_name(error: Exception) -> str:
    """What the program itself raises, with its message: `math` raises
    ValueError where the 50-digit shim raises its DomainError."""
    name = next(c.__name__ for c in type(error).__mro__ if c.__module__ == "builtins")
    return f"{name} ({error})" if str(error) else name


# --- the source's DAG, node by node, against the double range -----------------
# The reference (SymPy's translation) can hide what the program computes:
# SymPy folds 1**u to 1 and 0*u to 0 as they are built, so u, which the
# program evaluates (and may fail on: u = x**0.5 at x < 0, u = 1e-300**x at
# x = -2), is gone from it, and so is u's derivative, which the emitted
# gradient still multiplies by 0 (nan, or an error, where u has none).  And
# at 50 digits an intermediate beyond a double's range (1e558) or below its
# normal range (x * 4.9e-324, whose double keeps one digit) is computed
# exactly, where doubles overflow or lose their digits.  So each compared
# point is first run through the DAG itself, as the language evaluates it.

DEFINED, UNDEFINED_HERE, OUT_OF_RANGE = "defined", "undefined", "out of range"
NORMAL_MIN = mpmath.mpf(2) ** -1022  # the smallest normal double


class _Undefined(Exception):
    pass


class _OutOfRange(Exception):
    pass


class _Unknown(Exception):
    """An op this evaluation does not know (a data-axis loop): no verdict."""


class SourceDag:
    """The DAG nodes `roots` need, evaluated at 50 digits the way the
    language does: only the branch a conditional takes, and only what
    `and`/`or` short-circuit to.  `wrt`: the input nodes differentiated
    with respect to (None: every input)."""

    def __init__(self, g, roots, wrt=None):
        self.g, self.roots = g, list(roots)
        self.numbers = _numbers(g, self.roots)
        order = g.ancestors(self.roots)
        inputs = {n for n in order if g.nodes[n].op == "input" and (wrt is None or n in wrt)}
        self.active = depends_on(g, order, inputs) & self.numbers  # what varies with wrt

    def at(self, point: dict) -> str:
        """DEFINED, UNDEFINED_HERE or OUT_OF_RANGE at `point` (input node →
        mpf).  UNDEFINED_HERE if a node evaluated is undefined (a negative
        base to a non-integer power, the log of a negative, x/0), or if the
        chain rule needs a local derivative that is (sqrt at 0, d/db a^b at
        a < 0): the numerics policy makes the emitted code raise or give nan
        there.  OUT_OF_RANGE if a number leaves the normal double range
        (beyond 2^1024, or nonzero below 2^-1022), where doubles cannot
        follow the exact computation: no fair point to compare at."""
        try:
            with mpmath.workdps(DIGITS):
                _DagEvaluation(self, point).run()
        except _Undefined:
            return UNDEFINED_HERE
        except _OutOfRange:
            return OUT_OF_RANGE
        except _Unknown:
            return DEFINED
        return DEFINED

    def fragile_tie(self, point: dict) -> bool:
        """Whether a comparison the source evaluates at `point` is at, or
        within a hair of, a tie that doubles cannot hold: `x <= mean([x, x,
        x])` is a tie of two reals, but the doubles of x + x + x divided by 3
        may be x's neighbour, so the emitted code may decide it either way.
        A tie of two numbers that are doubles (`x > 0.5` at x = 0.5) holds
        in the emitted code too, and is compared."""
        evaluation = _DagEvaluation(self, point)
        try:
            with mpmath.workdps(DIGITS):
                evaluation.run()
        except (_Undefined, _OutOfRange, _Unknown):
            pass
        nodes, memo = self.g.nodes, evaluation.memo
        with mpmath.workdps(DIGITS):
            for n in memo:
                node = nodes[n]
                if node.op in _COMPARISONS and all(a in memo for a in node.args):
                    a, b = (memo[x] for x in node.args)
                    if _too_close_to_call(a, b):
                        return True
        return False


_COMPARISONS = {"lt", "le", "gt", "ge", "eq", "ne"}
FRAGILE = 1e-13  # a relative gap below this is too close for doubles to call


def _too_close_to_call(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    gap = abs(a - b)
    if gap == 0:
        return not (_is_double(a) and _is_double(b))
    return gap < FRAGILE * max(1, abs(a), abs(b))


def _is_double(v) -> bool:
    return mpmath.mpf(float(v)) == v


def _numbers(g, roots) -> set:
    """The nodes that reach a root through numbers, not only through a
    condition: the chain rule multiplies their local derivatives, and a
    constant among them must be one a double holds to its digits (a
    condition may compare with inf, or with 4.9e-324, as doubles do)."""
    reaches = set(roots)
    for n in reversed(g.ancestors(roots)):
        node = g.nodes[n]
        if n in reaches and OPS[node.op].kind != "bool":
            reaches.update(node.args[1:] if node.op == "where" else node.args)
    return reaches


class _DagEvaluation:
    def __init__(self, dag: SourceDag, point: dict):
        self.dag, self.g, self.point, self.memo = dag, dag.g, point, {}

    def run(self) -> None:
        for root in self.dag.roots:
            self.node(root)

    def node(self, n: int):
        """The value of node n, its inputs first (without recursion: a DAG
        may be thousands of nodes deep)."""
        memo, stack = self.memo, [n]
        while stack:
            m = stack[-1]
            if m in memo:
                stack.pop()
                continue
            missing = [a for a in self._inputs_wanted(m) if a not in memo]
            if missing:
                stack.extend(missing)
                continue
            memo[m] = self._value(m)
            stack.pop()
        return memo[n]

    def _inputs_wanted(self, m: int) -> list[int]:
        """The inputs node m evaluates, given those already known: a
        conditional's branch once its condition is known, `and`/`or`'s
        second input only where Python's short circuit reaches it."""
        node, memo = self.g.nodes[m], self.memo
        if node.op == "where":
            cond, then, otherwise = node.args
            return [cond] if cond not in memo else [then if memo[cond] else otherwise]
        if node.op in ("and", "or"):
            first, second = node.args
            if first not in memo:
                return [first]
            return [second] if bool(memo[first]) == (node.op == "and") else []
        return list(node.args)

    def _value(self, m: int):
        node, memo = self.g.nodes[m], self.memo
        op = node.op
        if op == "where":
            cond, then, otherwise = node.args
            return memo[then if memo[cond] else otherwise]
        if op in ("and", "or"):
            first, second = node.args
            short = bool(memo[first]) != (op == "and")
            return memo[first] if short else memo[second]
        if op == "bool":
            return node.attr
        if op == "const":
            value = mpmath.mpf(node.attr)
            return _in_double_range(value) if m in self.dag.numbers else value
        if op == "input":
            if m not in self.point:
                raise _Unknown
            return self.point[m]
        args = [memo[a] for a in node.args]
        value = _op_value(op, args, node.attr)
        if m in self.dag.active and OPS[op].kind != "bool":
            _check_partials(op, node, args, self.dag.active)
        return value


def _op_value(op: str, args: list, attr):
    spec = OPS.get(op)
    if spec is None or spec.loop:
        raise _Unknown
    if spec.kind == "bool":
        return spec.evaluate(args, attr)
    try:
        if op == "pow":
            value = _exact_power(*args)
        elif spec.numeric is not None:
            value = spec.numeric(mpmath, *args)
        elif spec.helper is not None:
            value = _helper(op)(*args)
        elif spec.fn is not None:
            value = spec.evaluate(args, attr)
        else:
            raise _Unknown
    except (ZeroDivisionError, DomainError, ValueError, TypeError):
        raise _Undefined from None
    return _in_double_range(_real_or_undefined(value))


def _check_partials(op: str, node, args: list, active: set) -> None:
    """The local derivatives with respect to the inputs the chain rule goes
    through, from SymPy's derivative of the op: undefined or beyond a
    double (1/sqrt(0), log(-2)) make the gradient undefined here."""
    for arg, partial in zip(node.args, _partials(op, node.attr, len(args))):
        if arg not in active:
            continue
        try:
            value = _real_or_undefined(partial(*args))
        except (ZeroDivisionError, ValueError, TypeError):
            raise _Undefined from None
        if abs(value) >= DOUBLE_MAX:
            raise _OutOfRange


def _real_or_undefined(value):
    """A finite mpf, or _Undefined (complex: outside the real domain; nan,
    inf: log(0), atanh(1), where `math` raises)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = mpmath.mpf(value)
    if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
        raise _Undefined
    return value


@functools.cache
def _partials(op: str, attr, arity: int) -> list:
    """One function per input: the op's SymPy derivative with respect to
    it, evaluated with mpmath (which neither raises nor overflows: the
    caller tells a complex or infinite result)."""
    symbols = [sp.Symbol(f"a{i}", real=True) for i in range(arity)]
    expr = OPS[op].symbolic(sp, symbols, attr)
    printer = _Printer({"fully_qualified_modules": True})
    functions = []
    for s in symbols:
        # powsimp: b*a**(b - 1), which is 0 at a = 0 for b > 1 (not a**b*b/a)
        text = printer.doprint(sp.powsimp(sp.diff(expr, s)))
        functions.append(eval(f"lambda {', '.join(map(str, symbols))}: {text}",
                              {"mpmath": mpmath, "undefined_": UNDEFINED}))
    return functions


def _exact_power(base, exponent):
    """base ** exponent at 50 digits; one too large or too small for a
    double is out of range (and is never computed to its digits)."""
    if base < 0 and exponent != int(exponent):
        raise _Undefined
    if base == 0 and exponent < 0:
        raise _Undefined
    if base != 0 and exponent != 0 and abs(base) != 1:
        with mpmath.workprec(64):
            bits = exponent * mpmath.log(abs(base), 2)
        if abs(bits) > _POWER_BITS:
            raise _OutOfRange
    return mpmath.power(base, exponent)


def _in_double_range(value):
    if mpmath.isnan(value):
        raise _Undefined
    if mpmath.isinf(value) or abs(value) >= DOUBLE_MAX or 0 < abs(value) < NORMAL_MIN:
        raise _OutOfRange
    return value


@functools.cache
def _helper(op: str):
    """An op's helper (`_sigmoid`) as the emitted module defines it, with
    `math` at 50 digits."""
    namespace = {"math": _math_shim()}
    exec(OPS[op].helper, namespace)
    return namespace[OPS[op].py.split("(")[0]]
