"""SymPy verification: emitted gradients, check statements, the report."""

import json
import math
from pathlib import Path

import mpmath

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import exprgrad
from exprgrad.cli import main
from exprgrad.compiler.graph import Graph
from exprgrad.verify import FAILED, NUMERIC, PROVED, UNVERIFIED, Settings, check
from exprgrad.verify.numeric import SourceDag

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

L_SOURCE = """
def L(a, b, c, f):
    e = a*b
    d = e + c
    return d*f
"""


def test_correct_derivations_hold():
    report = exprgrad.check(EXAMPLES / "derivations.expr")
    assert report, report.text()
    kinds = {item.kind for item in report.items}
    assert kinds == {"gradient", "check"}
    assert all(item.status != FAILED for item in report.items)


def test_wrong_derivation_names_line_point_and_first_wrong_local():
    report = exprgrad.check(EXAMPLES / "derivations_wrong.expr")
    assert not report
    failed = report.failures
    lines = (EXAMPLES / "derivations_wrong.expr").read_text().splitlines()
    assert [f.line for f in failed] == [i + 1 for i, t in enumerate(lines)
                                        if t.startswith("check")]
    at_point = failed[1]
    assert at_point.counterexample["lhs"] == "6" and at_point.counterexample["rhs"] == "-6"
    assert "d_d = dL/dd holds" in at_point.diagnosis[0]
    assert at_point.diagnosis[1].startswith("d_e disagrees")


def test_false_identity_is_refuted_with_a_point_that_really_refutes_it():
    report = check("f(x) = x^3\ncheck diff(f(x), x) == 3*x^2 + x\n")
    (item,) = [i for i in report.items if i.kind == "check"]
    assert item.status == FAILED and item.line == 2
    x = float(item.counterexample["point"]["x"])
    assert float(item.counterexample["lhs"]) == pytest.approx(3 * x * x)
    assert float(item.counterexample["rhs"]) == pytest.approx(3 * x * x + x)
    assert f"at x={item.counterexample['point']['x']}: lhs = " in item.detail


def test_identity_is_proved_and_tolerance_is_applied():
    report = check("check sin(x)^2 + cos(x)^2 == 1\n"
                   "check exp(1) == 2.7182818 within 1e-9\n"
                   "check exp(1) == 2.7182818 within 1e-7\n")
    statuses = [i.status for i in report.items]
    assert statuses[0] == PROVED
    assert statuses[1] == FAILED  # 2.7182818 is 1.7e-8 away, relatively
    assert statuses[2] != FAILED


def test_where_names_must_be_used():
    report = check("check x == x where y=1\n")
    assert not report and "'y'" in report.items[0].detail


def test_corrupted_emitted_gradient_is_caught():
    source = L_SOURCE
    text = exprgrad.emit(source)
    assert "(f * b, f * a, f, d)" in text
    patched = text.replace("(f * b, f * a, f, d)", "(f * b, -f * a, f, d)")
    report = check(source, module_text=patched)
    failed = report.failures
    assert [f.what for f in failed] == ["gradient of L with respect to b"]
    ce = failed[0].counterexample
    assert float(ce["emitted"]) == pytest.approx(-float(ce["expected"]))
    assert check(source, module_text=text)


def test_corrupted_value_is_caught():
    text = exprgrad.emit("f(x) = x^2 + 1")
    patched = text.replace("x ** 2 + 1.0", "x ** 2 + 1.5")
    assert patched != text
    assert not check("f(x) = x^2 + 1", module_text=patched)


def test_unprovable_gradient_falls_back_to_numerics_within_the_limit():
    source = "g(x, y) = max(x, y, 1) + min(x, y) + atan2(y, x) + log2(hypot(x, y))"
    report = check(source, settings=Settings(prove=False))
    assert report and {i.status for i in report.items} == {NUMERIC}


