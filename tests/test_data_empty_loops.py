"""Loops that run zero times, and the values computed before them.

The source evaluates a loop body only at its iterations: `prod(... avg(u)
... for k in range(1, n))` is 1 at n = 0, where `avg(u)` (a mean over
nothing) is not defined.  The rolled DAG hoists loop-invariant values out
of their loops, and the emitted code computes them before the loop; the
fuzzer's data programs met them raising there at n = 0 (a third of its
data-axis FAILED items).  A value only a loop's body reads is computed
under the condition that the loop runs (`schedule_loops._read_guards`), and
what a loop's adjoint flows into outside it too (`loop_gradients`), in both
targets.  The verifier's verdict is tested against what the emitted code
does, so it says FAILED exactly where the emitted code raises.
"""

import pytest
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.verify import FAILED

AVG = "avg(v[m]) = sum(v) / m\n"
# (source, empty-loop length, the source's value there)
EMPTY = [
    (AVG + "f(s, u[n]) = prod((1 + tanh(u[k - 1] + avg(u))) / 2 for k in range(1, n))\n", 0, 1.0),
    (AVG + "f(s, u[n]) = sum(u[k] * s + avg(u) for k in range(n))\n", 0, 0.0),
    ("f(s, u[n]) = sum(s / n for k in range(n))\n", 0, 0.0),
    ("f(s, u[n]) = prod(min(u[j] for j in range(n)) * s for k in range(2, n))\n", 0, 1.0),
]


def _runs(source: str, n: int):
    """What the emitted f and f_grad do at length n: the values, or the error."""
    module = exprgrad.compile(source)
    try:
        return module.f(0.5, [0.25] * n), module.f_grad(0.5, [0.25] * n)
    except (ArithmeticError, ValueError) as error:
        return error


@pytest.mark.parametrize("source, n, value", EMPTY)
def test_a_loop_that_runs_zero_times_evaluates_nothing_of_its_body(source, n, value):
    result = _runs(source, n)
    assert not isinstance(result, Exception), result
    (forward, (value_grad, grads)) = result
    assert forward == value_grad == value
    assert grads[0] == 0.0 and grads[1] == [0.0] * n


@settings(max_examples=4, deadline=None)
@given(case=st.sampled_from(EMPTY))
def test_check_says_failed_exactly_where_the_emitted_code_raises_at_an_empty_loop(case):
    source, n, _ = case
    raises = isinstance(_runs(source, n), Exception)
    report = exprgrad.check(source, timeout=2.0)
    failed = [i for i in report.items if i.status == FAILED and i.kind == "gradient"
              and i.what.startswith("gradient of f ")]
    assert bool(failed) == raises, report.text()
    assert all(f"at n = {n}:" in i.detail and "the emitted code raises" in i.detail
               for i in failed), report.text()
