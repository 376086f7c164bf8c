"""Large array parameters: read by subscript, not unpacked.

Past `UNPACK_LIMIT` elements the Python target converts an array argument
into nested lists and reads `w[3][17]` instead of one local per element
(printers/python.py says why), and the array target reads its array
`w[3, 17]` by the same policy (`large_params`).  These tests check that the
two forms are the same program, in both targets: random array programs give
bit-identical values, gradients and argument errors with every array
subscripted (`UNPACK_LIMIT = 0`) as unpacked; that results copying a large
parameter are slices (`_outs` in the array target); that functions of
arrays just past the limit give the same values and gradients in both
targets as the math does, in text whose every line fits the width; and that
a 300,000-element identity and its gradient compile in a bounded memory."""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import exprgrad
from exprgrad.compiler.printers import python as printer
from test_arrays import SETTINGS, SHAPED, Shapes, arguments, points, programs, scalar

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["python", "array"]


def both(source: str, target: str = "python"):
    """(unpacked, subscripted) modules compiled from `source` for `target`."""
    unpacked = exprgrad.compile(source, "both.expr", target=target)
    saved, printer.UNPACK_LIMIT = printer.UNPACK_LIMIT, 0
    try:
        subscripted = exprgrad.compile(source, "both.expr", target=target)
    finally:
        printer.UNPACK_LIMIT = saved
    return unpacked, subscripted


def outcome(function, *args):
    """What a call gives: its result, or its error's type and message."""
    try:
        return function(*args)
    except (TypeError, ValueError) as error:
        return type(error), str(error)


# --- the two forms are one program ----------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
@SETTINGS
@given(data=st.data())
def test_subscripted_arrays_compute_what_unpacked_ones_do(target, data):
    shapes, term = data.draw(programs())
    point = data.draw(points(shapes))
    unpacked, subscripted = both(shapes.helpers() + (
        f"f(A[{shapes.m}][{shapes.n}], v[{shapes.n}], u[{shapes.m}], s) = {term.text}\n"),
        target)
    args = arguments(shapes, point)
    assert subscripted.f_grad(*args) == unpacked.f_grad(*args)
    assert subscripted.f(*args) == unpacked.f(*args)


