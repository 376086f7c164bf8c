"""Data axes: functions over arrays whose length is given at call time.

The rolled DAG (one iteration per loop, `compiler/loops.py`) is evaluated by
the reference interpreter and compared with the same function called at a
fixed size, which lowering unrolls into today's scalar code: values and
gradients, at every length from 0 to 6.
"""

from __future__ import annotations

import copy
import math
import random

import pytest
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.compiler.interpret import evaluate
from exprgrad.compiler.loops import DataArray
from exprgrad.compiler.pipeline import differentiate, front_end, generate
from exprgrad.compiler.values import flatten

# name → (source, parameters as (name, shape) with "n" for the data axis)
PROGRAMS = {
    "logistic": ("""
def f(w[2], b, X[n][2], y[n]):
    z = [sum(w[i]*X[k][i] for i in range(2)) + b for k in range(n)]
    return sum(softplus(z[k]) - y[k]*z[k] for k in range(n)) / n
""", [("w", (2,)), ("b", ()), ("X", ("n", 2)), ("y", ("n",))]),
    "smoothness": ("""
def f(u[n]):
    return sum((u[k] - u[k-1])^2 for k in range(1, n))
""", [("u", ("n",))]),
    "nested": ("""
def f(a, u[n]):
    return sum(sum(tanh(a*u[i] - u[j]) for j in range(n)) for i in range(n))
""", [("a", ()), ("u", ("n",))]),
    "shifted_read_in_inner_sum": ("""
def f(u[n], v[n]):
    return sum(sum(u[i] * (v[j] + v[i + 1]) for j in range(n)) for i in range(n - 1))
""", [("u", ("n",)), ("v", ("n",))]),
    "shifted_map": ("""
def f(c, u[n], v[n]):
    z = [u[k] * c + v[k] for k in range(n)]
    return sum(z[k + 1] * z[k] for k in range(n - 1)) + len(z) * c
""", [("c", ()), ("u", ("n",)), ("v", ("n",))]),
    "conditional_body": ("""
def f(t, u[n]):
    return sum((log(u[k]) if u[k] > 0 else t*u[k]) for k in range(n)) + prod(u) * t
""", [("t", ()), ("u", ("n",))]),
    "extrema": ("""
def f(s, u[n]):
    return max(s, max(u[k]*s for k in range(n)) if 0 < 1 else 0) + min(s*s, sum(u))
""", [("s", ()), ("u", ("n",))]),
    "helper_call": ("""
mean(v[m]) = sum(v) / m
def f(s, u[n]):
    return mean([exp(s*u[k]) for k in range(n)]) * s
""", [("s", ()), ("u", ("n",))]),
    "diff_in_body": ("""
def f(w, u[n]):
    return sum(diff(w^3 * u[k], w) for k in range(n)) + sum(u)/n
""", [("w", ()), ("u", ("n",))]),
    "rows": ("""
def f(w[2], X[n][2]):
    return sum(tanh(w[0]*row[0] + w[1]*row[1]) for row in X)
""", [("w", (2,)), ("X", ("n", 2))]),
    "grad_in_source": ("""
def f(u[n]):
    g = grad(sum(u[k]^3 for k in range(n)), u)
    return sum(g[k] * u[k] for k in range(n))
""", [("u", ("n",))]),
    "statistics": ("""
def f(u[n]):
    return sum(u) / len(u) + max(u) - min(u)
""", [("u", ("n",))]),
    # once an internal error: the inner loop's tie test of s (s != s, which
    # does not vary with k) was never computed before the k loop
    "kink_in_inner_loop": ("""
def f(s, u[n]):
    return sum(diff(sum(min(s, u[j]) for j in range(n)) * u[k], s) for k in range(n))
""", [("s", ()), ("u", ("n",))]),
    # once an UnboundLocalError at s >= -1: 1 / (1 + n), computed in the
    # first branch for d_v, was read unconditionally by d_s's loop
    "value_of_one_branch": ("""
def f(s, v[n]):
    return sum(((v[k - 1] + v[k - 1]) if s < -1 else s) for k in range(1, n)) / (1 + n)
""", [("s", ()), ("v", ("n",))]),
    # once a wrong gradient: the gradient's loop over j ran around z's own
    # reduction over j, which read the outer iteration's inner sum
    "index_bound_twice": ("""
def f(u[n]):
    z = [sum(sum(u[i] * u[j] for i in range(n)) - u[k] for j in range(n)) for k in range(n)]
    return sum(z[k]^2 for k in range(n))
""", [("u", ("n",))]),
    "elementwise": ("""
def f(u[n], v[n]):
    z = exp(u) * 2 + v
    z += v
    return sum(z) + sum(k*u[k] for k in range(n))
""", [("u", ("n",)), ("v", ("n",))]),
}

