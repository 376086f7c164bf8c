"""The verifier on hostile input: clean results instead of internal errors
or hangs, the time budget per item, the report's lines and JSON, and the
`check` command's options."""

import json
import time

import pytest

import exprgrad
from exprgrad.cli import main
from exprgrad.verify import (FAILED, NUMERIC, PROVED, TIME_LIMIT, UNVERIFIED, Report,
                                      check)
from exprgrad.verify import symbolic

QUICK = dict(timeout=1.0)

# Each of these once raised an internal error or did not finish.  A constant
# the compiler folds is a located error; what is left to run time is
# undefined for the program at every point, so it is UNVERIFIED.
UNDEFINED_EVERYWHERE = {
    "a power tower beyond a double": "f(x) = x + 2^2^2^2^2\n",
    "a taller tower": "f(x) = x + 2^2^2^2^2^2\n",
    "a power of huge constants": "f(x) = x + 1e300^1e300\n",
    "a tower left to run time": "f(x) = x + (x - x + 2)^2^2^2^2\n",
    "huge constants left to run time": "f(x) = x + (0*x + 1e300)^1e300\n",
    "division by a local that is 0": "def f(x):\n    scale = 0\n    return x / scale\n",
    "a condition on 0/0": "f(x) = x if 0/0 > 1 else 2\n",
    "a check of a tower": "check 2^2^2^2^2^2 == 1\n",
    "a check of huge constants": "check 1e300^1e300 == 1\n",
    "a check that overflows": "check sin(exp(exp(x))) == 0 where x = 20\n",
    "0 to a negative power in a tower": "f(x) = (2^0^-2^10^3^1) * x\n",
}


@pytest.mark.parametrize("source", UNDEFINED_EVERYWHERE.values(), ids=list(UNDEFINED_EVERYWHERE))
def test_what_the_program_cannot_compute_is_a_located_error_or_unverified(source):
    report = check(source, **QUICK)
    assert not report
    if report.error is not None:
        assert report.error.startswith("<string>:1:") and "^" in report.error
    else:
        assert [item.status for item in report.items] == [UNVERIFIED]


@pytest.mark.parametrize("source", [
    "s0(x) = (-2**1.0001**3**3**2**1**x) * x\n",  # fuzz seed stress:1900014634
    "f(x) = 1.0001**(3**(3**(2**(1**x)))) * x\n",
    "f(x) = 1.000000000000001^(1e15 + 0*x) * x\n",
])
def test_a_power_of_numbers_sympy_would_make_exact_is_a_float(source):
    """Once a ValueError (an integer of 160,000 digits printed): SymPy folds
    1^x to 1, and (10001/10000)^19683 is exact; the program computes a
    double (7.1578 here), so the reference does too, at 60 digits."""
    report = check(source, **QUICK)
    assert report.error is None and report, report.text()


def test_a_power_of_numbers_stays_exact_where_it_is_short():
    assert symbolic._exact_power_digits(symbolic.exact(2.0), symbolic.exact(1000.0)) < 1000
    assert symbolic._exact_power_digits(symbolic.exact(1.0001), symbolic.exact(19683.0)) > 1e5
    assert symbolic._exact_power_digits(symbolic.exact(1.0), symbolic.exact(1e300)) == 0


def test_conditions_are_compared_as_truth_values():
    report = check("check (x > 1) == (x > 1)\n"
                   "check (x > 1) == (x < 1)\n"
                   "check (x > 1) == 1\n", **QUICK)
    assert [item.status for item in report.items] == [PROVED, FAILED, FAILED]
    assert "condition" in report.items[2].detail


def test_a_derivative_that_is_an_input_is_not_taken_for_a_condition():
    """Once a TypeError: SymPy's Symbol is a Boolean too, so SymPy's d/dx = y
    against the emitted 1.0000000000000004 * y (fifty adjoints of 1/50
    folded) went to the truth-value comparison."""
    report = check("f(x, y) = mean(y * x for k in range(50))\n", **QUICK)
    assert report and [item.status for item in report.items] == [NUMERIC, NUMERIC]


def test_a_max_over_a_division_by_zero_is_unverified_not_an_error():
    """Once a ValueError: SymPy cannot order zoo (u[k]/0) inside a Max."""
    report = check("f(u[n], s) = s * max(u[k] / (1 + -1^2) for k in range(n))\n"
                   "check f([1, 2], 1) == f([1, 2], 1)\n", **QUICK)
    assert report.error is None and report.items
    assert {item.status for item in report.items} == {UNVERIFIED}


def test_many_small_functions_with_min_check_quickly():
    source = "".join(f"g{i}(t, w, b) = min(b, b / (2 + t^2), b + (w + {i}.5))\n"
                     for i in range(8))
    report = check(source)  # the default budget: min/max proofs are not attempted
    assert report and len(report.items) == 24
    assert {item.status for item in report.items} == {NUMERIC}


def test_a_huge_reduction_is_bounded_by_the_budget():
    source = "f(x) = sum(x*i + j for i in range(100) for j in range(100))\n"
    report = check(source, timeout=0.5)
    assert isinstance(report, Report) and len(report.items) == 1


