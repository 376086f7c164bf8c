"""Compile-time errors of arrays, indices, loops and calls.

Each bad program must raise `CompileError` pointing at the exact place in
the source: the location is given in each case by a marker, the text at
which the caret must stand (the first occurrence after an optional prefix).
"""

import pytest

import exprgrad


def position(source: str, marker: str, after: str = "") -> tuple[int, int]:
    """(line, column), 1-based, of `marker`'s first occurrence after `after`.
    (An operator's error points at the operator, an index's at its '['.)"""
    offset = source.index(marker, source.index(after) + len(after) if after else 0)
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def compile_error(source: str) -> exprgrad.CompileError:
    with pytest.raises(exprgrad.CompileError) as raised:
        exprgrad.compile(source, "bad.expr")
    error = raised.value
    assert str(error).startswith(f"bad.expr:{error.line}:{error.column}")
    assert "^" in str(error)  # the source line and a caret
    return error


CASES = {
    # --- index out of range: the message has the index value and the bound
    "constant index": (
        "f(w[3]) = w[0] + w[3]\n",
        ("3", "w[0] + w["), ["index 3", "length 3"]),
    "negative index": (
        "f(w[3]) = w[-4]\n",
        ("-4", ""), ["index -4", "length 3"]),
    "loop index": (
        "def f(W[2][3]):\n    return sum(W[i][i] for i in range(3))\n",
        ("i", "W["), ["index 2", "length 2"]),
    "arithmetic index": (
        "f(w[3]) = sum(w[i + 1] for i in range(3))\n",
        ("+ 1", ""), ["index 3", "length 3"]),
    "constant array": (
        "xs = [[1, 2], [3, 4]]\nf(x) = x * xs[1][2]\n",
        ("2", "xs[1]["), ["index 2", "length 2"]),
    "inside a called function": (
        "g(v[2]) = v[2]\nf(w[2]) = g(w)\n",
        ("2", "= v["), ["index 2", "length 2"]),
    # --- loop bounds and indices must be compile-time integers
    "parameter as loop bound": (
        "f(x, w[3]) = sum(w[i] for i in range(x))\n",
        ("x", "range("), ["range bound", "compile time"]),
    "parameter as second loop bound": (
        "f(n, w[3]) = sum(w[i] for i in range(0, n))\n",
        ("n", "range(0, "), ["range bound", "compile time"]),
    "computed loop bound": (
        "def f(x):\n    k = 2*x\n    return sum(i for i in range(k))\n",
        ("k", "range("), ["range bound", "compile time"]),
    "fractional loop bound": (
        "f(x) = sum(x for i in range(2.5))\n",
        ("2.5", ""), ["range bound", "integer", "2.5"]),
    "parameter as index": (
        "f(x, w[3]) = w[x]\n",
        ("x", "w["), ["index", "compile time"]),
    "fractional index": (
        "f(w[3]) = w[3 / 2]\n",
        ("/ 2", ""), ["index", "integer", "1.5"]),
    # --- shape mismatch in a call
    "vector too long": (
        "g(v[2]) = v[0]\nf(w[3]) = g(w)\n",
        ("w", "= g("), ["'v'", "g()", "[2]", "[3]"]),
    "row of the wrong length": (
        "xs = [[1, 2, 3]]\ndot(a[2], b[2]) = a[0]*b[0]\nf(w[2]) = dot(xs[0], w)\n",
        ("[0]", "= dot(xs"), ["'a'", "[2]", "[3]"]),
    "matrix for a vector": (
        "g(v[2]) = v[0]\nf(W[2][2]) = g(W)\n",
        ("W", "= g("), ["'v'", "[2]", "[2, 2]"]),
    "wrong number of arguments": (
        "g(v[2], c) = v[0]*c\nf(w[2]) = g(w)\n",
        ("g(w)", ""), ["g()", "2 arguments", "got 1"]),
    "elementwise shapes differ": (
        "f(w[3], v[2]) = sum(w * v)\n",
        ("* v", ""), ["[3]", "[2]"]),
    "ragged list": (
        "f(x) = sum([[x, x], [x]])\n",
        ("[[", ""), ["same shape", "[1]", "[2]"]),
    # --- an array where a scalar is expected
    "array passed for a scalar parameter": (
        "g(v) = v\nf(w[3]) = g(w)\n",
        ("w", "= g("), ["'v'", "scalar", "[3]"]),
    "array in a comparison": (
        "f(w[3]) = 1 if w > 0 else 2\n",
        ("w", "if "), ["scalar", "[3]"]),
    "array as an index": (
        "f(w[3]) = w[w]\n",
        ("w", "= w["), ["scalar", "[3]"]),
    "array as a loop bound": (
        "f(w[3]) = sum(x for x in range(w))\n",
        ("w", "range("), ["scalar", "[3]"]),
    "array in a two-argument built-in": (
        "f(w[2], y) = atan2(w, y)\n",
        ("w", "atan2("), ["scalar", "[2]"]),
    "diff with respect to an array": (
        "f(w[3]) = diff(sum(w), w)\n",
        ("w", "sum(w), "), ["grad(", "scalar"]),
    "grad of an array expression": (
        "f(w[3]) = sum(grad(w, w))\n",
        ("w", "grad("), ["scalar", "[3]"]),
    # --- a scalar where an array is expected
    "scalar passed for an array parameter": (
        "g(v[2]) = v[0]\nf(x) = g(x)\n",
        ("x", "= g("), ["'v'", "[2]", "scalar"]),
    "indexing a scalar": (
        "f(x) = x[0]\n",
        ("[0]", ""), ["'x'", "scalar", "indexed"]),
    "len of a scalar": (
        "f(x) = len(x)\n",
        ("len", ""), ["len()", "array"]),
    "sum of a scalar": (
        "f(x) = sum(x)\n",
        ("sum", ""), ["sum()", "array"]),
    "iterating over a scalar": (
        "f(x) = sum(t for t in x)\n",
        ("x", "in "), ["iterate", "scalar"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_is_located(name):
    source, (marker, after), words = CASES[name]
    error = compile_error(source)
    assert (error.line, error.column) == position(source, marker, after), str(error)
    for word in words:
        assert word in error.message, (word, error.message)


def test_index_error_message_gives_value_and_bound():
    error = compile_error("def f(W[4][3]):\n    return W[1][5]\n")
    assert error.message.startswith("index 5 is out of range for length 3")
    assert (error.line, error.column) == (2, 17)


def test_too_many_dimensions_is_a_limit_error():
    error = compile_error("f(w" + "[1]" * 40 + ") = 1\n")
    assert "40 dimensions" in error.message
    error = compile_error("f(x) = sum(" + "[" * 40 + "x" + "]" * 40 + ")\n")
    assert "dimensions" in error.message