# min/max and mean over nothing raise; tested apart
NONEMPTY = {"helper_call", "extrema", "statistics"}


def _fixed(shape, n):
    return tuple(n if d == "n" else d for d in shape)


def _decl(params, n=None):
    return ", ".join(name + "".join(f"[{n if d == 'n' and n is not None else d}]"
                                    for d in shape) for name, shape in params)


def _unrolled(source, params, n):
    """The same function called with fixed-size arrays, unrolled by lowering
    into today's scalar code (at n = 0 the data are empty list literals)."""
    if n == 0:
        fixed = [(name, shape) for name, shape in params if "n" not in shape]
        args = ", ".join("[]" if "n" in shape else name for name, shape in params)
        wrapper = f"def g({_decl(fixed)}):\n    return f({args})\n"
    else:
        names = ", ".join(name for name, _ in params)
        wrapper = f"def g({_decl(params, n)}):\n    return f({names})\n"
    program = front_end(source + wrapper, "t.expr")
    emitted = [e for e in differentiate(program) if e.name.startswith("g")]
    namespace: dict = {}
    exec(compile(generate(program, emitted), "<unrolled>", "exec"), namespace)
    return namespace, n == 0


def _draw(data, shape, n, positive=False):
    lo = 0.1 if positive else -2.0
    if not shape:
        return data.draw(st.floats(lo, 2.0))
    head, *rest = _fixed(shape, n)
    return [_draw(data, tuple(rest), n, positive) for _ in range(head)]


def _rolled(source):
    program = front_end(source, "t.expr")
    f = program.function("f")
    return program, f


def _bind(f, args):
    """Interpreter inputs: input nodes of fixed parameters, data by name."""
    inputs, data = {}, {}
    for p, value in zip(f.params, args):
        if isinstance(p.placeholders, DataArray):
            data[p.name] = value
        else:
            for node, v in zip(flatten(p.placeholders), flatten_values(value)):
                inputs[node] = v
    return inputs, data


def flatten_values(value):
    if isinstance(value, list):
        return [x for v in value for x in flatten_values(v)]
    return [value]


def close(a, b, rel=1e-12):
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b))
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _case(name, data, n):
    """A program at length n: its arguments, its rolled DAG and gradient,
    and the interpreter's bindings."""
    source, params = PROGRAMS[name]
    if name in NONEMPTY and n == 0:
        n = 1
    args = [_draw(data, shape, n, positive=name == "conditional_body" and p == "u")
            for p, shape in params]
    program, f = _rolled(source)
    emitted = {e.name: e for e in differentiate(program)}
    inputs, values = _bind(f, args)
    return n, args, program, emitted, inputs, values


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@settings(max_examples=12, deadline=None)
@given(data=st.data(), n=st.integers(0, 6))
def test_rolled_loops_agree_with_the_unrolled_function(name, data, n):
    source, params = PROGRAMS[name]
    n, args, program, emitted, inputs, values = _case(name, data, n)
    module, empty = _unrolled(source, params, n)
    fixed_args = [a for a, (_, shape) in zip(args, params) if not (empty and "n" in shape)]
    try:
        ref_value, ref_grads = module["g_grad"](*fixed_args)
    except ZeroDivisionError:  # a mean over nothing
        with pytest.raises(ZeroDivisionError):
            evaluate(program.graph, emitted["f_grad"].result, inputs, values, {"n": n})
        return
    value, grads = evaluate(program.graph, emitted["f_grad"].result, inputs, values, {"n": n})
    if empty:  # the data parameters' gradients are empty arrays
        ref_grads = iter(ref_grads)
        ref_grads = [[] if "n" in shape else next(ref_grads) for _, shape in params]
    assert close(value, ref_value)
    assert close(list(grads), list(ref_grads), rel=1e-9)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@settings(max_examples=8, deadline=None)
