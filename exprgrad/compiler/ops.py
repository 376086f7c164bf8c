"""The op table: every scalar operation of the DAG, defined once.

Each entry gives, side by side:
  arity     number of inputs (None: one or more, as for min/max)
  fn        the Python function that folds constants at compile time
  py        the Python text the code generator emits ({0}, {1}: the inputs,
            {args}: all inputs joined by commas, {attr}: the node's attribute)
  prec      the precedence of that text, and arg_prec the precedence each
            input needs so the generator adds parentheses only where needed
  grad      the derivative rule: given the output's adjoint `d`, the node
            itself `out` and its inputs, one DAG expression per input (None
            where no gradient flows); written with `Ref` operators so the
            rule reads as math and builds (folded, shared) DAG nodes
  sympy     the SymPy counterpart, given the sympy module and the inputs
  numeric   the mpmath counterpart of the `math` function `py` calls, given
            the mpmath module and the inputs (the verifier runs the emitted
            text with it at 50 digits; ops written as Python operators need
            none)
  label     what a drawing of the graph shows ({attr}: the attribute)
  builtin   the name a source file calls it by, if any
  lazy      the inputs evaluated only when selected (`where`'s branches):
            code generation, reverse mode and interpreters evaluate or
            differentiate them only on the branch taken
  arg_labels  what a drawing writes on each input's edge, if anything
  total     True when the op cannot raise on any float inputs (nan and
            infinities included): add, sub, mul, neg, abs, relu, min, max,
            atan, atan2, tanh, asinh, erf, hypot, sigmoid, softplus, where
            and every comparison and logical op.  The scheduler may evaluate
            a value built only of total ops where not every path needs it
            (hoisting it above a conditional); any other value is evaluated
            only where it is needed (math.log(-1), 1/0 and exp(1000) raise)

Adding an op is one entry here plus a test; tests/test_ops.py checks that
every entry is complete and that every built-in of the language has one.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

from .refs import call as _call, where as _where

# Python's operator precedence, lowest first, as the code generator needs it.
COND, OR, AND, NOT, CMP, ADD, MUL, UNARY, POW, ATOM = range(1, 11)

LN2 = math.log(2.0)
LN10 = math.log(10.0)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# The reals the rules below (and the language's `pi` and `e`) write as
# doubles, with their SymPy counterparts: the verifier reads LN2 as ln 2.
REALS: dict[float, Callable[[Any], Any]] = {
    math.pi: lambda sp: sp.pi,
    math.e: lambda sp: sp.E,
    LN2: lambda sp: sp.log(2),
    LN10: lambda sp: sp.log(10),
    TWO_OVER_SQRT_PI: lambda sp: 2 / sp.sqrt(sp.pi),
}


@dataclass(frozen=True)
class Op:
    name: str
    arity: int | None
    fn: Callable[..., Any] | None
    py: str
    prec: int
    arg_prec: tuple[int, ...]  # one entry per input; a variadic op's single entry covers all
    grad: Callable[..., tuple] | None
    sympy: Callable[..., Any] | None
    label: str
    builtin: str | None = None
    kind: str = "number"  # 'bool' for comparisons and logic, which only conditions use
    has_attr: bool = False  # fn/sympy get the node's attribute as their last argument
    helper: str | None = None  # Python source of a helper the emitted text calls
    numeric: Callable[..., Any] | None = None
    lazy: tuple[int, ...] = ()
    arg_labels: tuple[str, ...] = ()
    loop: bool = False  # a data-axis op (compiler/loops.py): scheduled as a loop, not a template
    total: bool = False  # cannot raise on any float inputs (see the module docstring)

    def required_prec(self, index: int) -> int:
        return self.arg_prec[min(index, len(self.arg_prec) - 1)]

    def evaluate(self, args, attr=None):
        """`fn` on Python values, given the node's attribute if the op takes one."""
        return self.fn(*args, attr) if self.has_attr else self.fn(*args)

    def symbolic(self, sp, args, attr=None):
        """`sympy` on SymPy values, given the node's attribute if the op takes one."""
        return self.sympy(sp, *args, attr) if self.has_attr else self.sympy(sp, *args)

    def display(self, attr=None) -> str:
        """The label of a node of this op with attribute `attr` (`**3`)."""
        return self.label.format(attr=attr) if self.has_attr else self.label

    @property
    def math_function(self) -> str | None:
        """The name of the `math` function the emitted text calls, if any."""
        match = _MATH_CALL.fullmatch(self.py)
        return match.group(1) if match else None


