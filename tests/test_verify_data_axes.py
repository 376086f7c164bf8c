"""`exprgrad check` on functions with data axes (`X[n][5]`, rolled loops).

Each gradient is compared, from the emitted text, with SymPy's derivative
of the function unrolled at n = 0, 1, 2, 5, and proved for every length
where its loops are sums.  The tests: the examples verify with nothing
unverified; a mutant of a loop body of the emitted text (a sign flipped,
a term dropped, a constant changed) is FAILED whenever it changes the
gradient, decided by brute force on random data independently of the
verifier; the symbolic part refuses a wrong adjoint; the array target's
text is verified too.
"""

import ast
import random

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.compiler.pipeline import differentiate, front_end
from exprgrad.verify import FAILED, NUMERIC, PROVED, Settings, check
from exprgrad.verify.data_axes import length_trials, lengths_text
from exprgrad.verify.sums import is_zero, prove_gradient
from exprgrad.verify.timelimit import budget
from test_verify_mutants import mutants

FAST = Settings(timeout=1.0, prove=False)


def test_logistic_example_verifies_with_its_sums_proved_for_every_length():
    report = check("examples/logistic.expr")
    assert report, report.text()
    by_what = {item.what: item for item in report.items}
    for name in ("w", "b"):
        item = by_what[f"gradient of loss with respect to {name}"]
        assert item.status == PROVED and "for every length" in item.detail
        assert "n = 1, 2, 5" in item.detail  # n = 0: a mean over nothing
        assert "ZeroDivisionError" in item.detail
        assert by_what[f"gradient of predict with respect to {name}"].status == PROVED
    for what in ("gradient of predict with respect to X", "gradient of smoothness with "
                 "respect to u"):  # along the data axis, its edges region by region
        assert by_what[what].status == PROVED and "n = 0, 1, 2, 5" in by_what[what].detail


def test_a_relu_layer_over_data_verifies_numerically_with_its_branches_taken():
    source = ("def f(W[2][2], c, X[n][2], y[n]) wrt W, c:\n"
              "    h = [[relu(W[j][0]*X[k][0] + W[j][1]*X[k][1]) for j in range(2)] "
              "for k in range(n)]\n"
              "    return sum((h[k][0] - c*h[k][1] - y[k])^2 for k in range(n))\n")
    report = check(source, timeout=2.0)
    assert report, report.text()
    assert all(i.status in (PROVED, NUMERIC) and "n = 0, 1, 2, 5" in i.detail
               for i in report.items)
    assert all(i.status != NUMERIC or "branches taken" in i.detail for i in report.items)


def test_several_size_names_each_take_every_length_and_shared_names_agree():
    source = ("def f(a, X[n][2], u[n], v[m]) wrt a, u, v:\n"
              "    return sum(a*X[k][0]*u[k] for k in range(n)) + sum(sin(a*v[j]) for j in "
              "range(m))\n")
    f = front_end(source).function("f")
    trials = length_trials(f)
    assert sorted(t["n"] for t in trials) == [0, 1, 2, 5]
    assert sorted(t["m"] for t in trials) == [0, 1, 2, 5]
    assert lengths_text(trials).startswith("(n, m) = (")
    report = check(source, timeout=2.0)
    assert report, report.text()
    assert [i.status for i in report.items] == [PROVED, PROVED, PROVED]


def test_a_length_that_does_not_compile_is_named_and_the_others_compared():
    report = check("def f(s, u[n]):\n    return max(u[k]*s for k in range(n))\n", timeout=2.0)
    assert report, report.text()
    assert all("at n = 0: the source does not compile" in i.detail for i in report.items)
    assert all("n = 1, 2, 5" in i.detail for i in report.items)


# --- mutants -------------------------------------------------------------------------

SOURCES = {
    "mean loss": ("def f(w[2], b, X[n][2], y[n]) wrt w, b:\n"
                  "    z = [w[0]*X[k][0] + w[1]*X[k][1] + b for k in range(n)]\n"
                  "    return sum(softplus(z[k]) - y[k]*z[k] for k in range(n)) / n\n",
                  [(2,), (), ("n", 2), ("n",)]),
    "shifted": ("def f(c, u[n]):\n"
                "    return sum(c*(u[k] - u[k-1])^2 for k in range(1, n))\n",
                [(), ("n",)]),
    "map": ("def f(w, X[n][2]):\n"
            "    return [tanh(w*X[k][0]) * X[k][1] for k in range(n)]\n",
            [(), ("n", 2)]),
    "nested": ("def f(a, u[n]):\n"
               "    return sum(sum(a*u[i]*u[j] - u[j] for j in range(n)) for i in range(n))\n",
               [(), ("n",)]),
}
MUTANTS_PER_SOURCE = 14