@given(data=st.data(), n=st.integers(0, 6))
def test_generated_loops_agree_with_the_reference_interpreter(name, data, n):
    """The emitted text (rolled `for` loops) against the DAG's meaning."""
    source, params = PROGRAMS[name]
    n, args, program, emitted, inputs, values = _case(name, data, n)
    module = exprgrad.compile(source, "t.expr")
    try:
        want = evaluate(program.graph, emitted["f_grad"].result, inputs, values, {"n": n})
    except ZeroDivisionError:
        with pytest.raises(ZeroDivisionError):
            module.f_grad(*args)
        return
    got = module.f_grad(*args)
    assert close(got[0], want[0]) and close(list(got[1]), list(want[1]))
    assert close(module.f(*args), want[0])
    if n:  # the array target on NumPy arrays: the same numbers
        np = pytest.importorskip("numpy")
        arrays = exprgrad.compile(source, "t.expr", target="array")
        data_args = [np.asarray(a, dtype=float) if "n" in shape else a
                     for a, (_, shape) in zip(args, params)]
        value, grads = arrays.f_grad(*data_args)
        assert close(float(value), want[0])
        assert close(_plain(grads), list(want[1]))


def _plain(value):
    """Arrays and NumPy scalars as nested lists of floats."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return float(value)


def test_generated_text_does_not_depend_on_the_data_length():
    source, _ = PROGRAMS["logistic"]
    text = exprgrad.emit(source, "t.expr")
    assert "for k in range(n):" in text
    module = exprgrad.compile(source, "t.expr")
    for n in (0, 1, 1000):
        X, y = [[0.5, -1.0]] * n, [1.0] * n
        if n:
            value, _ = module.f_grad([0.1, 0.2], 0.0, X, y)
            assert math.isfinite(value)


def test_lengths_that_share_a_size_name_must_agree():
    source, _ = PROGRAMS["logistic"]
    module = exprgrad.compile(source, "t.expr")
    with pytest.raises(ValueError, match="y has length 2 but X has n = 3"):
        module.f([0.0, 0.0], 0.0, [[1.0, 2.0]] * 3, [1.0, 0.0])
    with pytest.raises(TypeError, match="X must be a sequence"):
        module.f([0.0, 0.0], 0.0, {1: 2}, [1.0, 0.0])


def test_min_over_an_empty_data_axis_raises_naming_the_line():
    module = exprgrad.compile("f(u[n]) = min(u[k] for k in range(n))\n", "m.expr")
    assert module.f([3.0, 1.0]) == 1.0
    with pytest.raises(ValueError, match="empty range.*m.expr:1"):
        module.f([])


def test_gradient_with_respect_to_data_is_an_array_of_the_data_length():
    source, params = PROGRAMS["smoothness"]
    program, f = _rolled(source)
    emitted = {e.name: e for e in differentiate(program)}
    u = [1.0, 3.0, 2.0, 5.0]
    value, (d_u,) = evaluate(program.graph, emitted["f_grad"].result, {}, {"u": u}, {"n": 4})
    assert value == 14.0
    assert d_u == [-4.0, 6.0, -8.0, 6.0]


def test_a_returned_map_has_a_vjp_with_a_cotangent_of_the_data_length():
    source = """
def p(w, X[n][2]):
    return [sigmoid(w*X[k][0] - X[k][1]) for k in range(n)]
