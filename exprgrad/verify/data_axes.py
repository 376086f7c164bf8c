"""The gradients of a function with data axes (`X[n][5]`, rolled loops).

The emitted code keeps each loop over a data axis rolled, so there is no
fixed function to hand SymPy.  Each item is verified twice over:

* **numerically, at small lengths**: the function is lowered again at fixed
  lengths of its size names (n = 0, 1, 2, 5; several size names each get
  these lengths in a random order, and every parameter that shares a name
  has that length), which unrolls its loops (`lower.lower_at_lengths`, the
  call-site lowering of `_inline_body`).  SymPy differentiates that
  unrolled function, and the emitted text (the rolled loops) is run at 50
  digits at random points and at points that take its branches, exactly as
  for a function without data axes (gradients.py);
* **symbolically, for every length**, where it can: the rolled DAG becomes
  SymPy with each reduction a `Sum` over its loop variable (`sums.py`),
  SymPy differentiates the per-iteration term under the `Sum`, and the
  emitted adjoint of the loop body is proved equal to it, and so is each
  element of a gradient along a data axis (`d_X`); `prod`/`min`/`max` over
  a data axis rest on the numeric comparison, and the item says so.

A length at which the source is undefined (a mean at n = 0) or does not
compile (`max` of nothing at n = 0) is named in the item's detail; the
other lengths are compared.

Data make exact ties of `min`/`max` common (every iteration that takes the
same branch of a conditional is the same value), so the reference
differentiates each min/max with the language's even share
(`EvenShareTranslator`), and a point a hair from a tie, where the emitted
constants (doubles) and the source's (exact reals) may see different
sides of it, is skipped and counted (`NearTies`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import sympy as sp

import mpmath

from . import branches
from .gradients import (EMITTED_ERRORS, SKIPPED, _Setup, _State, _compare, _display_names,
                        _indexed, _shape_like, _skipped_text)
from .numeric import UNDEFINED, compile_program, error_name, sample, to_mpf
from .report import FAILED, NUMERIC, PROVED, TIME_LIMIT, UNVERIFIED, Item
from .sums import prove_gradient
from .symbolic import Translator, sympy_adjoints
from .timelimit import budget
from ..errors import CompileError
from ..compiler.loops import RuntimeArray
from ..compiler.lower import lower_at_lengths
from ..compiler.values import flatten

LENGTHS = (0, 1, 2, 5)


@dataclass
class _Length:
    """What was found at one assignment of lengths to the size names."""

    lengths: dict
    state: _State | None = None
    spans: list = field(default_factory=list)  # per wrt parameter: its gradient indices
    note: str = ""  # why nothing was compared here (undefined, does not compile)
    near: object = None  # NearTies: the points skipped beside a tie


def size_names(f) -> list[str]:
    """The size names of f's parameters, in order of first appearance."""
    names: list[str] = []
    for p in f.params:
        for d in p.shape:
            if isinstance(d, str) and d not in names:
                names.append(d)
    return names


def length_trials(f) -> list[dict]:
    """The lengths to compare at: n = 0, 1, 2, 5 for one size name; with
    several, each name takes each of these lengths once, in an order drawn
    per name (seeded by the function), so the names do not move together."""
    names = size_names(f)
    if len(names) == 1:
        return [{names[0]: n} for n in LENGTHS]
    rng = random.Random(f"lengths:{f.name}")
    orders = {name: rng.sample(LENGTHS, len(LENGTHS)) for name in names}
    trials = [{name: orders[name][i] for name in names} for i in range(len(LENGTHS))]
    return sorted(trials, key=lambda t: sum(t.values()))


def lengths_text(trials: list[dict]) -> str:
    """`n = 0, 1, 2, 5`, or `(n, m) = (0, 2), (1, 5)` for several names."""
    if not trials:
        return "no length"
    names = list(trials[0])
    if len(names) == 1:
        return f"{names[0]} = " + ", ".join(str(t[names[0]]) for t in trials)
    return (f"({', '.join(names)}) = " +
            ", ".join("(" + ", ".join(str(t[n]) for n in names) + ")" for t in trials))


