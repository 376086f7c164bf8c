"""The array printer against the statement program's own meaning.

`interpret` runs a `program.Function` statement by statement on floats (the
plain target's semantics: loops iterate, conditions branch, only the branch
taken runs).  Random programs with data axes (loops over a runtime length,
shifted loads, nested loops, conditional terms, sum/prod/min/max
accumulations, branches that would fail if evaluated where not taken) are
printed as array code, run on NumPy arrays with invalid operations and
divisions by zero raising (a branch evaluated where it fails), and compared
with the interpreter to 1e-12 for n = 0..6.  An overflow is no error of the
plain semantics (Python's `1.0 / 5e-324` is inf), so it does not raise; where
the interpreter itself overflows, the array side runs with every error
ignored and must give the same infinities and nans.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import Phase, given, settings, strategies as st

np = pytest.importorskip("numpy")
pytest.importorskip("array_api_compat")

# The printer renders the scheduler's statement program (compiler/program.py).
pytest.importorskip("exprgrad.compiler.program")
array = pytest.importorskip("exprgrad.compiler.printers.array")

from exprgrad.compiler.ops import OPS  # noqa: E402
from exprgrad.compiler.program import (Assign, Call, Const, For, Function, If, Name,  # noqa: E402
                                       Param, Return, walk)

RAISE = {"over": "ignore", "divide": "raise", "invalid": "raise"}
OVERFLOWED = "<overflowed>"  # an env key no program name can be


# --- the reference: the program run statement by statement ----------------------
def interpret(fn: Function, args: dict, env: dict | None = None):
    """The program's result; `env` (given empty) keeps its variables, and
    `OVERFLOWED` where an operation overflowed."""
    env = {} if env is None else env
    for p in fn.params:
        value = args[p.name]
        if array._is_data(p.shape):
            env[p.source] = value
            for axis, size in enumerate(p.shape):
                if isinstance(size, str):
                    v = value
                    for _ in range(axis):
                        v = v[0]
                    env[size] = len(v)
        else:
            _bind(env, p.elements, value)
    return _run(fn.body, env)


def _bind(env, elements, value):
    if isinstance(elements, str):
        env[elements] = float(value)
    else:
        for e, v in zip(elements, value):
            _bind(env, e, v)


def _run(statements, env):
    for s in statements:
        if isinstance(s, Assign):
            env[s.target] = _eval(s.value, env)
        elif isinstance(s, If):
            out = _run(s.then if _eval(s.cond, env) else s.orelse, env)
            if out is not None:
                return out
        elif isinstance(s, For):
            size, offset = s.stop
            if env[size] + offset <= s.start and _extremum(s.body):
                raise ValueError("min or max over an empty range")
            for k in range(s.start, env[size] + offset):
                env[s.var] = k
                _run(s.body, env)
        elif isinstance(s, Return):
            return _structure(s.value, env)
    return None


def _extremum(body) -> bool:
    """A min or max accumulates in this loop body."""
    return any(isinstance(s, Assign) and isinstance(s.value, Call) and s.value.op in ("min", "max")
               and s.value.args[0] == Name(s.target) for s in walk(body))


def _structure(value, env):
    if isinstance(value, (list, tuple)):
        return type(value)(_structure(v, env) for v in value)
    return _eval(value, env)


def _eval(e, env):
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Name):
        return env[e.id]
    if e.op == "load":
        param, index = e.attr
        v = env[param]
        for entry in index:
            v = v[entry] if isinstance(entry, int) else v[env[e.args[entry[0]].id] + entry[1]]
        return float(v)
    if e.op == "size":
        return float(env[e.attr])
    if e.op == "where":
        return _eval(e.args[1] if _eval(e.args[0], env) else e.args[2], env)
    op = OPS[e.op]
    values = [_eval(a, env) for a in e.args]
    value = op.fn(*values, *((e.attr,) if op.has_attr else ()))
    if not math.isfinite(value) and all(map(math.isfinite, values)):
        env[OVERFLOWED] = True  # a float operation overflowed on finite operands
    return value


# --- the array side --------------------------------------------------------------
def printed(fn: Function):
    text = array.module([fn], "random.expr")
    scope: dict = {}
    exec(compile(text, "<array module>", "exec"), scope)
    return scope[fn.name], text


def C(op, *args, attr=None):
    return Call(op, tuple(args), attr)


def load(param, *index, var="k"):
    return Call("load", (Name(var),), (param, tuple(index)))


PARAMS = [Param("a", "a", (), "a"), Param("w", "w", (2,), ["w_0", "w_1"]),
          Param("X", "X", ("n", 2), None), Param("y", "y", ("n",), None)]


# per-iteration expressions over a loop's variable k (shifted loads stay in bounds)
def leaves(var, shifts):
    return st.one_of(
        st.sampled_from([Name("a"), Name("w_0"), Name("w_1")]),
        st.floats(-2, 2, allow_nan=False).map(lambda v: Const(round(v, 3))),
        st.sampled_from([(s, c) for s in shifts for c in (0, 1)]).map(
            lambda sc: load("X", (0, sc[0]), sc[1], var=var)),
        st.sampled_from(shifts).map(lambda s: load("y", (0, s), var=var)),
        st.just(C("mul", Name(var), Const(0.25))),
    )


def trees(var, shifts):
    def extend(children):
        return st.one_of(
            st.tuples(st.sampled_from(["add", "sub", "mul"]), children, children).map(
                lambda t: C(t[0], t[1], t[2])),
            st.tuples(st.sampled_from(["sin", "tanh", "cos", "sigmoid", "softplus", "abs",
                                       "relu"]), children).map(lambda t: C(t[0], t[1])),
            children.map(lambda c: C("exp", C("tanh", c))),
            # a branch that fails where it is not taken: log, sqrt, 1/x
            st.tuples(st.sampled_from(["log", "sqrt", "recip"]), children.filter(_varies),
                      children).map(
                lambda t: C("where", C("gt", t[1], Const(0.0)),
                            C("div", Const(1.0), t[1]) if t[0] == "recip" else C(t[0], t[1]),
                            t[2])),
        )
    return st.recursive(leaves(var, shifts), extend, max_leaves=6)


def _varies(e) -> bool:
    """Not a constant expression (the compiler folds those before printing)."""
    return not isinstance(e, Const) and (not isinstance(e, Call) or e.op == "load"
                                         or any(_varies(a) for a in e.args))


@st.composite
def programs(draw):
    """A loss of the form: accumulators over a loop (optionally nested, or
    conditional), divided by the size."""
    start, offset = draw(st.sampled_from([(0, 0), (1, 0), (0, -1), (1, -1)]))
    shifts = sorted({0} | ({-1} if start else set()) | ({1} if offset else set()))
    kind = draw(st.sampled_from(["add", "mul", "min", "max"]))
    init = {"add": 0.0, "mul": 1.0, "min": math.inf, "max": -math.inf}[kind]
    term = draw(trees("k", shifts))
    if kind == "mul":
        term = C("add", Const(1.0), C("mul", Const(0.1), C("tanh", term)))
    body = [Assign("t", term)]
    style = draw(st.sampled_from(["plain", "if", "nested", "both-sides", "reassigned"]))
    if style == "if":
        cond = C("gt", draw(trees("k", shifts)), Const(0.0))
        body.append(If(cond, [Assign("s", C(kind, Name("s"), Name("t")))], []))
    elif style == "nested":
        inner = draw(trees("j", [0]))
        body += [Assign("u", Const(0.0)),
                 For("j", 0, ("n", 0), [Assign("u", C("add", Name("u"),
                                                       C("mul", inner, Name("t"))))]),
                 Assign("s", C(kind, Name("s"), C("add", Name("u"), Name("t")) if kind != "mul"
                                else Name("t")))]
    elif style == "both-sides":
        fail = draw(trees("k", shifts))
        body += [If(C("gt", Name("t"), Const(0.0)),
                    [Assign("v", C("log", Name("t")))],
                    [Assign("v", C("sqrt", C("neg", Name("t"))))]),
                 Assign("s", C(kind, Name("s"), C("add", Name("v"), C("mul", fail, Const(0.0)))))]
    elif style == "reassigned":
        body += [Assign("v", C("add", Name("t"), Const(1.0))),
                 If(C("gt", Name("t"), Const(0.0)), reassigning(draw), []),
                 Assign("s", C(kind, Name("s"), C("add", Const(1.0), C("mul", Const(0.1),
                                                                        C("tanh", Name("v"))))))]
    else:
        body.append(Assign("s", C(kind, Name("s"), Name("t"))))
    program = [Assign("s", Const(init)), For("k", start, ("n", offset), body)]
    if draw(st.booleans()):  # a condition without a data axis, whose side can fail
        program.append(If(C("gt", Name("a"), Const(0.0)),
                          [Assign("s", C("add", Name("s"), C("log", Name("a"))))], []))
    late = C("where", C("lt", Name("w_0"), Const(0.0)), C("sqrt", C("neg", Name("w_0"))),
             Const(1.0))
    program.append(Return((Name("s"), C("add", C("mul", Name("s"), late),
                                         C("size", attr="n")))))
    return Function("f", PARAMS, "a random data-axis program", program)


def reassigning(draw) -> list:
    """A side that can fail (log, sqrt of t where t > 0) and rebinds a name
    bound before it, reading it before and after (and in a nested side): a
    read after the rebinding sees the new value, through a new safe input."""
    side = [Assign("v", C("add", Name("v"), C("log", Name("t"))))]
    if draw(st.booleans()):
        side.append(If(C("gt", Name("v"), Const(0.5)),
                       [Assign("v", C("mul", Name("v"), C("sqrt", Name("v"))))], []))
    side.append(Assign("v", draw(st.sampled_from([
        C("mul", Name("v"), C("sqrt", Name("t"))),  # an accumulation into v
        C("sin", C("div", Name("v"), C("add", Name("t"), Const(1.0))))]))))
    return side


def close(got, want) -> bool:
    if isinstance(want, (list, tuple)):
        return all(close(g, w) for g, w in zip(got, want))
    if math.isinf(want) or math.isnan(want):
        return got == want or (math.isnan(want) and math.isnan(got))
    return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.generate, Phase.target])
@given(programs(), st.integers(0, 6), st.randoms(use_true_random=False))
def test_random_data_axis_programs_match_the_statement_semantics(fn, n, rng):
    args = {"a": rng.uniform(-1, 1), "w": [rng.uniform(-1, 1) for _ in range(2)],
            "X": [[rng.uniform(-2, 2) for _ in range(2)] for _ in range(n)],
            "y": [rng.uniform(-2, 2) for _ in range(n)]}
    env: dict = {}
    try:
        want = interpret(fn, args, env)
    except ValueError:  # min/max over nothing
        want = ValueError
    f, text = printed(fn)
    data = {k: np.asarray(v, dtype=np.float64).reshape((n, 2) if k == "X" else (-1,))
            if k in "Xy" else v for k, v in args.items()}
    with np.errstate(**({"all": "ignore"} if OVERFLOWED in env else RAISE)):
        if want is ValueError:
            with pytest.raises(ValueError, match="empty range"):
                f(**data)
            return
        got = f(**data)
    assert close(got, want), (got, want, text)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_a_term_the_loop_does_not_vary_adds_nothing_when_the_loop_runs_no_times(n):
    """`s + t * count` would be inf * 0 = nan for an infinite `t` over an
    empty range; the loop adds nothing there (fuzz of the printer)."""
    huge = C("mul", C("exp", Name("a")), C("exp", Name("a")))  # exp(400)^2 overflows to inf
    fn = Function("f", PARAMS, "doc", [Assign("s", Const(0.0)),
                                        For("k", 0, ("n", -1), [Assign("s", C("add", Name("s"),
                                                                              huge))]),
                                        Return(Name("s"))])
    args = {"a": 400.0, "w": [0.0, 0.0], "X": [[0.0, 0.0]] * n, "y": [0.0] * n}
    want = interpret(fn, args)
    f, _ = printed(fn)
    with np.errstate(all="ignore"):
        got = f(400.0, np.zeros(2), np.zeros((n, 2)), np.zeros(n))
    assert close(float(got), want) and want == (0.0 if n <= 1 else math.inf)


def test_a_shifted_load_is_a_slice_and_a_nested_loop_a_second_axis():
    inner = For("j", 0, ("n", 0), [Assign("u", C("add", Name("u"),
                                                   C("mul", load("y", (0, 0), var="j"),
                                                     load("y", (0, -1)))))])
    fn = Function("f", PARAMS, "doc", [Assign("s", Const(0.0)),
                                        For("k", 1, ("n", 0), [Assign("u", Const(0.0)), inner,
                                                               Assign("s", C("add", Name("s"),
                                                                             Name("u")))]),
                                        Return(Name("s"))])
    f, text = printed(fn)
    assert "y[:n - 1][:, None]" in text and "y[None, :]" in text
    y = [1.0, 2.0, 3.0]
    assert f(0.0, [0.0, 0.0], np.zeros((3, 2)), np.asarray(y)) == sum(y) * (y[0] + y[1])


def test_jax_jit_traces_a_printed_program():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    fn = Function("f", PARAMS, "doc", [
        Assign("s", Const(0.0)),
        For("k", 0, ("n", 0), [If(C("gt", load("y", (0, 0)), Const(0.0)),
                                  [Assign("s", C("add", Name("s"), C("log", load("y", (0, 0)))))],
                                  [])]),
        Return(C("mul", Name("s"), Name("a")))])
    f, _ = printed(fn)
    y = np.asarray([0.5, -1.0, 2.0, 0.0])
    got = jax.jit(f)(2.0, np.zeros(2), np.zeros((4, 2)), y)
    assert math.isclose(float(got), 2.0 * (math.log(0.5) + math.log(2.0)), rel_tol=1e-14)


# --- one printed loss on other namespaces ------------------------------------------
def logistic_program(features: int = 5) -> Function:
    """Logistic regression's mean loss and gradient, as the scheduler writes
    it: one loop whose accumulations are the loss and the gradient."""
    w = [f"w_{i}" for i in range(features)]
    params = [Param("w", "w", (features,), w), Param("b", "b", (), "b"),
              Param("X", "X", ("n", features), None), Param("y", "y", ("n",), None)]
    z = Name("b")
    for i in range(features):
        z = C("add", C("mul", Name(w[i]), load("X", (0, 0), i)), z)
    y = load("y", (0, 0))
    loop = [Assign("z", z),
            Assign("s", C("add", Name("s"), C("sub", C("softplus", Name("z")),
                                                C("mul", y, Name("z"))))),
            Assign("t", C("sub", C("sigmoid", Name("z")), y)),
            Assign("d_b", C("add", Name("d_b"), Name("t")))]
    loop += [Assign(f"d_{v}", C("add", Name(f"d_{v}"), C("mul", Name("t"), load("X", (0, 0), i))))
             for i, v in enumerate(w)]
    n = C("size", attr="n")
    body = [Assign(v, Const(0.0)) for v in ["s", "d_b", *(f"d_{v}" for v in w)]]
    body += [For("k", 0, ("n", 0), loop),
             Return((C("div", Name("s"), n),
                     ([C("div", Name(f"d_{v}"), n) for v in w], C("div", Name("d_b"), n))))]
    return Function("loss_grad", params, "the mean logistic loss and its gradient", body)


def logistic_reference(w, b, X, y):
    z = X @ np.asarray(w) + b
    s = 1.0 / (1.0 + np.exp(-z)) - y
    n = len(y)
    return (np.sum(np.logaddexp(0.0, z) - y * z) / n, (list(X.T @ s / n), np.sum(s) / n))


def test_a_row_times_a_vector_and_its_gradient_are_vector_matrix_products():
    f, text = printed(logistic_program())
    assert "z = xp.matmul(X[:, 0:5], w[0:5]) + b" in text
    assert "xp.matmul(t, X[:, 0:5])" in text
    rng = np.random.default_rng(1)
    X, y, w = rng.uniform(-1, 1, (9, 5)), rng.uniform(0, 1, 9), rng.uniform(-1, 1, 5)
    value, (d_w, d_b) = f(list(w), 0.3, X, y)
    want_value, (want_w, want_b) = logistic_reference(w, 0.3, X, y)
    assert close((value, d_w, d_b), (want_value, [float(g) for g in want_w], want_b))


def test_dask_through_a_local_cluster_gives_the_numpy_result():
    """16 chunks on 2 worker processes; the data are made on the workers and
    never whole in one place, so the data set is 16 times the chunk memory."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import dask
    f, _ = printed(logistic_program())
    rows, chunk = 64_000, 4_000
    X = da.random.default_rng(3).uniform(-1.0, 1.0, (rows, 5), chunks=(chunk, 5))
    y = (X[:, 0] - X[:, 1] > 0).astype(np.float64)
    w, b = [0.3, -0.2, 0.1, 0.0, 0.5], 0.1
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        value, (d_w, d_b) = f(w, b, X, y)  # lazy: one graph
        assert isinstance(value, da.Array)
        value, d_w, d_b, Xs, ys = dask.compute(value, d_w, d_b, X, y)
    want_value, (want_w, want_b) = logistic_reference(w, b, Xs, ys)
    assert close((float(value), [float(g) for g in d_w], float(d_b)),
                 (want_value, want_w, want_b))


