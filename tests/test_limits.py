"""Resource limits (exprgrad/compiler/limits.py, docs/reliability.md): every
limit is refused with a located LimitError that names it, and inputs that
used to hang or exhaust memory are refused (or compiled) without either."""

from __future__ import annotations

import math

import pytest

import exprgrad
from exprgrad.compiler import limits
from exprgrad.compiler.graph import Graph
from exprgrad.errors import ConstantOverflowError, LimitError, ParseError

from test_fuzz import compile_or_refuse, no_hang


def refused(source: str, kind=LimitError) -> exprgrad.CompileError:
    with no_hang(), pytest.raises(kind) as info:
        exprgrad.emit(source, "limits.expr")
    compile_or_refuse(source, "limits.expr")  # and located inside the text
    return info.value


@pytest.mark.parametrize("source, words", [
    ("f(x) = sum(x*i for i in range(10**9))", "1,000,000,000 elements"),
    ("f(x) = sum(x for i in range(5, 10**12))", "the limit is 1,000,000"),
    ("f(x) = sum(x for i in range(1e300))", "the limit is"),
    ("f(x) = sum(x*i*j*k for i in range(1000) for j in range(1000) for k in range(1000))",
     "product of their lengths"),
    ("f(x) = x*sum(sum(sum(1 for i in range(1000)) for j in range(1000)) for k in range(1000))",
     "would unroll to 1,000,000,000"),
    ("f(w[100000][100000]) = w[0][0]", "10,000,000,000 elements"),
    ("f(x) = sum(x for " + " for ".join(f"i{k} in range(1)" for k in range(3000)) + ")",
     "'for' clauses deep"),
    ("f(x) = " + "sum(" * 60 + "x" + " for i in range(1))" * 60, "nested more than 50"),
    ("\n".join(f"f{i}(x) = f{i + 1}(x) + 1" for i in range(150)) + "\nf150(x) = x",
     "functions deep"),
    ("c = " + "[" * 40 + "1" + "]" * 40 + "\nf(x) = x", "dimensions"),
    ("f(" + "x" * 100_000 + ") = 1", "the limit is 200"),
], ids=lambda v: v[:30] if isinstance(v, str) else None)
def test_limits_are_refused_quickly_with_a_message(source, words):
    error = refused(source)
    assert words in error.message


def test_source_size_limit():
    error = refused("#" * (limits.MAX_SOURCE_BYTES + 1) + "\nf(x) = x")
    assert f"{limits.MAX_SOURCE_BYTES:,}" in error.message


def test_literal_too_large_for_a_float_is_a_compile_error():
    for literal in ["1e999", "9" * 400, "1.8e308"]:
        error = refused(f"f(x) = {literal} * x", ParseError)
        assert "too large for a float" in error.message
        assert error.column == 8
    # the largest float and underflow to 0 are fine, as in Python
    m = exprgrad.compile("f(x) = 1.7976931348623157e308 * x + 1e-400")
    assert m.f(1.0) == 1.7976931348623157e308


@pytest.mark.parametrize("source, column, most", [
    ("f(w[20001]) = w[0]", 3, 10),  # the parameter: nothing of it is built
    ("f(w[15000]) = w", 1, 15_010),  # the forward's w, but not the cotangent
])
def test_parameters_and_cotangents_past_the_dag_limit_are_refused_before_they_are_built(
        monkeypatch, source, column, most):
    """An array parameter (or a vjp's cotangent) is one node per element:
    one the limit cannot hold is refused before any is built."""
    monkeypatch.setattr(limits, "MAX_DAG_NODES", 20_000)
    refused(source)  # located, and within the text
    built = []
    append = Graph._append
    monkeypatch.setattr(Graph, "_append", lambda self, node: built.append(1) or append(self, node))
    with pytest.raises(LimitError) as info:
        exprgrad.emit(source, "limits.expr")
    assert "20,000 operations" in info.value.message and info.value.column == column
    assert len(built) <= most


def test_dag_size_limit_is_checked_as_nodes_are_built(monkeypatch):
    """Inlining doubles the work at each level: 2**40 multiplications."""
    monkeypatch.setattr(limits, "MAX_DAG_NODES", 20_000)
    fan = "\n".join(f"f{i}(x) = f{i + 1}(f{i + 1}(x))" for i in range(40)) + "\nf40(x) = x*x"
    assert "20,000 operations" in refused(fan).message
    tower = "f(x) = " + "diff(" * 30 + "exp(x*x)" + ", x)" * 30
    assert "operations" in refused(tower).message


def test_unrolled_total_limit(monkeypatch):
    monkeypatch.setattr(limits, "MAX_UNROLLED", 1000)
    many = "\n".join(f"f{k}(x) = sum(x*i for i in range(300))" for k in range(4))
    assert "1,000 elements in all" in refused(many).message