def verify_data_function(program, f, gradient, namespace, settings, module,
                         target: str = "python") -> list[Item]:
    """One item per `wrt` parameter of a function with data axes."""
    wrt = [f.params[i] for i in f.wrt]
    trials = length_trials(f)
    found: list[_Length] = []
    proofs: list = [None] * len(wrt)
    with budget(settings.timeout * len(wrt)) as b:
        for k, lengths in enumerate(trials):
            one = _Length(lengths)
            found.append(one)
            share = _Share(b, len(trials) - k)
            ok, _ = b.run(lambda: _compare_at_lengths(program, f, gradient, namespace,
                                                      settings, module, one, share, target))
            if not ok or _failed(one):
                break
        if settings.prove and not any(_failed(one) for one in found) and \
                any(one.state is not None and one.state.points for one in found):
            proofs = prove_gradient(program, f, gradient, wrt, b)
    return _items(f, gradient, wrt, trials, found, proofs, settings)


class _Share:
    """A slice of a budget: the time left shared by the lengths still to
    compare, so that a slow length (n = 5) cannot starve the others."""

    def __init__(self, b, parts: int):
        self.b = b
        self.deadline = time.monotonic() + b.remaining() / max(parts, 1)

    def left(self) -> bool:
        return self.b.left() and time.monotonic() < self.deadline


def _failed(one: _Length) -> bool:
    return one.state is not None and bool(one.state.failure or one.state.mismatch)


def _compare_at_lengths(program, f, gradient, namespace, settings, module, one: _Length,
                        share, target) -> None:
    try:
        g, reference = lower_at_lengths(module, f.name, one.lengths, program.graph.options)
    except CompileError as error:
        one.note = f"{_at(one.lengths)} the source does not compile ({error.message})"
        return
    setup, one.spans, one.near = _reference_setup(g, f, reference, gradient, one.lengths,
                                                  target)
    one.state = _State()
    _compare(f, gradient, namespace, setup, settings, one.state, share)
    if one.state.points == 0 and one.state.finished and not _failed(one):
        one.note = (f"{_at(one.lengths)} the source is undefined at every point tried "
                    f"({_emitted_there(gradient, namespace, setup)})")


def _emitted_there(gradient, namespace, setup) -> str:
    """What the emitted gradient does where the source is undefined (a mean
    over nothing raises ZeroDivisionError, naming the line)."""
    rng = random.Random(setup.seed)
    with mpmath.workdps(50):
        values = [to_mpf(v) for v in sample(rng, len(setup.inputs), 0)]
        point = dict(zip(setup.inputs, values))
        args = [_shape_like(a, point) for a in setup.args_nodes]
        if setup.prepare is not None:
            args = setup.prepare(args)
        try:
            namespace[gradient.name](*args)
        except EMITTED_ERRORS as error:
            return f"the emitted {gradient.name} raises {error_name(error).split(' (')[0]}"
    return f"the emitted {gradient.name} returns a value"


def _at(lengths: dict) -> str:
    return "at " + ", ".join(f"{k} = {v}" for k, v in lengths.items()) + ":"


def _reference_setup(g, f, reference, gradient, lengths, target,
                     translator=None):
    """The comparison's setup against the unrolled `reference`: SymPy's
    derivatives of it, and the emitted functions' arguments shaped as the
    reference's parameters (nested lists of its input nodes)."""
    tr = (translator or EvenShareTranslator)(g)
    wrt = [reference.params[i] for i in f.wrt]
    leaves = [x for p in wrt for x in flatten(p.placeholders)]
    outputs = flatten(reference.output)
    params = [_Param(p.name, p.placeholders) for p in reference.params]
    if f.is_scalar:
        seeds = [(reference.output, sp.Integer(1))]
    else:
        cotangent = _cotangent_like(g, f.name, reference.output)
        params.append(_Param("cotangent", cotangent))
        seeds = [(o, tr.input_symbol(c)) for o, c in zip(outputs, flatten(cotangent))]
    expected = sympy_adjoints(tr, seeds, leaves)
    value = [tr(o) for o in outputs]
    args_nodes = [p.placeholders for p in params]
    inputs = [x for a in args_nodes for x in flatten(a)]
    symbols = [tr.input_symbol(x) for x in inputs]
    near = NearTies(tr, outputs, symbols)
    evaluate = near.skipping(compile_program(tr.program, expected + value, symbols))
    grad_names = [name for p in wrt for name, _ in _indexed(p.name, p.placeholders)]
    spans, offset = [], 0
    for p in wrt:
        count = len(flatten(p.placeholders))
        spans.append(range(offset, offset + count))
        offset += count
    seed = f"{f.source.loc.line}:{f.name}:{sorted(lengths.items())}"
    prepare = (_array_arguments(f, gradient, reference, params, lengths)
               if target == "array" else None)
    setup = _Setup(tr, expected, [], evaluate, inputs, args_nodes, _display_names(params),
                   grad_names, outputs, seed, prepare,
                   rebuild=lambda other: _reference_setup(g, f, reference, gradient, lengths,
                                                          target, other)[0].evaluate)
    return setup, spans, near