"""
    program = front_end(source, "t.expr")
    f = program.function("p")
    emitted = {e.name: e for e in differentiate(program)}
    X = [[1.0, 2.0], [0.5, -1.0], [3.0, 0.1]]
    ct = [0.5, -1.0, 2.0]
    w = f.params[0].placeholders
    value, (d_w, d_X) = evaluate(program.graph, emitted["p_vjp"].result, {w: 0.7},
                                 {"X": X, "cotangent": ct}, {"n": 3})
    module, _ = _unrolled(source.replace("def p", "def f"), [("w", ()), ("X", ("n", 2))], 3)
    ref_value, (ref_w, ref_X) = module["g_vjp"](0.7, X, ct)
    assert close(value, ref_value) and close(d_w, ref_w) and close(d_X, ref_X)


@pytest.mark.parametrize("source, message", [
    ("f(u[n]) = sum(u[k-1] for k in range(n))\n", "reads before the start"),
    ("f(u[n]) = sum(u[k+1] for k in range(n))\n", "reads past the end"),
    ("f(u[n], v[m]) = sum(u[k] for k in range(m))\n", "has length n but 'k' runs over range(m)"),
    ("f(u[n]) = u[0]\n", "loop variable plus or minus an integer"),
    ("f(u[n]) = sum(u[k] for k in range(0.5, n))\n", "compile-time integer"),
    ("f(u[n]) = sum(u[k] for k in range(n*2))\n", "size name plus or minus"),
    ("f(u[n]) = [u[k] for k in range(n) for i in range(2)]\n", "nest them instead"),
    ("f(u[n]) = [[u[j] * i for j in range(n)] for i in range(3)]\n",
     "must return that array alone"),
    ("f(u[n]) = [[u[i], [u[j] for j in range(n)]] for i in range(n)]\n",
     "a list of arrays of runtime length is not supported"),
    ("f(u[n]) = [[u[j] - u[j - 1] for j in range(1, n)] for i in range(n)]\n",
     "must run over a whole data axis"),
    ("f(A[n][m]) = sum(A[i][i] for i in range(n))\n", "'A' has length m but 'i' runs over"),
    ("f(n, u[n]) = sum(u)\n", "both a parameter and the size"),
    ("f(u[n]) = [u[k] for k in range(n)] if 1 > 0 else [u[k] for k in range(n)]\n",
     "cannot choose between arrays of runtime length"),
    ("g(a[n], b[n]) = sum(a) + sum(b)\nf(u[n], v[m]) = g(u, v)\n",
     "'b' and 'a' share the size 'n' but have lengths m and n"),
])
def test_bad_data_axis_programs_are_located_compile_errors(source, message):
    with pytest.raises(exprgrad.CompileError) as caught:
        exprgrad.compile(source, "bad.expr")
    assert message in caught.value.message
    assert caught.value.filename == "bad.expr"


def test_the_fit_example_recovers_the_model_from_a_csv():
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parent.parent / "examples" / "fit.py"
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    first = run.stdout.splitlines()[0]
    assert first.startswith("gradient descent: loss 0.39"), first


# --- two data axes: maps of maps, parameters X[n][m] ---------------------------------
# name → (source, parameters as (name, shape) with "n" and "m" for data axes)
NESTED = {
    "scaled_grid": ("""
def f(c, X[n][m]) wrt c, X:
    return [[X[i][j] * c for j in range(m)] for i in range(n)]
""", [("c", ()), ("X", ("n", "m"))]),
    "outer_product": ("""
def f(a, u[n]):
    return [[tanh(a*u[i] - u[j]) for j in range(n)] for i in range(n)]
""", [("a", ()), ("u", ("n",))]),
    "pairwise_distances": ("""
def f(s, P[n][2]) wrt s, P:
    return [[sqrt((P[i][0] - P[j][0])^2 + (P[i][1] - P[j][1])^2 + s^2 + 1)
             for j in range(n)] for i in range(n)]
""", [("s", ()), ("P", ("n", 2))]),
    "returned_whole": ("""
def f(A[n][m]) wrt A:
    return A
""", [("A", ("n", "m"))]),
    "energy": ("""
def f(w, A[n][m]) wrt w, A:
    return sum(sum(w * A[i][j]^2 for j in range(m)) for i in range(n)) + \\
        sum(sum(A[i][j] * A[i][j - 1] for j in range(1, m)) for i in range(n))
""", [("w", ()), ("A", ("n", "m"))]),
    "row_sums": ("""
def f(A[n][m], v[m]) wrt A, v:
    return [sum(A[i][j] * v[j] for j in range(m)) for i in range(n)]
""", [("A", ("n", "m")), ("v", ("m",))]),
    "columns_in_rows": ("""
def f(w[2], X[n][m]) wrt w, X:
    return [[[X[i][j] * w[c] for c in range(2)] for j in range(m)] for i in range(n)]
""", [("w", (2,)), ("X", ("n", "m"))]),
    "local_grid": ("""
def f(t, A[n][m]) wrt t, A:
    z = [[(log(A[i][j]) if A[i][j] > 1 else t * A[i][j]) for j in range(m)] for i in range(n)]
    return sum(sum(z[i][j] * exp(t) for j in range(m)) for i in range(n)) / (n + 1)
""", [("t", ()), ("A", ("n", "m"))]),
    "matrix_product": ("""
def f(A[n][m], B[m][n]) wrt A, B:
    return [[sum(A[i][l] * B[l][j] for l in range(m)) for j in range(n)] for i in range(n)]
""", [("A", ("n", "m")), ("B", ("m", "n"))]),
    "elementwise_grid": ("""
def f(c, A[n][m]) wrt c, A:
    return exp(A) * c + A
""", [("c", ()), ("A", ("n", "m"))]),
    "transposed": ("""