def test_a_proof_past_the_budget_keeps_the_numeric_comparison(monkeypatch):
    def slow(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(symbolic.sp, "simplify", slow)
    monkeypatch.setattr(symbolic.sp, "expand", slow)
    report = check("f(x) = sigmoid(x)\n", timeout=0.3)
    (item,) = report.items
    assert item.status == TIME_LIMIT and item.ok
    assert "agree at" in item.detail and "time limit (0.3 s)" in item.detail


def test_emitted_code_past_the_budget_is_unverified(monkeypatch):
    text = exprgrad.emit("f(x) = x^2\n").replace(
        "def f_grad(x):", "def f_grad(x):\n    import time; time.sleep(30)")
    (item,) = check("f(x) = x^2\n", timeout=0.3, module_text=text).items
    assert item.status == UNVERIFIED and "time limit" in item.detail


def test_report_shows_the_failing_statement_by_the_parsers_lines():
    source = "# a comment with \u2028 and \x0c and \x85 in it\ncheck 1 == 2\ncheck 1 == 1\n"
    report = check(source, **QUICK)
    assert [(i.line, i.what, i.status) for i in report.items] == [
        (2, "check 1 == 2", FAILED), (3, "check 1 == 1", "holds at the point")]


def test_results_stream_in_source_order_as_they_are_ready():
    seen = []
    source = "f(x) = x^2\ncheck f(2) == 4\ng(y) = y^3\ncheck diff(g(y), y) == 3*y^2\n"
    report = check(source, on_result=seen.append, **QUICK)
    assert seen == report.items and [i.line for i in seen] == [1, 2, 3, 4]
    only = check(source, checks_only=True, **QUICK)
    assert [i.kind for i in only.items] == ["check", "check"]


def test_cli_quiet_checks_only_and_timeout(tmp_path, capsys):
    path = tmp_path / "m.expr"
    path.write_text("f(x) = x^2\ncheck f(2) == 5\ncheck f(1) == 1\n")
    assert main(["check", str(path), "--quiet", "--timeout", "1"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "FAILED: check f(2) == 5" in out[0] and "NOT all hold" in out[1]
    assert main(["check", str(path), "--checks-only"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all("gradient" not in line for line in out)
    assert main(["check", str(path), "--timeout", "0"]) == 1
    assert "--timeout" in capsys.readouterr().err


def test_cli_json_numbers_and_a_missing_file(tmp_path, capsys):
    path = tmp_path / "m.expr"
    path.write_text("f(x) = x^3\ncheck diff(f(x), x) == 3*x^2 + x\n")
    assert main(["check", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    failed = [i for i in data["items"] if not i["ok"]][0]
    ce = failed["counterexample"]
    assert all(isinstance(v, (int, float)) for v in (ce["lhs"], ce["rhs"], *ce["point"].values()))
    assert main(["check", str(tmp_path / "missing.expr"), "--json"]) == 1
    assert "no such file" in json.loads(capsys.readouterr().out)["error"]



class _SlowToCollect:
    """An object whose finalizer outlasts a timer tick, so the tick lands
    where Python cannot raise: it becomes an "unraisable" exception."""

    def __init__(self, seconds, error=None):
        self.seconds, self.error = seconds, error

    def __del__(self):
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            pass
        if self.error is not None:
            raise self.error


def _finalize_then_spin(error=None):
    _SlowToCollect(0.3, error)  # finalized at once, with ticks due inside it
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        pass


def test_a_tick_inside_a_finalizer_is_not_reported_and_the_budget_still_ends(monkeypatch):
    from exprgrad.verify.timelimit import budget
    seen = []
    monkeypatch.setattr("sys.unraisablehook", seen.append)
    started = time.monotonic()
    with budget(0.05) as b:
        finished, _ = b.run(_finalize_then_spin)
    assert not finished and time.monotonic() - started < 2.0
    assert seen == []


def test_other_unraisable_errors_still_reach_the_previous_hook(monkeypatch):
    from exprgrad.verify.timelimit import budget
    seen = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: seen.append(type(u.exc_value)))
    with budget(10.0) as b:
        b.run(lambda: _SlowToCollect(0.0, ValueError("from a finalizer")))
    assert seen == [ValueError]


def test_a_tick_never_lands_in_the_numeric_work_at_a_point(monkeypatch):
    """mpmath's float conversion catches every exception and returns nan
    (a bare `except:` in `from_float`): a tick landing there turned a
    number into nan and an emitted function into "raises math range error"
    (fuzz seeds data:2700048847, data:2700058071, under load).  Ticks fire
    here inside every conversion of a float, as if the budget had just run
    out: inside uninterrupted() they are dropped, and no point is FAILED."""
    from mpmath.libmp import libmpf
    from exprgrad.verify import timelimit
    real = libmpf.from_float
    calls = []

    def ticking(x, *args, **kwargs):
        calls.append(x)
        try:
            if timelimit._armed is not None and len(calls) > 50:
                timelimit._interrupt(None, None)
        except BaseException:  # what mpmath's bare except does with it
            return libmpf.fnan
        return real(x, *args, **kwargs)

    monkeypatch.setattr(libmpf, "from_float", ticking)
    monkeypatch.setattr("mpmath.ctx_mp_python.from_float", ticking, raising=False)
    monkeypatch.setattr(timelimit.Budget, "remaining", lambda self: -0.01)
    monkeypatch.setattr(timelimit.Budget, "left", lambda self: len(calls) < 5000)
    report = check("f(x) = softplus(tanh(x) - x) * 0.3 + x / 1.7\n", timeout=60)
    assert calls and FAILED not in {item.status for item in report.items}, report.text()