def _loop_sites(tree):
    """(parent, field) of every assignment inside a `for` loop of a gradient."""
    for function in tree.body:
        if not (isinstance(function, ast.FunctionDef) and
                function.name.endswith(("_grad", "_vjp"))):
            continue
        for loop in ast.walk(function):
            if isinstance(loop, ast.For):
                for statement in loop.body:
                    if isinstance(statement, ast.AugAssign) or (
                            isinstance(statement, ast.Assign) and
                            isinstance(statement.targets[0], ast.Name)):
                        yield statement, "value"


def loop_mutants(text):
    """(description, text) for a spread of the loop-body mutants."""
    return mutants(text, places=_loop_sites, most=MUTANTS_PER_SOURCE)


def _data(rng, shape, n):
    if not shape:
        return rng.uniform(-2, 2)
    head = n if shape[0] == "n" else shape[0]
    return [_data(rng, shape[1:], n) for _ in range(head)]


def _flat(value):
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _changes(text, mutant, shapes) -> bool:
    """Does the mutant's gradient differ anywhere on random data at
    n = 1, 2, 3, 5?  (Independent of the verifier.)"""
    ns_a, ns_b = {}, {}
    exec(compile(text, "<original>", "exec"), ns_a)
    exec(compile(mutant, "<mutant>", "exec"), ns_b)
    name = next(n for n in ns_a["__all__"] if n.endswith(("_grad", "_vjp")))
    rng = random.Random(0)
    for n in (1, 2, 3, 5):
        for _ in range(3):
            args = [_data(rng, s, n) for s in shapes]
            if name.endswith("_vjp"):
                args.append([rng.uniform(-2, 2) for _ in range(n)])
            want = ns_a[name](*args)
            try:
                got = ns_b[name](*args)
            except (ArithmeticError, ValueError, TypeError, IndexError):
                return True
            if any(abs(a - b) > 1e-9 * max(abs(a), abs(b)) + 1e-12
                   for a, b in zip(_flat(want), _flat(got))):
                return True
    return False


@pytest.mark.parametrize("kind", SOURCES)
def test_every_loop_body_mutant_that_changes_a_gradient_is_caught(kind, capsys):
    source, shapes = SOURCES[kind]
    text = exprgrad.emit(source)
    assert check(source, settings=FAST, module_text=text), "the original must hold"
    tried = changing = caught = 0
    missed = []
    for what, mutant in loop_mutants(text):
        tried += 1
        if not _changes(text, mutant, shapes):
            continue
        changing += 1
        report = check(source, settings=FAST, module_text=mutant)
        if any(item.status == FAILED for item in report.items):
            caught += 1
        else:
            missed.append(what)
    with capsys.disabled():
        print(f"\n{kind}: caught {caught} of {changing} changing loop mutants ({tried} tried)")
    assert changing >= 3
    assert not missed, missed


def test_a_failure_names_the_length_and_the_point():
    source, _ = SOURCES["mean loss"]
    text = exprgrad.emit(source).replace("d_b += d_z", "d_b += 2 * d_z")
    assert text != exprgrad.emit(source)
    report = check(source, settings=FAST, module_text=text)
    item = next(i for i in report.items if i.what.endswith("to b"))
    assert item.status == FAILED and item.detail.startswith("at n = 1: ")
    assert item.counterexample["lengths"] == {"n": 1} and "X[0][1]" in item.counterexample["point"]


# --- the proof for every length ----------------------------------------------------------