def f(A[n][m]) wrt A:
    return [[sin(A[i][j]) for i in range(n)] for j in range(m)]
""", [("A", ("n", "m"))]),
    "shifted_rows": ("""
def f(c, A[n][m]) wrt c, A:
    z = [[A[i][j] * c for j in range(m)] for i in range(n)]
    return sum(sum((z[i][j] - z[i][j - 1])^2 for j in range(1, m)) for i in range(n))
""", [("c", ()), ("A", ("n", "m"))]),
    "diagonal": ("""
def f(c, A[n][n]) wrt c, A:
    return sum(A[i][i] * A[i + 1][i] * c for i in range(n - 1)) + \\
        sum(sum(A[i][i] * A[j][i + 1] for j in range(n)) for i in range(n - 1))
""", [("c", ()), ("A", ("n", "n"))]),
    "diagonal_map": ("""
def f(A[n][n]) wrt A:
    return [exp(A[i][i]) * A[i][0 + i] for i in range(n)]
""", [("A", ("n", "n"))]),
    "grad_of_grid": ("""
def f(A[n][m]) wrt A:
    G = grad(sum(sum(A[i][j]^3 for j in range(m)) for i in range(n)), A)
    return sum(sum(G[i][j] * A[i][j] for j in range(m)) for i in range(n))
""", [("A", ("n", "m"))]),
}


def _sized(shape, sizes):
    return tuple(sizes.get(d, d) for d in shape)


def _empty_literal(shape) -> str:
    """A list literal of a shape with a zero in it: `[[], [], []]` for (3, 0)."""
    if not shape or shape[0] == 0:
        return "[]"
    return "[" + ", ".join([_empty_literal(shape[1:])] * shape[0]) + "]"


def _unrolled_at(source, params, sizes, forward_only=False):
    """The same function called at fixed sizes (unrolled by lowering); a
    data parameter with an empty axis is passed as an empty list literal.
    Returns the module's namespace and the indices of the parameters g keeps."""
    kept, args = [], []
    for i, (name, shape) in enumerate(params):
        fixed = _sized(shape, sizes)
        if 0 in fixed:
            args.append(_empty_literal(fixed))
        else:
            kept.append(i)
            args.append(name)
    decl = ", ".join(params[i][0] + "".join(f"[{d}]" for d in _sized(params[i][1], sizes))
                     for i in kept)
    wrapper = f"def g({decl}):\n    return f({', '.join(args)})\n"
    program = front_end(source + wrapper, "t.expr")
    emitted = [e for e in differentiate(program) if e.name == "g" or
               e.name.startswith("g_") and not forward_only]
    namespace: dict = {}
    exec(compile(generate(program, emitted), "<unrolled>", "exec"), namespace)
    return namespace, kept


def _zeros(shape):
    return [_zeros(shape[1:]) for _ in range(shape[0])] if shape else 0.0


def _only_inner(params, size) -> bool:
    """Whether `size` is no parameter's first axis: nested lists with no rows
    then do not say what it is, and the plain target takes it as 0."""
    return not any(shape[:1] == (size,) for _, shape in params)


def _nested_case(name, data, n, m):
    source, params = NESTED[name]
    if n == 0 and _only_inner(params, "m"):
        m = 0
    sizes = {"n": n, "m": m}
    positive = name == "local_grid"
    args = [_draw_sized(data, _sized(shape, sizes), positive) for _, shape in params]
    return source, params, sizes, args


def _draw_sized(data, shape, positive):
    if not shape:
        return data.draw(st.floats(0.1 if positive else -2.0, 2.0))
    return [_draw_sized(data, shape[1:], positive) for _ in range(shape[0])]


def _cotangent(data, value):
    """A random cotangent shaped like a (nested-list) result."""
    if isinstance(value, list):
        return [_cotangent(data, v) for v in value]
    return data.draw(st.floats(-2.0, 2.0))


def _derivatives(module, args, data):
    """(value, gradients) of `f` in a generated module: its gradient, or for
    an array result its vjp at a random cotangent (returned too)."""
    if hasattr(module, "f_grad"):
        return module.f_grad(*args), None
    value = module.f(*args)
    cotangent = _cotangent(data, _plain(value))
    return module.f_vjp(*args, cotangent), cotangent


def _shapes_of(params, sizes, kept):
    return [_sized(shape, sizes) for i, (_, shape) in enumerate(params) if i not in kept]


