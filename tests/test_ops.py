"""The op table is complete, matches the language's built-ins, and each
derivative rule agrees with SymPy's derivative of the op's SymPy counterpart."""

from __future__ import annotations

import inspect
import math
import re

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.compiler.graph import Graph
from exprgrad.compiler.lower import BUILTIN_CONSTANTS, SPECIAL_FORMS
from exprgrad.compiler import opnames
from exprgrad.compiler.ops import BUILTINS, OPS, REALS
from exprgrad.compiler.reverse import gradients

SPEC_UNARY = ("exp log log2 log10 log1p expm1 sqrt sin cos tan asin acos atan sinh cosh tanh "
              "asinh acosh atanh erf sigmoid relu softplus abs").split()
SPEC_BINARY = ["pow", "atan2", "hypot"]
SPEC_VARIADIC = ["min", "max"]
LEAVES = {"const", "bool", "input"}

# Where each op's inputs are drawn from: inside the domain and away from kinks.
DOMAINS = {
    "log": [(0.05, 20)], "log2": [(0.05, 20)], "log10": [(0.05, 20)], "log1p": [(-0.9, 20)],
    "sqrt": [(0.05, 20)], "asin": [(-0.95, 0.95)], "acos": [(-0.95, 0.95)],
    "acosh": [(1.05, 20)], "atanh": [(-0.95, 0.95)], "tan": [(-1.4, 1.4)],
    "exp": [(-10, 10)], "expm1": [(-10, 10)], "sinh": [(-10, 10)], "cosh": [(-10, 10)],
    "pow": [(0.05, 5), (-3, 3)], "div": [(-5, 5), (0.2, 5)],
}
DEFAULT_DOMAIN = (-5.0, 5.0)
KINKS = {"relu", "abs", "min", "max"}  # points too close to 0 (or a tie) are skipped


def number_ops():
    return [o for o in OPS.values() if o.name not in LEAVES and o.kind == "number" and not o.loop]


def differentiable_ops():
    return [o for o in number_ops() if o.grad is not None and o.name != "where"]


def placeholders(template: str) -> list[str]:
    return re.findall(r"\{(\d+|args|attr)\}", template)


# --- completeness --------------------------------------------------------------
def test_data_axis_ops_are_marked_and_labelled():
    loop_ops = {o.name for o in OPS.values() if o.loop}
    assert loop_ops == {"size", "loop_index", "load", "sum_over", "prod_over", "min_over",
                        "max_over"}
    assert all(OPS[name].label and OPS[name].kind == "number" for name in loop_ops)


@pytest.mark.parametrize("name", sorted(name for name, o in OPS.items() if not o.loop))
def test_entry_is_complete(name):
    o = OPS[name]
    assert o.name == name
    assert o.arity is None or (isinstance(o.arity, int) and o.arity >= 0)
    assert isinstance(o.label, str) and o.label
    assert o.kind in ("number", "bool")
    assert isinstance(o.prec, int) and 1 <= o.prec <= 10
    assert all(isinstance(p, int) for p in o.arg_prec)
    used = placeholders(o.py)
    assert used, f"{name}: Python template {o.py!r} uses no input"
    assert ("attr" in used) == o.has_attr
    if o.arity == 0:
        assert o.fn is None, "a leaf has no fold function"
        assert o.arg_prec == ()
        assert o.has_attr
        return
    assert callable(o.fn)
    if o.arity is None:
        assert "args" in used and len(o.arg_prec) == 1
    else:
        numbered = {int(p) for p in used if p.isdigit()}
        assert numbered == set(range(o.arity)), f"{name}: {o.py!r} vs arity {o.arity}"
        assert len(o.arg_prec) in (1, o.arity)
    assert callable(o.sympy)
    if o.grad is None:
        assert o.kind == "bool", f"{name} is a number op without a derivative rule"
    else:
        fixed = 1 if o.arity is None else o.arity
        inspect.signature(o.grad).bind(*range(2 + fixed))


