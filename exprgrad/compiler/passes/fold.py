"""Constant folding and algebraic identities, applied as each node is built.

`Graph.add` asks `simplify` before creating a node; a rule returns the id of
an equivalent, simpler node or None.  Rules only fire when they are exact for
every float input, nan and inf included, so `x * 0` is *not* folded
(inf * 0 is nan) while `x * 1`, `x + 0`, `x - 0`, `x / 1`, `--x` and
`x ** 0` (1 even for nan, as `math.pow`) are.  (One caveat: `x + 0 → x`
keeps -0.0 where IEEE addition gives +0.0; the two compare equal.)
Strength reductions (`x / 4 → x * 0.25`) live in `passes.strength`, called
from here.

Folding computes what the generated code would compute, in floats (so no
exact 2**65536 is ever built).  An operation on source constants that
overflows (`exp(1000)`, `1e300^1e300`, `2^2^2^2^2`) is a located
`CompileError`, as the literal `1e400` is; one that is outside its domain
(log(-1), 1/0) is left for run time, where it raises with its source line.
A graph built without source locations (a traced `Value` graph) leaves every
raising operation for run time.
"""

from __future__ import annotations

from ...errors import CompileError
from ..ops import OPS
from .strength import reduce as reduce_strength

_FOLD_ERRORS = (ArithmeticError, ValueError, TypeError)
LARGEST_INTEGER_POWER = 64  # x**k with |k| up to this is emitted as x ** k, not math.pow


def simplify(g, op: str, args: tuple[int, ...], attr) -> int | None:
    if not args:
        return None
    nodes = g.nodes
    if all(nodes[a].op in ("const", "bool") for a in args):
        folded = _fold_constants(g, op, args, attr)
        if folded is not None:
            return folded
    rule = _RULES.get(op)
    return rule(g, args, attr) if rule else None


def _fold_constants(g, op: str, args, attr) -> int | None:
    spec = OPS[op]
    if spec.fn is None:
        return None
    values = [g.nodes[a].attr for a in args]
    try:
        result = spec.fn(*values, attr) if spec.has_attr else spec.fn(*values)
    except OverflowError:
        if g.loc is None:
            return None
        raise CompileError(f"{_describe_fold(op, values, attr)} is too large for a float "
                           "(the largest is about 1.8e308)", g.loc) from None
    except _FOLD_ERRORS:
        return None
    if spec.kind == "bool":
        return g.boolean(result)
    if isinstance(result, complex):
        return None
    return g.const(result)


def _describe_fold(op: str, values, attr) -> str:
    """The folded operation as a short text: `2.0 ** 65536.0`, `exp(1000.0)`."""
    shown = [f"{v:.6g}" for v in values]
    if op in ("pow", "ipow"):
        exponent = f"{attr}" if op == "ipow" else shown[1]
        return f"the constant {shown[0]} ** {exponent}"
    symbol = OPS[op].label
    if OPS[op].arity == 2 and not symbol.isalnum():
        return f"the constant {shown[0]} {symbol} {shown[1]}"
    return f"the constant {OPS[op].builtin or op}({', '.join(shown)})"


def _is(g, node_id: int, value: float) -> bool:
    node = g.nodes[node_id]
    return node.op == "const" and node.attr == value


def _swapped(g, op, a, b) -> int | None:
    """a + b and b + a are one node (float + and * commute exactly)."""
    return g.find(op, (b, a))


def _add(g, args, attr):
    a, b = args
    if _is(g, b, 0.0):
        return a
    if _is(g, a, 0.0):
        return b
    na, nb = g.nodes[a], g.nodes[b]
    if nb.op == "neg":
        return g.add("sub", a, nb.args[0])
    if na.op == "neg":  # -a + b is b - a, signed zeros included
        return g.add("sub", b, na.args[0])
    if na.op == nb.op == "where" and na.args[0] == nb.args[0]:
        cond = na.args[0]
        return g.add("where", cond, g.add("add", na.args[1], nb.args[1]),
                     g.add("add", na.args[2], nb.args[2]))
    return _swapped(g, "add", a, b)


def _sub(g, args, attr):
    a, b = args
    if _is(g, b, 0.0):
        return a
    if _is(g, a, 0.0):
        return g.add("neg", b)
    if g.nodes[b].op == "neg":
        return g.add("add", a, g.nodes[b].args[0])
    k = g.value(b)
    if k is not None and k < 0.0:  # x - -1.0 reads better as x + 1.0, and is the same float
        return g.add("add", a, g.const(-k))
    return None


def _mul(g, args, attr):
    a, b = args
    for x, y in ((a, b), (b, a)):
        if _is(g, y, 1.0):
            return x
        if _is(g, y, -1.0):
            return g.add("neg", x)
    return _swapped(g, "mul", a, b)


def _div(g, args, attr):
    a, b = args
    if _is(g, b, 1.0):
        return a
    if _is(g, b, -1.0):
        return g.add("neg", a)
    return reduce_strength(g, "div", args, attr)


def _neg(g, args, attr):
    inner = g.nodes[args[0]]
    return inner.args[0] if inner.op == "neg" else None


def _pow(g, args, attr):
    base, exponent = args
    k = g.value(exponent)
    if k is not None and k.is_integer() and abs(k) <= LARGEST_INTEGER_POWER:
        return g.add("ipow", base, attr=int(k))
    return None


def _ipow(g, args, attr):
    (x,) = args
    if attr == 0:
        return g.const(1.0)
    if attr == 1:
        return x
    return None


def _where(g, args, attr):
    cond, then, otherwise = args
    node = g.nodes[cond]
    if node.op == "bool":
        return then if node.attr else otherwise
    if then == otherwise:
        return then
    if node.op == "not":
        return g.add("where", node.args[0], otherwise, then)
    return None


def _and(g, args, attr):
    a, b = args
    for x, y in ((a, b), (b, a)):
        if g.nodes[x].op == "bool":
            return y if g.nodes[x].attr else x
    return a if a == b else None


def _or(g, args, attr):
    a, b = args
    for x, y in ((a, b), (b, a)):
        if g.nodes[x].op == "bool":
            return x if g.nodes[x].attr else y
    return a if a == b else None


def _not(g, args, attr):
    inner = g.nodes[args[0]]
    return inner.args[0] if inner.op == "not" else None


def _extremum(g, args, attr):
    return args[0] if len(set(args)) == 1 else None


_RULES = {
    "add": _add, "sub": _sub, "mul": _mul, "div": _div, "neg": _neg, "pow": _pow,
    "ipow": _ipow, "where": _where, "and": _and, "or": _or, "not": _not,
    "min": _extremum, "max": _extremum,
}
