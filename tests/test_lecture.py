"""The micrograd lecture's known numbers, through the whole pipeline."""

from pathlib import Path

import pytest

import exprgrad

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def lecture():
    return exprgrad.load(EXAMPLES / "lecture.expr")


def test_f_slope(lecture):
    assert lecture.f(3.0) == 20.0
    assert lecture.f_grad(3.0) == (20.0, (14.0,))


def test_d_slopes(lecture):
    value, grads = lecture.d_grad(2.0, -3.0, 10.0)
    assert value == 4.0
    assert grads == (-3.0, 2.0, 1.0)


def test_L_gradients(lecture):
    value, grads = lecture.L_grad(2.0, -3.0, 10.0, -2.0)
    assert value == -8.0
    assert grads == (6.0, -4.0, -2.0, 4.0)


def test_tanh_neuron(lecture):
    value, (x1, x2, w1, w2, b) = lecture.neuron_grad(2.0, 0.0, -3.0, 1.0, 6.8813735870195432)
    assert value == pytest.approx(0.7071067811865476, abs=1e-12)
    assert (x1, x2, w1, w2, b) == pytest.approx((-1.5, 0.5, 1.0, 0.0, 0.5), abs=1e-12)


def test_micrograd_readme_expression(lecture):
    value, (da, db) = lecture.readme_grad(-4.0, 2.0)
    assert value == pytest.approx(24.70408163265306, abs=1e-12)
    assert da == pytest.approx(138.83381924198252, abs=1e-12)
    assert db == pytest.approx(645.5772594752186, abs=1e-12)