@pytest.mark.parametrize("name", sorted(name for name, o in OPS.items() if not o.loop))
def test_what_code_outside_the_table_reads_is_in_the_entry(name):
    """Laziness, edge labels, the node label and the mpmath counterpart come
    from the entry, so no other module special-cases an op by name."""
    o = OPS[name]
    inputs = range(o.arity) if o.arity is not None else range(0)
    assert all(i in inputs for i in o.lazy), f"{name}: lazy inputs {o.lazy} out of range"
    assert o.arg_labels == () or len(o.arg_labels) == o.arity
    assert isinstance(o.display(3), str) and o.display(3)
    assert ("{attr}" in o.label) == (o.has_attr and o.arity != 0)
    if o.math_function is not None:
        assert callable(o.numeric), f"{name} calls math.{o.math_function} but has no numeric"
    else:
        assert o.numeric is None, f"{name}'s text calls no math function to stand in for"


def test_the_ipow_label_shows_its_exponent():
    assert OPS["ipow"].display(3) == "**3" and OPS["pow"].display() == "**"


@given(data=st.data())
@pytest.mark.parametrize("name", sorted(o.name for o in OPS.values() if o.numeric))
def test_numeric_counterpart_agrees_with_the_fold_function(name, data):
    import mpmath
    o = OPS[name]
    args = _point(o, data, _arity(o))
    if name in ("atan2", "hypot") and not _away_from_kinks(name, args):
        return  # atan2(0, -0.0) is pi in `math`, 0 in mpmath: a branch cut
    with mpmath.workdps(50):
        precise = o.numeric(mpmath, *(mpmath.mpf(a) for a in args))
    assert isinstance(precise, mpmath.mpf)
    assert float(precise) == pytest.approx(o.evaluate(args), rel=1e-14, abs=1e-300)


def test_the_verifiers_math_covers_every_math_call_of_generated_code():
    """Emitted text and helpers call only `math` functions the 50-digit
    shim has, and the shim has them because the table does."""
    from pathlib import Path

    from exprgrad.verify.numeric import _math_shim
    shim = vars(_math_shim())
    examples = Path(__file__).resolve().parent.parent / "examples"
    texts = [o.py for o in OPS.values()] + [o.helper for o in OPS.values() if o.helper]
    texts += [exprgrad.emit(p.read_text(), p.name) for p in sorted(examples.glob("*.expr"))]
    called = {m for text in texts for m in re.findall(r"\bmath\.(\w+)", text)}
    assert called <= set(shim), called - set(shim)


def test_named_reals_are_the_doubles_nearest_their_sympy_values():
    for value, real in REALS.items():
        assert float(real(sp)) == value


def test_op_name_constants_name_table_entries():
    names = {v for k, v in vars(opnames).items() if k.isupper() and isinstance(v, str)}
    assert names <= set(OPS)
    assert set(opnames.DATA_AXIS_OPS) == {o.name for o in OPS.values() if o.loop}
    assert set(opnames.CONSTANTS) < {o.name for o in OPS.values() if o.arity == 0}


@pytest.mark.parametrize("name", SPEC_UNARY + SPEC_BINARY + SPEC_VARIADIC)
def test_every_builtin_maps_to_an_op(name):
    assert name in BUILTINS
    o = OPS[BUILTINS[name]]
    assert o.builtin == name
    expected = 1 if name in SPEC_UNARY else 2 if name in SPEC_BINARY else None
    assert o.arity == expected


def test_builtin_table_has_nothing_unexpected():
    assert set(BUILTINS) == set(SPEC_UNARY + SPEC_BINARY + SPEC_VARIADIC)


def test_constants_and_special_forms():
    assert BUILTIN_CONSTANTS == {"pi": math.pi, "e": math.e}
    assert {"diff", "grad", "sum", "prod", "len", "range"} <= SPECIAL_FORMS
    m = exprgrad.compile("f(x) = pi*x + e\n")
    assert m.f(2.0) == 2 * math.pi + math.e


# --- the Python text, the fold function and SymPy agree ------------------------
def _point(o, data, n):
    domains = DOMAINS.get(o.name, [DEFAULT_DOMAIN])
    values = []
    for i in range(n):
        lo, hi = domains[min(i, len(domains) - 1)]
        values.append(data.draw(st.floats(lo, hi), label=f"{o.name} arg {i}"))
    return values