_MATH_CALL = re.compile(r"math\.(\w+)\(.*\)")


OPS: dict[str, Op] = {}


def op(name, arity, fn, py, prec, arg_prec, grad, sympy, label, **extra) -> None:
    OPS[name] = Op(name, arity, fn, py, prec, tuple(arg_prec), grad, sympy, label, **extra)


def infix(name, symbol, prec, fn, grad, sympy, **extra) -> None:
    """A left-associative binary operator: `a - b - c` is `(a - b) - c`."""
    op(name, 2, fn, f"{{0}} {symbol} {{1}}", prec, (prec, prec + 1), grad, sympy, symbol, **extra)


def function(name, py_name, fn, grad, sympy, builtin=True, **extra) -> None:
    """A one-input function of the language, emitted as a call; a `math`
    function's mpmath counterpart is mpmath's function of the same name
    unless `numeric` says otherwise."""
    if py_name.startswith("math.") and "numeric" not in extra:
        extra["numeric"] = _same_name_in(py_name.removeprefix("math."))
    op(name, 1, fn, f"{py_name}({{0}})", ATOM, (0,), grad, sympy, name,
       builtin=name if builtin else None, **extra)


def _same_name_in(name: str):
    return lambda module, *args: getattr(module, name)(*args)


# --- leaves ------------------------------------------------------------------
op("const", 0, None, "{attr}", ATOM, (), lambda d, out: (), lambda sp, v: sp.Float(v) if not
   float(v).is_integer() else sp.Integer(int(v)), "const", has_attr=True)
op("bool", 0, None, "{attr}", ATOM, (), None, lambda sp, v: sp.true if v else sp.false, "bool",
   kind="bool", has_attr=True)
op("input", 0, None, "{attr}", ATOM, (), lambda d, out: (), None, "input", has_attr=True)

# --- arithmetic --------------------------------------------------------------
infix("add", "+", ADD, operator.add, lambda d, out, a, b: (d, d), lambda sp, a, b: a + b)
infix("sub", "-", ADD, operator.sub, lambda d, out, a, b: (d, -d), lambda sp, a, b: a - b)
infix("mul", "*", MUL, operator.mul, lambda d, out, a, b: (d * b, d * a), lambda sp, a, b: a * b)
infix("div", "/", MUL, operator.truediv, lambda d, out, a, b: (d / b, -(d * out / b)),
      lambda sp, a, b: a / b)
op("neg", 1, operator.neg, "-{0}", UNARY, (UNARY,), lambda d, out, x: (-d,),
   lambda sp, x: -x, "neg")
# d/db a**b is d * a**b * log(a) for a > 0; 0 at a = 0 (the limit, as PyTorch);
# nan for a < 0, where a**b is defined only at integer b (PyTorch's log(a) = nan),
# so pow(-2, 3) still has d/da = 12 instead of raising.
op("pow", 2, math.pow, "math.pow({0}, {1})", ATOM, (0,),
   lambda d, out, a, b: (d * b * _call("pow", a, b - 1),
                         _where(a > 0, d * out * _call("log", a),
                                _where(a == 0, 0, math.nan))),
   lambda sp, a, b: sp.Pow(a, b), "**", builtin="pow", numeric=lambda mp, a, b: mp.power(a, b))
# x ** 0 is 1 for every x, so its derivative is 0 everywhere, x = 0 included (PyTorch).
op("ipow", 1, lambda x, k: x ** k, "{0} ** {attr}", POW, (ATOM,),
   lambda d, out, x: (0.0,) if out.attr == 0 else (d * out.attr * x ** (out.attr - 1),),
   lambda sp, x, k: x ** k, "**{attr}", has_attr=True)

# --- elementary functions ----------------------------------------------------
function("exp", "math.exp", math.exp, lambda d, out, x: (d * out,), lambda sp, x: sp.exp(x))
function("log", "math.log", math.log, lambda d, out, x: (d / x,), lambda sp, x: sp.log(x))
function("log2", "math.log2", math.log2, lambda d, out, x: (d / (x * LN2),),
         lambda sp, x: sp.log(x, 2), numeric=lambda mp, x: mp.log(x, 2))
function("log10", "math.log10", math.log10, lambda d, out, x: (d / (x * LN10),),
         lambda sp, x: sp.log(x, 10))
function("log1p", "math.log1p", math.log1p, lambda d, out, x: (d / (1 + x),),
         lambda sp, x: sp.log(1 + x))
function("expm1", "math.expm1", math.expm1, lambda d, out, x: (d * (out + 1),),
         lambda sp, x: sp.exp(x) - 1)