@pytest.mark.parametrize("name", sorted(NESTED))
@settings(max_examples=10, deadline=None)
@given(data=st.data(), n=st.integers(0, 6), m=st.integers(0, 6))
def test_two_data_axes_agree_with_the_unrolled_function_in_both_targets(name, data, n, m):
    """Maps of maps and gradients of X[n][m]: the rolled code of both targets
    against the unrolled function, at every pair of lengths (n, m)."""
    source, params, sizes, args = _nested_case(name, data, n, m)
    module = exprgrad.compile(source, "t.expr")
    (value, grads), cotangent = _derivatives(module, args, data)
    assert close(_plain(module.f(*args)), _plain(value))
    empty_result = cotangent is not None and not flatten_values(_plain(value))
    if n == 0 and _only_inner(params, "m"):  # `[]` leaves m unbound in a call
        assert all(x == 0.0 for x in flatten_values(_plain([value, list(grads)])))
        return
    reference, kept = _unrolled_at(source, params, sizes, forward_only=empty_result)
    fixed = [args[i] for i in kept]
    if cotangent is None:
        ref_value, ref_grads = reference["g_grad"](*fixed)
    elif not empty_result:
        ref_value, ref_grads = reference["g_vjp"](*fixed, cotangent)
    else:  # an empty result: nothing reaches the parameters
        ref_value = reference["g"](*fixed)
        ref_grads = [_zeros(_sized(params[i][1], sizes)) for i in kept]
    empty = iter(_shapes_of(params, sizes, kept))
    ref_grads = iter(ref_grads)
    ref_grads = [next(ref_grads) if i in kept else _zeros(next(empty))
                 for i in range(len(params))]
    assert close(_plain(value), _plain(ref_value))
    assert close(_plain(grads), _plain(ref_grads), rel=1e-9)
    np = pytest.importorskip("numpy")
    arrays = exprgrad.compile(source, "t.expr", target="array")
    data_args = [np.asarray(a, dtype=float).reshape(_sized(shape, sizes))
                 if any(isinstance(d, str) for d in shape) else a
                 for a, (_, shape) in zip(args, params)]
    extra = [] if cotangent is None else [np.asarray(cotangent, dtype=float).reshape(
        np.shape(arrays.f(*data_args)))]
    got_value, got_grads = getattr(arrays, "f_grad" if cotangent is None else "f_vjp")(
        *data_args, *extra)
    assert _same_shape(got_value, value) and close(_plain(got_value), _plain(value))
    for got, want in zip(got_grads, grads):
        assert _same_shape(got, want) and close(_plain(got), _plain(want))


def _same_shape(array, nested) -> bool:
    """An array of the array target against the plain target's nested lists
    (whose shape ends at an empty list: (3, 0) covers (3, 0, 2))."""
    import numpy as np
    want = np.shape(np.asarray(_plain(nested)))
    got = np.shape(array)
    return got[:len(want)] == want and (len(got) == len(want) or 0 in want)


@pytest.mark.parametrize("name", sorted(NESTED))
@settings(max_examples=6, deadline=None)
@given(data=st.data(), n=st.integers(0, 4), m=st.integers(0, 4))
def test_two_data_axes_agree_with_the_reference_interpreter(name, data, n, m):
    """The emitted nested loops against the rolled DAG's meaning."""
    source, params, sizes, args = _nested_case(name, data, n, m)
    program, f = _rolled(source)
    emitted = {e.name: e for e in differentiate(program)}
    module = exprgrad.compile(source, "t.expr")
    (value, grads), cotangent = _derivatives(module, args, data)
    inputs, values = _bind(f, args)
    if cotangent is not None:
        values["cotangent"] = cotangent
    which = "f_grad" if cotangent is None else "f_vjp"
    want_value, want_grads = evaluate(program.graph, emitted[which].result, inputs, values,
                                      sizes)
    assert close(_plain(value), _plain(want_value))
    assert close(_plain(grads), _plain(want_grads))


def test_a_map_of_maps_is_nested_loops_appending_rows():
    source, _ = NESTED["outer_product"]
    text = exprgrad.emit(source, "t.expr")
    assert "        row = []" in text and "        values.append(row)" in text
    assert "            row.append(" in text
    module = exprgrad.compile(source, "t.expr")
    assert module.f(0.5, []) == []
    assert module.f(1.0, [0.0, 1.0]) == [[0.0, math.tanh(-1.0)], [math.tanh(1.0), 0.0]]