def _arity(o):
    return 2 if o.arity is None else o.arity


def _attr(o):
    return 3 if o.has_attr else None  # ipow: x ** 3


def _helpers():
    namespace = {"math": math}
    for o in OPS.values():
        if o.helper:
            exec(o.helper, namespace)
    return namespace


@settings(max_examples=15, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(o.name for o in number_ops() if o.name != "where"))
def test_python_text_fold_function_and_sympy_agree(name, data):
    o = OPS[name]
    args = _point(o, data, _arity(o))
    if name in ("atan2", "hypot") and not _away_from_kinks(name, args):
        return
    attr = _attr(o)
    names = [f"a{i}" for i in range(len(args))]
    text = o.py.format(*names, args=", ".join(names), attr=attr)
    emitted = eval(text, {**_helpers(), **dict(zip(names, args))})
    folded = o.evaluate(args, attr)
    symbols = sp.symbols(names)
    symbolic = o.symbolic(sp, symbols, attr)
    exact = float(symbolic.subs(dict(zip(symbols, args))).evalf(30))
    assert emitted == folded
    assert emitted == pytest.approx(exact, rel=1e-12, abs=1e-14)


# --- derivative rules vs SymPy --------------------------------------------------
def evaluate(g: Graph, roots: list[int], inputs: dict[int, float]) -> list[float]:
    """Evaluate DAG nodes with the op table's fold functions; a conditional
    evaluates only the branch it takes."""
    values: dict[int, object] = dict(inputs)
    for n in g.ancestors(roots):
        node = g.nodes[n]
        if n in values:
            continue
        if node.op in ("const", "bool"):
            values[n] = node.attr
            continue
        args = []
        for a in node.args:
            args.append(values[a])
        spec = OPS[node.op]
        errors = [a for i, a in enumerate(args) if isinstance(a, Exception) and i not in spec.lazy]
        if errors:
            values[n] = errors[0]
            continue
        try:
            values[n] = spec.evaluate(args, node.attr)
        except (ArithmeticError, ValueError) as error:
            values[n] = error
    out = [values[r] for r in roots]
    for v in out:
        if isinstance(v, Exception):
            raise v
    return out


def rule_gradient(name: str, args: list[float], attr=None) -> tuple[float, list[float]]:
    g = Graph()
    xs = [g.input(("p", i), f"x{i}") for i in range(len(args))]
    out = g.add(name, *xs, attr=attr)
    partials = gradients(g, [(out, g.const(1.0))], xs)
    value, *grads = evaluate(g, [out, *partials], dict(zip(xs, args)))
    return value, grads


def sympy_gradient(name: str, args: list[float], attr=None) -> list[float]:
    symbols = sp.symbols([f"x{i}" for i in range(len(args))], real=True)
    o = OPS[name]
    expr = o.symbolic(sp, symbols, attr)
    at = dict(zip(symbols, args))
    return [float(sp.diff(expr, s).subs(at).evalf(30)) for s in symbols]


def _away_from_kinks(name, args):
    if name == "atan2" and args[1] < 0 and abs(args[0]) < 1e-6:
        return False  # the branch cut, where math's signed zero and SymPy differ
    if name in ("atan2", "hypot"):
        return math.hypot(*args) > 1e-3
    if name in ("relu", "abs"):
        return abs(args[0]) > 1e-6
    if name in ("min", "max"):
        return len({round(a, 6) for a in args}) == len(args)
    return True


@settings(max_examples=12, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(o.name for o in differentiable_ops()))
def test_derivative_rule_matches_sympy(name, data):
    o = OPS[name]
    args = _point(o, data, _arity(o))
    if not _away_from_kinks(name, args):
        return
    value, grads = rule_gradient(name, args, _attr(o))
    expected = sympy_gradient(name, args, _attr(o))
    assert grads == pytest.approx(expected, rel=1e-10, abs=1e-12)