function("sqrt", "math.sqrt", math.sqrt, lambda d, out, x: (d * 0.5 / out,),
         lambda sp, x: sp.sqrt(x))
function("sin", "math.sin", math.sin, lambda d, out, x: (d * _call("cos", x),),
         lambda sp, x: sp.sin(x))
function("cos", "math.cos", math.cos, lambda d, out, x: (-(d * _call("sin", x)),),
         lambda sp, x: sp.cos(x))
function("tan", "math.tan", math.tan, lambda d, out, x: (d * (1 + out * out),),
         lambda sp, x: sp.tan(x))
function("asin", "math.asin", math.asin, lambda d, out, x: (d / _call("sqrt", 1 - x * x),),
         lambda sp, x: sp.asin(x))
function("acos", "math.acos", math.acos, lambda d, out, x: (-d / _call("sqrt", 1 - x * x),),
         lambda sp, x: sp.acos(x))
function("atan", "math.atan", math.atan, lambda d, out, x: (d / (1 + x * x),),
         lambda sp, x: sp.atan(x))
function("sinh", "math.sinh", math.sinh, lambda d, out, x: (d * _call("cosh", x),),
         lambda sp, x: sp.sinh(x))
function("cosh", "math.cosh", math.cosh, lambda d, out, x: (d * _call("sinh", x),),
         lambda sp, x: sp.cosh(x))
function("tanh", "math.tanh", math.tanh, lambda d, out, x: (d * (1 - out * out),),
         lambda sp, x: sp.tanh(x))
function("asinh", "math.asinh", math.asinh, lambda d, out, x: (d / _call("sqrt", x * x + 1),),
         lambda sp, x: sp.asinh(x))
function("acosh", "math.acosh", math.acosh, lambda d, out, x: (d / _call("sqrt", x * x - 1),),
         lambda sp, x: sp.acosh(x))
function("atanh", "math.atanh", math.atanh, lambda d, out, x: (d / (1 - x * x),),
         lambda sp, x: sp.atanh(x))
function("erf", "math.erf", math.erf,
         lambda d, out, x: (d * TWO_OVER_SQRT_PI * _call("exp", -(x * x)),),
         lambda sp, x: sp.erf(x))

