"""The array target against the plain target: the same values and gradients
(1e-12) on every example and on random programs of the fuzzing generator;
where the plain target raises, the array target gives no finite number."""

from __future__ import annotations

import math
import random
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("numpy")
pytest.importorskip("array_api_compat")

import exprgrad  # noqa: E402
from exprgrad.compiler.pipeline import build  # noqa: E402
from fuzz_strategies import programs  # noqa: E402

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.expr"))


def argument(shape, rnd: random.Random, sizes: dict | None = None):
    """A random argument; a data axis (a size name) gets the length `sizes`
    gives it, the same for every parameter of one call."""
    sizes = {} if sizes is None else sizes
    if isinstance(shape, list):
        return tuple(argument(s, rnd, sizes) for s in shape)
    if not shape:
        return round(rnd.uniform(-1.5, 1.5), 3)
    head = shape[0]
    if isinstance(head, str):
        head = sizes.setdefault(head, rnd.randint(1, 5))
    return [argument(shape[1:], rnd, sizes) for _ in range(head)]


def leaves(value) -> list:
    if hasattr(value, "tolist") and getattr(value, "ndim", 0):  # a map: an array
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in leaves(v)]
    return [value]


def compare(source: str, rnd: random.Random, points: int = 3) -> int:
    """Run every generated function of both targets at random points; the
    number of calls compared."""
    text, functions = build(source, "t.expr")
    plain = exprgrad.compile(source, "t.expr")
    array = exprgrad.compile(source, "t.expr", target="array")
    compared = 0
    for fn in functions:
        for _ in range(points):
            sizes: dict = {}
            args = [argument(p.shape, rnd, sizes) for p in fn.params]
            try:
                want = getattr(plain, fn.name)(*args)
            except (ValueError, ArithmeticError):
                want = None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                got = getattr(array, fn.name)(*args)
            got, want_leaves = [float(g) for g in leaves(got)], leaves(want)
            if want is None:
                assert not all(math.isfinite(g) for g in got), (fn.name, args, source)
                continue
            assert len(got) == len(want_leaves), fn.name
            for g, w in zip(got, want_leaves):
                assert math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12) or \
                    (math.isnan(w) and math.isnan(g)), (fn.name, args, g, w, source)
            compared += 1
    return compared


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_agrees_on_both_targets(path):
    source = path.read_text()
    try:
        exprgrad.emit(source, path.name)
    except exprgrad.CompileError:  # waits for data axes in the code generator
        pytest.skip("the plain target cannot compile it yet")
    assert compare(source, random.Random(path.name)) > 0


@settings(max_examples=25, deadline=None)
@given(programs(depth=2), st.integers(0, 2 ** 32 - 1))
def test_random_programs_agree_on_both_targets(program, seed):
    compare(program.source, random.Random(seed), points=2)


def test_a_condition_on_a_size_alone_inside_a_data_loop():
    """Once an AttributeError: `n >= 2` is a Python bool, which the branch's
    safe inputs (`_safe`) took for an array."""
    source = "def f(u[n]):\n    return sum(log(1 + u[k]^2) if n >= 2 else n for k in range(n))\n"
    assert compare(source, random.Random(1), points=6) == 12


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
def test_a_product_under_a_condition_inside_nested_diff(seed):
    """Once a wrong gradient (8 vs 2 at n = 1): the product rule's
    branch added to `d_z` and then read `d_z` through the safe input made
    before the addition (fuzzer seed data:400003079, reduced)."""
    source = ("def f(s, u[n]):\n"
              "    z = [(s if u[k] > -5 else 0) for k in range(n)]\n"
              "    return diff(sum(diff(z[j] * prod(z[j] for i in range(n)), s)^2 "
              "for j in range(n)), s)\n")
    assert compare(source, random.Random(seed), points=2) == 4


def test_an_unknown_target_is_refused():
    with pytest.raises(ValueError, match="the targets are python, array"):
        exprgrad.emit("f(x) = x", target="numpy")


def test_compile_load_and_import_for_the_array_target(tmp_path, monkeypatch, capsys):
    from exprgrad.cli import main
    from exprgrad.runtime import importer
    source = tmp_path / "model_arr.expr"
    source.write_text("def f(x, w[2]) wrt x, w:\n    return log(x) * w[0] + w[1] if x > 0 else w[1]\n")
    out = tmp_path / "model_arr.py"
    assert main(["compile", str(source), "--target", "array", "-o", str(out)]) == 0
    text = out.read_text()
    assert "xp = _namespace(" in text and "--target array" in text.splitlines()[1]
    assert "import exprgrad" not in text and "from exprgrad" not in text
    loaded = exprgrad.load(source, target="array")
    assert loaded.f_grad(2.0, [3.0, 1.0]) == exprgrad.load(source).f_grad(2.0, [3.0, 1.0])
    assert list((tmp_path / "__pycache__").glob("model_arr.exprgrad-*-array.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "model_arr", raising=False)
    try:
        importer.install(target="array")
        import model_arr
        assert "_namespace" in vars(model_arr)
        value, (d_x, d_w) = model_arr.f_grad(-1.0, [3.0, 1.0])  # log not taken: no warning
        assert (value, d_x, d_w) == (1.0, 0.0, [0.0, 1.0])
    finally:
        importer.uninstall()
    with pytest.raises(ValueError, match="unknown target"):
        importer.install(target="fortran")


def test_check_verifies_the_array_targets_text_and_catches_a_wrong_op(monkeypatch):
    from exprgrad.compiler import array_ops
    from exprgrad.verify import check
    source = "def f(x, y) wrt x, y:\n    return cos(x) * y + log(1 + x*x)\n"
    assert check(source, "t.expr", target="array", timeout=5)
    monkeypatch.setitem(array_ops.ARRAY_TEMPLATES, "cos", ("xp.sin({0})", 10, (0,)))
    report = check(source, "t.expr", target="array", timeout=5)
    assert not report and "FAILED" in report.text()
    assert check(source, "t.expr", timeout=5)  # the plain target's text is untouched