def test_sums_are_compared_whatever_their_loops_are_called():
    n = sp.Symbol("len_n", integer=True, nonnegative=True)
    k, j, i = (sp.Symbol(s, integer=True) for s in "kji")
    X = sp.IndexedBase("X", real=True)
    w = sp.Symbol("w", real=True)
    body = lambda v: sp.exp(w * X[v]) * X[v]  # noqa: E731
    assert is_zero(sp.Sum(body(k), (k, 0, n - 1)) - sp.Sum(body(j), (j, 0, n - 1)))
    assert is_zero(sp.Sum(body(k), (k, 0, n - 1)) / n - sp.Sum(body(j) / n, (j, 0, n - 1)))
    assert not is_zero(sp.Sum(body(k), (k, 0, n - 1)) - sp.Sum(body(j), (j, 1, n - 1)))
    assert not is_zero(sp.Sum(body(k), (k, 0, n - 1)) - sp.Sum(2 * body(j), (j, 0, n - 1)))
    inner = sp.Sum(w * X[i] * X[j], (j, 0, n - 1))
    assert is_zero(sp.Sum(inner, (i, 0, n - 1)) - sp.Sum(sp.Sum(w * X[k] * X[j], (k, 0, n - 1)),
                                                         (j, 0, n - 1)))


def test_the_proof_refuses_a_wrong_adjoint():
    """The adjoints of w[0] and b swapped: no proof."""
    source, _ = SOURCES["mean loss"]
    program = front_end(source)
    emitted = {e.name: e for e in differentiate(program)}
    f, gradient = program.function("f"), emitted["f_grad"]
    wrt = [f.params[i] for i in f.wrt]
    with budget(20) as b:
        assert prove_gradient(program, f, gradient, wrt, b) == [True, True]
        (d_w0, d_w1), d_b = gradient.result[1]
        gradient.result = (gradient.result[0], ([d_b, d_w1], d_w0))
        assert prove_gradient(program, f, gradient, wrt, b) == [False, False]


# --- the array target ------------------------------------------------------------------

def test_the_array_targets_data_axis_text_is_verified_and_a_wrong_op_caught(monkeypatch):
    pytest.importorskip("numpy")
    from exprgrad.compiler import array_ops
    source, _ = SOURCES["map"]
    report = check(source, "t.expr", target="array", timeout=2.0)
    assert report and all("n = 0, 1, 2, 5" in i.detail for i in report.items), report.text()
    monkeypatch.setitem(array_ops.ARRAY_TEMPLATES, "tanh", ("xp.sinh({0})", 10, (0,)))
    report = check(source, "t.expr", target="array", settings=FAST)
    assert not report and any(i.status == FAILED for i in report.items)
    assert check(source, "t.expr", settings=FAST)  # the plain target's text is untouched


# --- `check ... where n=3, X=[...]` ------------------------------------------------------

LOSS = ("def loss(w, X[n][2], y[n]) wrt w:\n"
        "    return sum((w*X[k][0] + X[k][1] - y[k])^2 for k in range(n))\n")


def test_a_check_on_data_given_by_where_is_proved_or_refuted():
    report = check(LOSS +
                   "check loss(w, X, y) == (w + 1)^2 + (3*w + 2)^2 where n=2, X=[[1, 2], [3, 4]],"
                   " y=[1, 2]\n"
                   "check diff(loss(w, X, y), w) == 2*(w + 1) where X=[[1, 2], [3, 4]], y=[1, 2]\n"
                   "check loss(w, X, y) == 0 where X=[], y=[]\n", checks_only=True)
    first, second, empty = report.items
    assert first.status == PROVED and first.detail == "identity in w"
    assert second.status == FAILED and second.counterexample["point"].keys() == {"w"}
    assert empty.status == PROVED


def test_where_n_alone_checks_at_random_data_of_that_length():
    report = check(LOSS + "check loss(w, X, y) == sum((w*X[k][0] + X[k][1] - y[k])^2 for k in "
                   "range(3)) where n=3\n"
                   "check loss(w, X, y) == sum((w*X[k][0] - y[k])^2 for k in range(2)) where "
                   "n=2, y=[1, 2]\n", checks_only=True)
    proved, refuted = report.items
    assert proved.status == PROVED and "X[2][1]" in proved.detail and "y[2]" in proved.detail
    assert refuted.status == FAILED and "X[1][1]" in refuted.counterexample["point"]
    assert "y[0]" not in refuted.counterexample["point"]  # y is given