def test_a_function_called_inside_a_loop_is_lowered_once_not_per_iteration(monkeypatch):
    monkeypatch.setattr(limits, "MAX_UNROLLED", 1000)
    source = ("g(x) = sum(x*i for i in range(100))\n"
              "f(x) = sum(g(x) for k in range(100))\n")
    m = exprgrad.compile(source)
    assert m.f(1.0) == 100 * sum(range(100))


@pytest.mark.parametrize("source", [
    "f(x) = x + " + "(" * 10_000 + "x" + ")" * 10_000,
    "f(x) = " + "-" * 10_000 + "x",
    "f(x) = 1 if " + "not " * 5_000 + "x > 0 else 2",
    "f(x) = prod(x**1000 for i in range(1000))",
    "f(x) = " + "+".join(["x"] * 5_000),
    "f(x) = " + "x**" * 100 + "1.0001",  # 100 nested conditionals in the derivative
    "g(x) = x + 1\nf(x) = " + "g(" * 3000 + "x" + ")" * 3000,
    "\n".join(f"f{i}(x) = x + {i}" for i in range(300)),
    "f(x) = x" + " " * 100_000 + "\n" + "#" * 1_000_000,
    "def f(x):\n" + "".join(f"    x = x * 1.0001 + {i}\n" for i in range(500)) + "    return x",
], ids=lambda v: v[:30])
def test_large_inputs_compile_without_hanging(source):
    with no_hang():
        module = compile_or_refuse(source, "big.expr")
    assert module is not None


def test_deeply_nested_conditionals_keep_their_value():
    """Past the code generator's block depth, conditionals become inline
    expressions; the value is still the branch taken."""
    depth = 120
    source = "f(x) = " + "".join(f"x*{i} if x > {i} else (" for i in range(depth)) + "-x" + \
        ")" * depth
    m = exprgrad.compile(source)
    for x in (-3.0, 0.5, 5.5, 200.0):
        expected = next((x * i for i in range(depth) if x > i), -x)
        assert m.f(x) == expected
        assert m.f_grad(x)[1][0] == next((float(i) for i in range(depth) if x > i), -1.0)


def test_limits_are_documented():
    doc = open(__file__.rsplit("/tests/", 1)[0] + "/docs/reliability.md").read()
    for name in dir(limits):
        if name.startswith("MAX_"):
            assert name in doc, name
            assert f"{getattr(limits, name):,}" in doc, name
    assert math.isfinite(limits.MAX_DAG_NODES)


@pytest.mark.parametrize("digits", [7, 300, 5_000])
def test_a_huge_array_dimension_is_a_limit_error(digits):
    """A dimension is refused by its digits before it is converted to an
    integer (Python refuses to convert more than 4,300 digits)."""
    source = f"f(w[{'9' * digits}][1]) = w[0][0]\n"
    with pytest.raises(LimitError) as info:
        exprgrad.compile(source, "big.expr")
    assert (info.value.line, info.value.column) == (1, 5)
    assert "at most 1,000,000 elements" in info.value.message
    assert len(str(info.value)) < 400  # the number is abbreviated


@pytest.mark.parametrize("source, column, shown", [
    ("f(x) = x + 2^2^2^2^2\n", 13, "2 ** 65536"),
    ("f(x) = x * 2**2**2**2**2**2\n", 16, "2 ** 65536"),
    ("f(x) = x + 1e300^1e300\n", 17, "1e+300 ** 1e+300"),
    ("check 2^2^2^2^2^2 == 1\n", 10, "2 ** 65536"),
    ("f(x) = x + exp(1000)\n", 12, "exp(1000)"),
    ("f(x) = x + 1e200^2\n", 17, "1e+200 ** 2"),
])
def test_an_overflowing_constant_is_a_located_error(source, column, shown):
    """Folding is float arithmetic, as at run time; where that overflows, the
    constant is refused like the literal 1e400 (no exact 2**65536 is built)."""
    with no_hang(10):
        with pytest.raises(exprgrad.CompileError) as info:
            exprgrad.compile(source, "big.expr")
    assert (info.value.line, info.value.column) == (1, column), str(info.value)
    assert f"the constant {shown} is too large for a float" in info.value.message


CALLEE = "def h(x):\n    return 10^x\n"  # 10^x overflows for x > 308


@pytest.mark.parametrize("source, line, column", [
    (CALLEE + "k(y) = h(2) * y + h(400)\n", 3, 19),
    (CALLEE + "def g(y):\n    return 2 * h(y)\nk(z) = z + g(400)\n", 5, 12),
    (CALLEE + "c = h(400)\nk(y) = c * y\n", 3, 5),
    (CALLEE + "check h(400) == 1\n", 3, 7),
])
def test_a_constant_overflowing_only_with_a_calls_arguments_is_reported_at_the_call(
        source, line, column):
    """h itself is fine (h(2) compiles): the call passing 400 is what is
    wrong, so the error points there, and says where h computes the power."""
    with no_hang(10):
        with pytest.raises(ConstantOverflowError) as info:
            exprgrad.compile(source, "calls.expr")
    error = info.value
    assert (error.line, error.column) == (line, column), str(error)
    assert "the constant 10 ** 400 is too large for a float" in error.message
    assert error.message.endswith("h() computes it at line 2:14")
    compile_or_refuse(source, "calls.expr")


