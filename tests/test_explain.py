"""`exprgrad explain`: the backward pass step by step, checked against the
lecture's hand calculation and against the compiled gradient."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.cli import main
from exprgrad.explaining import ExplainError

ROOT = Path(__file__).resolve().parent.parent
LECTURE = ROOT / "examples" / "lecture.expr"
L_POINT = dict(a=2, b=-3, c=10, f=-2)
NEURON_POINT = dict(x1=2, x2=0, w1=-3, w2=1, b=6.8813735870195432)


def gradient_lines(text: str) -> dict[str, str]:
    """{'dL/da': '6', ...} from the final section of an explanation."""
    section = text.rsplit("Gradient of", 1)[1]
    return dict(re.findall(r"^  (d\S+/d\S+) = (\S+)", section, re.M))


def test_the_lecture_L_example_prints_the_lecture_numbers():
    text = str(exprgrad.explain(LECTURE, "L", at=L_POINT))
    assert gradient_lines(text) == {"dL/da": "6", "dL/db": "-4", "dL/dc": "-2", "dL/df": "4"}
    assert "d = e + c, so dd/de = 1 and dd/dc = 1" in text
    assert "dL/de = dL/dd · dd/de = -2 · 1 = -2" in text
    assert "dL/dd = dL/dL · dL/dd = 1 · -2 = -2" in text
    assert "e = a * b, so de/da = b = -3 and de/db = a = 2" in text
    assert f"[{LECTURE}:11]" in text  # d = e + c is on line 11
    steps = [line.split(" = ")[0] for line in text.splitlines() if re.match(r"\d+\. ", line)]
    assert steps == ["1. L", "2. d", "3. e"]  # reverse order, with source names


def test_the_tanh_neuron_prints_the_lecture_numbers():
    text = str(exprgrad.explain(LECTURE, "neuron", at=NEURON_POINT))
    grads = gradient_lines(text)
    assert (grads["dneuron/dx1"], grads["dneuron/dw1"], grads["dneuron/dx2"],
            grads["dneuron/dw2"], grads["dneuron/db"]) == ("-1.5", "1", "0.5", "0", "0.5")
    assert "neuron = tanh(n), so dneuron/dn = 1 - neuron * neuron = 0.5" in text


def test_a_value_used_twice_sums_its_contributions_and_says_why():
    text = str(exprgrad.explain("f(a) = a + a\n", "f", at={"a": 3}))
    assert gradient_lines(text) == {"df/da": "2"}
    assert "= 1 + 1, the sum over its 2 uses" in text
    assert "+=" in text and "would be 1" in text


def test_an_intermediate_used_twice_shows_the_sum_at_its_step():
    text = str(exprgrad.explain("def f(x):\n    s = x + 1\n    return s * s + s\n", "f",
                                at={"x": 2}))
    assert re.search(r"df/ds = 1 \+ 3 \+ 3 = 7: s is used 3 times \(by f, t1, t1\)", text)
    assert "micrograd's _backward writes `+=`" in text


POINTS = st.floats(-3, 3, allow_nan=False).filter(lambda v: abs(v) > 1e-3)


@settings(max_examples=25, deadline=None)
@given(POINTS, POINTS, POINTS, POINTS)
def test_gradients_and_every_step_agree_with_the_compiled_gradient(a, b, c, f):
    """Every number is the compiler's: the final gradients equal f_grad's bit
    for bit, each chain-rule product is gradient × local derivative, and
    each value's gradient is the sum of what its uses pass back."""
    module = exprgrad.compile(LECTURE.read_text(), str(LECTURE))
    for name, point in (("L", dict(a=a, b=b, c=c, f=f)), ("readme", dict(a=a, b=b)),
                        ("neuron", dict(x1=a, x2=b, w1=c, w2=f, b=0.5))):
        explanation = exprgrad.explain(LECTURE, name, at=point)
        value, grads = getattr(module, name + "_grad")(*point.values())
        assert explanation.value == value
        assert [g.value for g in explanation.gradients] == list(grads)
        for step in explanation.steps:
            if step.uses:
                assert math.isclose(sum(u.contribution for u in step.uses), step.grad,
                                    rel_tol=1e-9, abs_tol=1e-9)
            for flow in step.flows:
                assert math.isclose(step.grad * flow.local_value, flow.contribution,
                                    rel_tol=1e-9, abs_tol=1e-12)


