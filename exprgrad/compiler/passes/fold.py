"""Constant folding and algebraic identities, applied as each node is built.

`Graph.add` asks the function `simplifier(options)` returns before creating
a node; a rule returns the id of an equivalent, simpler node or None.  Rules
only fire when they are exact for every float input, nan and inf included,
so `x * 0` is *not* folded (inf * 0 is nan) while `x * 1`, `x + 0`, `x - 0`,
`x / 1`, `--x` and `x ** 0` (1 even for nan, as `math.pow`) are.  (One
caveat: `x + 0 → x` keeps -0.0 where IEEE addition gives +0.0; the two
compare equal.)  Strength reductions (`x / 4 → x * 0.25`) live in
`passes.strength`, tried after the identities; `Options.fold`,
`.identities` and `.strength` turn each of the three off.

Folding computes what the generated code would compute, in floats (so no
exact 2**65536 is ever built).  An operation on source constants that
overflows (`exp(1000)`, `1e300^1e300`, `2^2^2^2^2`) is a located
`CompileError`, as the literal `1e400` is (a `ConstantOverflowError`; where
the constants come from a call's arguments, lowering reports it at the
call); one that is outside its domain (log(-1), 1/0) is left for run time,
where it raises with its source line.
A graph built without source locations (a traced `Value` graph) leaves every
raising operation for run time.
"""

from __future__ import annotations

from ...errors import ConstantOverflowError
from ..opnames import (ADD, AND, BOOL, CONST, CONSTANTS, DIV, IPOW, MAX, MIN, MUL, NEG, NOT, OR,
                       POW, SUB, WHERE)
from ..ops import OPS
from .strength import reduce as reduce_strength

_FOLD_ERRORS = (ArithmeticError, ValueError, TypeError)
LARGEST_INTEGER_POWER = 64  # x**k with |k| up to this is emitted as x ** k, not math.pow


def simplifier(options):
    """The `(g, op, args, attr) -> id | None` function a graph built with
    `options` asks before creating a node."""
    fold, strength = options.fold, options.strength
    rules = _RULES if options.identities else {}

    def simplify(g, op: str, args: tuple[int, ...], attr) -> int | None:
        if not args:
            return None
        if fold and all(g.nodes[a].op in CONSTANTS for a in args):
            folded = _fold_constants(g, op, args, attr)
            if folded is not None:
                return folded
        rule = rules.get(op)
        simpler = rule(g, args, attr) if rule else None
        if simpler is None and strength:
            return reduce_strength(g, op, args, attr)
        return simpler
    return simplify


def _fold_constants(g, op: str, args, attr) -> int | None:
    spec = OPS[op]
    if spec.fn is None:
        return None
    values = [g.nodes[a].attr for a in args]
    try:
        result = spec.evaluate(values, attr)
    except OverflowError:
        if g.loc is None:
            return None
        raise ConstantOverflowError(f"{_describe_fold(op, values, attr)} is too large for a "
                                    "float (the largest is about 1.8e308)", g.loc) from None
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
    if op in (POW, IPOW):
        exponent = f"{attr}" if op == IPOW else shown[1]
        return f"the constant {shown[0]} ** {exponent}"
    symbol = OPS[op].label
    if OPS[op].arity == 2 and not symbol.isalnum():
        return f"the constant {shown[0]} {symbol} {shown[1]}"
    return f"the constant {OPS[op].builtin or op}({', '.join(shown)})"


def _is(g, node_id: int, value: float) -> bool:
    node = g.nodes[node_id]
    return node.op == CONST and node.attr == value


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
    if nb.op == NEG:
        return g.add(SUB, a, nb.args[0])
    if na.op == NEG:  # -a + b is b - a, signed zeros included
        return g.add(SUB, b, na.args[0])
    if na.op == nb.op == WHERE and na.args[0] == nb.args[0]:
        cond = na.args[0]
        return g.add(WHERE, cond, g.add(ADD, na.args[1], nb.args[1]),
                     g.add(ADD, na.args[2], nb.args[2]))
    return _swapped(g, ADD, a, b)


def _sub(g, args, attr):
    a, b = args
    if _is(g, b, 0.0):
        return a
    if _is(g, a, 0.0):
        return g.add(NEG, b)
    if g.nodes[b].op == NEG:
        return g.add(ADD, a, g.nodes[b].args[0])
    k = g.value(b)
    if k is not None and k < 0.0:  # x - -1.0 reads better as x + 1.0, and is the same float
        return g.add(ADD, a, g.const(-k))
    return None


def _mul(g, args, attr):
    a, b = args
    for x, y in ((a, b), (b, a)):
        if _is(g, y, 1.0):
            return x
        if _is(g, y, -1.0):
            return g.add(NEG, x)
    return _swapped(g, MUL, a, b)


def _div(g, args, attr):
    a, b = args
    if _is(g, b, 1.0):
        return a
    if _is(g, b, -1.0):
        return g.add(NEG, a)
    return None


def _neg(g, args, attr):
    inner = g.nodes[args[0]]
    return inner.args[0] if inner.op == NEG else None


def _pow(g, args, attr):
    base, exponent = args
    k = g.value(exponent)
    if k is not None and k.is_integer() and abs(k) <= LARGEST_INTEGER_POWER:
        return g.add(IPOW, base, attr=int(k))
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
    if node.op == BOOL:
        return then if node.attr else otherwise
    if then == otherwise:
        return then
    if node.op == NOT:
        return g.add(WHERE, node.args[0], otherwise, then)
    inner_then, inner_otherwise = g.nodes[then], g.nodes[otherwise]
    if inner_then.op == WHERE and inner_then.args[0] == cond:  # c is known true there
        return g.add(WHERE, cond, inner_then.args[1], otherwise)
    if inner_otherwise.op == WHERE and inner_otherwise.args[0] == cond:
        return g.add(WHERE, cond, then, inner_otherwise.args[2])
    return None


def _and(g, args, attr):
    a, b = args
    for x, y in ((a, b), (b, a)):
        if g.nodes[x].op == BOOL:
            return y if g.nodes[x].attr else x
    return a if a == b else None


def _or(g, args, attr):
    a, b = args
    for x, y in ((a, b), (b, a)):
        if g.nodes[x].op == BOOL:
            return x if g.nodes[x].attr else y
    return a if a == b else None


def _not(g, args, attr):
    inner = g.nodes[args[0]]
    return inner.args[0] if inner.op == NOT else None


def _extremum(g, args, attr):
    return args[0] if len(set(args)) == 1 else None


_RULES = {
    ADD: _add, SUB: _sub, MUL: _mul, DIV: _div, NEG: _neg, POW: _pow,
    IPOW: _ipow, WHERE: _where, AND: _and, OR: _or, NOT: _not,
    MIN: _extremum, MAX: _extremum,
}
