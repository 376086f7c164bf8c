"""One test per kind of bad source: a `CompileError` that says where.

Each case gives the source, the expected line and column, and a fragment of
the message; the rendered error must show `file:line:col`, the source line
and a caret under the column.
"""

from __future__ import annotations

import pytest

import exprgrad
from exprgrad.errors import CompileError

FILE = "bad.expr"

CASES = {
    "syntax: operator missing an operand": ("f(x) = x +* 2\n", 1, 11,
                                            "'+' is followed by '*'"),
    "syntax: two operators, spaced": ("f(x) = x * / 2\n", 1, 12, "remove one of them"),
    "syntax: integer division": ("f(x) = x // 2\n", 1, 10, "write '/'"),
    "syntax: a Python for statement": ("def f(x):\n    for i in range(3):\n        x += i\n"
                                       "    return x\n", 2, 5, "sum(w[i] * x[i] for i in"),
    "syntax: a Python if statement": ("def f(x):\n    if x > 0:\n        x = 1\n    return x\n",
                                      2, 5, "'y = a if x > 0 else b'"),
    "syntax: a Python while loop": ("def f(x):\n    while x > 0:\n        x -= 1\n"
                                    "    return x\n", 2, 5, "no 'while' loop"),
    "syntax: import": ("import math\nf(x) = x\n", 1, 1, "nothing to import"),
    "syntax: a local called import, then a mistake": ("def f(x):\n    import = x +* 2\n"
                                                      "    return import\n", 2, 17,
                                                      "'+' is followed by '*'"),
    "syntax: math.exp": ("f(x) = 2 * math.exp(x)\n", 1, 12, "write 'exp(...)'"),
    "syntax: np.arctan": ("f(x) = np.arctan(x)\n", 1, 8, "write 'atan(...)'"),
    "syntax: a module function the language lacks": ("f(x) = np.floor(x)\n", 1, 8,
                                                     "no modules or attributes"),
    "syntax: tabs after spaces": ("def f(x):\n    y = x\n\treturn y\n", 3, 1,
                                  "mixes tabs and spaces"),
    "syntax: spaces then a tab": ("def f(x):\n\ty = x\n  \treturn y\n", 3, 1,
                                  "indent every line of a block the same way"),
    "syntax: unclosed parenthesis": ("f(x) = (x + 1\n", 1, 14, "unexpected end of file"),
    "syntax: assignment outside a function": ("def f(x):\n    return x\n  y = 2\n", 3, 3,
                                              "indentation"),
    "syntax: return not last": ("def f(x):\n    return x\n    y = 2\n", 2, 5, "last statement"),
    "syntax: no return": ("def f(x):\n    y = 2\n", 1, 5, "return"),
    "undefined name": ("f(x) = x + y\n", 1, 12, "undefined name 'y'"),
    "undefined name in a block": ("def f(x):\n    a = x\n    return a * bb\n", 3, 16, "'bb'"),
    "constant used before its definition": ("a = 2 * k\nk = 2\n", 1, 9, "before"),
    "wrong arity of a user function": ("g(a, b) = a*b\nf(x) = g(x)\n", 2, 8,
                                       "takes 2 arguments, got 1"),
    "wrong arity of a built-in": ("f(x) = sin(x, x)\n", 1, 8, "takes 1 argument, got 2"),
    "wrong arity of atan2": ("f(x) = atan2(x)\n", 1, 8, "takes 2 arguments"),
    "unknown function": ("f(x) = foo(x)\n", 1, 8, "unknown function 'foo'; define it"),
    "a misspelt built-in": ("f(x) = sine(x)\n", 1, 8, "did you mean 'sin'?"),
    "a built-in in NumPy's spelling": ("f(x) = arctan(x)\n", 1, 8, "did you mean 'atan'?"),
    "a built-in capitalised": ("f(x) = Tanh(x)\n", 1, 8, "did you mean 'tanh'?"),
    "a misspelt user function": ("scale(x) = 2*x\nf(x) = scael(x)\n", 2, 8,
                                 "did you mean 'scale'?"),
    "a misspelt library function": ("f(z[2]) = sofmax(z)[0]\n", 1, 11,
                                    "did you mean 'softmax'?"),
    "recursion": ("f(x) = f(x)\n", 1, 8, "recursive"),
    "mutual recursion": ("f(x) = g(x)\ng(x) = f(x) + 1\n", 2, 8, "f → g → f"),
    "recursion through a block": ("def f(x):\n    y = g(x)\n    return y\ng(x) = 2*f(x)\n",
                                  4, 10, "recursive"),
    "duplicate definition": ("f(x) = x\nf(y) = y\n", 2, 1, "already defined on line 1"),
    "constant and function with one name": ("k = 2\nk(x) = x\n", 2, 1, "already defined"),
    "duplicate parameter": ("f(x, x) = x\n", 1, 6, "parameter 'x' appears twice"),
    "wrt of a non-parameter": ("f(x, y) wrt z = x*y\n", 1, 13, "not a parameter"),
    "wrt listed twice": ("f(x, y) wrt x, x = x*y\n", 1, 16, "twice"),
    "illegal character": ("f(x) = x $ 2\n", 1, 10, "unexpected character '$'"),
    "non-ASCII character": ("f(x) = x × 2\n", 1, 10, "unexpected character"),
    "bad indentation": ("def f(x):\n    y = x\n      return y\n", 3, 7, "unexpected indentation"),
    "dedent to no enclosing block": ("def f(x):\n        y = x\n    return y\n", 3, 5,
                                     "indentation"),
    "a comparison used as a number": ("f(x) = (x > 0) + 1\n", 1, 11, "comparison"),
    "a number used as a condition": ("f(x) = x if x else 0\n", 1, 13, "condition"),
    "a built-in redefined": ("sin(x) = x\n", 1, 1, "built-in"),
    "a function used as a value": ("g(x) = x\nf(x) = g + 1\n", 2, 8, "is a function"),
    "a variable called as a function": ("def f(x):\n    y = 2\n    return y(x)\n", 3, 12,
                                        "variable"),
    "diff with respect to an expression": ("f(x) = diff(x*x, 2*x)\n", 1, 19,
                                           "differentiate with respect to"),
    "augmented assignment before assignment": ("def f(x):\n    t += x\n    return t\n", 2, 5,
                                               "assigned first"),
    "a constant that needs run time": ("k = x\nf(x) = k\n", 1, 5, "undefined name 'x'"),
    "a reserved Python name for a function": ("print(x) = x\n", 1, 1, "reserved"),
    "a number too large for a float": ("f(x) = x * 1e999\n", 1, 12, "too large"),
    "a zero-size array parameter": ("f(w[0]) = 1\n", 1, 5, "zero size"),
    "an overflowing constant power": ("f(x) = x + 1e300^1e300\n", 1, 17, "too large"),
    "a power tower past the float range": ("f(x) = x + 2^2^2^2^2\n", 1, 13, "2 ** 65536"),
    "an overflowing constant function": ("f(x) = x * exp(1000)\n", 1, 12, "exp(1000)"),
    "library: dot of two lengths": ("f(a[3], b[2]) = dot(a, b)\n", 1, 17, "lengths 3 and 2"),
    "library: softmax of a scalar": ("f(x) = softmax(x)\n", 1, 8, "one non-empty array"),
    "library: a function used as a value": ("f(z[2]) = softmax + 1\n", 1, 11, "call it"),
    "library: mean of a data axis": ("f(x[n]) = mean(x)\n", 1, 11, "known at compile time"),
    # fuzz seed mutated:2500063729: a tuple only on the else side crashed
    "a conditional choosing a tuple, then side": (
        "def g(x):\n    return x, 2 * x\nf(x) = g(x) if x > 0 else x\n", 3, 13, "index it"),
    "a conditional choosing a tuple, else side": (
        "def g(x):\n    return x, 2 * x\nf(x) = x if x > 0 else g(x)\n", 3, 10, "index it"),
}


