"""Proofs for every length: a rolled loop as a SymPy `Sum`.

The rolled DAG of a function with data axes (loops.py) is translated to
SymPy expression trees in which

* a size name is an integer symbol `len_n` (its length),
* a loop variable is an integer symbol, a `load` an element of an
  `IndexedBase` (`X[k, 3]`, `u[k - 1]`),
* `sum_over(body, k)` is `Sum(body, (k, start, len_n + offset - 1))`.

(Trees, not the straight-line definitions of symbolic.py: a definition
made outside a `Sum` would be a constant to it.)  SymPy's derivative of
such a function with respect to a parameter without a data axis is
SymPy's own `Sum._eval_derivative`: the derivative of the per-iteration
term under the `Sum`.  The emitted adjoint, translated the same way, is a
`Sum` of the loop body's adjoint.  Their difference is shown to be 0 for
every length by `is_zero`: terms `c·Sum(f, (k, a, b))` are grouped by their
range `(a, b)`, each coefficient `c` (which cannot depend on the loop
variable) moved under its `Sum`, and the summed-up term of each group is
shown to be 0 for a fresh loop variable, recursively for nested sums; what
is left outside every `Sum` must simplify to 0.  Each step is an identity,
so a group whose term is 0 for every value of the loop variable proves the
whole difference 0 whatever the range: the emitted loop body computes
SymPy's derivative of the per-iteration term, at every length.

A gradient along a data axis (`d_X`, a map) is proved element by element:
element j of the emitted map against SymPy's derivative with respect to
`X[j, ...]`, whose Kronecker deltas `doit` sums out into a function
piecewise in j and n, shown 0 region by region (`_zero_on_axis`).

Not translated (the item then rests on the numeric comparison at small
lengths): `prod`, `min` and `max` over a data axis.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.relational import Relational

from ..compiler.loops import DataArray, RuntimeArray, loop_of
from ..compiler.ops import OPS
from ..compiler.values import flatten
from .symbolic import (MAX_PIECES_TO_EXPAND, _PIECEWISE, _numbers_as_the_program_computes,
                       exact)

PIECEWISE_OPS = {"relu", "abs", "min", "max", "where"}
_NOT_TRANSLATED = {"prod_over": "a product", "min_over": "a min", "max_over": "a max"}


class NotTranslated(Exception):
    """The rolled DAG uses what `Sum` cannot express; the message says what."""


class LoopTranslator:
    """Node ids of a rolled DAG → SymPy expression trees, memoised."""

    def __init__(self, g):
        self.g = g
        self.value: dict[int, sp.Expr] = {}

    def __call__(self, node_id: int) -> sp.Expr:
        if node_id not in self.value:
            for n in self.g.ancestors([node_id]):
                if n not in self.value:
                    self.value[n] = self._translate(n)
        return self.value[node_id]

    def size(self, name: str) -> sp.Symbol:
        return sp.Symbol(f"len_{name}", integer=True, nonnegative=True)

    def _translate(self, n: int) -> sp.Expr:
        node = self.g.nodes[n]
        op = node.op
        if op == "input":
            return sp.Symbol(f"x{n}", real=True)
        if op == "const":
            return exact(node.attr)
        if op == "bool":
            return sp.true if node.attr else sp.false
        if op == "size":
            return self.size(node.attr)
        if op == "loop_index":
            return sp.Symbol(f"{node.attr.var}{n}", integer=True)
        if op == "load":
            return self._load(node)
        if op in _NOT_TRANSLATED:
            raise NotTranslated(f"{_NOT_TRANSLATED[op]} over a data axis has no SymPy sum")
        args = [self.value[a] for a in node.args]
        if op == "sum_over":
            return sp.Sum(args[0], self._limits(node.args[1]))
        spec = OPS[op]
        expr = _numbers_as_the_program_computes(op, spec, args, node.attr)
        return expr if expr is not None else spec.symbolic(sp, args, node.attr)

    def _limits(self, index: int) -> tuple:
        loop = loop_of(self.g, index)
        return (self(index), sp.Integer(loop.start), self.size(loop.size) + loop.offset - 1)

    def _load(self, node) -> sp.Expr:
        param, index = node.attr
        loops = [self(a) for a in node.args]
        entries = [sp.Integer(e) if isinstance(e, int) else loops[e[0]] + e[1] for e in index]
        return sp.IndexedBase(param, real=True)[tuple(entries)]

    def objective(self, f, gradient) -> sp.Expr:
        """What the gradient differentiates: the output, or its dot product
        with the cotangent (a `Sum` over the output's loop for a map)."""
        if f.is_scalar:
            return self(f.output)
        cotangent = gradient.params[-1].placeholders
        if isinstance(f.output, RuntimeArray):
            if not isinstance(f.output.element, (int, list)) or \
                    any(isinstance(v, (RuntimeArray, DataArray)) for v in
                        _parts(f.output.element)):
                raise NotTranslated("a result with nested data axes")
            k = self(f.output.index)
            ct = sp.IndexedBase("cotangent", real=True)
            leaves = flatten(f.output.element)
            positions = _positions(f.output.element)
            term = sp.Add(*[ct[(k, *p)] * self(leaf) for leaf, p in zip(leaves, positions)])
            return sp.Sum(term, self._limits(f.output.index))
        return sp.Add(*[self(c) * self(o) for o, c in zip(flatten(f.output),
                                                           flatten(cotangent))])


def _parts(value):
    if isinstance(value, list):
        return [x for v in value for x in _parts(v)]
    return [value]


def _positions(value, prefix=()) -> list[tuple]:
    if isinstance(value, int):
        return [prefix]
    return [p for i, v in enumerate(value) for p in _positions(v, (*prefix, i))]


def prove_gradient(program, f, gradient, wrt, b) -> list:
    """Per wrt parameter: True (proved for every length), False (not shown),
    None (no time) or a string saying why no proof is tried."""
    tr = LoopTranslator(program.graph)
    finished, objective = b.run(_guarded(lambda: _objective(tr, f, gradient)),
                                needs_interrupt=True)
    if not finished:
        return [None] * len(wrt)
    results = []
    for p, emitted in zip(wrt, gradient.result[1]):
        if isinstance(objective, str):
            results.append(objective)
        elif isinstance(p.placeholders, DataArray):
            results.append(_prove_data_parameter(tr, objective, p, emitted, b))
        else:
            results.append(_prove_parameter(tr, objective, p, emitted, b))
    return results


def _objective(tr: LoopTranslator, f, gradient):
    roots = flatten(f.output) + [x for part in gradient.result[1] for x in flatten(part)]
    pieces = sum(1 for n in tr.g.ancestors(roots) if tr.g.nodes[n].op in PIECEWISE_OPS)
    if pieces > MAX_PIECES_TO_EXPAND:
        # as symbolic.prove_equal: a ReLU network's differences are not settled,
        # and a `Sum` of a piecewise term folds its pieces, exponentially
        return (f"the function and its gradient have {pieces} piecewise parts (relu, abs, "
                "min, max, conditionals), beyond what SymPy settles")
    try:
        return _canonical(tr.objective(f, gradient))
    except NotTranslated as why:
        return str(why)


def _prove_parameter(tr: LoopTranslator, objective, p, emitted, b):
    for leaf, adjoint in zip(flatten(p.placeholders), flatten(emitted)):
        def one(leaf=leaf, adjoint=adjoint):
            expected = sp.diff(objective, tr(leaf))
            return is_zero(_canonical(expected - _canonical(tr(adjoint))))
        finished, proved = b.run(_guarded(one), needs_interrupt=True)
        if not finished:
            return None
        if proved is not True:
            return proved
    return True


def _guarded(attempt):
    """A proof attempt that SymPy cannot carry out is not shown; the item
    says so and rests on the numeric comparison."""
    def run():
        try:
            return attempt()
        except NotTranslated as why:
            return str(why)
        except (TypeError, ValueError, AttributeError, NotImplementedError) as error:
            return f"SymPy could not finish the proof ({type(error).__name__})"
    return run


def _prove_data_parameter(tr: LoopTranslator, objective, p, emitted, b):
    """`d_X` for a data parameter X: the emitted map's element, its loop
    variable renamed j, against SymPy's derivative with respect to X[j, ...]
    (a `Sum` of Kronecker deltas, summed out by `doit`), for every j in the
    axis and every length, region by region (`_zero_on_axis`)."""
    if not isinstance(emitted, RuntimeArray) or any(
            isinstance(v, (RuntimeArray, DataArray)) for v in _parts(emitted.element)):
        return "a gradient with two data axes is compared at the lengths only"
    loop = loop_of(tr.g, emitted.index)
    if (loop.start, loop.offset) != (0, 0):
        return "a gradient over part of a data axis is compared at the lengths only"
    j = sp.Symbol("j_axis", integer=True)
    base = sp.IndexedBase(p.name, real=True)
    for leaf, position in zip(flatten(emitted.element), _positions(emitted.element)):
        def one(leaf=leaf, position=position):
            expected = sp.diff(objective, base[(j, *position)]).doit()
            got = tr(leaf).xreplace({tr(emitted.index): j})
            return _zero_on_axis(_canonical(expected - got), j, tr.size(loop.size))
        finished, proved = b.run(_guarded(one), needs_interrupt=True)
        if not finished:
            return None
        if proved is not True:
            return proved or "SymPy does not settle the data axis' edges"
    return True


def _zero_on_axis(expr, j, n, margin: int = 2) -> bool:
    """`expr` (piecewise in j and n: which neighbours of element j exist)
    is 0 for every 0 ≤ j < n.  With d = n − 1 − j, every condition on j and
    n is a linear one in j alone or d alone; j and d are split into the
    values 0 … J (D), where a condition can change, and "beyond", where
    none does, and the difference is shown 0 in each region."""
    d = sp.Symbol("d_axis", integer=True, nonnegative=True)
    forms = {}
    for atom in expr.atoms(Relational):
        if not atom.free_symbols & {j, n}:
            continue
        form = _linear(atom.lhs - atom.rhs, j, n, d)
        if form is None:
            return False
        forms[atom] = form
    if expr.has(sp.KroneckerDelta):
        return False
    j_edge = max([abs(c) for a, b_, c in forms.values() if b_ == 0] + [0]) + margin
    d_edge = max([abs(c) for a, b_, c in forms.values() if a == 0] + [0]) + margin
    for jv in [*range(j_edge + 1), None]:
        for dv in [*range(d_edge + 1), None]:
            truth = {atom: _truth(atom, form, jv, dv, j_edge, d_edge)
                     for atom, form in forms.items()}
            region = expr.xreplace(truth)
            values = {n: (j if jv is None else jv) + (d if dv is None else dv) + 1}
            if jv is not None:
                values[j] = jv
            region = region.xreplace({n: values[n]}).xreplace(
                {j: jv} if jv is not None else {})
            if region.has(sp.Piecewise) and region.atoms(Relational) & set(forms):
                return False
            if not is_zero(region):
                return False
    return True


def _linear(difference, j, n, d):
    """lhs − rhs of a condition as (a, b, c): a·j + b·d + c, with n = j + d + 1."""
    try:
        poly = sp.Poly(difference.xreplace({n: j + d + 1}), j, d)
    except sp.PolynomialError:
        return None
    if poly.total_degree() > 1:
        return None
    a, b, c = (poly.coeff_monomial(m) for m in (j, d, 1))
    if not all(x.is_Integer for x in (a, b, c)) or (a != 0 and b != 0):
        return None
    return int(a), int(b), int(c)


def _truth(atom, form, jv, dv, j_edge, d_edge):
    """The condition's truth in a region (None: j or d beyond its edge)."""
    a, b, c = form
    if a:
        x = jv if jv is not None else j_edge + 1 + abs(c)
        value = a * x + c
    elif b:
        x = dv if dv is not None else d_edge + 1 + abs(c)
        value = b * x + c
    else:
        value = c
    return sp.true if atom.func(value, 0) else sp.false


# --- is_zero ---------------------------------------------------------------------


def is_zero(expr: sp.Expr) -> bool:
    """True if `expr` is shown to be 0 (see the module docstring)."""
    groups: dict[tuple, list] = {}
    rest = []
    for term in _terms(expr):
        factors = sp.Mul.make_args(term)
        sums = sorted((x for x in factors if isinstance(x, sp.Sum)), key=sp.default_sort_key)
        if not sums:
            rest.append(term)
            continue
        others = list(factors)
        others.remove(sums[0])
        var, low, high, body = _outer(sums[0])
        groups.setdefault((low, high), []).append((sp.Mul(*others), body, var))
    for (low, high), members in groups.items():
        k = sp.Dummy("k", integer=True)
        summand = sp.Add(*[c * body.xreplace({var: k}) for c, body, var in members])
        if not is_zero(summand):
            return False
    return _plain_zero(sp.Add(*rest))


def _terms(expr: sp.Expr) -> list:
    """`expr` as a list of terms, products distributed over the sums that
    hold a `Sum` (so that each `Sum` is a factor of a term)."""
    out = []
    for term in sp.Add.make_args(expr):
        parts = [[]]
        for factor in sp.Mul.make_args(term):
            if isinstance(factor, sp.Add) and factor.has(sp.Sum):
                parts = [p + [t] for p in parts for t in _terms(factor)]
            else:
                parts = [p + [factor] for p in parts]
        out += [sp.Mul(*p) for p in parts]
    return out


def _outer(s: sp.Sum) -> tuple:
    """The outermost loop of a `Sum` and what it sums: SymPy writes
    Sum(Sum(f, (i, ...)), (j, ...)) as one Sum(f, (i, ...), (j, ...))."""
    var, low, high = s.limits[-1]
    body = s.function if len(s.limits) == 1 else sp.Sum(s.function, *s.limits[:-1])
    return var, low, high, body


def _plain_zero(expr: sp.Expr) -> bool:
    if expr == 0:
        return True
    expr = _canonical(expr)
    if expr.has(*_PIECEWISE):
        return sp.expand(expr) == 0  # see symbolic.prove_equal
    return sp.simplify(expr) == 0


def _canonical(expr: sp.Expr) -> sp.Expr:
    """Every `Sum`'s variable renamed after its height (1 + the deepest
    `Sum` under it): equal sums become the same expression whatever their
    loops were called, and a `Sum` never binds a name one under it binds."""
    memo: dict = {}

    def walk(e):
        if e in memo:
            return memo[e]
        if isinstance(e, sp.Sum):
            var, low, high, inner = _outer(e)
            body, height = walk(inner)
            new = sp.Symbol(f"_k{height + 1}", integer=True)
            result = (sp.Sum(body.xreplace({var: new}), (new, walk(low)[0], walk(high)[0])),
                      height + 1)
        elif not e.args or isinstance(e, (sp.Indexed, sp.IndexedBase)) and not e.has(sp.Sum):
            result = (e, 0)
        else:
            done = [walk(a) for a in e.args]
            result = (e.func(*[a for a, _ in done]), max(h for _, h in done))
        memo[e] = result
        return result
    return walk(expr)[0]
