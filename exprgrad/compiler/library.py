"""Array built-ins written with the op table's operations.

`logsumexp`, `softmax`, `log_softmax`, `dot` and `mean` are not ops of
their own: each builds the DAG a careful user would write by hand (the
max-shifted sum of exponentials, for instance), so its gradient comes from
the op table's rules and the verifier proves it like any other code.

A function of the user's own with one of these names takes precedence: the
names are not reserved, so existing programs that define `dot` or `mean`
keep their meaning.

`unknown_function` and `known_function` name the nearest built-in for a
misspelt call or a Python-style `math.exp`, for error messages.
"""

from __future__ import annotations

import difflib
import math

from ..errors import CallError, ShapeError
from .opnames import ABS, ADD, DIV, EXP, LOG, LT, MAX, MUL, SUB, WHERE
from .ops import BUILTINS


# --- the functions -------------------------------------------------------------
def _logsumexp_row(g, z: list[int]) -> int:
    """log(sum(exp(z))) = m + log(sum(exp(z - m))) with m = max(z), so no
    exp overflows; an infinite max shifts by 0 instead (inf - inf is nan)."""
    shift = _finite_max(g, z)
    total = _sum(g, [g.add(EXP, g.add(SUB, x, shift)) for x in z])
    return g.add(ADD, shift, g.add(LOG, total))


def _softmax_row(g, z: list[int]) -> list[int]:
    shift = _finite_max(g, z)
    exps = [g.add(EXP, g.add(SUB, x, shift)) for x in z]
    total = _sum(g, exps)
    return [g.add(DIV, e, total) for e in exps]


def _log_softmax_row(g, z: list[int]) -> list[int]:
    shift = _finite_max(g, z)
    shifted = [g.add(SUB, x, shift) for x in z]
    log_total = g.add(LOG, _sum(g, [g.add(EXP, x) for x in shifted]))
    return [g.add(SUB, x, log_total) for x in shifted]


def _finite_max(g, z: list[int]) -> int:
    m = g.add(MAX, *z)
    is_finite = g.add(LT, g.add(ABS, m), g.const(math.inf))
    return g.add(WHERE, is_finite, m, g.const(0.0))


def _sum(g, leaves: list[int]) -> int:
    total = leaves[0]
    for x in leaves[1:]:
        total = g.add(ADD, total, x)
    return total


def _over_last_axis(row_function):
    """Apply a function of one vector to every vector along the last axis of
    an array (a matrix gives one result per row, as PyTorch's dim=-1)."""
    def apply(g, value):
        if value and isinstance(value[0], list):
            return [apply(g, v) for v in value]
        return row_function(g, value)
    return apply


def _dot(g, node, a, b) -> int:
    for value, arg in ((a, node.args[0]), (b, node.args[1])):
        if not isinstance(value, list) or any(not isinstance(x, int) for x in value):
            raise ShapeError(f"dot() takes two vectors (one-dimensional arrays), got "
                             f"{_describe(value)}", arg.loc)
    if len(a) != len(b):
        raise ShapeError(f"dot() of vectors of lengths {len(a)} and {len(b)}; they must have "
                         "one length", node.loc)
    return _sum(g, [g.add(MUL, x, y) for x, y in zip(a, b)])


def _mean(g, leaves: list[int]) -> int:
    return g.add(DIV, _sum(g, leaves), g.const(len(leaves)))


_ROW_FUNCTIONS = {
    "logsumexp": _over_last_axis(_logsumexp_row),
    "softmax": _over_last_axis(_softmax_row),
    "log_softmax": _over_last_axis(_log_softmax_row),
}
FUNCTIONS = {*_ROW_FUNCTIONS, "dot", "mean"}


