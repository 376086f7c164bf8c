"""Every emitted gradient against SymPy's derivative of the source function.

One item per function and `wrt` parameter.  The emitted `f_grad`/`f_vjp`
(and `f`) are called, from the module text, at random points at 50 digits
and compared with SymPy's derivative evaluated there; a disagreement is a
failure with the point and both values.  Agreement is then upgraded to
"proved" if SymPy simplifies (SymPy's derivative − the printed DAG's adjoint)
to 0 within the time limit.
"""

from __future__ import annotations

import random
import time

import mpmath
import sympy as sp

from .numeric import as_real, close, compile_program, fmt, sample, to_mpf
from .report import FAILED, NUMERIC, PROVED, UNVERIFIED, Item
from .symbolic import Translator, prove_equal, sympy_adjoints
from ..values import flatten

REL, ABS = 1e-9, 1e-12  # doubles in emitted constants differ from the exact reals


def verify_gradients(program, emitted, namespace: dict, settings) -> list[Item]:
    by_name = {e.name: e for e in emitted}
    items: list[Item] = []
    for f in program.functions:
        gradient = by_name.get(f.name + ("_grad" if f.is_scalar else "_vjp"))
        if gradient is not None and f.wrt:
            items += _verify_function(program, f, gradient, namespace, settings)
    return items


def _verify_function(program, f, gradient, namespace, settings) -> list[Item]:
    g = program.graph
    tr = Translator(g)
    wrt = [f.params[i] for i in f.wrt]
    leaves = {p.name: flatten(p.placeholders) for p in wrt}
    outputs = flatten(f.output)
    if f.is_scalar:
        seeds = [(f.output, sp.Integer(1))]
    else:
        cotangent = gradient.params[-1].placeholders
        seeds = [(o, tr.input_symbol(c)) for o, c in zip(outputs, flatten(cotangent))]
    all_leaves = [x for p in wrt for x in leaves[p.name]]
    expected = sympy_adjoints(tr, seeds, all_leaves)
    value = [tr(o) for o in outputs]
    emitted_grads = [x for part in gradient.result[1] for x in flatten(part)]
    emitted_exprs = [tr(x) for x in emitted_grads]

    args_nodes = [p.placeholders for p in gradient.params]
    inputs = [x for a in args_nodes for x in flatten(a)]
    symbols = [tr.input_symbol(x) for x in inputs]
    evaluate = compile_program(tr.program, expected + value, symbols)
    names = _display_names(gradient.params)
    rng = random.Random(f"{program.filename}:{f.name}")
    grad_names = [name for p in wrt for name, _ in _indexed(p.name, p.placeholders)]
    outcome = _compare_at_points(f, gradient, namespace, evaluate, args_nodes, inputs, names,
                                 rng, settings, grad_names)

    items = []
    line, column = f.source.loc.line, f.source.loc.column
    offset = 0
    for p in wrt:
        count = len(leaves[p.name])
        span = range(offset, offset + count)
        offset += count
        what = f"gradient of {f.name} with respect to {p.name}"
        item = Item("gradient", line, column, what, NUMERIC)
        if outcome.error:
            item.status, item.detail = UNVERIFIED, outcome.error
        elif outcome.value_mismatch:
            item.status, item.detail, item.counterexample = FAILED, *outcome.value_mismatch
        elif any(i in outcome.mismatch for i in span):
            i = next(i for i in span if i in outcome.mismatch)
            detail, counterexample = outcome.mismatch[i]
            item.status, item.detail, item.counterexample = FAILED, detail, counterexample
        else:
            deadline = time.monotonic() + settings.proof_seconds  # for the whole item
            proved = all(prove_equal(tr.program, expected[i], emitted_exprs[i],
                                     deadline - time.monotonic()) for i in span)
            item.status = PROVED if proved else NUMERIC
            item.detail = f"SymPy's derivative = emitted {gradient.name}" if proved else \
                f"agree at {outcome.points} random points to 1e-9"
        items.append(item)
    return items


class _Outcome:
    def __init__(self):
        self.points = 0
        self.error = None
        self.value_mismatch = None
        self.mismatch: dict[int, tuple[str, dict]] = {}


def _compare_at_points(f, gradient, namespace, evaluate, args_nodes, inputs, names, rng,
                       settings, grad_names) -> _Outcome:
    outcome = _Outcome()
    n_grads = len(grad_names)
    forward, with_grad = namespace[f.name], namespace[gradient.name]
    for attempt_number in range(settings.attempts):
        if outcome.points >= settings.points:
            break
        point = dict(zip(inputs, sample(rng, len(inputs), attempt_number)))
        with mpmath.workdps(50):
            values = [to_mpf(point[x]) for x in inputs]
            args = [_shape_like(a, point, to_mpf) for a in args_nodes]
            try:
                value, grads = with_grad(*args)
                plain = forward(*args[:len(f.params)])
            except (ArithmeticError, ValueError, TypeError):
                continue
            got = [as_real(x) for x in _flat_values(grads)]
            got_value = [as_real(x) for x in _flat_values(value)]
            plain_value = [as_real(x) for x in _flat_values(plain)]
            want = [as_real(x) for x in evaluate(*values)]
            if None in got + got_value + plain_value + want:
                continue
            outcome.points += 1
            shown = {names[x]: fmt(to_mpf(point[x])) for x in inputs}
            for k, (e, a, b) in enumerate(zip(want[n_grads:], got_value, plain_value)):
                if not (close(e, a, REL, ABS) and close(e, b, REL, ABS)):
                    outcome.value_mismatch = (
                        f"the emitted value disagrees with the source function at "
                        f"{_point_text(shown)}: {f.name} = {fmt(b)}, {gradient.name} gives "
                        f"{fmt(a)}, SymPy gives {fmt(e)}",
                        {"point": shown, "emitted": fmt(a), "expected": fmt(e)})
                    return outcome
            for i, (e, a) in enumerate(zip(want[:n_grads], got)):
                if i not in outcome.mismatch and not close(e, a, REL, ABS):
                    outcome.mismatch[i] = (
                        f"at {_point_text(shown)}: emitted d{f.name}/d{grad_names[i]} = "
                        f"{fmt(a)}, SymPy's derivative = {fmt(e)}",
                        {"point": shown, "emitted": fmt(a), "expected": fmt(e)})
            if outcome.mismatch:
                return outcome
    if outcome.points == 0:
        outcome.error = (f"no sample point found where {gradient.name} and SymPy's derivative "
                         f"are both defined (tried {settings.attempts})")
    return outcome


def _point_text(shown: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def _display_names(params) -> dict[int, str]:
    names = {}
    for p in params:
        for name, node in _indexed(p.name, p.placeholders):
            names[node] = name
    return names


def _indexed(name, value):
    if isinstance(value, int):
        return [(name, value)]
    out = []
    for i, v in enumerate(value):
        out += _indexed(f"{name}[{i}]", v)
    return out


def _flat_values(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat_values(v)]
    return [value]


def _shape_like(structure, point, convert):
    if isinstance(structure, int):
        return convert(point[structure])
    items = [_shape_like(v, point, convert) for v in structure]
    return tuple(items) if isinstance(structure, tuple) else items