class NearTies:
    """Points within a hair of a decision's tie, not at it, are skipped (as
    where the source is undefined), and counted.

    Why: `branches.NEAR`.  Exact ties are compared: both sides see them."""

    def __init__(self, tr, outputs, symbols):
        self.decisions = branches.Coverage(tr.program, branches.decisions(tr.g, tr, outputs),
                                           symbols)
        self.skipped = 0

    def at(self, values) -> bool:
        return self.decisions.near_tie(values)

    def skipping(self, evaluate):
        def away_from_near_ties(*values):
            if self.at(values):
                self.skipped += 1
                return [UNDEFINED]
            return evaluate(*values)
        return away_from_near_ties


class EvenShareTranslator(Translator):
    """The unrolled function as SymPy, each `min`/`max` written so that
    SymPy's derivative of it is the language's tie rule (ties split the
    gradient evenly among the tied arguments, as PyTorch does).

    Data make ties common: every iteration of `max(u[k] if u[k] > 1.5 else s
    for k ...)` that takes the `else` branch is `s`.  SymPy differentiates
    `Max(a1, ..., an)` with respect to a1 as `Heaviside(a1 - Max(a2, ...))`,
    1/2 at a tie however many tie, so a k-way tie gets k/2 in all, not 1
    (and `Max(s, s, t)` is `Max(s, t)` to SymPy: multiplicities are lost).
    Here the max M of the node's arguments a_j (with multiplicity) is
    `M + Σ w_j (a_j - M) / Σ w_j`, w_j = 1 where a_j equals M and 0
    elsewhere: the same value to the last digit, and, w_j being constant
    where it is defined (SymPy differentiates a Piecewise branch by branch),
    the derivative with respect to a_i is w_i / Σ w_j: the even share."""

    def _translate(self, n: int):
        node = self.g.nodes[n]
        if node.op not in ("min", "max") or len(node.args) < 2:
            return super()._translate(n)
        args = [self.value[a] for a in node.args]
        if all(a.is_Number for a in args) or any(a.has(sp.nan, sp.zoo) for a in args):
            return super()._translate(n)
        best = self.program.define(sp.Symbol(f"t{n}_best", real=True),
                                   (sp.Min if node.op == "min" else sp.Max)(*args))
        tied = [sp.Piecewise((1, sp.Eq(a, best)), (0, True)) for a in args]
        count = self.program.define(sp.Symbol(f"t{n}_ties", real=True), sp.Add(*tied))
        # 1/count as exact fractions (an int's 1/3 would be a double's)
        share = sp.Piecewise(*[(sp.Rational(1, k), sp.Eq(count, k))
                               for k in range(1, len(args))], (sp.Rational(1, len(args)), True))
        # best + Σ share w_j (a_j - best): exactly `best` as a number (a tied a_j
        # minus best is 0; a k-way Σ a_j / k would round, and the derivative
        # nodes of a `diff` in the source compare arguments with this value),
        # and its derivative is Σ share w_j a_j', best's own weight being 0
        value = best + share * sp.Add(*[w * (a - best) for a, w in zip(args, tied)])
        return self.program.define(sp.Symbol(f"t{n}", real=True), value)


@dataclass
class _Param:
    name: str
    placeholders: object