def call(g, node, args: list):
    """Lower a call of a library function: `node` is the `ast.Call`, `args`
    its lowered arguments (node ids, nested lists of them, or tuples)."""
    name = node.func
    if not all(map(_known_shape, args)):
        raise ShapeError(f"{name}() takes arrays whose sizes are known at compile time; for an "
                         "array with a data axis (X[n]), write it with sum(...) and max(...)",
                         node.loc)
    if name == "dot":
        if len(args) != 2:
            raise CallError(f"dot() takes 2 vectors, got {len(args)} argument"
                            f"{'s' if len(args) != 1 else ''}", node.loc)
        _require_numbers(g, args, node)
        return _dot(g, node, *args)
    if name == "mean":  # one array (or generator), or several scalars, as max()
        leaves = _leaves(args[0]) if len(args) == 1 and isinstance(args[0], list) else args
        if any(not isinstance(v, int) for v in leaves):
            raise ShapeError("mean() takes one array (or generator) or several scalars",
                             node.loc)
        _require_numbers(g, leaves, node)
        if not leaves:
            raise CallError("mean() needs at least one value", node.loc)
        return _mean(g, leaves)
    if len(args) != 1 or not isinstance(args[0], list) or not args[0]:
        raise CallError(f"{name}() takes one non-empty array, e.g. {name}(z) for a parameter "
                        f"z[3]; a matrix gives one result per row", node.loc)
    _require_numbers(g, _leaves(args[0]), node)
    return _ROW_FUNCTIONS[name](g, args[0])


def _known_shape(value) -> bool:
    """A node id, or nested lists/tuples of them (not an array with a data axis)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif not isinstance(v, int):
            return False
    return True


def _require_numbers(g, values, node) -> None:
    for value in values:
        if isinstance(value, tuple):
            raise ShapeError(f"{node.func}() cannot take a tuple result; index it first",
                             node.loc)
        for leaf in _leaves(value) if isinstance(value, list) else [value]:
            if g.kind(leaf) != "number":
                raise ShapeError(f"{node.func}() takes numbers, not comparisons", node.loc)


def _leaves(value) -> list:
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(reversed(v))
        else:
            out.append(v)
    return out


def _describe(value) -> str:
    if isinstance(value, int):
        return "a scalar"
    if isinstance(value, tuple):
        return "a tuple"
    return "a nested array"


# --- names, for error messages ---------------------------------------------------
SPECIAL_FORMS = ("sum", "prod", "len", "range", "diff", "grad")
# Names from Python, NumPy and PyTorch for functions the language has.
ALIASES = {
    "ln": "log", "fabs": "abs", "arcsin": "asin", "arccos": "acos", "arctan": "atan",
    "arctan2": "atan2", "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh",
    "power": "pow", "maximum": "max", "minimum": "min", "amax": "max", "amin": "min",
    "fmax": "max", "fmin": "min", "expit": "sigmoid", "logistic": "sigmoid",
    "average": "mean", "inner": "dot", "vdot": "dot", "fsum": "sum", "product": "prod",
    "logaddexp": "logsumexp", "log_sum_exp": "logsumexp", "logsoftmax": "log_softmax",
    "square": "pow", "derivative": "diff", "gradient": "grad",
}


def language_functions() -> list[str]:
    """Every function a source file can call without defining it."""
    return sorted({*BUILTINS, *SPECIAL_FORMS, *FUNCTIONS})


def known_function(name: str) -> str | None:
    """The language's function for `name` as Python, NumPy or PyTorch spell
    it (`exp` → exp, `arctan` → atan), or None."""
    if name in language_functions():
        return name
    return ALIASES.get(name) or ALIASES.get(name.lower())


def unknown_function(name: str, user_functions=()) -> str:
    """The message for a call of a function that does not exist, with the
    nearest built-in or user function by name."""
    known = known_function(name)
    if known is None:
        candidates = [*language_functions(), *user_functions]
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        if not close:
            close = difflib.get_close_matches(name.lower(), candidates, n=1, cutoff=0.6)
        known = close[0] if close else None
    if known is None:
        return (f"unknown function '{name}'; define it (e.g. '{name}(x) = ...') or use a "
                "built-in (docs/language.md lists them)")
    return f"unknown function '{name}'; did you mean '{known}'?"