def test_a_constant_overflowing_whatever_the_arguments_is_reported_in_the_callee():
    with pytest.raises(ConstantOverflowError) as info:
        exprgrad.compile("def h(x):\n    return x + 10^400\nk(y) = h(y)\n", "callee.expr")
    assert (info.value.line, info.value.column) == (2, 18)
    assert "computes it" not in info.value.message
    assert exprgrad.compile(CALLEE + "k(y) = h(2) * y\n").k_grad(3.0) == (300.0, (100.0,))


def test_constants_past_the_float_range_by_multiplication_are_inf_as_at_run_time():
    module = exprgrad.compile("f(x) = x + 1e200 * 1e200\n")
    assert module.f(1.0) == math.inf


def test_folding_keeps_every_constant_a_float():
    from exprgrad.compiler.pipeline import front_end
    program = front_end("f(x) = x + 2^2^2^2 + 3^40\n", "p.expr")
    for node in program.graph.nodes:
        if node.op == "const":
            assert type(node.attr) is float
        if node.op == "ipow":
            assert abs(node.attr) <= 64


NESTED_REDUCTIONS = """\
def f(s, u[n]):
    return min(log(1 + (max(exp(sin(s - u[j])) for j in range(n)) - u[k])^2) for k in range(n)) + \\
        sum(min(s * u[j] - u[k] for j in range(n)) for k in range(n))
"""


def test_a_schedule_whose_walks_through_nested_loops_pass_the_limit_is_refused(monkeypatch):
    """Reductions nested in reductions multiply the data-axis scheduler's
    walks (a fuzz program took minutes and 30 MB of module): past
    `MAX_SCHEDULE_STEPS` it is a located LimitError saying what to do."""
    exprgrad.emit(NESTED_REDUCTIONS, "limits.expr")  # well under the limit
    monkeypatch.setattr(limits, "MAX_SCHEDULE_STEPS", 100)
    error = refused(NESTED_REDUCTIONS)
    assert "walks more than 100 nodes" in error.message and "as a list" in error.message
    assert error.line in (1, 2, 3) and error.source_line


def test_a_schedule_that_walks_its_dag_many_times_over_is_refused(monkeypatch):
    """Past `SCHEDULE_STEPS_ALLOWED`, the walks may take `MAX_SCHEDULE_REWALKS`
    times the DAG's size: the budget grows with the DAG, so a wide network
    (which walks its DAG about 2.5 times) compiles where nested reductions
    walked again and again are refused."""
    monkeypatch.setattr(limits, "SCHEDULE_STEPS_ALLOWED", 0)
    monkeypatch.setattr(limits, "MAX_SCHEDULE_REWALKS", 3)
    exprgrad.emit(NESTED_REDUCTIONS, "limits.expr")  # f_grad walks its 136 nodes about twice
    monkeypatch.setattr(limits, "MAX_SCHEDULE_REWALKS", 1)
    error = refused(NESTED_REDUCTIONS)
    budget = int(error.message.split("walks more than ", 1)[1].split(" nodes")[0])
    assert 100 < budget <= 136, error.message  # the DAG's size when the walks passed it


def test_nested_reductions_walked_fifteen_times_over_are_refused_in_seconds():
    """Fuzz seed data:2600010839: d1_grad walked its DAG of 22,210 nodes
    15 times over (326,121 steps), and emitting both targets and checking
    took over 30 s; past 8 times its DAG (about 200,000 steps: the share of
    a product under `diff` has grown since) it is refused."""
    import random
    import re
    from fuzz_strategies import data_program
    source = data_program(random.Random(2600010839)).source
    with no_hang(20):
        error = refused(source)
    walked = re.search(r"d1_grad\(\) walks more than ([\d,]+) nodes", error.message)
    assert walked and 150_000 < int(walked.group(1).replace(",", "")) < 250_000, error.message


def test_check_reports_a_limit_the_scheduler_meets_as_the_files_compile_error(monkeypatch):
    """`check` returns a report, never raises, also when the limit is met
    while scheduling the emitted functions, and the error is located."""
    monkeypatch.setattr(limits, "MAX_SCHEDULE_STEPS", 100)
    report = exprgrad.check(NESTED_REDUCTIONS, "nested.expr")
    assert report.error.startswith("nested.expr:") and "walks more than 100" in report.error
    assert "^" in report.error
