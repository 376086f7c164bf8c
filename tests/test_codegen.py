"""The generated module: standalone, deterministic, readable, located."""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import exprgrad
from exprgrad.compiler.printers.python import GENERATED_MARK

ROOT = Path(__file__).resolve().parent.parent
LECTURE = ROOT / "examples" / "lecture.expr"
FILENAME = "examples/lecture.expr"
LOCATION = re.compile(r"  # (?P<file>\S+\.expr):(?P<line>\d+):(?P<col>\d+)$")
# A statement too long for its location comment has it on the line above.
ABOVE = re.compile(r"^ *# (?P<file>\S+\.expr):(?P<line>\d+):(?P<col>\d+)$")


@pytest.fixture(scope="module")
def source() -> str:
    return LECTURE.read_text()


@pytest.fixture(scope="module")
def generated(source) -> str:
    return exprgrad.emit(source, FILENAME)


def test_runs_without_site_packages(generated, tmp_path):
    (tmp_path / "lecture.py").write_text(generated)
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, DIRECTORY)
        import lecture
        assert lecture.f_grad(3.0) == (20.0, (14.0,)), lecture.f_grad(3.0)
        assert lecture.d_grad(2.0, -3.0, 10.0) == (4.0, (-3.0, 2.0, 1.0))
        assert lecture.L_grad(2.0, -3.0, 10.0, -2.0) == (-8.0, (6.0, -4.0, -2.0, 4.0))
        value, grads = lecture.neuron_grad(2.0, 0.0, -3.0, 1.0, 6.8813735870195432)
        assert abs(value - 0.7071067811865476) < 1e-12
        g, (da, db) = lecture.readme_grad(-4.0, 2.0)
        assert abs(g - 24.70408163265306) < 1e-12 and abs(da - 138.83381924198252) < 1e-12
        loaded = {m.split(".")[0] for m in sys.modules}
        assert not loaded & {"exprgrad", "sympy", "lark", "mpmath"}, loaded
        print("ok")
    """).replace("DIRECTORY", repr(str(tmp_path)))
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_emitting_twice_gives_identical_bytes(source, generated):
    assert exprgrad.emit(source, FILENAME) == generated


def test_identical_across_processes_and_hash_seeds(generated):
    code = ("import sys, exprgrad; sys.stdout.write(exprgrad.emit(open(sys.argv[1]).read(), "
            f"{FILENAME!r}))")
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code, str(LECTURE)], capture_output=True,
                             env=env, timeout=120).stdout
        assert out == generated.encode()


def test_header_names_the_source_and_version(generated):
    first = generated.splitlines()[0]
    assert first.startswith(GENERATED_MARK)
    assert exprgrad.__version__ in first and FILENAME in first


def test_imports_only_math(generated):
    imported = set()
    for node in ast.walk(ast.parse(generated)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"math"}


def test_functions_and_names_from_the_source(generated):
    tree = ast.parse(generated)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name in ("f", "d", "L", "neuron", "readme"):
        assert name in functions and name + "_grad" in functions
    assert [a.arg for a in functions["L_grad"].args.args] == ["a", "b", "c", "f"]
    neuron = ast.get_source_segment(generated, functions["neuron_grad"])
    assert re.search(r"\bd_n\b", neuron), "the adjoint of the local n is called d_n"
    readme = ast.get_source_segment(generated, functions["readme_grad"])
    for local in ("c", "d", "e", "f"):
        assert re.search(rf"^\s+{local}(_\d+)? = ", readme, re.M), local


def _statement_lines(generated: str) -> list[tuple[int, str]]:
    """Lines of the generated source functions (not helpers) that compute
    something: assignments (except argument conversion), if, return."""
    tree = ast.parse(generated)
    lines = generated.splitlines()
    out = []
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef) or function.name.startswith("_"):
            continue
        prologue = {id(n) for t in function.body if isinstance(t, ast.Try) for n in ast.walk(t)}
        for node in ast.walk(function):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.If, ast.Return)):
                if id(node) in prologue:
                    continue  # argument conversion: not a source expression
                out.append((node.lineno, lines[node.lineno - 1]))
    return out


def test_every_statement_points_into_the_source(source, generated):
    source_lines = source.splitlines()
    statements = _statement_lines(generated)
    assert len(statements) > 20
    lines = generated.splitlines()
    for number, text in statements:
        match = LOCATION.search(text) or ABOVE.match(lines[number - 2])
        assert match, f"line {number} has no location comment: {text}"
        assert match["file"] == FILENAME
        line, col = int(match["line"]), int(match["col"])
        assert 1 <= line <= len(source_lines)
        assert 1 <= col <= len(source_lines[line - 1])
        assert not source_lines[line - 1][col - 1].isspace()
        assert not source_lines[line - 1].lstrip().startswith("#"), "not a comment line"


def test_location_of_a_local_is_its_line():
    source = "def f(x):\n    n = x*x + 1\n    return log(n)*n\n"
    text = exprgrad.emit(source, "m.expr")
    assert re.search(r"^    n = x \* x \+ 1(\.0)?  # m\.expr:2:", text, re.M), text


LAZY = {
    "one line": "g(x) = log(x) if x > 0 else 0\n",
    "shared local": "def g(x):\n    l = log(x)\n    return l*l + l if x > 0 else 0\n",
    "nested": "g(x) = (sqrt(x) if x > 1 else log(x)) if x > 0 else 0\n",
    "negated": "g(x) = 0 if not x > 0 else log(x)*log(x)\n",
}


@pytest.mark.parametrize("case", sorted(LAZY))
def test_conditional_branches_are_lazy(case):
    m = exprgrad.compile(LAZY[case], "lazy.expr")
    assert m.g(-1.0) == 0.0
    assert m.g_grad(-1.0) == (0.0, (0.0,))
    assert m.g_grad(0.0) == (0.0, (0.0,))
    value, (slope,) = m.g_grad(2.0)
    assert value == m.g(2.0) and slope != 0.0


def test_lazy_branch_values_and_slopes():
    m = exprgrad.compile(LAZY["one line"], "lazy.expr")
    assert m.g_grad(2.0) == (pytest.approx(0.6931471805599453), (0.5,))


def test_argument_errors_name_the_parameter():
    m = exprgrad.compile("f(x, w[2]) = x*w[0] + w[1]\n", "m.expr")
    with pytest.raises(TypeError, match="x"):
        m.f("a", [1.0, 2.0])
    with pytest.raises((TypeError, ValueError), match="w"):
        m.f(1.0, [1.0, 2.0, 3.0])


def test_traceback_from_generated_code_shows_the_source_location():
    m = exprgrad.compile("f(x) = log(x)\n", "model.expr")
    with pytest.raises(ValueError) as info:
        m.f(-1.0)
    import traceback
    text = "".join(traceback.format_exception(info.value))
    assert "# model.expr:1:" in text


def test_value_and_gradient_branches_on_one_condition_share_their_statements():
    """The value's if/else and the gradient's if/else test one condition; a
    statement both need is computed inside the first and reused by the second
    (never hoisted above both, never missing from the second)."""
    source = ("def h(x, y):\n"
              "    return max(y, cos((2 + cos(x)) ** sin(y))), 1\n")
    m = exprgrad.compile(source, "shared.expr")
    for x, y in ((1.0, 0.5), (1.0, -3.0), (-2.0, 0.25)):
        (value, one), (dx, dy) = m.h_vjp(x, y, (1.0, 1.0))
        inner = math.cos((2 + math.cos(x)) ** math.sin(y))
        assert value == max(y, inner) and one == 1.0
        if inner > y:
            assert dx == pytest.approx(-math.sin((2 + math.cos(x)) ** math.sin(y)) *
                                       math.sin(y) * (2 + math.cos(x)) ** (math.sin(y) - 1) *
                                       -math.sin(x))
        else:
            assert (dx, dy) == (0.0, 1.0)
    text = exprgrad.emit("def g(x):\n    l = log(x)\n    return l*l + l if x > 0 else 0\n")
    grad = text[text.index("def g_grad"):]
    assert grad.index("if ") < grad.index("math.log("), "log(x) is computed inside the branch"


def test_generated_code_doc_shows_real_output(generated):
    """docs/generated-code.md pastes output for examples/lecture.expr; it must
    still be what exprgrad emits (regenerate the doc when this fails)."""
    doc = (ROOT / "docs" / "generated-code.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S)
              if b.startswith(("def ", GENERATED_MARK))]
    assert len(blocks) >= 3
    for block in blocks:
        assert block.strip() in generated, block[:80]