@pytest.mark.parametrize("target", TARGETS)
@SETTINGS
@given(data=st.data())
def test_subscripted_vjps_of_array_results_are_the_unpacked_ones(target, data):
    """Results that copy parameter rows, whole or in part, become slices;
    the cotangent of the tuple result is a large tuple parameter."""
    shapes = Shapes(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    body = scalar(data.draw, shapes, {"i": shapes.m}, 2)
    copied = data.draw(st.sampled_from([
        "A", "A[0]", "u", "v", "[u[i] for i in range(1, len(u))]", "[s, v[0], s]",
        "[A[j][i] for j in range(len(A)) for i in range(len(A[0]))]"]))
    unpacked, subscripted = both(shapes.helpers() + (
        f"def f(A[{shapes.m}][{shapes.n}], v[{shapes.n}], u[{shapes.m}], s):\n"
        f"    return [{body.text} for i in range({shapes.m})], {copied}\n"), target)
    args = arguments(shapes, data.draw(points(shapes)))
    value = unpacked.f(*args)
    cotangent = ([1.5] * shapes.m, _like(value[1], 0.25))
    assert subscripted.f(*args) == value
    assert subscripted.f_vjp(*args, cotangent) == unpacked.f_vjp(*args, cotangent)


def _like(value, x: float):
    return [_like(v, x + i) for i, v in enumerate(value)] if isinstance(value, list) else x


@pytest.mark.parametrize("args", [
    ([[1, 2, 3]], [0, 0], 1),
    ([[1, 2, 3], [4, 5]], [0, 0], 1),
    ([[1, 2, 3], [4, 5, 6]], [0, 0, 0], 1),
    (5.0, [0, 0], 1),
    ([[1, 2, 3], [4, 5, 6]], 0.0, 1),
    ([[1, 2, 3], [4, 5, "6"]], [0, 0], 1),
    (["abc", "def"], [0, 0], 1),
    ([{1, 2, 3}, [4, 5, 6]], [0, 0], 1),
    ({0: [1, 2, 3], 1: [4, 5, 6]}, [0, 0], 1),
    ([[1, 2, 3], (x for x in (4, 5, 6))], [0, 0], 1),
    ([range(3), (4, 5, 6)], [True, 2], 1),
])
@pytest.mark.parametrize("function", ["f", "f_grad"])
@pytest.mark.parametrize("target", TARGETS)
def test_subscripted_arguments_are_checked_as_unpacked_ones_are(target, function, args):
    unpacked, subscripted = both(SHAPED, target)
    expected = outcome(getattr(unpacked, function), *args)
    assert outcome(getattr(subscripted, function), *args) == expected


def test_elements_without_unary_plus_still_convert():
    """`float(+x)` refuses what `float(x)` accepts (an object with only
    `__float__`): the checked conversion then converts the argument."""
    class Half:
        def __float__(self):
            return 0.5
    unpacked, subscripted = both("f(w[2][2]) = w[0][0] + w[1][1]\n")
    args = [[Half(), 1.0], [2.0, Half()]]
    assert subscripted.f_grad(args) == unpacked.f_grad(args) == (1.0, ([[1.0, 0.0], [0.0, 1.0]],))


# --- what the text looks like -----------------------------------------------------------
@pytest.fixture
def limit_4(monkeypatch):
    """Arrays of more than 4 elements are large (small programs show the text)."""
    monkeypatch.setattr(printer, "UNPACK_LIMIT", 4)


def test_small_arrays_are_unpacked_and_large_ones_subscripted(limit_4):
    text = exprgrad.emit("f(w[5], b[3]) = sum(w[i] * b[0] for i in range(len(w))) + b[1] * b[2]\n")
    assert "w = _array(w, 'w', (5,))" in text and "w_0" not in text
    assert "(b_0, b_1, b_2) = b" in text and "w[0] * b_0" in text and "b_1 * b_2" in text


def test_a_function_unpacks_its_smallest_arrays_within_the_limit(limit_4):
    """Four elements in all are unpacked: a[3], then b[3] would pass the limit."""
    text = exprgrad.emit("f(c[3], b[3], a[2]) = a[0] * b[1] * c[2]\n")
    f = text[text.index("def f("):text.index("def f_grad(")]
    assert "(a_0, a_1) = a" in f and "b = _array(b" in f and "c = _array(c" in f
    assert exprgrad.compile("f(c[3], b[3], a[2]) = a[0] * b[1] * c[2]\n").f_grad(
        [1, 2, 3], [4, 5, 6], [7, 8]) == (105.0, ([0.0, 0.0, 35.0], [0.0, 21.0, 0.0], [15.0, 0.0]))


def test_a_copy_of_a_large_parameter_is_a_slice(limit_4):
    source = "def f(w[6], m[2][6]):\n    return w, m, [w[i] for i in range(2, len(w))], m[1]\n"
    text = exprgrad.emit(source)
    for copy in ("w[:]", "[row[:] for row in m]", "w[2:6]", "m[1][:]"):
        assert copy in text
    module = exprgrad.compile(source)
    w = [float(i) for i in range(6)]
    m = [[-x for x in w], [2 * x for x in w]]
    value = module.f(w, m)
    assert value == (w, m, w[2:], m[1])
    assert value[1][1] is not value[3]  # copies, not one list twice
    _, (d_w, d_m) = module.f_vjp(w, m, value)
    assert d_w == [x + (x if i >= 2 else 0.0) for i, x in enumerate(w)]
    assert d_m == [m[0], [2 * x for x in m[1]]]


def test_a_copy_three_axes_deep_copies_every_row(limit_4):
    source = "f(t[2][2][2]) = t\n"
    assert "return [[row[:] for row in rows] for rows in t]" in exprgrad.emit(source)
    t = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    value = exprgrad.compile(source).f(t)
    assert value == t


def test_runs_of_a_large_parameter_in_a_result_are_starred_slices(limit_4):
    source = "def f(w[6], s):\n    return [s, w[0], w[1], w[2], w[3], s, w[4], w[5]]\n"
    assert "[s, *w[0:4], s, w[4], w[5]]" in exprgrad.emit(source)
    assert exprgrad.compile(source).f(range(6), 9) == [9.0, 0.0, 1.0, 2.0, 3.0, 9.0, 4.0, 5.0]


def test_generated_code_doc_shows_a_large_identity_as_emitted():
    doc = (ROOT / "docs" / "generated-code.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n# identity.expr: (.*?)\n(.*?)```", doc, re.S)
    assert block, "docs/generated-code.md no longer shows the large identity"
    assert block.group(2) in exprgrad.emit(block.group(1) + "\n", "identity.expr")


# --- arrays just past the limit, in both targets --------------------------------------
N = 12_000  # elements of a large array: just past UNPACK_LIMIT
LARGE = {  # name → (source, the function to call, the expected (value, grads) of its args)
    "identity": ("f(w[N]) = w\n", "f_vjp", lambda w, ct: (w, (ct,))),
    "sum": ("f(w[N]) = sum(w)\n", "f_grad", lambda w: (math.fsum(w), ([1.0] * N,))),
    "dot": ("f(w[N], x[N]) = sum(w[i] * x[i] for i in range(len(w)))\n", "f_grad",
            lambda w, x: (math.fsum(a * b for a, b in zip(w, x)), (x, w))),
    # a[3] is unpacked (smallest first), w is not; the tuple result's cotangent is large too
    "mix": ("def f(a[3], w[N], s):\n    return w, sum(a) * w[7] + s\n", "f_vjp",
            lambda a, w, s, ct: _mix(a, w, s, *ct)),
}


def _mix(a, w, s, c, c7):
    d_w = [x + (c7 * sum(a) if i == 7 else 0.0) for i, x in enumerate(c)]
    return (w, sum(a) * w[7] + s), ([c7 * w[7]] * 3, d_w, c7)


@functools.lru_cache(maxsize=None)
def large(name: str, target: str):
    """(text, module) of LARGE[name] for `target`: the emitted text, run."""
    text = exprgrad.emit(LARGE[name][0].replace("[N]", f"[{N}]"), "large.expr", target=target)
    module = types.ModuleType("large")
    exec(compile(text, "large.py", "exec"), module.__dict__)
    return text, module


def large_arguments(name: str) -> list:
    """Arguments for LARGE[name] (and a cotangent for a vjp), as lists."""
    source, function, _ = LARGE[name]
    params = re.match(r"(?:def )?f\((.*?)\)", source).group(1).split(", ")
    args = []
    for k, param in enumerate(params):
        size = {"[N]": N, "[3]": 3}.get(param[1:], None)
        args.append(0.5 - k / 3 if size is None else [math.sin(i + k) for i in range(size)])
    if function == "f_vjp":
        ct = [math.cos(i) for i in range(N)]
        args.append(ct if name == "identity" else (ct, 0.75))
    return args


def _floats(value) -> list[float]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _floats(v)]
    return [float(value)]


