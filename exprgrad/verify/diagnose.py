"""Where a hand derivation first goes wrong.

When a failing check has the form `diff(F(args), v) == rhs` (either side),
with F a function of the file and its arguments names or numbers, exprgrad
computes with SymPy the true derivative of F's output with respect to each
local of F that lies between v and the output: the adjoint dF/dlocal, the
local treated as an independent variable and everything computed from it
following (what backpropagation by hand writes down node by node).

* If rhs is a call of another function whose locals are named `d_X` (the
  convention of generated code: `d_X` holds dF/dX for F's local or parameter
  X), each such local is a claim; the claims are compared in the order they
  are written and the report says which hold and which is the first that
  disagrees ("d_d = dL/dd holds, d_e disagrees: yours = 2, dL/de = -2").
* Otherwise the report lists the true derivatives along the way, from the
  output back to v, so the first step that differs from the hand derivation
  is easy to spot.

Everything is evaluated at the failing point (the `where` values or the
counterexample).
"""

from __future__ import annotations

import mpmath
import sympy as sp

from ..grammar import ast
from .numeric import as_real, compile_program, fmt, to_mpf
from .symbolic import Translator, exact, sympy_adjoints
from ..compiler.values import flatten


def diagnose(program, check, point: dict, settings) -> list[str]:
    try:
        return _diagnose(program, check, point)
    except (ArithmeticError, ValueError, TypeError, KeyError, RecursionError):
        return []  # a diagnosis is a courtesy; the failure itself is already reported


def _diagnose(program, check, point) -> list[str]:
    source = check.source
    for side, other in ((source.lhs, source.rhs), (source.rhs, source.lhs)):
        found = _derivative_of_call(program, side)
        if found is not None:
            call, variable = found
            return _explain(program, check, point, call, variable, other)
    return []


def _derivative_of_call(program, node):
    if not (isinstance(node, ast.Call) and node.func == "diff" and len(node.args) == 2):
        return None
    inner, variable = node.args
    if isinstance(inner, ast.Call) and _function(program, inner.func) is not None \
            and isinstance(variable, ast.Name):
        return inner, variable.id
    return None


def _function(program, name):
    try:
        return program.function(name)
    except KeyError:
        return None


class _Context:
    """SymPy symbols for the check's free variables and their values."""

    def __init__(self, program, check, point):
        self.g = program.graph
        self.symbols = {name: sp.Symbol(f"v_{name}", real=True) for name in check.free}
        self.values = {self.symbols[k]: v for k, v in point.items() if k in self.symbols}

    def argument(self, node):
        if isinstance(node, ast.Name) and node.id in self.symbols:
            return self.symbols[node.id]
        if isinstance(node, ast.Number):
            return exact(node.value)
        if isinstance(node, ast.Unary) and node.op == "-" and isinstance(node.operand, ast.Number):
            return -exact(node.operand.value)
        raise ValueError("argument too complex to diagnose")

    def translator(self, function, call) -> Translator:
        tr = Translator(self.g)
        for param, arg in zip(function.params, call.args):
            if param.shape:
                raise ValueError("array parameters are not diagnosed")
            tr.value[param.placeholders] = self.argument(arg)
        return tr

    def evaluate(self, program, exprs) -> list:
        symbols = list(self.values)
        run = compile_program(program, exprs, symbols)
        with mpmath.workdps(50):
            return [as_real(v) for v in run(*(to_mpf(self.values[s]) for s in symbols))]


def _explain(program, check, point, call, variable, other) -> list[str]:
    f = program.function(call.func)
    ctx = _Context(program, check, point)
    if variable not in ctx.symbols:
        return []
    v = ctx.symbols[variable]
    receiving = [p for p, a in zip(f.params, call.args)
                 if isinstance(a, ast.Name) and a.id == variable]
    locals_ = _locals(program, f)
    base = ctx.translator(f, call)
    base(f.output)
    on_path = [(label, n) for label, n in locals_ if _depends(base.value[n], v, base.program)]
    truth: dict[str, object] = {}
    for label, n in on_path:
        truth[label] = _adjoint(ctx, f, call, n)
    for p in receiving:
        truth[p.name] = _adjoint(ctx, f, call, p.placeholders)
    claims = _claims(program, ctx, other, f)
    name = f.name
    if claims:
        return _compare_claims(name, claims, truth)
    order = [label for label, _ in reversed(on_path)] + [p.name for p in receiving]
    chain = ", ".join(f"d{name}/d{label} = {fmt(truth[label])}" for label in order)
    return [f"the true derivatives of {name} along the way: {chain}"] if chain else []


