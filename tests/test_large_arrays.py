"""Large array parameters: read by subscript, not unpacked.

Past `UNPACK_LIMIT` elements the Python target converts an array argument
into nested lists and reads `w[3][17]` instead of one local per element
(printers/python.py says why).  These tests check that the two forms are
the same program: random array programs give bit-identical values,
gradients and argument errors with every array subscripted
(`UNPACK_LIMIT = 0`) as unpacked; that results copying a large parameter
are slices; and that a 300,000-element identity and its gradient compile in
a bounded memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import exprgrad
from exprgrad.compiler.printers import python as printer
from test_arrays import SETTINGS, SHAPED, Shapes, arguments, points, programs, scalar

ROOT = Path(__file__).resolve().parent.parent


def both(source: str):
    """(unpacked, subscripted) modules compiled from `source`."""
    unpacked = exprgrad.compile(source, "both.expr")
    saved, printer.UNPACK_LIMIT = printer.UNPACK_LIMIT, 0
    try:
        subscripted = exprgrad.compile(source, "both.expr")
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
@SETTINGS
@given(st.data())
def test_subscripted_arrays_compute_what_unpacked_ones_do(data):
    shapes, term = data.draw(programs())
    point = data.draw(points(shapes))
    unpacked, subscripted = both(shapes.helpers() + (
        f"f(A[{shapes.m}][{shapes.n}], v[{shapes.n}], u[{shapes.m}], s) = {term.text}\n"))
    args = arguments(shapes, point)
    assert subscripted.f_grad(*args) == unpacked.f_grad(*args)
    assert subscripted.f(*args) == unpacked.f(*args)


@SETTINGS
@given(st.data())
def test_subscripted_vjps_of_array_results_are_the_unpacked_ones(data):
    """Results that copy parameter rows, whole or in part, become slices."""
    shapes = Shapes(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    body = scalar(data.draw, shapes, {"i": shapes.m}, 2)
    copied = data.draw(st.sampled_from([
        "A", "A[0]", "u", "v", "[u[i] for i in range(1, len(u))]", "[s, v[0], s]",
        "[A[j][i] for j in range(len(A)) for i in range(len(A[0]))]"]))
    unpacked, subscripted = both(shapes.helpers() + (
        f"def f(A[{shapes.m}][{shapes.n}], v[{shapes.n}], u[{shapes.m}], s):\n"
        f"    return [{body.text} for i in range({shapes.m})], {copied}\n"))
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
def test_subscripted_arguments_are_checked_as_unpacked_ones_are(function, args):
    unpacked, subscripted = both(SHAPED)
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
