"""`check lhs == rhs [where ...] [within tol]` statements.

Both sides are evaluated by running the emitted text: the check's
expressions are generated as a Python function of its free variables, like
any function of the file, and called at 50 digits.  The source's own
semantics (its SymPy translation, evaluated branch by branch) is evaluated
beside it: where the emitted code raises, or gives other numbers, while the
source gives numbers, the check FAILED (the generated code evaluates
something the source does not), never a point silently drawn again.

With every free variable given by `where`, both sides are evaluated there.
Otherwise the remaining free variables are sampled at readable random points
(0.37, -1.2: exact rationals, so the counterexample shown is the point used);
a disagreement refutes the check with that point, and agreement is upgraded
to "proved" when SymPy simplifies lhs − rhs to 0 (for conditions: when they
are equivalent) within the item's time budget.

Tolerance: |lhs − rhs| ≤ tol · max(|lhs|, |rhs|) + 1e-15, tol = `within` or
1e-9.  The small absolute floor absorbs constant folding in double precision
(`sin(pi)` folds to 1.2e-16, not 0).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import sympy as sp

from ..errors import CompileError
from ..grammar import ast, parse
from ..compiler.loops import has_data_axis
from ..compiler.lower import lower_at_lengths
from ..compiler.lower_checks import list_lengths
from ..compiler.pipeline import Emitted, generate
from ..compiler.schedule import Signature
from .diagnose import diagnose
from .numeric import (FRAGILE, SourceDag, as_real, close, compile_program, error_name,
                      flat_values, fmt, load_emitted, sample, to_mpf)
from .report import AT_POINT, FAILED, NUMERIC, PROVED, TIME_LIMIT, UNVERIFIED, Item
from .symbolic import Translator, exact, prove_equal
from .timelimit import budget, uninterrupted
from ..compiler.values import flatten

DEFAULT_WITHIN = 1e-9
ABS = 1e-15
EMITTED_REL, EMITTED_ABS = 1e-9, 1e-12  # the emitted code against the source semantics
EMITTED_ERRORS = (ArithmeticError, ValueError, TypeError)


def check_tasks(program, settings, namespace: dict) -> list:
    """(line, run) per `check` statement; `run()` returns its one item.
    `namespace`: the file's emitted module, whose functions the check calls."""
    return [(check.source.loc.line,
             lambda check=check: [_verify(program, check, settings, namespace)])
            for check in program.checks]


def check_text(program, check) -> str:
    """The check's source line, found by the parser's notion of a line
    (`\\n` only: a form feed or U+2028 in a comment does not start one)."""
    lines = program.source.split("\n")
    line = check.source.loc.line
    return lines[line - 1].split("#")[0].strip() if 0 < line <= len(lines) else "check"


@dataclass
class _Sides:
    """The check translated: SymPy sides, the point's symbols, the emitted function."""

    tr: Translator
    lhs: list
    rhs: list
    bound: dict  # symbol → exact value given by `where`
    given: list  # the doubles the program receives for the `where` values
    free: dict  # name → symbol, for the sampled variables
    names: list  # every variable, `where` ones first
    reference: object  # mpf inputs → lhs + rhs, branch by branch
    emitted: object  # the emitted function of the same inputs
    conditions: bool  # the sides are conditions (True/False), not numbers
    calls: list  # _Call per call of a file function, run from the file's module
    dag: SourceDag  # the sides' DAG, evaluated node by node (`fragile_tie`)


@dataclass
class _Call:
    """`F(args)` in the check, with args numbers or the check's variables:
    the module's emitted F is called and compared with the source's F."""

    text: str  # F(a, b) as in the source
    function: object  # the emitted function
    args: list  # per argument: an index into the point's values, or a number
    reference: object  # the point's values (mpf) → [F's outputs], branch by branch