def _close(got, want) -> bool:
    got, want = _floats(got), _floats(want)
    return len(got) == len(want) and all(
        math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(got, want))


@pytest.mark.parametrize("name", list(LARGE))
def test_large_array_functions_agree_between_targets_and_with_the_math(name):
    _, function, expected = LARGE[name]
    args = large_arguments(name)
    plain = getattr(large(name, "python")[1], function)(*args)
    array = getattr(large(name, "array")[1], function)(*args)
    want = expected(*args)
    assert _close(plain, want) and _close(array, want)
    assert _close(array, plain)
    assert type(array) is type(plain) and all(  # the same nesting: lists and floats
        type(a) is type(b) for a, b in zip(array, plain))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(LARGE))
def test_large_arrays_are_read_by_subscript_in_lines_that_fit(name, target):
    """No element of a large array is a variable, and every line fits the
    width (the emitted text compiled, in `large`)."""
    text, _ = large(name, target)
    assert "12,000 elements: read by subscript, not unpacked" in text
    assert not re.search(r"\b(w|x|ct)_\d+\b", text)
    assert re.search(r"\bw\[17\]", text) or name != "dot"
    too_long = [line for line in text.splitlines() if len(line) > printer.WIDTH]
    assert not too_long, too_long[0][:200]


def test_copies_of_large_parameters_are_one_call_in_the_array_target():
    identity, _ = large("identity", "array")
    assert "return _outs(w)" in identity and "(_outs(w), (_outs(cotangent),))" in identity
    mix, _ = large("mix", "array")
    assert "cotangent = _parts(xp, cotangent, 'cotangent', [(12000,), ()], dtype)" in mix
    assert "*_outs(cotangent[0][0:7]), _out(cotangent[0][7] + cotangent[1] * total),\n" in mix
    assert f"*_outs(cotangent[0][8:{N}])" in mix  # d_w: runs of the cotangent around w[7]


@pytest.mark.parametrize("target", TARGETS)
@SETTINGS
@given(names=st.lists(st.text("abcdefgh_", min_size=1, max_size=30), min_size=1, max_size=3,
                      unique=True),
       sizes=st.lists(st.integers(1, 40), min_size=3, max_size=3),
       limit=st.sampled_from([0, 40, 10_000]))