def lecture_values(value_class):
    a, b, c, f = (value_class(v) for v in (2.0, -3.0, 10.0, -2.0))
    e = a * b
    d = e + c
    L = d * f
    for v, name in zip((a, b, c, f, e, d, L), "abcfedL"):
        v.label = name
    return L, (a, b, c, f)


@pytest.mark.parametrize("kind", ["exprgrad", "micrograd"])
def test_value_graphs_are_explained_without_touching_their_grads(kind):
    if kind == "micrograd":
        value_class = pytest.importorskip("micrograd.engine").Value
    else:
        value_class = exprgrad.Value
    L, leaves = lecture_values(value_class)
    leaves[0].grad = 7.0
    text = str(exprgrad.explain(L))
    assert gradient_lines(text) == {"dL/da": "6", "dL/db": "-4", "dL/dc": "-2", "dL/df": "4"}
    assert "dL/de = dL/dd · dd/de = -2 · 1 = -2" in text
    assert [v.grad for v in leaves] == [7.0, 0.0, 0.0, 0.0]


def test_value_explanations_equal_backward():
    x, w = exprgrad.Value(0.7, label="x"), exprgrad.Value(-1.3, label="w")
    out = (x * w + x ** 2).tanh() * x + w.exp()
    explanation = exprgrad.explain(out)
    out.backward()
    grads = {g.name: g.value for g in explanation.gradients}
    assert grads["x"] == x.grad and grads["w"] == w.grad
    assert "x ** 2, so" in str(explanation)  # the op as written, not x * x


def test_wrt_keeps_only_what_flows_to_one_parameter():
    text = str(exprgrad.explain(LECTURE, "L", at=L_POINT, wrt="a"))
    assert gradient_lines(text) == {"dL/da": "6"}
    assert "dL/dc" not in text and "dL/df" not in text
    with pytest.raises(ExplainError, match="no parameter q"):
        exprgrad.explain(LECTURE, "L", at=L_POINT, wrt="q")


def test_max_steps_counts_the_rest_and_keeps_every_gradient():
    full = exprgrad.explain(LECTURE, "readme", at=dict(a=-4, b=2))
    short = exprgrad.explain(LECTURE, "readme", at=dict(a=-4, b=2), max_steps=3)
    assert len(short.steps) == 3 and short.omitted == len(full.steps) - 3
    assert [g.value for g in short.gradients] == [g.value for g in full.gradients]
    assert "more steps not shown (at most 3: raise --max-steps" in str(short)


def test_html_is_escaped_and_json_has_numbers():
    explanation = exprgrad.explain("f(x) = x if x < 1 else 2*x\n", "f", at={"x": 0.5})
    assert "x &lt; 1" in explanation._repr_html_()
    data = json.loads(explanation.to_json())
    # x reaches f directly (the branch taken) and through t1 = 2 * x (not taken: 0)
    assert data["gradients"] == [{"name": "x", "value": 1.0, "uses": [
        {"by": "f", "contribution": 1.0}, {"by": "t1", "contribution": 0.0}]}]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_prints_the_steps(capsys):
    code, out, err = run(["explain", LECTURE, "L", "--at", "a=2,b=-3,c=10,f=-2"], capsys)
    assert code == 0 and err == ""
    assert gradient_lines(out)["dL/da"] == "6"


def test_the_command_writes_json(capsys):
    code, out, _ = run(["explain", LECTURE, "L", "--at", "a=2,b=-3,c=10,f=-2", "--json",
                        "--wrt", "b"], capsys)
    assert code == 0
    assert json.loads(out)["gradients"][0]["value"] == -4.0
    code, out, _ = run(["explain", LECTURE, "L", "--at", "a=2", "--json"], capsys)
    assert code == 1 and "missing b, c, f" in json.loads(out)["error"]


