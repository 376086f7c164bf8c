"""Array built-ins (exprgrad/compiler/library.py): logsumexp, softmax,
log_softmax, dot and mean, built from the op table's operations.

Values and gradients are compared with mpmath at 40 digits (gradients by
mpmath's numerical differentiation), also where a naive formula overflows,
and the verifier checks the emitted gradients against SymPy's derivative.
"""

from __future__ import annotations

import math

import mpmath
import pytest
from hypothesis import given, settings, strategies as st

import exprgrad

SOURCE = """\
lse(z[3]) = logsumexp(z)
sm(z[3]) = softmax(z)
ls(z[3]) = log_softmax(z)
rows(z[2][3]) = logsumexp(z)
d(a[3], b[3]) = dot(a, b)
mn(z[3]) = mean(z)
mn_scalars(x, y) = mean(x, y, 2*x)
mn_generator(z[3]) = mean(z[i] * i for i in range(3))
"""


@pytest.fixture(scope="module")
def m():
    return exprgrad.compile(SOURCE, "library.expr")


def _lse(z):
    return mpmath.log(mpmath.fsum(mpmath.exp(x) for x in z))


def _softmax(z, i):
    return mpmath.exp(z[i] - _lse(z))


def _numeric_gradient(f, z):
    return [mpmath.diff(lambda t, k=k: f([t if j == k else mpmath.mpf(x)
                                           for j, x in enumerate(z)]), mpmath.mpf(z[k]))
            for k in range(len(z))]


def _close(got, want, tol=1e-12):
    return abs(mpmath.mpf(got) - want) <= tol * (1 + abs(want))


# Moderate vectors and vectors whose exp overflows a float (|z| up to 1e4).
VECTORS = st.lists(st.one_of(st.floats(-30, 30), st.floats(-1e4, 1e4)), min_size=3, max_size=3)
SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(VECTORS)
def test_logsumexp_is_stable_and_its_gradient_is_softmax(z):
    module = exprgrad.compile(SOURCE, "library.expr")
    value, (grad,) = module.lse_grad(z)
    with mpmath.workdps(40):
        assert _close(value, _lse(z))
        for got, want in zip(grad, _numeric_gradient(_lse, z)):
            assert _close(got, want, 1e-9)


@SETTINGS
@given(VECTORS, st.lists(st.floats(-2, 2), min_size=3, max_size=3))
def test_softmax_and_log_softmax_match_mpmath_with_their_vjp(z, cotangent):
    module = exprgrad.compile(SOURCE, "library.expr")
    value, (vjp,) = module.sm_vjp(z, cotangent)
    log_value, (log_vjp,) = module.ls_vjp(z, cotangent)
    with mpmath.workdps(40):
        for i in range(3):
            assert _close(value[i], _softmax(z, i), 1e-12) or abs(value[i]) < 1e-300
            assert _close(log_value[i], z[i] - _lse(z))
        weighted = _numeric_gradient(lambda t: mpmath.fsum(
            c * _softmax(t, i) for i, c in enumerate(cotangent)), z)
        log_weighted = _numeric_gradient(lambda t: mpmath.fsum(
            c * (t[i] - _lse(t)) for i, c in enumerate(cotangent)), z)
        for k in range(3):
            assert abs(vjp[k] - weighted[k]) <= 1e-9 * (1 + sum(map(abs, cotangent)))
            assert _close(log_vjp[k], log_weighted[k], 1e-9)


@SETTINGS
@given(st.lists(st.floats(-1e3, 1e3), min_size=6, max_size=6))
def test_dot_and_mean_match_their_definitions(xs):
    module = exprgrad.compile(SOURCE, "library.expr")
    a, b = xs[:3], xs[3:]
    value, (da, db) = module.d_grad(a, b)
    assert value == pytest.approx(math.fsum(x * y for x, y in zip(a, b)), rel=1e-12, abs=1e-9)
    assert (da, db) == (b, a)
    value, (grad,) = module.mn_grad(a)
    assert value == pytest.approx(math.fsum(a) / 3, rel=1e-12, abs=1e-12)
    assert grad == [1 / 3] * 3


def test_a_matrix_gives_one_result_per_row(m):
    z = [[1.0, 2.0, 3.0], [1000.0, 1000.0, 1000.0]]
    value, (grad,) = m.rows_vjp(z, [1.0, 0.0])
    assert value[0] == pytest.approx(math.log(math.exp(1) + math.exp(2) + math.exp(3)))
    assert value[1] == pytest.approx(1000.0 + math.log(3.0))
    assert grad[1] == [0.0, 0.0, 0.0]
    assert sum(grad[0]) == pytest.approx(1.0)


def test_mean_of_scalars_and_of_a_generator(m):
    assert m.mn_scalars_grad(1.0, 4.0) == (pytest.approx(7 / 3), (1.0, pytest.approx(1 / 3)))
    assert m.mn_generator([5.0, 1.0, 2.0]) == pytest.approx(5 / 3)


def test_infinite_inputs_shift_by_zero_instead_of_making_nan(m):
    assert m.lse([math.inf, 1.0, 2.0]) == math.inf
    assert m.ls([-math.inf, 0.0, 0.0])[1] == pytest.approx(-math.log(2.0))


def test_a_users_own_function_of_that_name_takes_precedence():
    module = exprgrad.compile("mean(a, b) = a * b\nf(x) = mean(x, 3)\n")
    assert module.f(2.0) == 6.0


def test_the_verifier_checks_the_library_against_sympy():
    report = exprgrad.check("""\
xent(z[3]) = -log_softmax(z)[0] + mean(softmax(z))
d(a[2], b[2]) = dot(a, b) + mean(a)
check logsumexp([x, y]) == log(exp(x) + exp(y)) where x = 700, y = 701
""")
    assert report, str(report)


def test_elementwise_array_arithmetic_as_documented():
    module = exprgrad.compile("""\
scaled(w[3]) = sum(w*2 + w/4)
def pairs(a[2][2], c[2][2]):
    return sum(sum(row) for row in -a * c + a**2)
shifted(w[2]) = exp(w) - 1 + w
""")
    value, (grad,) = module.scaled_grad([1.0, 2.0, 3.0])
    assert value == 13.5 and grad == [2.25] * 3
    a, c = [[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]
    assert module.pairs(a, c) == sum(-x * y + x * x for r, s in zip(a, c) for x, y in zip(r, s))
    assert module.shifted([0.0, 1.0]) == [0.0, math.e - 1 + 1]
    with pytest.raises(exprgrad.CompileError, match=r"shape \[3\] and shape \[2\] do not match"):
        exprgrad.compile("f(a[3], b[2]) = sum(a + b)\n")