def _cotangent_like(g, fname: str, output):
    """An input node per element of the output, in its structure."""
    counter = iter(range(1 << 62))

    def make(value, prefix):
        if isinstance(value, int):
            return g.input(("cotangent", fname, next(counter)),
                           "_".join(["ct", *map(str, prefix)]))
        items = [make(v, (*prefix, i)) for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    return make(output, ())


def _array_arguments(f, gradient, reference, params, lengths):
    """The array target takes a data argument as one array of its shape
    (an empty one keeps its other axes: X of shape (0, 5) at n = 0)."""
    import numpy
    shapes = [p.shape for p in reference.params]
    data = [any(isinstance(d, str) for d in p.shape) for p in f.params]
    if len(params) > len(reference.params):  # a vjp's cotangent: data if the output is
        shapes.append(tuple(lengths.get(d, d) for d in gradient.params[-1].shape))
        data.append(isinstance(f.output, RuntimeArray))

    def prepare(args):
        return [numpy.array([float(x) for x in _leaves(a)], dtype=numpy.float64).reshape(s)
                if is_data else a for a, s, is_data in zip(args, shapes, data)]
    return prepare


def _leaves(value):
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _leaves(v)]
    return [value]


def _items(f, gradient, wrt, trials, found: list[_Length], proofs, settings) -> list[Item]:
    line, column = f.source.loc.line, f.source.loc.column
    compared = [one for one in found if one.state is not None and one.state.points]
    notes = [one.note for one in found if one.note]
    unfinished = len(found) < len(trials) or any(
        one.state is not None and not one.state.finished and not _failed(one) for one in found)
    items = []
    for k, p in enumerate(wrt):
        item = Item("gradient", line, column, f"gradient of {f.name} with respect to {p.name}",
                    NUMERIC)
        failure = _failure(found, k)
        if failure is not None:
            item.status, (item.detail, item.counterexample) = FAILED, failure
        elif not compared:
            item.status = UNVERIFIED
            item.detail = (f"no point compared within the time limit ({settings.timeout:g} s)"
                           if unfinished else "no length at which the source is defined")
            item.detail += "".join(f"; {n}" for n in notes)
        else:
            item.detail = _detail(found, trials, notes)
            proof = proofs[k] if k < len(proofs) else None
            if proof is True and not unfinished:
                item.status = PROVED
                item.detail = (f"SymPy's derivative of the loop body = emitted "
                               f"{gradient.name}'s, for every length; {item.detail}")
            elif unfinished or (proof is None and settings.prove):
                item.status = TIME_LIMIT
                item.detail += f"; the time limit ({settings.timeout:g} s) ran out"
            elif isinstance(proof, str):
                item.detail += f"; not proved for every length: {proof}"
        items.append(item)
    return items


def _failure(found: list[_Length], k: int):
    """The first (detail, counterexample) that fails wrt parameter k."""
    for one in found:
        state = one.state
        if state is None:
            continue
        where = _at(one.lengths)
        if state.failure is not None:
            detail, counterexample = state.failure
            return f"{where} {detail}", _with_lengths(counterexample, one.lengths)
        span = one.spans[k] if k < len(one.spans) else range(0)
        bad = next((state.mismatch[i] for i in span if i in state.mismatch), None)
        if bad is not None:
            return f"{where} {bad[0]}", _with_lengths(bad[1], one.lengths)
    return None


def _with_lengths(counterexample, lengths):
    if counterexample is None:
        return None
    return {**counterexample, "lengths": dict(lengths)}


def _detail(found: list[_Length], trials, notes) -> str:
    compared = [one for one in found if one.state is not None and one.state.points]
    points = sum(one.state.points for one in compared)
    text = (f"verified at {lengths_text([one.lengths for one in compared])} against SymPy "
            f"at 50 digits: agree at {points} points to 1e-9")
    taken = total = 0
    for one in compared:
        coverage = one.state.coverage
        if coverage is not None and coverage.total:
            a, t, _, _ = coverage.counts()
            taken, total = taken + a, total + t
    if total:
        text += f", {taken} of {total} branches taken"
    text += _skipped_text(_State(**{count: sum(getattr(one.state, count) for one in compared)
                                    for count, _ in SKIPPED}))
    skipped = sum(one.near.skipped for one in found if one.near is not None)
    if skipped:
        near = branches.NEAR
        text += (f"; {skipped} point{'s' if skipped > 1 else ''} within {near:g} of a tie "
                 "skipped (the emitted constants are doubles)")
    return text + "".join(f"; {n}" for n in notes)

