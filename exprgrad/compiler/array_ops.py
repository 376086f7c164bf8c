"""How the array target prints each op of the op table.

Most ops print as in the plain target: arithmetic and comparisons are Python
operators, which arrays of every namespace overload.  The rest become Array
API functions of the namespace `xp`, or helpers of the array runtime
(`array_runtime.py`): `erf`, `sigmoid` and `softplus`.  Conditions are
`xp.where`, and `and`/`or`/`not` are `xp.logical_*`, because an array has no
single truth value.

`PARTIAL_OPS` are the ops that raise in the plain target for some inputs
(`math domain error`, overflow, division by zero).  It is found by running
each op's `fn` on a few probe values, so a new op is classified without an
entry here.  In the array target those ops give nan or ±inf where the plain
target raises (NumPy's convention, with its RuntimeWarning), and a
conditional's branch that contains one gets safe inputs (`_safe`).
"""

from __future__ import annotations

import itertools
from typing import Callable

from .ops import ATOM, CMP, OPS, POW, UNARY, Op

NAMESPACE = "xp"  # the name a generated function binds its array namespace to
# Names an array module defines or binds (its runtime's helpers and imports,
# `xp`, `dtype`): no variable of the program may take one of them.
ARRAY_RESERVED = frozenset({
    "xp", "dtype", "contextlib", "_array_api_compat", "_ERF_CACHE", "_namespace", "_data",
    "_dtype", "_scalar", "_parts", "_out", "_outs", "_nonempty", "_erf", "_erf_function",
    "_safe", "_quiet", "_sigmoid", "_softplus"})

_FUNCTIONS = ("exp", "log", "log2", "log10", "log1p", "expm1", "sqrt", "sin", "cos", "tan",
              "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
              "abs")

# op name → (template, precedence of the text, precedence each input needs);
# a template is as in the op table ({0}, {1}, {attr}) or, for a variadic op,
# a function of the inputs' texts.
Template = tuple[str | Callable[[list[str]], str], int, tuple[int, ...]]

ARRAY_TEMPLATES: dict[str, Template] = {
    **{name: (f"xp.{name}({{0}})", ATOM, (0,)) for name in _FUNCTIONS},
    "pow": ("{0} ** {1}", POW, (ATOM, UNARY)),
    "erf": ("_erf(xp, {0})", ATOM, (0,)),
    "sigmoid": ("_sigmoid(xp, {0})", ATOM, (0,)),
    "softplus": ("_softplus(xp, {0})", ATOM, (0,)),
    "relu": ("xp.where({0} < 0.0, 0.0, {0})", ATOM, (CMP + 1,)),
    "atan2": ("xp.atan2({0}, {1})", ATOM, (0,)),
    "hypot": ("xp.hypot({0}, {1})", ATOM, (0,)),
    "min": (lambda args: _nested("xp.minimum", args), ATOM, (0,)),
    "max": (lambda args: _nested("xp.maximum", args), ATOM, (0,)),
    "where": ("xp.where({0}, {1}, {2})", ATOM, (0,)),
    "and": ("xp.logical_and({0}, {1})", ATOM, (0,)),
    "or": ("xp.logical_or({0}, {1})", ATOM, (0,)),
    "not": ("xp.logical_not({0})", ATOM, (0,)),
}

# Helpers of array_runtime.py that each template calls.
TEMPLATE_HELPERS = {"erf": "_erf", "sigmoid": "_sigmoid", "softplus": "_softplus"}


def _nested(function: str, args: list[str]) -> str:
    """min(a, b, c) → xp.minimum(xp.minimum(a, b), c): the standard's
    minimum/maximum take two arrays."""
    text = args[0]
    for arg in args[1:]:
        text = f"{function}({text}, {arg})"
    return text


def array_template(op: Op) -> Template:
    """The op's array template: its own entry, or the plain target's text."""
    return ARRAY_TEMPLATES.get(op.name, (op.py, op.prec, op.arg_prec))


def render(op: Op, args: list[str], attr=None) -> str:
    """The op's array text for inputs already rendered (with parentheses)."""
    template = array_template(op)[0]
    if callable(template):
        return template(args)
    if "{args}" in template:
        return template.format(args=", ".join(args), attr=attr)
    return template.format(*args, attr=attr)


_PROBES = (-1e308, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 1e3, 1e308)
_PROBE_ATTRS = {"ipow": (-1, 2)}


def _raises_somewhere(op: Op) -> bool:
    """Whether the op's `fn` raises an arithmetic error for some probe input."""
    if op.fn is None or op.kind == "bool" or op.name == "where":
        return False
    arity = op.arity or 2
    attrs = _PROBE_ATTRS.get(op.name, (None,)) if op.has_attr else (None,)
    for inputs in itertools.product(_PROBES, repeat=arity):
        for attr in attrs:
            try:
                op.fn(*inputs, *(() if attr is None else (attr,)))
            except (ValueError, ArithmeticError):
                return True
    return False


PARTIAL_OPS = frozenset(name for name, op in OPS.items() if _raises_somewhere(op))