def test_the_gradient_of_a_two_axis_parameter_is_n_rows_of_m():
    source, _ = NESTED["energy"]
    module = exprgrad.compile(source, "t.expr")
    A = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    value, (d_w, d_A) = module.f_grad(0.5, A)
    assert d_w == 91.0
    assert d_A == [[3.0, 6.0, 5.0], [9.0, 15.0, 11.0]]
    assert module.f_grad(0.5, [[], []])[1] == (0.0, [[], []])
    assert module.f_grad(0.5, [])[1] == (0.0, [])
    np = pytest.importorskip("numpy")
    arrays = exprgrad.compile(source, "t.expr", target="array")
    _, (_, d_A) = arrays.f_grad(0.5, np.zeros((0, 4)))
    assert d_A.shape == (0, 4)
    _, (_, d_A) = arrays.f_grad(0.5, np.asarray(A))
    assert d_A.tolist() == [[3.0, 6.0, 5.0], [9.0, 15.0, 11.0]]


def test_the_array_target_returns_a_map_of_maps_as_a_2d_array():
    np = pytest.importorskip("numpy")
    source, _ = NESTED["scaled_grid"]
    text = exprgrad.emit(source, "t.expr", target="array")
    assert "xp.broadcast_to(prod, (n, m))" in text
    arrays = exprgrad.compile(source, "t.expr", target="array")
    assert arrays.f(2.0, np.ones((3, 0))).shape == (3, 0)
    assert arrays.f(2.0, np.ones((0, 4))).shape == (0, 4)
    assert arrays.f(2.0, np.arange(6.0).reshape(2, 3)).tolist() == [[0, 2, 4], [6, 8, 10]]


def test_the_generated_code_doc_shows_the_nested_loops_exprgrad_emits():
    """docs/generated-code.md shows an excerpt of the gradient of an n×m
    parameter: every line of it is emitted, in that order."""
    import re
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "generated-code.md").read_text()
    source = re.search(r"```\n(def energy\(.*?)```", doc, re.S).group(1)
    block = re.search(r"```python\n# grid.py.*?\n(def energy_grad.*?)```", doc, re.S).group(1)
    text = exprgrad.emit(source, "grid.expr")
    position = 0
    for line in block.splitlines():
        if line.strip() != "...":
            position = text.index(line + "\n", position)


PRODUCTS = {  # products over a data axis, whose factors the test sets to 0
    "factors": "def f(t, u[n]):\n    return prod(u[k] for k in range(n)) * t\n",
    "body": "def f(t, u[n]):\n    return prod(u[k] * t + u[k]^2 for k in range(n))\n",
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
@settings(max_examples=20, deadline=None)
@given(data=st.data(), n=st.integers(0, 6), zeros=st.integers(0, 2))
def test_a_product_over_data_with_zero_factors_has_the_others_product_as_gradient(
        name, data, n, zeros):
    """Zeros planted in the data: the rolled gradient (interpreter, plain and
    array targets) equals the unrolled one, which multiplies the other
    factors and never divides."""
    source = PRODUCTS[name]
    params = [("t", ()), ("u", ("n",))]
    # no subnormal factors: the product of nonzero factors divided by one of
    # them (PyTorch's rule) keeps a subnormal product's few bits only
    # (prod(1.5 + 2.25, 5e-324) / 5e-324 is 4.0, not 3.75)
    floats = st.floats(-2.0, 2.0, allow_subnormal=False)
    t = data.draw(floats)
    u = [data.draw(floats) for _ in range(n)]
    for k in data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=min(zeros, n))):
        u[k] = 0.0
    module, empty = _unrolled(source, params, n)
    ref_value, ref_grads = module["g_grad"](t) if empty else module["g_grad"](t, u)
    ref_grads = (ref_grads[0], []) if empty else ref_grads
    program, f = _rolled(source)
    emitted = {e.name: e for e in differentiate(program)}
    inputs, values = _bind(f, [t, u])
    want = evaluate(program.graph, emitted["f_grad"].result, inputs, values, {"n": n})
    assert close(want[0], ref_value) and close(list(want[1]), list(ref_grads), rel=1e-9)
    got = exprgrad.compile(source, "t.expr").f_grad(t, u)
    assert close(got[0], want[0]) and close(list(got[1]), list(want[1]))
    if n:
        np = pytest.importorskip("numpy")
        with np.errstate(divide="raise"):  # no division by zero, not even discarded
            value, grads = exprgrad.compile(source, "t.expr", target="array").f_grad(
                t, np.asarray(u, dtype=float))
        assert close(float(value), want[0]) and close(_plain(grads), list(want[1]))