@pytest.mark.parametrize("args, message", [
    (["L", "--at", "a=2"], "missing b, c, f"),
    (["nope", "--at", "a=2"], "no function 'nope'"),
    (["L", "--at", "a=2,b=1,c=1,f=1", "--wrt", "z"], "no parameter z"),
    (["L", "--at", "a=2,b=1,c=1,f=1", "--max-steps", "-1"], "--max-steps"),
])
def test_command_errors_are_one_line(args, message, capsys):
    code, out, err = run(["explain", LECTURE, *args], capsys)
    assert code == 1 and message in err and "Traceback" not in err


def test_a_non_scalar_function_is_refused():
    with pytest.raises(ExplainError, match="does not return a scalar"):
        exprgrad.explain("f(x) = [x, x]\n", "f", at={"x": 1})


def test_micrograd_graphs_with_shared_values_match_their_backward():
    """A computed value used by the result and, deeper, by another input of
    the result must be explained after every use of it, as backward() visits
    it (micrograd keeps inputs in a set, so both orders are tried, many times)."""
    Value = pytest.importorskip("micrograd.engine").Value
    for k in range(20):
        a, x = Value(1.5 + k), Value(-0.5)
        a.label, x.label = "a", "x"
        b = a * x
        deep = (b * b + a).relu()
        c = b + deep if k % 2 else deep + b
        explanation = exprgrad.explain(c)
        c.backward()
        grads = {g.name: g.value for g in explanation.gradients}
        assert math.isclose(grads["a"], a.grad) and math.isclose(grads["x"], x.grad)


GRAPHS = st.lists(st.tuples(st.sampled_from(["+", "*", "tanh", "relu", "sq"]),
                            st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)),
                  min_size=1, max_size=12)


def build(value_class, program, leaves):
    """A random DAG of Values: each operation takes earlier values (so values
    are shared at every depth); the result sums the last three."""
    values = [value_class(v) for v in leaves]
    for i, v in enumerate(values):
        v.label = f"x{i}"
    for op, i, j in program:
        a, b = values[i % len(values)], values[j % len(values)]
        values.append(a + b if op == "+" else a * b if op == "*" else a ** 2 if op == "sq"
                      else a.tanh() if op == "tanh" and hasattr(a, "tanh") else a.relu())
    out = values[-1]
    for v in values[-3:-1]:
        out = out + v
    return out, values[:len(leaves)]


@settings(max_examples=40, deadline=None)
@given(GRAPHS, st.lists(st.floats(-2, 2, allow_nan=False), min_size=2, max_size=3))
def test_random_value_graphs_are_explained_as_backward_computes_them(program, leaves):
    kinds = [exprgrad.Value]
    try:
        from micrograd.engine import Value as MicrogradValue
        kinds.append(MicrogradValue)
    except ImportError:
        pass
    for value_class in kinds:
        out, inputs = build(value_class, program, leaves)
        explanation = exprgrad.explain(out)
        out.backward()
        by_name = {g.name: g.value for g in explanation.gradients}
        for v in inputs:  # an input the result does not use is not in the graph
            explained = by_name.get(v.label, 0.0)
            if value_class is exprgrad.Value:
                assert explained == v.grad
            else:
                assert math.isclose(explained, v.grad, rel_tol=1e-9, abs_tol=1e-9)


def test_a_result_that_is_a_parameter_or_a_constant():
    text = str(exprgrad.explain("f(x, y) = x\n", "f", at={"x": 2, "y": 1}))
    assert "dx/dx = 1  (the result itself)" in text
    assert "dx/dy = 0  (x does not depend on y)" in text
    text = str(exprgrad.explain("f(x) = 3\n", "f", at={"x": 2}))
    assert "df/dx = 0  (f does not depend on x)" in text
    leaf = exprgrad.Value(2.0, label="a")
    assert "da/da = 1  (the result itself)" in str(exprgrad.explain(leaf))


def test_explaining_imports_neither_graphviz_nor_sympy():
    code = ("import sys, exprgrad\n"
            f"exprgrad.explain({str(LECTURE)!r}, 'L', at=dict(a=2, b=-3, c=10, f=-2))\n"
            "print('graphviz' in sys.modules, 'sympy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split() == ["False", "False"], done.stderr
