"""`exprgrad.install()` and `exprgrad.load()`: importing `.expr` files, the
on-disk cache, and compile errors and tracebacks at import time."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import traceback
import linecache
from pathlib import Path

import pytest

import exprgrad
from exprgrad.runtime import importer
from exprgrad.runtime.modules import cache_paths, read_cache

REPO = Path(__file__).resolve().parent.parent
MODEL = "f(x) = 3*x^2 - 4*x + 5\ng(x) = log(x) + 1\n"


@pytest.fixture
def hook(tmp_path, monkeypatch):
    """A temporary directory on sys.path with the import hook installed."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("EXPRGRAD_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("EXPRGRAD_NO_CACHE", raising=False)
    before = set(sys.modules)
    exprgrad.install()
    yield tmp_path
    importer.uninstall()
    for name in set(sys.modules) - before:
        del sys.modules[name]


def fresh_import(name):
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def cache_file(source: Path) -> Path:
    return Path(cache_paths(str(source))[0])


def test_import_compiles_and_caches(hook):
    (hook / "model1.expr").write_text(MODEL)
    model = fresh_import("model1")
    assert model.f_grad(3.0) == (20.0, (14.0,))
    assert model.__file__ == str(hook / "model1.expr")
    cached = cache_file(hook / "model1.expr")
    assert model.__cached__ == str(cached)
    assert cached.parent == hook / "__pycache__"
    assert "def f_grad" in cached.read_text()
    assert fresh_import("model1").f(1.0) == 4.0  # from the cache this time


def test_install_is_idempotent_and_python_files_win(hook):
    exprgrad.install()
    assert sum(isinstance(f, importer.ExprFinder) for f in sys.meta_path) == 1
    (hook / "model2.expr").write_text(MODEL)
    (hook / "model2.py").write_text("ORIGIN = 'python'\n")
    assert fresh_import("model2").ORIGIN == "python"


def test_edits_are_picked_up(hook):
    source = hook / "model3.expr"
    source.write_text("f(x) = 2*x\n")
    assert fresh_import("model3").f_grad(1.0) == (2.0, (2.0,))
    source.write_text("f(x) = 5*x^2\n")
    assert fresh_import("model3").f_grad(1.0) == (5.0, (10.0,))
    source.write_text("f(x) = x^3\n")
    assert importlib.reload(sys.modules["model3"]).f_grad(2.0) == (8.0, (12.0,))
    assert read_cache(str(cache_file(source)), _sha(source)) is not None


@pytest.mark.parametrize("damage", ["garbage", "truncate", "flip", "binary"])
def test_corrupt_cache_is_ignored_and_rewritten(hook, damage):
    source = hook / "model4.expr"
    source.write_text(MODEL)
    fresh_import("model4")
    cached = cache_file(source)
    content = cached.read_bytes()
    cached.write_bytes({
        "garbage": b"this is not an exprgrad cache\nraise SystemExit(3)\n",
        "truncate": content[: len(content) // 2],
        "flip": content.replace(b"3.0", b"4.0", 1),
        "binary": b"\xff\xfe\x00" * 50,
    }[damage])
    model = fresh_import("model4")
    assert model.f_grad(3.0) == (20.0, (14.0,))
    assert cached.read_bytes() == content


def test_unwritable_directory_falls_back_to_the_user_cache(hook):
    (hook / "__pycache__").write_text("a file where the cache directory would be")
    (hook / "model5.expr").write_text(MODEL)
    model = fresh_import("model5")
    assert model.f(3.0) == 20.0
    assert Path(model.__cached__).parent == hook / "user-cache"
    assert fresh_import("model5").__cached__ == model.__cached__


def test_no_cache_setting_writes_nothing(hook, monkeypatch):
    monkeypatch.setenv("EXPRGRAD_NO_CACHE", "1")
    (hook / "model6.expr").write_text(MODEL)
    assert fresh_import("model6").f(3.0) == 20.0
    assert not (hook / "__pycache__").exists() and not (hook / "user-cache").exists()


def test_compile_error_at_import(hook):
    (hook / "broken.expr").write_text("f(x) = 3*x +\n")
    with pytest.raises(exprgrad.CompileError) as info:
        fresh_import("broken")
    assert info.value.filename == str(hook / "broken.expr")
    assert info.value.line == 1
    assert "broken" not in sys.modules


def test_crlf_source_and_non_utf8_source(hook):
    (hook / "crlf.expr").write_bytes(b"def f(x):\r\n    y = x*x\r\n    return y + 1\r\n")
    assert fresh_import("crlf").f_grad(3.0) == (10.0, (6.0,))
    (hook / "latin.expr").write_bytes(b"f(x) = x  # caf\xe9\n")
    with pytest.raises(exprgrad.CompileError, match="UTF-8") as info:
        fresh_import("latin")
    assert info.value.filename == str(hook / "latin.expr")


def test_traceback_shows_the_generated_line_and_source_location(hook):
    (hook / "model7.expr").write_text(MODEL)
    model = fresh_import("model7")
    linecache.clearcache()  # the line must come from the real cache file
    with pytest.raises(ValueError) as info:
        model.g(-1.0)
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert last.filename == model.__cached__
    column = MODEL.splitlines()[1].index("+") + 1  # the statement's operation: log(x) + 1
    assert "math.log(x)" in last.line and last.line.endswith(f"# model7.expr:2:{column}")


def test_load_uses_the_same_cache(hook):
    source = hook / "model8.expr"
    source.write_text(MODEL)
    module = exprgrad.load(source)
    assert module.f_grad(3.0) == (20.0, (14.0,))
    assert module.__cached__ == str(cache_file(source))
    assert fresh_import("model8").__cached__ == module.__cached__


def test_packages_find_submodules(hook):
    package = hook / "pkg9"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "inner.expr").write_text(MODEL)
    assert importlib.import_module("pkg9.inner").f(0.0) == 5.0


def test_two_processes_importing_a_new_module_at_once(tmp_path):
    (tmp_path / "racy.expr").write_text(MODEL + "".join(
        f"h{i}(x, y) = tanh(x*y + {i}) * sin(x - y)\n" for i in range(30)))
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(tmp_path)!r})
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        import exprgrad
        exprgrad.install()
        import racy
        print(racy.f_grad(3.0), racy.h29(1.0, 2.0))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EXPRGRAD_NO_CACHE", None)
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(4)]
    go.write_text("")
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in results]
    outputs = {out for out, _ in results}
    assert len(outputs) == 1 and outputs.pop().startswith("(20.0, (14.0,))")
    assert read_cache(str(cache_file(tmp_path / "racy.expr")),
                      _sha(tmp_path / "racy.expr")) is not None
    assert not [p for p in (tmp_path / "__pycache__").iterdir() if p.suffix == ".tmp"]


def _sha(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_generated_function_keeps_its_line_in_the_whole_text():
    """Functions are compiled one by one, then moved to their place in the
    module, so tracebacks and inspect agree with the generated text."""
    source = "def f(x):\n    return log(x)\n\ndef g(x, y):\n    return sqrt(x * y) + x\n"
    module = exprgrad.compile(source, "lines.expr")
    lines = exprgrad.emit(source, "lines.expr").splitlines()
    for name in ("f", "f_grad", "g", "g_grad"):
        first = getattr(module, name).__code__.co_firstlineno
        assert lines[first - 1].startswith(f"def {name}("), name
    with pytest.raises(ValueError) as info:
        module.g_grad(-1.0, 1.0)
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert "math.sqrt(x * y)" in lines[frame.lineno - 1]