# --- neural-network functions ------------------------------------------------
# These helpers are copied verbatim into generated modules that use them.
def _sigmoid(x):
    """The logistic function, without overflow for large |x|."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softplus(x):
    """log(1 + exp(x)), without overflow for large x."""
    return (x if x > 0.0 else 0.0) + math.log1p(math.exp(-abs(x)))


function("sigmoid", "_sigmoid", _sigmoid, lambda d, out, x: (d * out * (1 - out),),
         lambda sp, x: 1 / (1 + sp.exp(-x)), helper=inspect.getsource(_sigmoid))
function("softplus", "_softplus", _softplus, lambda d, out, x: (d * _call("sigmoid", x),),
         lambda sp, x: sp.log(1 + sp.exp(x)), helper=inspect.getsource(_softplus))
# relu'(0) = 0 and abs'(0) = 0, as in PyTorch; a nan input passes through relu.
op("relu", 1, lambda x: 0.0 if x < 0.0 else x, "(0.0 if {0} < 0.0 else {0})", ATOM, (CMP + 1,),
   lambda d, out, x: (_where(x > 0, d, 0),),
   lambda sp, x: sp.Piecewise((x, x > 0), (0, True)), "relu", builtin="relu")
# abs' is d times the sign of x, a conditional of constants: it cannot raise,
# so the scheduler evaluates it where it is read, and a chain of abs reads
# each adjoint once (a conditional on d itself would read it in two branches
# per link).
op("abs", 1, abs, "abs({0})", ATOM, (0,),
   lambda d, out, x: (d * _where(x > 0, 1, _where(x < 0, -1, 0)),),
   lambda sp, x: sp.Abs(x), "abs", builtin="abs")
op("atan2", 2, math.atan2, "math.atan2({0}, {1})", ATOM, (0,),
   lambda d, out, y, x: (d * x / (x * x + y * y), -(d * y) / (x * x + y * y)),
   lambda sp, y, x: sp.atan2(y, x), "atan2", builtin="atan2", numeric=_same_name_in("atan2"))
op("hypot", 2, math.hypot, "math.hypot({0}, {1})", ATOM, (0,),
   lambda d, out, a, b: (d * a / out, d * b / out),
   lambda sp, a, b: sp.sqrt(a * a + b * b), "hypot", builtin="hypot",
   numeric=_same_name_in("hypot"))


def _max(*xs):
    """max(...), nan if any input is nan (as PyTorch; Python's max depends on
    where the nan is: max(nan, 1) is nan, max(1, nan) is 1)."""
    m = max(xs)
    for x in xs:
        if x != x:
            return x
    return m


def _min(*xs):
    """min(...), nan if any input is nan (as PyTorch)."""
    m = min(xs)
    for x in xs:
        if x != x:
            return x
    return m


def _extremum_grad(d, out, *args):
    """Every input equal to the result shares the adjoint evenly (PyTorch's
    rule); when the result is nan, the nan inputs share it."""
    hits = [_call("or", a == out, _call("ne", a, a)) for a in args]
    count = _where(hits[0], 1, 0)
    for h in hits[1:]:
        count = count + _where(h, 1, 0)
    share = d / count
    return tuple(_where(h, share, 0) for h in hits)


op("min", None, _min, "_min({args})", ATOM, (0,), _extremum_grad, lambda sp, *xs: sp.Min(*xs),
   "min", builtin="min", helper=inspect.getsource(_min))
op("max", None, _max, "_max({args})", ATOM, (0,), _extremum_grad, lambda sp, *xs: sp.Max(*xs),
   "max", builtin="max", helper=inspect.getsource(_max))

# --- conditions --------------------------------------------------------------
# `where(c, a, b)` is `a if c else b`: only the branch taken is evaluated and
# only the branch taken receives a gradient.
op("where", 3, lambda c, a, b: a if c else b, "{1} if {0} else {2}", COND, (OR, OR, COND),
   lambda d, out, c, a, b: (None, _where(c, d, 0), _where(c, 0, d)),
   lambda sp, c, a, b: sp.Piecewise((a, c), (b, True)), "if", lazy=(1, 2),
   arg_labels=("if", "then", "else"))


def comparison(name, symbol, fn, sympy_name):
    op(name, 2, fn, f"{{0}} {symbol} {{1}}", CMP, (ADD,), None,
       lambda sp, a, b: getattr(sp, sympy_name)(a, b), symbol, kind="bool")


comparison("lt", "<", operator.lt, "StrictLessThan")
comparison("le", "<=", operator.le, "LessThan")
comparison("gt", ">", operator.gt, "StrictGreaterThan")
comparison("ge", ">=", operator.ge, "GreaterThan")
comparison("eq", "==", operator.eq, "Eq")
comparison("ne", "!=", operator.ne, "Ne")
infix("and", "and", AND, lambda a, b: a and b, None, lambda sp, a, b: sp.And(a, b), kind="bool")
infix("or", "or", OR, lambda a, b: a or b, None, lambda sp, a, b: sp.Or(a, b), kind="bool")
op("not", 1, operator.not_, "not {0}", NOT, (NOT,), None, lambda sp, x: sp.Not(x), "not",
   kind="bool")

# --- data axes ---------------------------------------------------------------
# A runtime loop's body is the scalar DAG of one iteration (compiler/loops.py).
# These ops are not printed from a template: the scheduler turns a reduction
# into a loop and a load into an element of a data argument.
op("size", 0, None, "{attr}", ATOM, (), lambda d, out: (), None, "len", has_attr=True,
   loop=True)
op("loop_index", 0, None, "{attr}", ATOM, (), lambda d, out: (), None, "index", has_attr=True,
   loop=True)
op("load", None, None, "{attr}", ATOM, (0,), None, None, "load", has_attr=True, loop=True)
for _name, _label in (("sum_over", "sum"), ("prod_over", "prod"), ("min_over", "min"),
                      ("max_over", "max")):
    op(_name, 2, None, "{attr}", ATOM, (0,), None, None, _label, loop=True)
# --- ops that cannot raise on floats (Op.total) --------------------------------
# math.sin(inf), exp(1000), x / 0, x ** -1 at 0 and log(-1) raise; these never do.
for _name in ("const", "bool", "input", "add", "sub", "mul", "neg", "abs", "relu", "min", "max",
              "atan", "atan2", "tanh", "asinh", "erf", "hypot", "sigmoid", "softplus", "where",
              "lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"):
    OPS[_name] = dataclasses.replace(OPS[_name], total=True)

# Source-language names → ops.  Infix operators come from the grammar.
BUILTINS: dict[str, str] = {o.builtin: o.name for o in OPS.values() if o.builtin}
BINARY_OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}
COMPARISONS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