@settings(max_examples=10, deadline=None)
@given(data=st.data(), n=st.integers(3, 4))
@pytest.mark.parametrize("name", ["min", "max"])
def test_variadic_extremum_rule_matches_sympy(name, data, n):
    args = data.draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n, unique=True))
    if not _away_from_kinks(name, args):
        return
    _, grads = rule_gradient(name, args)
    assert grads == pytest.approx(sympy_gradient(name, args), abs=1e-12)


@pytest.mark.parametrize("name,args,expected", [
    ("relu", [0.0], [0.0]),
    ("abs", [0.0], [0.0]),
    ("min", [1.0, 1.0], [0.5, 0.5]),
    ("max", [2.0, 2.0, -1.0], [0.5, 0.5, 0.0]),
    ("min", [3.0, 3.0, 3.0], [1 / 3, 1 / 3, 1 / 3]),
])
def test_conventions_at_kinks(name, args, expected):
    """PyTorch's conventions: relu'(0) = abs'(0) = 0; ties split evenly."""
    _, grads = rule_gradient(name, args)
    assert grads == pytest.approx(expected, abs=1e-15)


def test_conditional_routes_the_adjoint_to_the_branch_taken():
    for cond, expected in ((True, [1.0, 0.0]), (False, [0.0, 1.0])):
        g = Graph()
        a, b = g.input("a", "a"), g.input("b", "b")
        c = g.add("gt", g.input("c", "c"), g.const(0.0))
        out = g.add("where", c, a, b)
        partials = gradients(g, [(out, g.const(1.0))], [a, b])
        inputs = {a: 2.0, b: 3.0, g.input("c"): 1.0 if cond else -1.0}
        assert evaluate(g, partials, inputs) == expected


def test_pow_exponent_derivative_at_zero_base_is_zero():
    _, (da, db) = rule_gradient("pow", [0.0, 2.5])
    assert da == 0.0 and db == 0.0


def test_pow_negative_base_non_integer_exponent_is_a_domain_error():
    m = exprgrad.compile("f(a, b) = pow(a, b)\n")
    with pytest.raises(ValueError):
        m.f(-2.0, 0.5)
    assert m.f(-2.0, 3.0) == -8.0


# --- rule templates ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(o.name for o in differentiable_ops() + [OPS["where"]]))
def test_a_rule_template_replays_to_the_rule_written_out(name):
    """Replaying an op's template on a node gives exactly the nodes that
    applying the table's rule directly builds, and wanting one input's
    contribution returns that one only (tests/test_passes.py checks that the
    others are not built)."""
    from exprgrad.compiler.refs import OutRef, Ref
    from exprgrad.compiler.rules import rule_template
    o = OPS[name]
    arity = o.arity if o.arity is not None else 3
    g = Graph()
    xs = [g.input(("x", i)) for i in range(arity)]
    if name == "where":
        xs[0] = g.add("gt", xs[0], g.const(0.0))
    attr = 3 if name == "ipow" else None
    node = g.add(name, *xs, attr=attr)
    d = g.input("d")
    direct = o.grad(Ref(g, d), OutRef(g, node, attr), *(Ref(g, x) for x in xs))
    direct = [None if r is None else r.id for r in direct]
    template = rule_template(name, attr, arity)
    size = len(g)
    assert template.apply(g, d, node, xs, [True] * arity) == direct
    assert len(g) == size  # every node it needed already existed: the same nodes
    for i in range(arity):
        wanted = [j == i for j in range(arity)]
        assert template.apply(g, d, node, xs, wanted) == [
            direct[j] if j == i else None for j in range(arity)]


def test_a_rule_over_many_inputs_replays_in_linear_size():
    """max over n inputs: every input's contribution shares one count of the
    ties, so replaying all of them takes O(n) template nodes, not n × O(n)."""
    from exprgrad.compiler.rules import rule_template
    n = 2_000
    template = rule_template("max", None, n)
    assert len(template._plan((True,) * n)) < 8 * n
    module = exprgrad.compile(f"f(x[{n}]) = max(x[i] * x[i] for i in range({n}))\n")
    xs = [float(i % 97) for i in range(n)]
    value, (grad,) = module.f_grad(xs)
    assert value == 96.0 ** 2 and sum(1 for g in grad if g) == xs.count(96.0)