DERIVATIVES_OF_PRODUCTS = {  # a factor u[k] - t is 0 where the test sets u[k] to t
    "once": "def f(t, u[n]):\n    return diff(prod(u[k] - t for k in range(n)), t)\n",
    "twice": "def f(t, u[n]):\n    return diff(diff(prod(u[k] - t for k in range(n)), t), t)\n",
}


@pytest.mark.parametrize("name", sorted(DERIVATIVES_OF_PRODUCTS))
@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(1, 6), zeros=st.integers(0, 4))
def test_derivatives_of_a_product_over_data_at_zero_factors_are_exact(name, data, n, zeros):
    """The gradient of `diff(prod(...), t)` at two or more zero factors is
    not 0: it is the product of the factors other than two of them (fuzz
    seed data:2700027207, where a tie of `min(u[j], s)` made two factors 0).
    Rolled (plain and array targets) equals unrolled, which multiplies.
    The nonzero factors are not tiny: a second derivative of the share
    `prod / factor` cancels digits as a factor nears 0 (docs/numerics.md)."""
    source = DERIVATIVES_OF_PRODUCTS[name]
    t = data.draw(st.floats(-2.0, 2.0))
    away = st.floats(0.1, 2.0).flatmap(lambda a: st.sampled_from([a, -a]))
    u = [t + data.draw(away) for _ in range(n)]
    for k in data.draw(st.lists(st.integers(0, n - 1), max_size=min(zeros, n))):
        u[k] = t
    module, _ = _unrolled(source, [("t", ()), ("u", ("n",))], n)
    want_value, want = module["g_grad"](t, u)
    got_value, got = exprgrad.compile(source, "t.expr").f_grad(t, u)
    assert close(got_value, want_value, rel=1e-9) and close(list(got), list(want), rel=1e-9)
    np = pytest.importorskip("numpy")
    value, grads = exprgrad.compile(source, "t.expr", target="array").f_grad(
        t, np.asarray(u, dtype=float))
    assert close(float(value), want_value, rel=1e-9) and close(_plain(grads), list(want), rel=1e-9)

TIED_MLP = """\
def loss(W1[3][5], b1[3], W2[3][3], b2[3], w3[3], b3, X[n][5], y[n]) wrt W1, b1, W2, b2, w3, b3:
    h = [[tanh(sum(W1[j][i]*X[k][i] for i in range(5)) + b1[j]) for j in range(3)] for k in range(n)]
    h2 = [[tanh(sum(W2[j][i]*h[k][i] for i in range(3)) + b2[j]) for j in range(3)] for k in range(n)]
    out = [sum(w3[j]*h2[k][j] for j in range(3)) + b3 for k in range(n)]
    return sum((out[k] - y[k])^2 for k in range(n)) / n + max(abs(out[k]) for k in range(n))
"""


def test_gradient_sums_that_read_a_tie_count_share_one_loop():
    """Every weight's sum reads the max's tie count (`1 / ties`, which can
    raise): they still share one loop over the data, not one loop each
    (37 loops, 1,622 lines, before), and give the gradient."""
    text = exprgrad.emit(TIED_MLP, "t.expr")
    grad = text[text.index("def loss_grad"):]
    assert grad.count(" in range(") <= 4
    module = exprgrad.compile(TIED_MLP, "t.expr")
    rng = random.Random(3)
    shapes = [(3, 5), (3,), (3, 3), (3,), (3,), ()]
    build = lambda shape: rng.uniform(-1, 1) if not shape else [  # noqa: E731
        build(shape[1:]) for _ in range(shape[0])]
    params = [build(s) for s in shapes]
    data = [build((4, 5)), build((4,))]
    _, grads = module.loss_grad(*params, *data)
    for which, index in [(0, (1, 2)), (2, (2, 0)), (4, (1,)), (5, ())]:
        def at(step):
            moved = copy.deepcopy(params)
            if index:
                row = moved[which]
                for i in index[:-1]:
                    row = row[i]
                row[index[-1]] += step
            else:
                moved[which] += step
            return module.loss(*moved, *data)
        slope = (at(1e-6) - at(-1e-6)) / 2e-6
        got = grads[which]
        for i in index:
            got = got[i]
        assert math.isclose(got, slope, rel_tol=1e-5, abs_tol=1e-7)