def test_the_emitted_data_function_runs_at_the_checks_data():
    source = LOSS + "check loss(w, X, y) == w^2 where X=[[1, 2]], y=[2]\n"
    text = exprgrad.emit(source)
    start, end = text.index("def loss("), text.index("def loss_grad(")
    broken = text[:start] + text[start:end].replace("** 2", "** 3") + text[end:]
    assert check(source, checks_only=True)
    item, = check(source, checks_only=True, module_text=broken).items
    assert item.status == FAILED and "the emitted loss(w, X, y) gives" in item.detail


@pytest.mark.parametrize("where, message", [
    ("n=2, X=[[1, 2]]", "'X' has length 1 along 'n', but 'n' is 2 here"),
    ("m=2", "'X' is data of length n for loss(): give it with 'where X=[...]'"),
    ("n=1.5", "must be a whole number"),
])
def test_lengths_that_cannot_hold_are_located_errors(where, message):
    report = check(LOSS + f"check loss(w, X, y) == 1 where {where}\n")
    assert report.error is not None and message in report.error
    assert report.error.startswith("<string>:3:") and "^" in report.error


def test_data_the_check_does_not_use_is_a_failure():
    item, = check(LOSS + "check loss(w, X, y) == 1 where n=1, Z=[1, 2]\n", checks_only=True).items
    assert item.status == FAILED and "gives data for 'Z'" in item.detail


def test_the_array_target_without_numpy_verifies_nothing_and_says_why(monkeypatch):
    import exprgrad.verify as verify
    monkeypatch.setattr(verify, "_array_target_runs", lambda: False)
    report = check(SOURCES["map"][0], "t.expr", target="array")
    assert not report and "NumPy" in report.error and "nothing verified" in report.error


# is_zero against brute force: a sum rewritten (loop renamed, coefficient moved
# under the Sum, the Sum split in two) is shown 0; a perturbed one, never
_N = sp.Symbol("len_n", integer=True, nonnegative=True)
_X = sp.IndexedBase("X", real=True)
_W = sp.Symbol("w", real=True)
_PIECES = [lambda v: _X[v], lambda v: _W * _X[v], lambda v: sp.sin(_W * _X[v]),
           lambda v: _X[v] ** 2, lambda v: sp.Integer(1), lambda v: _W * v]


def _sum_pair(draw, perturb: bool):
    """c·Sum(p(k) + q(k)) and the same rewritten, perhaps perturbed."""
    p, q = draw(st.sampled_from(_PIECES)), draw(st.sampled_from(_PIECES))
    c = draw(st.sampled_from([sp.Integer(2), _W, 1 / _N, sp.cos(_W)]))
    start = draw(st.integers(0, 1))
    k, j, m = (sp.Symbol(name, integer=True) for name in ("k", "j", "m"))
    inner = sp.Integer(1)
    if draw(st.booleans()):  # a nested sum as a factor of the body
        i = sp.Symbol("i", integer=True)
        inner = sp.Sum(_X[i] * _W, (i, 0, _N - 1))
    left = c * sp.Sum((p(k) + q(k)) * inner, (k, start, _N - 1))
    change = draw(st.sampled_from(["coefficient", "start"])) if perturb else None
    scale = 3 if change == "coefficient" else 1
    right = (sp.Sum(c * p(j) * inner, (j, start, _N - 1)) +
             sp.Sum(scale * c * q(m) * inner, (m, start + (change == "start"), _N - 1)))
    return left, right


def _at(expr, n, values):
    concrete = expr.subs(_N, n).doit().subs(_W, sp.Rational(7, 10))
    return complex(concrete.replace(lambda e: isinstance(e, sp.Indexed),
                                    lambda e: sp.Float(values[int(e.indices[0])])))


@settings(max_examples=15, deadline=None)
@given(data=st.data(), perturb=st.booleans())
def test_is_zero_agrees_with_brute_force_on_rewritten_sums(data, perturb):
    left, right = _sum_pair(data.draw, perturb)
    values = [data.draw(st.floats(-2, 2)) for _ in range(4)]
    differs = any(abs(_at(left - right, n, values)) > 1e-9 for n in (1, 2, 3, 4))
    if differs:  # sound: never 0 where brute force finds a difference
        assert not is_zero(left - right)
    if not perturb:  # and these rewrites are shown
        assert not differs and is_zero(left - right)