def _locals(program, f) -> list[tuple[str, int]]:
    """(label, template node) of each local assignment of f, in source order.
    An assignment of a bare name or number is an alias of that node; any
    other assignment made the next node carrying the local's name."""
    g = program.graph
    env = {p.name: p.placeholders for p in f.params}
    named: dict[str, list[int]] = {}
    for n in g.ancestors(flatten(f.output)):
        name = g.names.get(n)
        if name is not None and g.nodes[n].op not in ("const", "input"):
            named.setdefault(name, []).append(n)
    found: list[tuple[str, int]] = []
    count: dict[str, int] = {}
    for statement in f.source.body:
        target, value = statement.target, statement.value
        if statement.op is None and isinstance(value, ast.Name) and isinstance(
                env.get(value.id), int):
            node = env[value.id]
        elif statement.op is None and isinstance(value, ast.Number):
            node = g.const(value.value)
        elif named.get(target):
            node = named[target].pop(0)
        else:
            continue  # folded away or not a scalar: nothing to compare
        count[target] = count.get(target, 0) + 1
        env[target] = node
        found.append((target if count[target] == 1 else f"{target}#{count[target]}", node))
    return found


def _depends(expr, symbol, program) -> bool:
    return symbol in program.expand(expr).free_symbols


def _adjoint(ctx: _Context, f, call, node: int):
    """dF/d(node) at the point: node replaced by a free symbol s, F's output
    differentiated with respect to s by SymPy, then s set to node's value."""
    plain = ctx.translator(f, call)
    value = plain(node)
    cut = ctx.translator(f, call)
    s = sp.Symbol("s_cut", real=True)
    cut.value[node] = s
    (derivative,) = sympy_adjoints(cut, [(f.output, sp.Integer(1))], [node])
    at = plain.program.expand(value)
    expr = cut.program.expand(derivative).xreplace({s: at})
    merged = _merge(plain.program, cut.program)
    return ctx.evaluate(merged, [expr])[0]


def _merge(a, b):
    from .symbolic import Program
    merged = Program()
    merged.defs.update(a.defs)
    merged.defs.update(b.defs)
    return merged


def _claims(program, ctx: _Context, other, f) -> list[tuple[str, str, object]]:
    """(claim name, target label, value) for each `d_X` local of a derivation
    function called on the other side of the check."""
    if not isinstance(other, ast.Call):
        return []
    helper = _function(program, other.func)
    if helper is None or helper is f:
        return []
    targets = {label for label, _ in _locals(program, f)} | {p.name for p in f.params}
    tr = ctx.translator(helper, other)
    claims = []
    for label, n in _locals(program, helper):
        if label.startswith("d_") and label[2:] in targets:
            value = ctx.evaluate(tr.program, [tr(n)])[0]
            claims.append((label, label[2:], value))
    return claims


def _compare_claims(name, claims, truth) -> list[str]:
    held = []
    for claim, target, value in claims:
        true = truth.get(target)
        if true is None:
            continue  # not on the path to the variable: nothing to compare
        if value is not None and abs(value - true) <= 1e-9 * max(abs(value), abs(true)) + 1e-15:
            held.append(f"{claim} = d{name}/d{target} holds ({fmt(true)})")
            continue
        first = (f"{claim} disagrees: yours = {fmt(value)}, d{name}/d{target} = {fmt(true)} "
                 "— the derivation first goes wrong here")
        return held + [first]
    return held + ["every d_ claim on the path holds; the error is in how they are combined"]