def test_jax_jit_of_a_printed_loss_matches_numpy():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    f, _ = printed(logistic_program())
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (50, 5))
    y = (rng.uniform(size=50) > 0.5).astype(np.float64)
    w, b = rng.uniform(-1, 1, 5), 0.2
    value, (d_w, d_b) = jax.jit(f)(w, b, X, y)
    want_value, (want_w, want_b) = logistic_reference(w, b, X, y)
    assert close((float(value), [float(g) for g in d_w], float(d_b)),
                 (want_value, want_w, want_b))


def test_wrapping_nested_calls_does_not_repeat_itself(monkeypatch):
    """Once exponential in the nesting: a max over 40 terms is `xp.maximum`
    of `xp.maximum` of ..., and an item too long for its line is wrapped
    twice (as it is, then in parentheses of its own), so each level doubled
    the work (minutes).  Counted in scans of a line's text, not in seconds."""
    import importlib
    import exprgrad
    plain_printer = importlib.import_module("exprgrad.compiler.printers.python")
    scans = 0
    scan = plain_printer._pairs

    def counted(text):
        nonlocal scans
        scans += 1
        assert scans < 5_000, "the same text is wrapped again and again"
        return scan(text)

    monkeypatch.setattr(plain_printer, "_pairs", counted)
    plain_printer._wrapped.cache_clear()  # wrapped lines are remembered
    text = exprgrad.emit("f(x) = max(x*j + 1 for j in range(40))\n", target="array")
    compile(text, "<array target>", "exec")