def _verify(program, check, settings, namespace) -> Item:
    loc = check.source.loc
    item = Item("check", loc.line, loc.column, check_text(program, check), FAILED)
    problem = (_shape_problem(check) or _where_problem(check, program.graph)
               or _kind_problem(check, program.graph))
    if problem:
        item.detail = problem
        return item
    progress = {"points": 0, "finished": False, "proved": None, "fragile": 0}
    ok, sides = False, None
    with budget(settings.timeout) as b:
        ok, sides = b.run(lambda: _translate(program, check, namespace))
        if ok and isinstance(sides, str):
            item.status, item.detail = UNVERIFIED, sides
            return item
        if ok:
            b.run(lambda: _evaluate(program, check, sides, settings, item, progress, b))
            if item.status == NUMERIC and sides.free and settings.prove:
                progress["proved"] = _prove(sides, b)
    return _conclude(item, progress, sides if ok else None, settings)


def _translate(program, check, namespace) -> _Sides | str:
    g = program.graph
    tr = Translator(g)
    lhs, rhs = [tr(n) for n in flatten(check.lhs)], [tr(n) for n in flatten(check.rhs)]
    bound = {tr.input_symbol(check.free[name]): exact(g.value(value))
             for name, value in check.where.items()}
    given = [g.value(value) for value in check.where.values()]
    free = {name: tr.input_symbol(node) for name, node in check.free.items()
            if name not in check.where}
    names = list(check.where) + list(free)
    symbols = list(bound) + list(free.values())
    reference = compile_program(tr.program, lhs + rhs, symbols)
    try:
        emitted = _emit_check(program, check, names)
    except CompileError as error:
        return f"the check could not be generated as Python: {error.message}"
    conditions = g.kind(flatten(check.lhs)[0]) == "bool"
    calls = _calls(program, check, names, symbols, namespace)
    dag = SourceDag(g, flatten(check.lhs) + flatten(check.rhs))
    return _Sides(tr, lhs, rhs, bound, given, free, names, reference, emitted, conditions, calls,
                  dag)


def _calls(program, check, names, symbols, namespace) -> list[_Call]:
    calls = []
    for side in (check.source.lhs, check.source.rhs):
        for node in ast.walk(side):
            if not isinstance(node, ast.Call) or node.func not in namespace:
                continue
            f = next((f for f in program.functions if f.name == node.func), None)
            if f is not None and any(has_data_axis(p.shape) for p in f.params):
                call = _data_call(program, check, f, node, names, symbols, namespace)
                calls += [call] if call is not None else []
                continue
            args = [_argument(a, names) for a in node.args]
            if f is None or None in args or len(args) != len(f.params) or any(
                    p.shape for p in f.params):
                continue
            # a program of its own: another call of f defines f's nodes (t4 = ...)
            # from other arguments, which must not replace these definitions
            call_tr = Translator(program.graph)
            for p, a in zip(f.params, args):
                call_tr.value[p.placeholders] = symbols[a] if isinstance(a, int) else exact(a)
            outputs = [call_tr(o) for o in flatten(f.output)]
            text = f"{f.name}({', '.join(_argument_text(a, names) for a in args)})"
            calls.append(_Call(text, namespace[f.name], args,
                               compile_program(call_tr.program, outputs, symbols)))
    return calls


def _data_call(program, check, f, node, names, symbols, namespace) -> _Call | None:
    """A call of a function with data axes, its data given by `where`: the
    emitted F (rolled loops) against the source's F at the data's lengths."""
    position = {check.free[name]: i for i, name in enumerate(names)}
    args = [_data_argument(program.graph, a, names, check, position) for a in node.args]
    if None in args or len(args) != len(f.params):
        return None
    lengths = {}
    for p, a in zip(f.params, args):
        for d, length in zip(p.shape, list_lengths(a)):
            if isinstance(d, str):
                lengths.setdefault(d, length)
    try:
        g, reference = lower_at_lengths(parsed(program.source, program.filename), f.name,
                                        lengths, program.graph.options)
    except CompileError:
        return None  # the check's own lowering of the call says what is wrong
    call_tr = Translator(g)
    for p, a in zip(reference.params, args):
        for placeholder, v in zip(flatten(p.placeholders), _flat(a)):
            call_tr.value[placeholder] = symbols[v] if isinstance(v, int) else exact(v)
    outputs = [call_tr(o) for o in flatten(reference.output)]
    text = f"{f.name}({', '.join(_source_text(a) for a in node.args)})"
    return _Call(text, namespace[f.name], args, compile_program(call_tr.program, outputs,
                                                                symbols))


