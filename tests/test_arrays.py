"""Arrays, comprehensions and reductions, end to end.

The property tests draw random array shapes and random expressions built
from indexing, sums and products over ranges, nested comprehensions, rows
passed to user functions, `grad(...)` over arrays and array/tuple outputs.
Each random expression is built twice from the same tree: as `.expr` source
for exprgrad, and as a SymPy expression over one symbol per array element.
The compiled value and gradient must match SymPy's derivative, and
mpmath's high-precision finite differences of the SymPy function (which
knows nothing of SymPy's differentiation rules either).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

import mpmath
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exprgrad

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SYMPY_FUNCTIONS = {"tanh": sympy.tanh, "sin": sympy.sin, "cos": sympy.cos}


# --- random programs ------------------------------------------------------------
@dataclass
class Term:
    """One random expression: `.expr` text and its meaning as a function
    of an environment (parameter name → nested lists of SymPy values, loop
    variable → int)."""

    text: str
    meaning: Callable[[dict], object]


@dataclass
class Shapes:
    m: int
    n: int

    def params(self) -> dict[str, tuple[int, ...]]:
        return {"A": (self.m, self.n), "v": (self.n,), "u": (self.m,), "s": ()}

    def helpers(self) -> str:
        """User functions the random expressions may call (rows and whole arrays
        are passed to them)."""
        m, n = self.m, self.n
        return (f"def dot(a[{n}], b[{n}]):\n    return sum(a[k]*b[k] for k in range(len(a)))\n\n"
                f"def norm2(x[{m}]):\n    return sum(t^2 for t in x)\n\n"
                f"def total(M[{m}][{n}]):\n    return sum(M)\n\n")


def index_for(draw, extent: int, loops: dict[str, int]) -> Term:
    """An index in range for a dimension of length `extent`: a loop variable over
    it, arithmetic on one, a constant or a negative constant."""
    fitting = [name for name, e in loops.items() if e == extent]
    choices = ["const", "negative"] + (["loop", "loop", "reversed"] if fitting else [])
    kind = draw(st.sampled_from(choices))
    if kind == "loop":
        var = draw(st.sampled_from(fitting))
        return Term(var, lambda env: env[var])
    if kind == "reversed":
        var = draw(st.sampled_from(fitting))
        return Term(f"({extent} - 1 - {var})", lambda env: extent - 1 - env[var])
    if kind == "negative":
        k = draw(st.integers(1, extent))
        return Term(f"-{k}", lambda env: -k)
    k = draw(st.integers(0, extent - 1))
    return Term(str(k), lambda env: k)


def leaf(draw, shapes: Shapes, loops: dict[str, int]) -> Term:
    kind = draw(st.sampled_from(["A", "v", "u", "s", "number"]))
    if kind == "A":
        i, j = index_for(draw, shapes.m, loops), index_for(draw, shapes.n, loops)
        return Term(f"A[{i.text}][{j.text}]",
                    lambda env: env["A"][i.meaning(env)][j.meaning(env)])
    if kind in ("v", "u"):
        i = index_for(draw, shapes.n if kind == "v" else shapes.m, loops)
        return Term(f"{kind}[{i.text}]", lambda env: env[kind][i.meaning(env)])
    if kind == "s":
        return Term("s", lambda env: env["s"])
    c = draw(st.sampled_from([0.5, 2, 3, 1.25]))
    return Term(repr(c), lambda env: sympy.Rational(str(c)))


def scalar(draw, shapes: Shapes, loops: dict[str, int], depth: int) -> Term:
    """A random scalar expression; loop variables are named k0, k1, ... by depth
    of nesting so they never clash."""
    if depth <= 0:
        return leaf(draw, shapes, loops)
    kind = draw(st.sampled_from(["leaf", "binary", "binary", "unary", "sum", "sum", "prod",
                                 "array_sum", "call", "nested"]))
    if kind == "leaf":
        return leaf(draw, shapes, loops)
    if kind == "binary":
        a = scalar(draw, shapes, loops, depth - 1)
        b = scalar(draw, shapes, loops, depth - 1)
        op = draw(st.sampled_from(["+", "-", "*"]))
        fn = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}[op]
        return Term(f"({a.text} {op} {b.text})", lambda env: fn(a.meaning(env), b.meaning(env)))
    if kind == "unary":
        a = scalar(draw, shapes, loops, depth - 1)
        name = draw(st.sampled_from(["tanh", "sin", "cos", "square"]))
        if name == "square":
            return Term(f"({a.text})^2", lambda env: a.meaning(env) ** 2)
        fn = SYMPY_FUNCTIONS[name]
        return Term(f"{name}({a.text})", lambda env: fn(a.meaning(env)))
    if kind in ("sum", "prod"):
        var = f"k{len(loops)}"
        extent = draw(st.sampled_from([shapes.m, shapes.n]))
        start = draw(st.integers(0, extent - 1))
        body = scalar(draw, shapes, {**loops, var: extent}, depth - 1)
        bounds = f"{extent}" if start == 0 else f"{start}, {extent}"
        combine = sum if kind == "sum" else math.prod

        def meaning(env):
            return combine((body.meaning({**env, var: k}) for k in range(start, extent)),
                           start=0 if kind == "sum" else 1)
        return Term(f"{kind}({body.text} for {var} in range({bounds}))", meaning)
    if kind == "array_sum":
        which = draw(st.sampled_from(["v", "u", "A", "row"]))
        if which == "row":
            i = index_for(draw, shapes.m, loops)
            return Term(f"sum(A[{i.text}])", lambda env: sum(env["A"][i.meaning(env)]))
        if which == "A":
            return Term("sum(A)", lambda env: sum(x for row in env["A"] for x in row))
        return Term(f"sum({which})", lambda env: sum(env[which]))
    if kind == "call":
        which = draw(st.sampled_from(["dot", "norm2", "total"]))
        if which == "dot":
            i = index_for(draw, shapes.m, loops)
            return Term(f"dot(A[{i.text}], v)", lambda env: sum(
                a * b for a, b in zip(env["A"][i.meaning(env)], env["v"])))
        if which == "norm2":
            return Term("norm2(u)", lambda env: sum(x ** 2 for x in env["u"]))
        return Term("total(A)", lambda env: sum(x for row in env["A"] for x in row))
    # A nested comprehension, materialised, then iterated row by row.
    vi, vj = f"k{len(loops)}", f"k{len(loops) + 1}"
    inner = {**loops, vi: shapes.m, vj: shapes.n}
    body = scalar(draw, shapes, inner, depth - 1)
    text = (f"sum(sum(row) for row in [[{body.text} for {vj} in range({shapes.n})] "
            f"for {vi} in range({shapes.m})])")
    return Term(text, lambda env: sum(body.meaning({**env, vi: i, vj: j})
                                      for i in range(shapes.m) for j in range(shapes.n)))


@st.composite
def programs(draw, depth: int = 3):
    shapes = Shapes(draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return shapes, scalar(draw, shapes, {}, depth)


@st.composite
def points(draw, shapes: Shapes):
    """Argument values; arrays as lists or tuples (any sequence is accepted)."""
    value = st.floats(-1.5, 1.5, allow_nan=False).map(lambda x: round(x, 6))
    result = {}
    for name, shape in shapes.params().items():
        result[name] = draw(nested(value, shape))
    return result


def nested(elements, shape):
    if not shape:
        return elements
    inner = nested(elements, shape[1:])
    as_list = st.lists(inner, min_size=shape[0], max_size=shape[0])
    return st.one_of(as_list, as_list.map(tuple))


# --- the reference: SymPy symbols and mpmath -------------------------------------------
def symbols_for(shapes: Shapes) -> tuple[dict, list]:
    """Per parameter, nested lists of SymPy symbols; and all symbols, in the
    order the compiled gradients list them (parameter by parameter, row-major)."""
    env, flat = {}, []
    for name, shape in shapes.params().items():
        def build(prefix, rest):
            if not rest:
                sym = sympy.Symbol("_".join([name, *map(str, prefix)]))
                flat.append(sym)
                return sym
            return [build((*prefix, i), rest[1:]) for i in range(rest[0])]
        env[name] = build((), shape)
    return env, flat


def flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in flatten(v)]
    return [value]


def shape_of(value) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0]
    return tuple(shape)


def close(got: float, expected, scale: float = 1.0) -> bool:
    expected = float(expected)
    return abs(got - expected) <= 1e-9 * max(1.0, abs(expected), scale)


def check_gradients(expr, flat_symbols, point_values, got_value, got_grads):
    """The compiled value and gradient against SymPy's derivative and mpmath's
    finite differences, at 30 significant digits."""
    with mpmath.workdps(30):
        f = sympy.lambdify(flat_symbols, expr, modules="mpmath")
        derivatives = sympy.lambdify(flat_symbols, [sympy.diff(expr, x) for x in flat_symbols],
                                     modules="mpmath")
        x0 = [mpmath.mpf(v) for v in point_values]
        assert close(got_value, f(*x0)), (got_value, f(*x0))
        symbolic = derivatives(*x0)
        scale = max([1.0] + [abs(float(d)) for d in symbolic])
        for k, (got, exact) in enumerate(zip(got_grads, symbolic)):
            assert close(got, exact, scale), (flat_symbols[k], got, exact)
            numeric = mpmath.diff(lambda t: f(*x0[:k], t, *x0[k + 1:]), x0[k])
            assert close(got, numeric, scale), (flat_symbols[k], got, numeric)


def compile_program(shapes: Shapes, body: str):
    source = shapes.helpers() + body
    try:
        return exprgrad.compile(source, "random.expr")
    except exprgrad.CompileError as error:  # show the program that failed
        raise AssertionError(f"{error}\n---\n{source}") from None


def arguments(shapes: Shapes, point: dict) -> list:
    return [point[name] for name in shapes.params()]


# --- property tests ----------------------------------------------------------------
@SETTINGS
@given(st.data())
def test_random_array_expressions_match_sympy_and_finite_differences(data):
    shapes, term = data.draw(programs())
    point = data.draw(points(shapes))
    module = compile_program(shapes, f"f(A[{shapes.m}][{shapes.n}], v[{shapes.n}], "
                                     f"u[{shapes.m}], s) = {term.text}\n")
    value, grads = module.f_grad(*arguments(shapes, point))

    for grad, (name, shape) in zip(grads, shapes.params().items()):
        assert (isinstance(grad, list) and shape_of(grad) == shape) or \
            (shape == () and isinstance(grad, float)), (name, grad)
    env, flat = symbols_for(shapes)
    expr = sympy.sympify(term.meaning(env))
    check_gradients(expr, flat, flatten(arguments(shapes, point)), value, flatten(grads))
    assert module.f(*arguments(shapes, point)) == value


@SETTINGS
@given(st.data())
def test_grad_over_arrays_inside_source(data):
    """`G = grad(e, w)` is an array shaped like w, usable like any array; the
    function using it is differentiated again (second derivatives)."""
    shapes, term = data.draw(programs(depth=2))
    point = data.draw(points(shapes))
    wrt = data.draw(st.sampled_from(["A", "v", "u"]))
    shape = shapes.params()[wrt]
    if len(shape) == 2:
        use = (f"sum(sum(G[i][j]*A[i][j] for j in range({shape[1]})) "
               f"for i in range({shape[0]}))")
    else:
        use = f"sum(G[i]*{wrt}[i] for i in range(len(G)))"
    module = compile_program(shapes, (
        f"def h(A[{shapes.m}][{shapes.n}], v[{shapes.n}], u[{shapes.m}], s):\n"
        f"    G = grad({term.text}, {wrt})\n"
        f"    return {use} + s*len(G)\n"))
    value, grads = module.h_grad(*arguments(shapes, point))

    env, flat = symbols_for(shapes)
    e = sympy.sympify(term.meaning(env))
    w = env[wrt]
    if len(shape) == 2:
        expr = sum(sympy.diff(e, w[i][j]) * w[i][j]
                   for i in range(shape[0]) for j in range(shape[1]))
    else:
        expr = sum(sympy.diff(e, w[i]) * w[i] for i in range(shape[0]))
    expr += env["s"] * shape[0]
    check_gradients(expr, flat, flatten(arguments(shapes, point)), value, flatten(grads))


@SETTINGS
@given(st.data())
def test_array_and_tuple_outputs_vjp(data):
    """An array output [e(i) for i in range(m)], alone or in a tuple with a
    scalar: f_vjp(..., cotangent) = sum over outputs of cotangent * gradient."""
    shapes = Shapes(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    body = scalar(data.draw, shapes, {"i": shapes.m}, 2)
    other = scalar(data.draw, shapes, {}, 2)
    as_tuple = data.draw(st.booleans())
    point = data.draw(points(shapes))
    result = f"[{body.text} for i in range({shapes.m})]"
    if as_tuple:
        result = f"{other.text}, {result}"
    module = compile_program(shapes, (
        f"def f(A[{shapes.m}][{shapes.n}], v[{shapes.n}], u[{shapes.m}], s):\n"
        f"    return {result}\n"))
    cotangent_values = data.draw(st.lists(st.floats(-2, 2).map(lambda x: round(x, 6)),
                                          min_size=shapes.m + 1, max_size=shapes.m + 1))
    array_ct = cotangent_values[:shapes.m]
    cotangent = (cotangent_values[-1], array_ct) if as_tuple else array_ct
    value, grads = module.f_vjp(*arguments(shapes, point), cotangent)

    env, flat = symbols_for(shapes)
    outputs = [sympy.sympify(body.meaning({**env, "i": i})) for i in range(shapes.m)]
    expr = sum(c * o for c, o in zip(array_ct, outputs))
    if as_tuple:
        assert isinstance(value, tuple) and len(value) == 2
        scalar_out, array_out = value
        expr += cotangent_values[-1] * sympy.sympify(other.meaning(env))
    else:
        array_out = value
    assert isinstance(array_out, list) and len(array_out) == shapes.m
    x0 = flatten(arguments(shapes, point))
    values = dict(zip(flat, x0))
    for got, out in zip(array_out, outputs):
        assert close(got, out.evalf(30, subs=values))
    vjp_value = sum(c * g for c, g in zip(array_ct, array_out))
    if as_tuple:
        vjp_value += cotangent_values[-1] * scalar_out
    check_gradients(expr, flat, x0, vjp_value, flatten(grads))


# --- shapes of arguments and results ----------------------------------------------
SHAPED = """
def f(W[2][3], b[2], c):
    return sum(tanh(sum(W[j][i]*c for i in range(3)) + b[j]) for j in range(2))