def compile_error(source: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        exprgrad.compile(source, FILE)
    return info.value


@pytest.mark.parametrize("kind", sorted(CASES))
def test_error_is_located(kind):
    source, line, column, fragment = CASES[kind]
    error = compile_error(source)
    assert isinstance(error, exprgrad.CompileError)
    assert (error.line, error.column) == (line, column), str(error)
    assert fragment in error.message
    assert error.filename == FILE
    head, shown, caret = str(error).split("\n")
    assert head.startswith(f"{FILE}:{line}:{column}: error: ")
    assert shown.strip() == source.split("\n")[line - 1].strip()
    assert caret.strip() == "^"
    prefix = len(shown) - len(shown.lstrip())
    source_line = source.split("\n")[line - 1].expandtabs(1)
    assert shown[prefix:] == source_line.lstrip() or shown == "    " + source_line
    assert len(caret) - 1 == 4 + column - 1, "the caret sits under the column"


@pytest.mark.parametrize("source", ["", "\n", "# only a comment\n", "\n\n   \n# c\n\n"])
def test_empty_input_is_a_valid_empty_module(source):
    module = exprgrad.compile(source, FILE)
    assert module.__all__ == []
    text = exprgrad.emit(source, FILE)
    assert "def " not in text


def test_the_caret_follows_tabs():
    error = compile_error("def f(x):\n\ty = x +\n\treturn y\n")
    assert error.line == 2
    _, shown, caret = str(error).split("\n")
    assert caret.index("^") == len(shown), "after the '+' that ends the line"


def test_api_error_attributes():
    error = compile_error("f(x) = x +\n")
    assert error.filename == FILE and error.line == 1 and error.column >= 10
    assert isinstance(error.message, str) and error.message


def test_error_default_filename():
    with pytest.raises(CompileError) as info:
        exprgrad.compile("f(x) = y\n")
    assert str(info.value).startswith("<string>:1:8:")


def test_emit_raises_the_same_errors():
    for kind in ("recursion", "duplicate parameter", "illegal character"):
        source, line, column, _ = CASES[kind]
        with pytest.raises(CompileError) as info:
            exprgrad.emit(source, FILE)
        assert (info.value.line, info.value.column) == (line, column)