def test_every_line_of_small_and_large_arrays_fits_the_width(target, names, sizes, limit):
    """Unpacking lines, conversions, subscripts and copies, for any
    parameter names and sizes (some large, by the limit), fit the width, and
    the two targets compute the same."""
    params = [f"p{name}" for name in names]
    shapes = [f"[{size}]" if k % 2 == 0 else f"[2][{size}]" for k, size in enumerate(sizes)]
    source = (f"def f({', '.join(p + s for p, s in zip(params, shapes))}):\n"
              f"    return {params[0]}, {' + '.join(f'sum({p})' for p in params)}\n")
    saved, printer.UNPACK_LIMIT = printer.UNPACK_LIMIT, limit
    try:
        text = exprgrad.emit(source, "width.expr", target=target)
        module = exprgrad.compile(source, "width.expr", target=target)
        plain = exprgrad.compile(source, "width.expr")
    finally:
        printer.UNPACK_LIMIT = saved
    too_long = [line for line in text.splitlines() if len(line) > printer.WIDTH]
    assert not too_long, too_long[0][:200]
    args = [[0.25 * i for i in range(size)] if k % 2 == 0 else
            [[0.5 - i for i in range(size)], [float(i) for i in range(size)]]
            for k, size in enumerate(sizes[:len(params)])]
    cotangent = (args[0], 1.5)
    assert module.f_vjp(*args, cotangent) == plain.f_vjp(*args, cotangent)


@pytest.fixture
def jax_x64():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def test_jax_jit_traces_large_parameters_and_their_copies(limit_4, jax_x64):
    """Under `jax.jit` (the data argument gives the namespace) a large
    parameter is a traced array: its copies and subscripts trace."""
    source = "def f(w[6], X[n]):\n    return w, w[5] * sum(X[k] for k in range(n)) + w[0]\n"
    module = exprgrad.compile(source, "jit.expr", target="array")
    assert "_outs(w)" in exprgrad.emit(source, "jit.expr", target="array")
    jnp = jax_x64.numpy
    w, X = jnp.arange(6.0), jnp.asarray([1.0, 2.5])
    ct = (jnp.arange(6.0) / 2, 2.0)
    value, (d_w, d_X) = jax_x64.jit(module.f_vjp)(w, X, ct)
    assert [float(x) for x in value[0]] == [float(x) for x in w] and float(value[1]) == 17.5
    assert [float(x) for x in d_w] == [2.0, 0.5, 1.0, 1.5, 2.0, 2.5 + 7.0]
    assert [float(x) for x in d_X] == [10.0, 10.0]


def test_a_row_times_a_large_vector_is_still_one_product(limit_4):
    """The array target finds a row of X times a parameter row (`xp.matmul`)
    through the elements of a large parameter as of an unpacked one."""
    source = "f(w[5], X[n][5]) = sum(sum(w[i] * X[k][i] for i in range(len(w))) for k in range(n))\n"
    text = exprgrad.emit(source, "dot.expr", target="array")
    assert "w = _scalar(xp, w, 'w', (5,), dtype)  # 5 elements" in text
    assert text.count("xp.matmul(X[:, 0:5], w[0:5])") == 2  # f and f_grad
    X = [[1.0, 2.0, 3.0, 4.0, 5.0], [-1.0, 0.5, 0.0, 2.0, 1.0]]
    w = [0.5, -1.0, 2.0, 0.25, 1.0]
    value, (d_w, d_X) = exprgrad.compile(source, "dot.expr", target="array").f_grad(w, X)
    assert value == sum(a * b for row in X for a, b in zip(w, row))
    assert d_w == [a + b for a, b in zip(*X)] and d_X.tolist() == [w, w]


# --- a 300,000-element identity in a bounded memory ------------------------------------
IDENTITY = textwrap.dedent("""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (BYTES, BYTES))
    import exprgrad
    n = 300_000
    module = exprgrad.compile(f"f(w[{n}]) = w\\n", "identity.expr")
    w = [i * 0.5 for i in range(n)]
    cotangent = [float(i % 7) for i in range(n)]
    assert module.f(w) == w
    value, (d_w,) = module.f_vjp(w, cotangent)
    assert value == w and d_w == cotangent
    print("ok")
""")
MEMORY_LIMIT = 1 << 30  # address space, bytes: unpacking 300,000 elements needed about 4 GB


def test_a_300000_element_identity_and_its_gradient_compile_in_bounded_memory():
    done = subprocess.run([sys.executable, "-c", IDENTITY.replace("BYTES", str(MEMORY_LIMIT))],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr[-2000:]


# --- rows of data parameters ------------------------------------------------------------
def test_a_row_of_a_data_parameter_read_in_part_is_not_unpacked_whole():
    module = exprgrad.compile("f(X[n][3]) = sum(X[k][0] * X[k][1] for k in range(n))\n")
    rows = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert module.f(rows) == 22.0
    assert module.f_grad(rows) == (22.0, ([[2.0, 1.0, 0.0], [5.0, 4.0, 0.0]],))