"""


@pytest.fixture(scope="module")
def shaped():
    return exprgrad.compile(SHAPED, "shaped.expr")


def test_gradients_are_nested_lists_shaped_like_the_parameters(shaped):
    value, (dW, db, dc) = shaped.f_grad(((1, 2, 3), (4, 5, 6)), [0.5, -0.5], 0.1)
    assert shape_of(dW) == (2, 3) and all(isinstance(x, float) for x in flatten(dW))
    assert shape_of(db) == (2,) and isinstance(dc, float)
    assert value == shaped.f([[1, 2, 3], [4, 5, 6]], (0.5, -0.5), 0.1)


@pytest.mark.parametrize("args, error, words", [
    (([[1, 2, 3]], [0, 0], 1), ValueError, ["W", "[2, 3]", "length 1"]),
    (([[1, 2, 3], [4, 5]], [0, 0], 1), ValueError, ["W[1]", "[3]", "length 2"]),
    (([[1, 2, 3], [4, 5, 6]], [0, 0, 0], 1), ValueError, ["b", "[2]", "length 3"]),
    ((5.0, [0, 0], 1), TypeError, ["W", "[2, 3]", "float"]),
    (([[1, 2, 3], [4, 5, 6]], 0.0, 1), TypeError, ["b", "[2]"]),
    (([[1, 2, 3], [4, 5, 6]], [0, 0], [1]), TypeError, ["c", "number"]),
    (([[1, 2, 3], [4, 5, "6"]], [0, 0], 1), TypeError, ["W[1][2]", "number"]),
    ((["abc", "def"], [0, 0], 1), TypeError, ["W[0]", "[3]", "str"]),
])
@pytest.mark.parametrize("function", ["f", "f_grad"])
def test_wrong_argument_shapes_name_the_parameter_and_shape(shaped, function, args, error,
                                                          words):
    with pytest.raises(error) as raised:
        getattr(shaped, function)(*args)
    for word in words:
        assert word in str(raised.value)


def test_wrong_cotangent_shape_is_reported():
    module = exprgrad.compile("def g(x[2]):\n    return x[0]*x[1], [x[0], 2*x[1]]\n")
    value, (dx,) = module.g_vjp([3.0, 4.0], (1.0, [1.0, 1.0]))
    assert value == (12.0, [3.0, 8.0]) and dx == [5.0, 5.0]
    with pytest.raises((TypeError, ValueError)) as raised:
        module.g_vjp([3.0, 4.0], (1.0, [1.0]))
    assert "cotangent" in str(raised.value)


# --- the language features, by example ------------------------------------------------
def test_constants_rows_and_iteration_over_arrays():
    module = exprgrad.compile(
        "xs = [[1, 2], [3, 4], [5, 6]]\n"
        "dot(a[2], b[2]) = sum(a[i]*b[i] for i in range(len(a)))\n"
        "f(w[2]) = sum(dot(x, w) for x in xs) + dot(xs[-1], w)\n")
    value, (dw,) = module.f_grad([10.0, 100.0])
    assert value == (1*10 + 2*100) + (3*10 + 4*100) + (5*10 + 6*100) + (5*10 + 6*100)
    assert dw == [1 + 3 + 5 + 5, 2 + 4 + 6 + 6]


def test_ranges_prod_len_and_array_arithmetic():
    module = exprgrad.compile(
        "def f(w[4]):\n"
        "    v = [w[i] * i for i in range(len(w))]\n"
        "    v += w\n"
        "    d = 2 * v - 1\n"
        "    return prod(w[i] for i in range(1, 3)) + sum(d[len(d) - 1 - i] for i in range(2))\n")
    w = [1.5, -2.0, 3.0, 0.5]
    value, (dw,) = module.f_grad(w)
    v = [w[i] * i + w[i] for i in range(4)]
    d = [2 * x - 1 for x in v]
    assert value == pytest.approx(w[1] * w[2] + d[3] + d[2], rel=1e-15)
    assert dw == pytest.approx([0.0, w[2], w[1] + 2 * 3, 2 * 4], rel=1e-15)


def test_nested_comprehension_with_two_clauses_is_a_triangle():
    module = exprgrad.compile(
        "f(W[3][3]) = sum(W[i][j] for i in range(3) for j in range(i, 3))\n")
    _, (dW,) = module.f_grad([[1.0] * 3] * 3)
    assert dW == [[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]


def test_min_and_max_over_arrays_split_ties_evenly():
    module = exprgrad.compile("f(w[4]) = max(w) - min(w)\n")
    value, (dw,) = module.f_grad([1.0, 3.0, 3.0, -2.0])
    assert value == 5.0
    assert dw == [0.0, 0.5, 0.5, -1.0]


def test_empty_reductions():
    module = exprgrad.compile("f(x) = x + sum(x for i in range(0)) + prod(x for i in range(3, 3))\n")
    assert module.f_grad(2.0) == (3.0, (1.0,))


# --- scale ---------------------------------------------------------------------
def test_a_20000_element_reduction_compiles():
    n = 20_000
    module = exprgrad.compile(f"f(w[{n}]) = sum(w[i]*w[i] for i in range({n}))\n")
    w = [random.Random(1).uniform(-1, 1) for _ in range(n)]
    value, (dw,) = module.f_grad(w)
    assert value == pytest.approx(math.fsum(x * x for x in w), rel=1e-12)
    assert dw == [2 * x for x in w]


def test_an_mlp_loss_over_300_samples_compiles():
    rng = random.Random(2)
    xs = [[round(rng.uniform(-2, 2), 3) for _ in range(3)] for _ in range(300)]
    ys = [rng.choice((-1.0, 1.0)) for _ in range(300)]
    module = exprgrad.compile(
        f"xs = {xs}\nys = {ys}\n"
        "def loss(W[4][3], b[4], v[4], c):\n"
        "    h = [[tanh(sum(W[j][i]*x[i] for i in range(3)) + b[j]) for j in range(4)]"
        " for x in xs]\n"
        "    return sum((sum(v[j]*h[k][j] for j in range(4)) + c - ys[k])^2"
        " for k in range(len(xs)))\n", "mlp300.expr")
    W = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(4)]
    b, v, c = [0.1, -0.2, 0.3, 0.0], [rng.uniform(-1, 1) for _ in range(4)], 0.25

    def loss(W, b, v, c):
        total = 0.0
        for x, y in zip(xs, ys):
            h = [math.tanh(sum(W[j][i] * x[i] for i in range(3)) + b[j]) for j in range(4)]
            total += (sum(v[j] * h[j] for j in range(4)) + c - y) ** 2
        return total

    value, (dW, db, dv, dc) = module.loss_grad(W, b, v, c)
    assert value == pytest.approx(loss(W, b, v, c), rel=1e-12)
    step = 1e-6  # central differences in float: agreement to ~1e-7 relative
    bumped = [[list(row) for row in W], list(b), list(v), c]
    bumped[3] = c + step
    up = loss(*bumped)
    bumped[3] = c - step
    assert dc == pytest.approx((up - loss(*bumped)) / (2 * step), rel=1e-6)