@lru_cache(maxsize=4)
def parsed(source: str, filename: str):
    """The file's syntax tree (immutable), parsed once for all its checks."""
    return parse(source, filename)


def _data_argument(g, node, names, check, position):
    """An argument as the point gives it: an index into the point's values,
    a number, or a nested list of those (data given or sampled)."""
    if isinstance(node, ast.Name) and node.id in check.data:
        def element(value):
            if isinstance(value, list):
                return [element(v) for v in value]
            return position[value] if value in position else g.value(value)
        return element(check.data[node.id])
    return _argument(node, names)


def _flat(value) -> list:
    if isinstance(value, list):
        return [x for v in value for x in _flat(v)]
    return [value]


def _source_text(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.text if isinstance(node, ast.Number) else "..."


def _argument(node, names):
    """A variable's index in the point, a number (float), or None: too complex."""
    if isinstance(node, ast.Name) and node.id in names:
        return names.index(node.id)
    if isinstance(node, ast.Number):
        return float(node.value)
    if isinstance(node, ast.Unary) and node.op == "-" and isinstance(node.operand, ast.Number):
        return -float(node.operand.value)
    return None


def _argument_text(a, names) -> str:
    return names[a] if isinstance(a, int) else fmt(mpmath.mpf(a))


def _emit_check(program, check, names):
    """The check's sides as a generated Python function of its variables."""
    params = [Signature(_identifier(name), (), check.free[name]) for name in names]
    outputs = flatten(check.lhs) + flatten(check.rhs)
    name = "check_line_%d" % check.source.loc.line
    emitted = Emitted(name, params, outputs, "the sides of a check", check.source.loc)
    return load_emitted(generate(program, [emitted]))[name]


def _identifier(name: str) -> str:
    """A free element of a data array, `y[2]`, as a parameter name: `y_2`."""
    return name.replace("][", "_").replace("[", "_").rstrip("]")


def _evaluate(program, check, sides: _Sides, settings, item: Item, progress, b) -> None:
    rng = random.Random(f"{program.filename}:{check.source.loc.line}:{item.what}")
    tol = check.within if check.within is not None else DEFAULT_WITHIN
    attempts = settings.attempts if sides.free else 1
    for attempt_number in range(attempts):
        if progress["points"] >= settings.points or not b.left():
            return
        exact_values = list(sides.bound.values()) + sample(rng, len(sides.free), attempt_number,
                                                         decimals=2)
        doubles = sides.given + [to_mpf(v) for v in exact_values[len(sides.given):]]
        point = {name: _show(v) for name, v in zip(sides.names, exact_values)}
        with uninterrupted(), mpmath.workdps(50):
            want = [_value(v) for v in sides.reference(*(to_mpf(v) for v in exact_values))]
            if None in want:
                continue  # the source is undefined here
            try:
                got = [_value(v) for v in sides.emitted(*(to_mpf(v) for v in doubles))]
            except EMITTED_ERRORS as error:
                return _emitted_fails(item, point, want, sides, f"raises {error_name(error)}")
        if None in got or not _same(got, want, EMITTED_REL, EMITTED_ABS):
            with uninterrupted():
                fragile = sides.dag.fragile_tie(_at_nodes(check, sides, exact_values))
            if fragile:
                progress["fragile"] += 1
                continue  # doubles may decide that comparison either way
            return _emitted_fails(item, point, want, sides, "gives " + _values(got))
        with uninterrupted():
            call_fails = _a_call_fails(sides, item, point, exact_values, doubles)
        if call_fails:
            return
        progress["points"] += 1
        n = len(sides.lhs)
        left, right = got[:n], got[n:]
        bad = next((i for i, (a, c) in enumerate(zip(left, right))
                    if not _same([a], [c], tol, ABS)), None)
        if bad is not None:
            _refute(item, point, left, right, bad)
            exact_point = dict(zip(sides.names, exact_values))
            found, diagnosis = b.run(lambda: diagnose(program, check, exact_point, settings))
            item.diagnosis = diagnosis if found else []
            return
        if not sides.free:
            item.status = AT_POINT
            item.detail = f"{_where_text(point)}lhs = {_values(left)}, rhs = {_values(right)}"
            return
        item.status = NUMERIC  # so far
    progress["finished"] = True


def _at_nodes(check, sides: _Sides, exact_values) -> dict:
    """The point as the source's DAG takes it: input node → mpf."""
    return {check.free[name]: to_mpf(v) for name, v in zip(sides.names, exact_values)}


def _a_call_fails(sides: _Sides, item: Item, point: dict, exact_values, doubles) -> bool:
    """Run each call of a file function in the check from the emitted module."""
    for call in sides.calls:
        with mpmath.workdps(50):
            want = [as_real(v) for v in call.reference(*(to_mpf(v) for v in exact_values))]
            if None in want:
                continue  # the source is undefined there: the sides say so already
            args = [_point_value(a, doubles) for a in call.args]
            try:
                got = [as_real(v) for v in flat_values(call.function(*args))]
            except EMITTED_ERRORS as error:
                what = f"raises {error_name(error)}"
            else:
                if None not in got and _same(got, want, EMITTED_REL, EMITTED_ABS):
                    continue
                what = "gives " + _values(got)
        item.status = FAILED
        item.detail = (f"{_where_text(point)}the emitted {call.text} {what}, but the source, "
                       f"branch by branch, gives {_values(want)}")
        item.counterexample = {"point": point, "call": call.text, "emitted": what,
                               "expected": _number(want[0])}
        return True
    return False


def _point_value(a, doubles):
    """A call's argument at the point (mpf), nested lists for data."""
    if isinstance(a, list):
        return [_point_value(v, doubles) for v in a]
    return to_mpf(doubles[a]) if isinstance(a, int) else mpmath.mpf(a)


def _emitted_fails(item: Item, point: dict, want: list, sides: _Sides, what: str) -> None:
    n = len(sides.lhs)
    item.status = FAILED
    item.detail = (f"{_where_text(point)}the emitted code {what}, but the source, branch by "
                   f"branch, gives lhs = {_values(want[:n])}, rhs = {_values(want[n:])}")
    item.counterexample = {"point": point, "lhs": _number(want[0]), "rhs": _number(want[n]),
                           "emitted": what}


def _prove(sides: _Sides, b) -> bool | None:
    """True (proved), False (not shown) or None (no time)."""
    program = sides.tr.program

    def substituted():  # the sides with the `where` values put in
        try:
            return [(program.expand(a).xreplace(sides.bound),
                     program.expand(c).xreplace(sides.bound))
                    for a, c in zip(sides.lhs, sides.rhs)]
        except Exception:  # noqa: BLE001 - SymPy failed to rebuild them: not
            return None  # shown (as in `symbolic.prove_equal`)
    finished, pairs = b.run(substituted, needs_interrupt=True)
    if not finished:
        return None
    if pairs is None:
        return False
    for a, c in pairs:
        proved = prove_equal(program, a, c, b)
        if proved is not True:
            return proved
    return True


def _conclude(item: Item, progress, sides, settings) -> Item:
    if item.status in (FAILED, AT_POINT) and (item.counterexample or item.status == AT_POINT):
        return item
    points, free = progress["points"], sides.free if sides is not None else {}
    names = ", ".join(free)
    fragile = progress["fragile"]
    skipped = (f"; {fragile} point{'s' if fragile != 1 else ''} skipped: a comparison "
               f"there is within {FRAGILE:g} of a tie that doubles cannot hold, which the "
               "emitted code may decide either way") if fragile else ""
    if points == 0:
        item.status = UNVERIFIED
        if fragile and not free:
            item.detail = ("at the given point a comparison is within "
                           f"{FRAGILE:g} of a tie that doubles cannot hold (the source's "
                           "sides are reals, the emitted code's doubles): the emitted code "
                           "may decide it either way, so the point is not compared")
        elif not progress["finished"]:
            item.detail = f"not evaluated within the time limit ({settings.timeout:g} s)"
        elif not free:
            item.detail = "a side is undefined at the given point"
        else:
            item.detail = (f"no sample point where both sides are defined "
                           f"(tried {settings.attempts}){skipped}")
        return item
    compared = f"agree at {points} random points in {names}{skipped}"
    proved = progress["proved"]
    if proved:
        item.status, item.detail = PROVED, f"identity in {names}"
    elif progress["finished"] and (proved is False or not settings.prove):
        item.status, item.detail = NUMERIC, compared
    else:
        item.status = TIME_LIMIT
        item.detail = f"{compared}; the time limit ({settings.timeout:g} s) ran out"
    return item


def _value(v):
    """A side's value: a number (mpf), a condition's truth (bool), or None."""
    return v if isinstance(v, bool) else as_real(v)


def _same(a: list, b: list, rel: float, absolute: float) -> bool:
    for x, y in zip(a, b):
        if isinstance(x, bool) or isinstance(y, bool):
            if x is not y:
                return False
        elif not close(x, y, rel, absolute):
            return False
    return True


def _number(v):
    return v if isinstance(v, bool) or v is None else fmt(v)


def _refute(item: Item, point: dict, left, right, index: int) -> None:
    element = "" if len(left) == 1 else f" (element {index})"
    item.detail = (f"{_where_text(point)}lhs = {_values([left[index]])}, "
                   f"rhs = {_values([right[index]])}{element}")
    item.counterexample = {"point": point, "lhs": _number(left[index]),
                           "rhs": _number(right[index])}


def _where_text(point: dict) -> str:
    if not point:
        return ""
    return "at " + ", ".join(f"{k}={v}" for k, v in point.items()) + ": "


def _values(values) -> str:
    return ", ".join(str(v) if isinstance(v, bool) else fmt(v) for v in values)


def _show(value) -> str:
    if isinstance(value, sp.Rational) and value.q in (1, 10, 100, 1000):
        return str(sp.Float(value, 15)).rstrip("0").rstrip(".") if value.q != 1 else str(value)
    with mpmath.workdps(50):
        return fmt(to_mpf(value))


def _shape_problem(check) -> str | None:
    if _shape(check.lhs) != _shape(check.rhs):
        return (f"the sides have different shapes: {_shape(check.lhs) or 'scalar'} and "
                f"{_shape(check.rhs) or 'scalar'}")
    return None


def _where_problem(check, g) -> str | None:
    used = {node.id for side in (check.source.lhs, check.source.rhs) for node in ast.walk(side)
            if isinstance(node, ast.Name)}
    for name in check.data:
        if name not in used:
            return f"'where {name}=...' gives data for '{name}', which the check does not use"
    for name, value in check.where.items():
        if name not in check.free:
            return f"'where {name}=...' gives a value for '{name}', which the check does not use"
        if not isinstance(value, int):
            return f"'where {name}=...' must give a number"
    return None


def _kind_problem(check, g) -> str | None:
    kinds = {g.kind(n) for n in flatten(check.lhs) + flatten(check.rhs)}
    if len(kinds) > 1:
        return "one side is a condition (true or false) and the other a number"
    return None


def _shape(value):
    if isinstance(value, int):
        return ()
    if isinstance(value, tuple):
        return ("tuple", tuple(_shape(v) for v in value))
    return (len(value),) + (_shape(value[0]) if value else ())

