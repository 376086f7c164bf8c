"""Untrusted source text and file names (docs/reliability.md, "Safety"):
generated names never collide with Python's or the module's own, nothing
but validated names and numbers reaches the generated file, `exprgrad
compile` never overwrites a file it did not generate and writes atomically,
and the import-hook cache cannot be poisoned by another source or version."""

from __future__ import annotations

import ast as python_ast
import builtins
import keyword
import math
import os
import subprocess
import sys

import pytest

import exprgrad
from exprgrad import cli
from exprgrad.compiler.printers.python import GENERATED_MARK
from exprgrad.runtime import modules

HOSTILE = ["__import__", "import", "lambda", "math", "_float", "_floats", "_sigmoid",
           "_softplus", "float", "print", "exec", "eval", "open", "None_", "True_", "self",
           "cotangent", "out", "d_x", "t", "sum_", "__builtins__", "__name__", "x" * 200,
           "class", "yield", "await", "match", "case", "_", "__", "e", "pi"]


def _defined_names(text: str) -> set[str]:
    """Every name the generated module binds (functions, parameters, locals)."""
    names = set()
    for node in python_ast.walk(python_ast.parse(text)):
        if isinstance(node, python_ast.FunctionDef):
            names.add(node.name)
            names.update(a.arg for a in node.args.args)
        elif isinstance(node, python_ast.Name) and isinstance(node.ctx, python_ast.Store):
            names.add(node.id)
    return names


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: n[:20])
def test_hostile_parameter_and_local_names(name):
    source = (f"g({name}) = {name} * 2 + sin({name})\n"
              f"def f({name}, y):\n"
              f"    z = {name} * y\n"
              f"    z += g({name})\n"
              f"    return z * {name}\n"
              f"def h({name}[2]) = [{name}[0] * {name}[1], {name}[1]]\n")
    source = source.replace("def h(", "h(")
    text = exprgrad.emit(source, "hostile.expr")
    bound = _defined_names(text)
    forbidden = (set(keyword.kwlist) | set(dir(builtins)) | {"math"}) - {"__doc__"}
    helpers = {"_float", "_floats", "_sigmoid", "_softplus"}
    assert not bound & forbidden, bound & forbidden
    for node in python_ast.walk(python_ast.parse(text)):
        if isinstance(node, python_ast.FunctionDef) and node.name not in helpers:
            inner = {a.arg for a in node.args.args} | {
                n.id for n in python_ast.walk(node)
                if isinstance(n, python_ast.Name) and isinstance(n.ctx, python_ast.Store)}
            assert not inner & helpers, (node.name, inner & helpers)
    m = exprgrad.compile(source, "hostile.expr")
    assert m.g(3.0) == 6 + math.sin(3.0)
    value, (dx, dy) = m.f_grad(3.0, 2.0)
    g3 = 6 + math.sin(3.0)
    assert value == pytest.approx((6 + g3) * 3)
    assert dx == pytest.approx(2 * 3 * 2 + g3 + 3 * (2 + math.cos(3.0)))
    assert dy == pytest.approx(9)
    value, (dw,) = m.h_vjp([2.0, 5.0], [1.0, 1.0])
    assert value == [10.0, 5.0] and dw == [5.0, 3.0]


@pytest.mark.parametrize("name", ["print", "math", "float", "_f", "__import__", "import",
                                  "lambda", "class", "None", "exec", "len_grad_"])
def test_reserved_function_names_are_refused_or_safe(name):
    source = f"{name}(x) = x * 2\n"
    try:
        m = exprgrad.compile(source)
    except exprgrad.CompileError as error:
        assert error.line == 1 and error.column == 1
        return
    assert getattr(m, name)(2.0) == 4.0


def test_generated_function_names_cannot_collide():
    with pytest.raises(exprgrad.CompileError) as info:
        exprgrad.emit("f(x) = x\nf_grad(x) = x * 2\n")
    assert info.value.line == 2


def test_a_parameter_named_cotangent_in_a_vjp():
    m = exprgrad.compile("def g(cotangent, x):\n    return [cotangent * x, x]\n")
    value, (dc, dx) = m.g_vjp(3.0, 2.0, [1.0, 10.0])
    assert value == [6.0, 2.0] and (dc, dx) == (2.0, 13.0)


def test_only_names_and_numbers_reach_the_generated_file():
    """Comments, check statements and the file name carry arbitrary text; none
    of it is in the generated module except as validated names and numbers."""
    payload = '__import__("os").system("echo pwned")'
    source = (f"# {payload}\n"
              "f(x) = x * 2  # \"\"\" ''' \\\n"
              f"check f(1) == 2  # {payload}\n")
    text = exprgrad.emit(source, "model.expr")
    assert "__import__" not in text and "system" not in text and "'''" not in text
    # A file name is shown in comments and docstrings only, made harmless there.
    filename = f'evil"""\n{payload}\r#\\.expr'
    text = exprgrad.emit(source, filename)
    assert "\r" not in text
    code = python_ast.parse(text)
    used = {n.id for n in python_ast.walk(code) if isinstance(n, python_ast.Name)}
    used |= {n.attr for n in python_ast.walk(code) if isinstance(n, python_ast.Attribute)}
    assert not used & {"__import__", "system", "os"}, used
    module = exprgrad.compile(source, filename)
    assert module.f(1.5) == 3.0


def test_names_too_long_or_not_ascii_are_refused():
    with pytest.raises(exprgrad.CompileError):
        exprgrad.emit("f(" + "x" * 201 + ") = 1\n")
    with pytest.raises(exprgrad.CompileError) as info:
        exprgrad.emit("f(\u0445) = \u0445\n")  # Cyrillic look-alike of x
    assert info.value.column == 3