def test_cli_text_json_and_exit_status(capsys):
    assert main(["check", str(EXAMPLES / "derivations.expr")]) == 0
    out = capsys.readouterr().out
    assert "derivations.expr:" in out and "all hold" in out.splitlines()[-1]
    assert main(["check", str(EXAMPLES / "derivations_wrong.expr"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["counts"]["FAILED"] == 2
    assert {i["kind"] for i in data["items"]} == {"gradient", "check"}
    assert all({"line", "status", "ok", "what"} <= set(i) for i in data["items"])


def test_cli_compile_error_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.expr"
    bad.write_text("f(x) = x +\n")
    assert main(["check", str(bad)]) == 1
    assert "bad.expr:1" in capsys.readouterr().err


# --- property: random expressions, every emitted gradient verified -----------
UNARY = ["sin", "cos", "tanh", "exp", "sigmoid", "softplus", "atan", "relu", "abs", "erf"]
BINARY = ["+", "-", "*"]


@st.composite
def expressions(draw, depth=3):
    if depth == 0 or draw(st.booleans()) and depth < 3:
        return draw(st.sampled_from(["x", "y", "x", "y", "2", "0.5"]))
    kind = draw(st.sampled_from(["unary", "binary", "binary", "cond", "max", "pow"]))
    a = draw(expressions(depth=depth - 1))
    if kind == "unary":
        return f"{draw(st.sampled_from(UNARY))}({a})"
    b = draw(expressions(depth=depth - 1))
    if kind == "binary":
        return f"({a} {draw(st.sampled_from(BINARY))} {b})"
    if kind == "cond":
        return f"({a} if {b} > 0 else {b} * {a})"
    if kind == "max":
        return f"{draw(st.sampled_from(['max', 'min']))}({a}, {b})"
    return f"({a})^{draw(st.integers(1, 3))}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions())
def test_random_expression_gradients_are_proved_or_numerically_confirmed(expr):
    source = f"def h(x, y):\n    t = {expr}\n    return t * t + x\n"
    report = check(source, settings=Settings(timeout=2.0, points=3))
    assert report, report.text()
    assert {i.status for i in report.items} <= {PROVED, NUMERIC}
    assert len(report.items) == 2


def test_a_check_at_a_tie_doubles_cannot_hold_is_not_compared():
    # t <= mean([t, t, t]) holds for every real t, but neither side computes
    # it exactly: the emitted doubles round t + t + t, the reference's 50
    # digits round too, and here they take different branches (found by the
    # long fuzz run, seed valid:1000007384): too close to call, not FAILED
    source = ("def f0(t):\n"
              "    t = tanh(softplus(tanh(t)))\n"
              "    return t if t <= mean([t, t, t]) else 2 * t\n"
              "check f0(p) == f0(p) + 0 where p=0.5\n")
    t = math.tanh(math.log1p(math.exp(math.tanh(0.5))))
    assert exprgrad.compile(source).f0(0.5) == t
    item = check(source).items[-1]
    assert item.status == UNVERIFIED and "tie that doubles cannot hold" in item.detail, item


def test_a_tie_of_two_doubles_is_compared_and_one_of_reals_is_too_close_to_call():
    g = Graph()
    x = g.input(("x", 0), "x")
    t = g.add("tanh", x)
    mean = g.add("div", g.add("add", g.add("add", t, t), t), g.const(3.0))
    cases = [(g.add("gt", x, g.const(0.5)), 0.5, False),  # both doubles: held exactly
             (g.add("le", t, mean), 0.5, True),  # a tie of two reals
             (g.add("lt", x, g.add("add", x, g.const(1e-15))), 1.0, True),  # a hair apart
             (g.add("lt", x, g.const(0.75)), 0.5, False)]
    for comparison, at, fragile in cases:
        dag = SourceDag(g, [comparison])
        assert dag.fragile_tie({x: mpmath.mpf(at)}) is fragile, (g.nodes[comparison], at)


def test_two_calls_of_one_function_keep_their_own_reference():
    # f(p, 1) folds p * 1 to p, f(p, q) defines it: the second call's
    # definitions of f's nodes must not replace the first's (found by the
    # long fuzz run, seed mutated:1200005041: UnboundLocalError in the
    # reference of the second call)
    report = check("f(x, y) = exp(x * y) + x\n"
                   "check f(p, 1) == f(p, q) where q = 1\n"
                   "check f(p, 1) == f(p, q) + 1 where q = 1\n")
    assert [item.status for item in report.items[-2:]] == [PROVED, FAILED], report.text()


def test_a_proof_that_sympy_cannot_rewrite_is_not_shown_not_raised():
    # expanding the difference builds `... < nan` inside a branch's condition
    # and SymPy raises TypeError (found by the long fuzz run, seed
    # valid:1400019452): the item rests on the numeric comparison
    report = check("def f0(_floats, grads[2]):\n"
                   "    acc = grads\n"
                   "    return abs(acc[len(acc) - 1]) if (not (sum(grads[0] for j in range(2))"
                   " - _floats)^3 < expm1(tanh(grad(softmax(acc)[1], grads)[1]))) else "
                   "acc[len(acc) - 1]\n", timeout=5)
    assert report.items and FAILED not in {item.status for item in report.items}, report.text()


def test_a_proof_sympy_fails_inside_with_an_error_of_its_own_is_not_shown():
    # rebuilding the branch condition on `sin` sends SymPy 1.14 into `imageset`,
    # which raises KeyError (found by the long fuzz run, seed valid:1800018548)
    report = check("def f(v, s):\n"
                   "    a = (1 + sin(s)*sin(s))**-2\n"
                   "    return a if (not a - 1 > (v if not 1 >= relu(a) else a)) else v\n",
                   timeout=5)
    assert report.items and FAILED not in {item.status for item in report.items}, report.text()


def test_prove_equal_takes_any_error_of_sympy_as_not_shown():
    from exprgrad.verify.symbolic import Program, prove_equal
    from exprgrad.verify.timelimit import budget
    import sympy as sp

    class Failing(Program):
        def expand(self, expr):
            raise KeyError("b_")  # as SymPy's pattern matcher does
    x = sp.Symbol("x", real=True)
    with budget(5) as b:
        assert prove_equal(Failing(), x, x, b) is False
        assert prove_equal(Program(), x + x, 2 * x, b) is True


def test_a_point_where_three_inputs_of_a_min_tie_is_skipped_not_failed():
    # the random points of this item (its seed is line 3 and the name) include
    # t = len_ = 2, a three-way tie of min(t, len_, len_): exprgrad shares the
    # gradient in thirds, SymPy's Min(t, len_) in halves (fuzz seed valid:2000006196)
    report = check("# a comment line\n\ndef f0(t, len_, v[1]):\n"
                   "    return abs(min(t, len_, len_)), sigmoid(sum(v))\n", timeout=5)
    assert FAILED not in {item.status for item in report.items}, report.text()
    assert "three or more inputs of a min or max tie" in report.items[0].detail
