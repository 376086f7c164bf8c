"""Data axes: functions over arrays whose length is given at call time.

The rolled DAG (one iteration per loop, `compiler/loops.py`) is evaluated by
the reference interpreter and compared with the same function called at a
fixed size, which lowering unrolls into today's scalar code: values and
gradients, at every length from 0 to 6.
"""

from __future__ import annotations

import math

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
    ("f(n, u[n]) = sum(u)\n", "both a parameter and the size"),
    ("f(u[n]) = [u[k] for k in range(n)] if 1 > 0 else [u[k] for k in range(n)]\n",
     "cannot choose between arrays of runtime length"),
    ("g(a[n], b[n]) = sum(a) + sum(b)\nf(u[n], v[m]) = g(u, v)\n",
     "'b' and 'a' share the size 'n' but have lengths m and n"),
])
def test_bad_data_axis_programs_are_located_compile_errors(source, message):
    with pytest.raises(exprgrad.CompileError) as caught:
        front_end(source, "bad.expr")
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


@pytest.mark.parametrize("source, message", [
    ("f(A[n][m]) = A\n", "two data axes cannot be returned whole"),
    ("g(u[n]) = [[u[i]*u[j] for j in range(n)] for i in range(n)]\n", "two data axes"),
    ("f(A[n][m]) = sum(A[i][j] for i in range(n) for j in range(m))\n", "two data axes"),
])
def test_results_with_two_data_axes_are_located_compile_errors(source, message):
    with pytest.raises(exprgrad.CompileError, match=message) as caught:
        exprgrad.compile(source, "two.expr")
    assert caught.value.filename == "two.expr"