# --- `exprgrad compile` writes ------------------------------------------------------
@pytest.fixture
def source_file(tmp_path):
    path = tmp_path / "model.expr"
    path.write_text("f(x) = x * 2\n")
    return path


def test_compile_never_overwrites_a_file_it_did_not_generate(source_file, capsys):
    out = source_file.with_suffix(".py")
    out.write_text("# my own code\nprint('hello')\n")
    assert cli.main(["compile", str(source_file), "-o", str(out)]) == 1
    assert out.read_text() == "# my own code\nprint('hello')\n"
    assert "not generated by exprgrad" in capsys.readouterr().err
    out.write_text(GENERATED_MARK + " 0.0.1 from model.expr\n")
    assert cli.main(["compile", str(source_file), "-o", str(out)]) == 0
    assert "def f(" in out.read_text()


class Crash(BaseException):
    """Stands for a crash or Ctrl-C in the middle of writing."""


@pytest.mark.parametrize("exception", [Crash, KeyboardInterrupt, OSError])
def test_compile_writes_atomically(source_file, monkeypatch, exception):
    out = source_file.with_suffix(".py")
    assert cli.main(["compile", str(source_file), "-o", str(out)]) == 0
    before = out.read_text()
    source_file.write_text("f(x) = x * 3\n")
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, file):
            self.file = file

        def write(self, text):
            self.file.write(text[: len(text) // 2])
            self.file.flush()
            raise exception("interrupted while writing")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()
            return False

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    with pytest.raises(BaseException):
        cli.write_generated(str(out), exprgrad.emit(source_file.read_text(), "model.expr"))
    monkeypatch.undo()
    assert out.read_text() == before  # the old file, whole
    assert sorted(p.name for p in source_file.parent.iterdir()) == ["model.expr", "model.py"]


def test_compile_through_a_symlink_to_a_foreign_file_is_refused(source_file, tmp_path):
    foreign = tmp_path / "precious.txt"
    foreign.write_text("precious\n")
    link = tmp_path / "model.py"
    link.symlink_to(foreign)
    assert cli.main(["compile", str(source_file), "-o", str(link)]) == 1
    assert foreign.read_text() == "precious\n"


# --- the import hook's cache ----------------------------------------------------------
@pytest.fixture
def cached(tmp_path, monkeypatch):
    monkeypatch.setenv(modules.CACHE_ENV, str(tmp_path / "user-cache"))
    monkeypatch.delenv(modules.NO_CACHE_ENV, raising=False)
    path = tmp_path / "model.expr"
    path.write_text("f(x) = x * 2\n")
    text, cache_file = modules.generated_text(str(path))
    assert cache_file is not None and os.path.exists(cache_file)
    return path, cache_file


def _poison(cache_file: str, header: str, body: str) -> None:
    with open(cache_file, "w", encoding="utf-8", newline="") as file:
        file.write(header + body)


POISON = "def f(x):\n    raise SystemExit('poisoned')\n"


def test_cache_entry_for_other_source_is_ignored(cached):
    path, cache_file = cached
    other = modules._header("0" * 64, POISON)  # a well-formed entry for another source
    _poison(cache_file, other, POISON)
    assert exprgrad.load(path).f(2.0) == 4.0
    assert "poisoned" not in open(cache_file).read()


def test_cache_entry_with_altered_text_is_ignored(cached):
    path, cache_file = cached
    header = open(cache_file).readline()  # the right source hash, the old text hash
    _poison(cache_file, header, POISON)
    assert exprgrad.load(path).f(2.0) == 4.0


@pytest.mark.parametrize("version, generator", [
    ("0.0.0-other", None),  # another release
    (None, "0123456789abcdef"),  # the same version number, other compiler code
])
def test_cache_entry_from_another_compiler_is_ignored(cached, version, generator):
    path, cache_file = cached
    source_hash = open(cache_file).readline().split("sha256=")[1].split()[0]
    header = modules._HEADER.format(
        source=source_hash, version=version or exprgrad.__version__,
        generator=generator or modules.generator_fingerprint(),
        text=__import__("hashlib").sha256(POISON.encode()).hexdigest())
    _poison(cache_file, header, POISON)
    assert exprgrad.load(path).f(2.0) == 4.0


def test_a_genuine_entry_is_served_from_the_cache(cached):
    """The control for the test above: the same poisoning with this compiler's
    own header is served, so a rejected entry was rejected for its header."""
    path, cache_file = cached
    source_hash = open(cache_file).readline().split("sha256=")[1].split()[0]
    served = "def f(x):\n    return -1.0\n"
    _poison(cache_file, modules._header(source_hash, served), served)
    assert exprgrad.load(path).f(2.0) == -1.0


def test_edited_source_is_recompiled_not_served_stale(cached):
    path, _cache_file = cached
    path.write_text("f(x) = x * 5\n")
    assert exprgrad.load(path).f(2.0) == 10.0


def test_import_hook_ignores_a_poisoned_cache(cached, tmp_path):
    path, cache_file = cached
    _poison(cache_file, modules._header("0" * 64, POISON), POISON)
    code = ("import sys, exprgrad; exprgrad.install(); sys.path.insert(0, sys.argv[1]); "
            "import model; print(model.f(2.0))")
    env = dict(os.environ, **{modules.CACHE_ENV: str(tmp_path / "user-cache")})
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4.0"
