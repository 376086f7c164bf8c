"""Every emitted gradient against SymPy's derivative of the source function.

One item per function and `wrt` parameter.  The emitted `f_grad`/`f_vjp`
(and `f`) are called, from the module text, at 50 digits, at random points
and then at points chosen so that every branch of the function is taken
(`branches.py`), and compared with SymPy's derivative evaluated there:

* a disagreement is FAILED, with the point and both values;
* a point where the emitted code raises (or gives inf/nan) while the source,
  evaluated branch by branch, gives a number is FAILED too — the emitted
  code evaluated something the source does not (a branch not taken);
* a point where the source itself is undefined is drawn again.

Agreement is upgraded to "proved" if SymPy simplifies (SymPy's derivative −
the printed DAG's adjoint) to 0 within the item's time budget.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from . import branches
from .numeric import OUT_OF_RANGE, UNDEFINED_HERE, SourceDag, as_real, close, \
    compile_program, error_name, flat_values, fmt, sample, to_mpf
from .report import FAILED, NUMERIC, PROVED, TIME_LIMIT, UNVERIFIED, Item
from .symbolic import Translator, exact, prove_equal, sympy_adjoints
from .timelimit import budget, uninterrupted
from ..compiler.loops import DataArray, RuntimeArray
from ..compiler.values import flatten

REL, ABS = 1e-9, 1e-12  # doubles in emitted constants differ from the exact reals
TIE_CANDIDATES = 300  # points tried per compared point when looking for exact ties
# LookupError: a loop of the emitted code reads past its data
EMITTED_ERRORS = (ArithmeticError, ValueError, TypeError, LookupError)


def gradient_tasks(program, emitted, namespace: dict, settings,
                   target: str = "python") -> list:
    """(line, run) per function with a gradient; `run()` returns its items.
    A function with a data axis is verified by data_axes.py."""
    from .checks import parsed
    from .data_axes import verify_data_function  # it builds on this module
    by_name = {e.name: e for e in emitted}
    tasks = []
    def module():
        return parsed(program.source, program.filename)
    for f in program.functions:
        gradient = by_name.get(f.name + ("_grad" if f.is_scalar else "_vjp"))
        if gradient is None or not f.wrt:
            continue
        if _has_data_axis(f):
            run = (lambda f=f, gradient=gradient: verify_data_function(
                program, f, gradient, namespace, settings, module(), target))
        else:
            run = (lambda f=f, gradient=gradient: _verify_function(
                program, f, gradient, namespace, settings))
        tasks.append((f.source.loc.line, run))
    return tasks


def _has_data_axis(f) -> bool:
    return isinstance(f.output, RuntimeArray) or any(
        isinstance(p.placeholders, DataArray) for p in f.params)


@dataclass
class _State:
    """What the numeric comparison found so far (kept when time runs out)."""

    points: int = 0
    out_of_range: int = 0  # points not compared: an intermediate leaves the double range
    noisy: int = 0  # points not compared: a value is rounding noise at 50 digits
    ill_conditioned: int = 0  # points not compared: a few ulps of input move the result
    mixed_precision: int = 0  # points not compared: only the 50-digit run disagrees
    many_way_ties: int = 0  # points not compared: three inputs of a min or max tie
    near_ties: int = 0  # points not compared: a hair from a tie (branches.NEAR)
    failure: tuple | None = None  # (detail, counterexample) that fails every item
    mismatch: dict = field(default_factory=dict)  # gradient index → (detail, counterexample)
    coverage: branches.Coverage | None = None
    constants: list = field(default_factory=list)
    finished: bool = False  # the numeric comparison ran to its end


@dataclass
class _Setup:
    tr: Translator
    expected: list  # SymPy's derivatives (symbols of tr.program)
    emitted_exprs: list  # the printed DAG's adjoints, for the proof
    evaluate: object  # inputs (mpf) → expected + value
    inputs: list  # input node ids, in argument order
    args_nodes: list  # the gradient function's parameters (node structures)
    names: dict  # input node → display name
    grad_names: list  # display name of each gradient element
    roots: list  # the nodes whose decisions (branches) the points should cover
    seed: str  # the random points' seed
    prepare: object = None  # the arguments as the target takes them (None: as they are)
    forward: list | None = None  # the source's output nodes (None: `roots`)
    wrt: list | None = None  # the input nodes differentiated with respect to (None: all)
    dag: SourceDag | None = None  # the source's DAG, made when first needed
    # translator class → the same setup's `evaluate` with that translator
    # (`_constants_matter` moves the constants no double holds)
    rebuild: object = None
    moved: dict = field(default_factory=dict)  # sign → that rebuilt `evaluate`


def _verify_function(program, f, gradient, namespace, settings) -> list[Item]:
    wrt = [f.params[i] for i in f.wrt]
    state = _State()
    proofs: list = []
    with budget(settings.timeout * len(wrt)) as b:
        ok, setup = b.run(lambda: _setup(program, f, gradient, wrt, Translator))
        if ok:
            b.run(lambda: _compare(f, gradient, namespace, setup, settings, state, b))
            if state.failure is None and not state.mismatch and state.points and settings.prove:
                proofs = _prove_each(setup, wrt, settings, b)
    return _items(f, gradient, wrt, state, proofs, settings)


def _setup(program, f, gradient, wrt, translator) -> _Setup:
    tr = translator(program.graph)
    leaves = [x for p in wrt for x in flatten(p.placeholders)]
    outputs = flatten(f.output)
    if f.is_scalar:
        seeds = [(f.output, sp.Integer(1))]
    else:
        cotangent = gradient.params[-1].placeholders
        seeds = [(o, tr.input_symbol(c)) for o, c in zip(outputs, flatten(cotangent))]
    expected = sympy_adjoints(tr, seeds, leaves)
    value = [tr(o) for o in outputs]
    emitted_exprs = [tr(x) for part in gradient.result[1] for x in flatten(part)]
    args_nodes = [p.placeholders for p in gradient.params]
    inputs = [x for a in args_nodes for x in flatten(a)]
    symbols = [tr.input_symbol(x) for x in inputs]
    evaluate = compile_program(tr.program, expected + value, symbols)
    grad_names = [name for p in wrt for name, _ in _indexed(p.name, p.placeholders)]
    roots = outputs + [x for part in gradient.result[1] for x in flatten(part)]
    return _Setup(tr, expected, emitted_exprs, evaluate, inputs, args_nodes,
                  _display_names(gradient.params), grad_names, roots,
                  f"{f.source.loc.line}:{f.name}", forward=outputs, wrt=leaves,
                  rebuild=lambda other: _setup(program, f, gradient, wrt, other).evaluate)


def _prove_each(setup: _Setup, wrt, settings, b) -> list:
    """Per wrt parameter: True (proved), False (not shown) or None (no time)."""
    results, offset = [], 0
    for p in wrt:
        count = len(flatten(p.placeholders))
        span = range(offset, offset + count)
        offset += count
        verdict = True
        for i in span:
            one = prove_equal(setup.tr.program, setup.expected[i], setup.emitted_exprs[i], b)
            if one is not True:
                verdict = one
                break
        results.append(verdict)
    return results


def _items(f, gradient, wrt, state: _State, proofs, settings) -> list[Item]:
    items, offset = [], 0
    line, column = f.source.loc.line, f.source.loc.column
    coverage = state.coverage
    counts = None if coverage is None else coverage.counts()[:2]
    for k, p in enumerate(wrt):
        count = len(flatten(p.placeholders))
        span = range(offset, offset + count)
        offset += count
        item = Item("gradient", line, column, f"gradient of {f.name} with respect to {p.name}",
                    NUMERIC, branches=counts)
        bad = next((state.mismatch[i] for i in span if i in state.mismatch), None)
        if state.failure is not None or bad is not None:
            item.status = FAILED
            item.detail, item.counterexample = state.failure or bad
        elif state.points == 0:
            item.status = UNVERIFIED
            item.detail = (f"no point compared within the time limit ({settings.timeout:g} s)"
                           + _skipped_text(state) if not state.finished else
                           _nothing_compared_text(gradient, state))
        else:
            proved = proofs[k] if k < len(proofs) else None
            compared = _compared_text(state)
            if proved:
                item.status, item.detail = PROVED, f"SymPy's derivative = emitted {gradient.name}"
            elif state.finished and (proved is False or not settings.prove):
                item.status, item.detail = NUMERIC, compared
            else:
                item.status = TIME_LIMIT
                item.detail = f"{compared}; the time limit ({settings.timeout:g} s) ran out"
        items.append(item)
    return items


def _compared_text(state: _State) -> str:
    text = f"agree at {state.points} points to 1e-9"
    coverage = state.coverage
    if coverage is not None and coverage.total:
        taken, total, ties, tie_total = coverage.counts()
        text += f", {taken} of {total} branches and {ties} of {tie_total} ties taken"
    return text + _skipped_text(state)


def _nothing_compared_text(gradient, state: _State) -> str:
    if state.out_of_range:
        return ("no point compared: at every point tried where the source is defined, "
                "an intermediate leaves the double range (beyond 1.8e308, or nonzero below "
                f"2.2e-308; {state.out_of_range} points skipped)")
    return f"no sample point found where {gradient.name} and SymPy's derivative are both defined"


# Why a point was not compared: the _State counter, and what the report says.
SKIPPED = (
    ("out_of_range", "an intermediate leaves the double range (beyond 1.8e308, or nonzero "
                     "below 2.2e-308)"),
    ("noisy", "a value is rounding noise at 50 digits (it moves at 80)"),
    ("ill_conditioned", "ill-conditioned (moving the inputs, or at a tie the constants no "
                        "double holds, by a few units in the last place moves the source's "
                        "result by more than the tolerance)"),
    ("mixed_precision", "the emitted code agrees on doubles, not at 50 digits (a tie its "
                        "double constants and exact inputs break)"),
    ("many_way_ties", "three or more inputs of a min or max tie (the emitted gradient shares "
                      "among them all, SymPy's reference only between two)"),
    ("near_ties", f"within {branches.NEAR:g} of a tie and not at it (a double constant and "
                  "the real the source reads may fall on either side)"),
)


def _skipped_text(state: _State) -> str:
    return "".join(f"; {k} point{'s' if k != 1 else ''} skipped: {why}"
                   for count, why in SKIPPED if (k := getattr(state, count)))


def _compare(f, gradient, namespace, setup: _Setup, settings, state: _State, b) -> None:
    """Compare at random points, then at points that take the branches not
    yet taken; stop at the first failure."""
    symbols = [setup.tr.input_symbol(x) for x in setup.inputs]
    found = branches.decisions(setup.tr.g, setup.tr, setup.roots)
    state.coverage = branches.Coverage(setup.tr.program, found, symbols)
    state.constants = _constants(setup.tr.g, setup.roots)
    rng = random.Random(setup.seed)
    def compare(values) -> bool:
        with uninterrupted():
            return _compare_at(f, gradient, namespace, setup, values, state)

    compared: list = []
    for attempt_number in range(settings.attempts):
        if state.points >= settings.points or not b.left():
            break
        values = [to_mpf(v) for v in sample(rng, len(setup.inputs), attempt_number)]
        if compare(values):
            compared.append(values)
        if state.failure or state.mismatch:
            return
    _cover_missing(state, compared, compare, rng, len(setup.inputs), b)
    _try_ties(state, compared, compare, b)
    state.finished = not (state.failure or state.mismatch) and b.left()


def _cover_missing(state: _State, compared: list, compare, rng, count: int, b) -> None:
    """Compare at points that take a branch no compared point took.  Each
    candidate point is evaluated once for every decision (a branch that no
    point can take, such as x^2 < 0, costs one search, not one per branch)."""
    coverage = state.coverage
    for values in branches.candidates(rng, count):
        if not coverage.missing():
            break
        if not b.left() or state.failure or state.mismatch:
            return
        values = [to_mpf(v) for v in values]
        taken = coverage.branches_at(values)
        if any((index, branch) not in coverage.covered
               for index, branch in enumerate(taken) if branch is not None) \
                and compare(values):
            compared.append(values)
    _near_boundaries(state, compared, compare, b)


def _try_ties(state: _State, compared: list, compare, b) -> None:
    """Compare exactly at a tie of each decision where one is easy to hit:
    the tie conventions (relu'(0) = 0, min/max share evenly) live there.
    Each candidate point is evaluated once for all decisions."""
    coverage = state.coverage
    wanted = {i for i, d in enumerate(coverage.found) if d.kind != "domain"}
    for point in compared[:2]:
        candidates = branches.tie_candidates(point, state.constants)
        for values in itertools.islice(candidates, TIE_CANDIDATES):
            wanted -= coverage.ties
            if not wanted:
                return
            if not b.left() or state.failure or state.mismatch:
                return
            if coverage.tied_at(values) & wanted and not coverage.many_way_tie(values):
                compare(values)


def _constants(g, roots) -> list:
    """A few constants of the function, as candidate tie points: only those
    a double holds exactly (1, 0.5, not 0.1), where the emitted code and the
    source (which reads 0.1 as 1/10) agree about a tie."""
    found = []
    for n in g.ancestors(roots):
        v = g.value(n)
        if (v is not None and v == v and abs(v) < 1e6 and v not in found and v != 0
                and exact(v) == sp.Rational(v)):
            found.append(v)
    return [to_mpf(v) for v in found[:8]]


def _near_boundaries(state: _State, compared: list, compare, b) -> None:
    """For each decision, one pair of points straddling the boundary between
    two of its branches (near ties of min/max, near x = 0 of relu)."""
    coverage = state.coverage
    for index in range(len(coverage.found)):
        taken = {}
        for values in compared:
            taken.setdefault(coverage.branches_at(values)[index], values)
        taken.pop(None, None)
        if len(taken) < 2:
            continue
        first, second = list(taken.values())[:2]
        pair = branches.boundary(coverage, index, first, second)
        for values in pair or ():
            if not b.left() or state.failure or state.mismatch:
                return
            compare(values)


def _compare_at(f, gradient, namespace, setup: _Setup, values, state: _State) -> bool:
    """Compare at one point; True if it counted (the source is defined there)."""
    n_grads = len(setup.grad_names)
    point = dict(zip(setup.inputs, values))
    if not _fair_point(setup, point, state):
        return False
    with mpmath.workdps(50):
        want = [as_real(x) for x in setup.evaluate(*values)]
        if None in want:
            return False  # the source is undefined here: nothing to compare
        args = [_shape_like(a, point) for a in setup.args_nodes]
        if setup.prepare is not None:
            args = setup.prepare(args)
        shown = {setup.names[x]: fmt(v) for x, v in zip(setup.inputs, values)}
        # the counterexample's point to 17 digits: enough to run it again
        precise = {setup.names[x]: mpmath.nstr(v, 17) for x, v in zip(setup.inputs, values)}
        try:
            got, got_value, plain_value = _run_emitted(f, gradient, namespace, args)
        except EMITTED_ERRORS as error:
            if _near_tie(state, values):
                return False
            state.failure = _raises(f, shown, precise, want, n_grads, setup, error)
            return True
    undefined = None in got + got_value + plain_value
    disagrees = not undefined and _disagree(want, got, got_value, plain_value, n_grads)
    if disagrees and _rounding_noise(f, gradient, namespace, setup, values, args,
                                     want, got + got_value + plain_value):
        state.noisy += 1
        return False
    if disagrees and _ill_conditioned(setup, state.coverage, values, want):
        state.ill_conditioned += 1
        return False
    if (undefined or disagrees) and \
            _disagree_at_50_digits_only(f, gradient, namespace, setup, values, want):
        state.mixed_precision += 1
        return False
    if disagrees and state.coverage.many_way_tie(values):  # `min(t, s, s)` at t = s
        state.many_way_ties += 1
        return False
    if (undefined or disagrees) and _near_tie(state, values):
        return False
    state.points += 1
    state.coverage.record(values)
    state.coverage.record_ties(values)
    if undefined:
        state.failure = (f"at {_point_text(shown)}: the emitted code gives an undefined value "
                         f"(inf or nan) where the source gives numbers",
                         {"point": precise, "emitted": None, "expected": fmt(want[0])})
        return True
    for e, a, p in zip(want[n_grads:], got_value, plain_value):
        if not (close(e, a, REL, ABS) and close(e, p, REL, ABS)):
            state.failure = (
                f"the emitted value disagrees with the source function at "
                f"{_point_text(shown)}: {f.name} = {fmt(p)}, {gradient.name} gives "
                f"{fmt(a)}, SymPy gives {fmt(e)}",
                {"point": precise, "emitted": fmt(a), "expected": fmt(e)})
            return True
    for i, (e, a) in enumerate(zip(want[:n_grads], got)):
        if i not in state.mismatch and not close(e, a, REL, ABS):
            state.mismatch[i] = (
                f"at {_point_text(shown)}: emitted d{f.name}/d{setup.grad_names[i]} = "
                f"{fmt(a)}, SymPy's derivative = {fmt(e)}",
                {"point": precise, "emitted": fmt(a), "expected": fmt(e)})
    return True


def _run_emitted(f, gradient, namespace, args) -> tuple[list, list, list]:
    """The emitted gradient's elements and value, and the emitted function's
    value, at `args` (each an mpf, or None where not a finite real)."""
    value, grads = namespace[gradient.name](*args)
    plain = namespace[f.name](*args[:len(f.params)])
    return ([as_real(x) for x in flat_values(grads)], [as_real(x) for x in flat_values(value)],
            [as_real(x) for x in flat_values(plain)])


def _disagree(want, got, got_value, plain_value, n_grads) -> bool:
    return not all(close(e, a, REL, ABS) for e, a in zip(want[:n_grads], got)) or not all(
        close(e, a, REL, ABS) and close(e, p, REL, ABS)
        for e, a, p in zip(want[n_grads:], got_value, plain_value))


NOISE_DIGITS = 80  # a disagreement is run again at this precision


def _rounding_noise(f, gradient, namespace, setup: _Setup, values, args, want, got) -> bool:
    """Whether a disagreement at 50 digits is rounding noise of either side:
    a value that moves by more than the tolerance at 80 digits (a result
    that is exactly 0 computed from terms of 1e308: sum(softmax(z * 1e308))
    has d/dz = 1e308 * (1 - sum of the shares), 1e258 at 50 digits).  A
    real disagreement does not move."""
    try:
        with mpmath.workdps(NOISE_DIGITS):
            want_more = [as_real(x) for x in setup.evaluate(*values)]
            got_more = sum(_run_emitted(f, gradient, namespace, args), [])
    except EMITTED_ERRORS:
        return False
    pairs = list(zip(want, want_more)) + list(zip(got, got_more))
    return any(b is None or not close(a, b, REL, ABS) for a, b in pairs)


def _disagree_at_50_digits_only(f, gradient, namespace, setup: _Setup, values,
                                want) -> bool:
    """Whether the emitted code, which disagrees with the source at 50
    digits, agrees with it when run on doubles, the numbers it is written
    for.  At 50 digits a value the emitted code computes from its constants
    alone stays a double (`1.5 / (1.0 + _min(u_k, 0.5) ** 2)` for u_k > 0.5
    is the double nearest 1.2) while the same value from an input tied with
    the constant (u_k = 0.5) is exact: a tie of the two (a `min` over k)
    that the doubles and the source both see is broken at 50 digits, and so
    is the gradient that follows it.  A disagreement the doubles do not have
    says nothing about the program."""
    point = {x: float(v) for x, v in zip(setup.inputs, values)}
    args = [_shape_like(a, point) for a in setup.args_nodes]
    if setup.prepare is not None:
        args = setup.prepare(args)
    try:
        got, got_value, plain_value = _run_emitted(f, gradient, namespace, args)
    except EMITTED_ERRORS:
        return False
    return None not in got + got_value + plain_value and \
        not _disagree(want, got, got_value, plain_value, len(setup.grad_names))


def _near_tie(state: _State, values) -> bool:
    """A point a hair from a tie (`branches.NEAR`), where the emitted code
    and the source may each be right about their own numbers and still
    disagree (`min(k0 + k0, k0 * w)` at w = 2, k0 a folded double: a tie in
    the doubles, not in the decimals the source reads), is not compared."""
    if state.coverage is None or not state.coverage.near_tie(values):
        return False
    state.near_ties += 1
    return True


ULPS = 2.0 ** -50  # the relative move of an input: four units in the last place of a double
_SIGNS = ((1, 1, 1, 1), (1, -1, 1, -1), (-1, 1, 1, -1))


def _ill_conditioned(setup: _Setup, coverage, values, want) -> bool:
    """Whether the source's value or gradient moves by more than the
    tolerance when the inputs move by a few units in the last place.  There
    the program's doubles cannot give what 50 digits do: a constant the
    compiler folds (`cosh(tanh(4))`) is held to 17 digits, and
    `cos(y^2)` at y = 1e5 turns that last digit into the fifth.  Such a
    disagreement says nothing about the emitted code.  A move that changes
    a branch or leaves a tie is no measure of rounding (the result jumps
    there by design, and the tie conventions are checked exactly there), so
    a point at a tie is never ill-conditioned.  A point where every move
    changes a branch is within a few units in the last place of a boundary
    (or its decisions are themselves that sensitive): doubles may take
    either side there, and it is ill-conditioned too."""
    if coverage is not None and coverage.tied_at(values):
        return _constants_matter(setup, values, want)
    taken = coverage.branches_at(values) if coverage is not None else None
    measured = False
    with mpmath.workdps(50):
        for signs in _SIGNS:
            moved = [v * (1 + signs[i % len(signs)] * ULPS) for i, v in enumerate(values)]
            if coverage is not None and coverage.branches_at(moved) != taken:
                continue
            measured = True
            try:
                again = [as_real(x) for x in setup.evaluate(*moved)]
            except EMITTED_ERRORS:
                return True
            if any(b is None or not close(a, b, REL, ABS) for a, b in zip(want, again)):
                return True
    return not measured


def _constants_matter(setup: _Setup, values, want) -> bool:
    """At a tie, where moving the inputs would leave it: whether the
    source's value or gradient moves by more than the tolerance when the
    constants no double holds (1e-6, a folded 1 + 1e-3^2) move by a few
    units in the last place, as the emitted code's doubles hold them.
    `sin(a / (1 + 1e-3^2))` at a of 1e6 turns the constant's last digit into
    the ninth of the result (fuzz seed data:2700054235, at a tie of
    `max(v, 1e3)`)."""
    if setup.rebuild is None:
        return False
    with mpmath.workdps(50):
        for sign in (1, -1):
            if sign not in setup.moved:
                setup.moved[sign] = setup.rebuild(_moved_constants(type(setup.tr), sign))
            again = [as_real(x) for x in setup.moved[sign](*values)]
            if any(b is None or not close(a, b, REL, ABS) for a, b in zip(want, again)):
                return True
    return False


def _moved_constants(translator, sign: int):
    """`translator` with each constant that no double holds moved by `sign`
    times ULPS, relatively; the doubles (1, 0.5, 1e3) stay, and so do the
    ties with them."""
    move = 1 + sign * sp.Rational(ULPS)

    class MovedConstants(translator):
        def constant(self, value: float) -> sp.Expr:
            real = super().constant(value)
            held = value == value and abs(value) != float("inf") and real == sp.Rational(value)
            return real if held or not real.is_finite else real * move

    return MovedConstants


def _fair_point(setup: _Setup, point: dict, state: _State) -> bool:
    """Whether the source's DAG, run node by node at 50 digits, is defined
    at the point with every number in the normal double range.  Where it is
    not, SymPy's translation may still give a number (it folds 1**u to 1,
    dropping a u that is undefined or overflows, and u's derivative that
    the emitted gradient multiplies by 0), or give the exact value that
    doubles cannot follow: the point is not compared."""
    if setup.dag is None:
        forward = setup.forward if setup.forward is not None else setup.roots
        setup.dag = SourceDag(setup.tr.g, forward, None if setup.wrt is None else set(setup.wrt))
    verdict = setup.dag.at(point)
    if verdict == OUT_OF_RANGE:
        state.out_of_range += 1
    return verdict not in (OUT_OF_RANGE, UNDEFINED_HERE)


def _raises(f, shown, precise, want, n_grads, setup, error) -> tuple:
    values = ", ".join([f"{f.name} = {fmt(v)}" for v in want[n_grads:]][:1] +
                       [f"d{f.name}/d{n} = {fmt(v)}" for n, v in
                        zip(setup.grad_names, want[:n_grads])][:3])
    return (f"at {_point_text(shown)}: the emitted code raises {error_name(error)}, but "
            f"the source, branch by branch, gives {values}",
            {"point": precise, "emitted": None, "expected": fmt(want[n_grads])
             if len(want) > n_grads else None, "raises": error_name(error).split(" ")[0]})


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


def _shape_like(structure, point):
    if isinstance(structure, int):
        return point[structure]
    items = [_shape_like(v, point) for v in structure]
    return tuple(items) if isinstance(structure, tuple) else items