@pytest.mark.parametrize("wrong", ["neg", "double", "shift"])
def test_the_proof_along_a_data_axis_refuses_a_wrong_map(wrong):
    """d_u of the shifted sum, negated, doubled, or read one element on."""
    from exprgrad.compiler.loops import RuntimeArray, substitute_loops
    program = front_end("def f(c, u[n]):\n    return sum(c*(u[k] - u[k-1])^2 for k in "
                        "range(1, n))\n")
    emitted = {e.name: e for e in differentiate(program)}
    f, gradient = program.function("f"), emitted["f_grad"]
    wrt = [f.params[i] for i in f.wrt]
    g = program.graph
    with budget(30) as b:
        assert prove_gradient(program, f, gradient, wrt, b) == [True, True]
        d_c, d_u = gradient.result[1]
        if wrong == "shift":
            element = substitute_loops(g, [d_u.element], {d_u.index: (d_u.index, 1)})[0]
        else:
            element = g.add("neg" if wrong == "neg" else "add", d_u.element,
                            *([d_u.element] if wrong == "double" else []))
        gradient.result = (gradient.result[0], (d_c, RuntimeArray(d_u.index, element)))
        proved = prove_gradient(program, f, gradient, wrt, b)
    assert proved[0] is True and proved[1] is not True


SHAPES = {  # results and parameters of every shape a data-axis function can have
    "map of pairs": ("def f(a, X[n][2]):\n"
                     "    return [[a*X[k][0], exp(a)*X[k][1]] for k in range(n)]\n"),
    "tuple": "def f(a, u[n]):\n    return sum(a*u[k] for k in range(n)), a*2\n",
    "loop index as a number": ("def f(a, u[n]):\n"
                               "    return sum((k*a if k > 1 else a*a)*u[k] for k in range(n))\n"),
    "log of a sum": "def f(a, u[n]):\n    return log(1 + sum(exp(a*u[k]) for k in range(n)))\n",
    "wrt data only": ("def f(a, X[n][3]) wrt X:\n"
                      "    return sum(tanh(a*X[k][0] + X[k][1]*X[k][2]) for k in range(n))\n"),
}


@pytest.mark.parametrize("target", ["python", "array"])
@pytest.mark.parametrize("kind", SHAPES)
def test_data_axis_functions_of_every_shape_verify_on_both_targets(kind, target):
    if target == "array":
        pytest.importorskip("numpy")
    report = check(SHAPES[kind], "t.expr", target=target, timeout=2.0)
    assert report, report.text()
    assert all("n = 0, 1, 2, 5" in i.detail for i in report.items)


def test_a_product_over_data_holds_at_zero_factors():
    """The verifier's points include zeros: the product of the other factors
    (not a division by the factor) is what SymPy's derivative gives there."""
    source = ("def f(t, u[n]):\n    return sum((log(u[k]) if u[k] > 0 else t*u[k]) "
              "for k in range(n)) + prod(u) * t\n")
    report = check(source, "t.expr", timeout=2.0)
    assert report and not [i for i in report.items if i.status == FAILED], report.text()


def test_a_sum_proof_sympy_cannot_compare_rests_on_the_numbers():
    """SymPy's `Sum` objective of this program compares with zoo (a
    derivative of max at a constant, 1/(1 + n^2)) and raised TypeError out of
    `check`; the proof is not shown and the numeric comparison stands.
    (A program of the long fuzz run.)"""
    source = ("d0(u[n], s) wrt s = sum(sqrt(1 + (s)*(s)) for k in range(n)) - sum((u[k + 1] "
              "if (s - u[k + 1]) >= 1e3 else (s - u[k + 1])) for k in range(n - 1))\n"
              "def d1(u[n], X[n][2], s, v[n]) wrt u:\n"
              "    z0 = [diff(max(s, (1e-3 / (1 + (n)^2))), s) for k in range(n)]\n"
              "    return min((((0.25 * 0.25) / (1 + (z0[k + 1])^2)) if z0[k + 1] > 3 else "
              "z0[k + 1]) for k in range(n - 1)) / (1 + n)\n")
    report = exprgrad.check(source, "fuzz.expr", timeout=1.0)
    assert report.error is None and len(report.items) == 2
    assert "FAILED" not in {item.status for item in report.items}