# --- what the printer makes of the scheduler's programs -----------------------------
DATA_MLP = """\
def loss(W1[3][4], b1[3], w2[3], X[n][4], y[n]) wrt W1, b1, w2:
    h = [[tanh(sum(W1[j][i]*X[k][i] for i in range(4)) + b1[j]) for j in range(3)]
         for k in range(n)]
    return sum((sum(w2[j]*h[k][j] for j in range(3)) - y[k])^2 for k in range(n)) / n
"""


def compiled(source: str, target: str):
    import exprgrad
    return exprgrad.compile(source, "data.expr", target=target), \
        exprgrad.emit(source, "data.expr", target=target)


def test_scheduled_rows_and_column_sums_read_the_data_in_whole_row_products():
    """The scheduler names each load (`X_k_2 = X[k][2]`) and each column
    product (`p = t * X_k_2`); the printer reads through those names, so a
    row times a parameter row and the gradient's column sums (in the
    scheduler's descending order) are one vector-matrix product each, and
    the names no printed statement reads any more are not printed."""
    with open("examples/logistic.expr") as f:
        logistic = f.read()
    for source, products in ((logistic, ["xp.matmul(X[:, 0:5], w[0:5])",
                                         "xp.matmul(d_z, X[:, 0:5])"]),
                             (DATA_MLP, [f"xp.matmul(X[:, 0:4], W1[{j}, 0:4])"
                                         for j in range(3)])):
        array_module, text = compiled(source, "array")
        body = text[text.index("def loss_grad"):]
        body = body[:body.index("\ndef ")] if "\ndef " in body else body
        for product in products:
            assert product in body
        assert "X[:, 0]" not in body  # no column is read on its own
        assert body.count("xp.matmul(") == (2 if source is logistic else 6)
        plain, _ = compiled(source, "python")
        rng = np.random.default_rng(4)
        for n in (1, 7):  # a mean over no samples divides by zero, in both targets
            if source is logistic:
                args = [list(rng.uniform(-1, 1, 5)), 0.3, rng.uniform(-1, 1, (n, 5)),
                        rng.uniform(0, 1, n)]
            else:
                args = [rng.uniform(-1, 1, (3, 4)).tolist(), list(rng.uniform(-1, 1, 3)),
                        list(rng.uniform(-1, 1, 3)), rng.uniform(-1, 1, (n, 4)),
                        rng.uniform(-1, 1, n)]
            with np.errstate(**RAISE):
                got = array_module.loss_grad(*args)
            want = plain.loss_grad(*[a.tolist() if isinstance(a, np.ndarray) else a
                                     for a in args])
            assert close(_floats(got), _floats(want))


def _floats(value):
    if isinstance(value, (list, tuple)):
        return [_floats(v) for v in value]
    return float(value)
