"""The package's layers: the op table and the package itself import without
the parser, the verifier or drawing, and every public name still works."""

from __future__ import annotations

import subprocess
import sys

import pytest

import exprgrad

HEAVY = ("lark", "sympy", "mpmath", "graphviz")


def _loaded_after(statement: str) -> set[str]:
    """Top-level modules among HEAVY that `statement` imports in a fresh interpreter."""
    script = (f"import sys\n{statement}\n"
              f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("statement", [
    "import exprgrad.compiler.ops",
    "import exprgrad",
    "import exprgrad; exprgrad.__version__",
    "import exprgrad.compiler.graph",
])
def test_light_imports_load_no_heavy_dependency(statement):
    assert _loaded_after(statement) == set()


def test_the_verifier_loads_sympy_only_when_used():
    assert "sympy" in _loaded_after("import exprgrad; exprgrad.check")


@pytest.mark.parametrize("name", exprgrad.__all__)
def test_every_public_name_resolves(name):
    assert getattr(exprgrad, name) is not None
    assert name in dir(exprgrad)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        exprgrad.no_such_name  # noqa: B018


def test_public_names_are_the_documented_objects():
    from exprgrad.compiler.pipeline import emit
    from exprgrad.runtime.modules import compile_source
    from exprgrad.runtime.nn import MLP
    assert exprgrad.emit is emit and exprgrad.compile is compile_source
    assert exprgrad.nn.MLP is MLP
    assert exprgrad.compile("f(x) = x^2").f_grad(3.0) == (9.0, (6.0,))


def test_the_version_has_one_source():
    from exprgrad._version import __version__
    from exprgrad.compiler.printers import python as codegen
    from exprgrad.runtime import modules
    assert exprgrad.__version__ == __version__ == codegen.__version__ == modules.__version__


def _package_imports(path) -> set[str]:
    """The exprgrad subpackages a module imports, resolved from its relative imports."""
    import ast
    from pathlib import Path
    root = Path(exprgrad.__file__).parent
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            found.add(".".join(target[:2]))
        elif isinstance(node, ast.Import):
            found.update(".".join(a.name.split(".")[:2]) for a in node.names
                         if a.name.startswith("exprgrad"))
    return found


def test_the_compiler_imports_neither_its_tools_nor_the_package_root():
    """Drawing, verification and the runtime are built on the compiler, beside it."""
    from pathlib import Path
    compiler = Path(exprgrad.__file__).parent / "compiler"
    tools = {"exprgrad.verify", "exprgrad.drawing", "exprgrad.runtime", "exprgrad.explaining",
             "exprgrad.cli", "exprgrad"}
    offenders = {str(p.relative_to(compiler)): sorted(_package_imports(p) & tools)
                 for p in compiler.rglob("*.py") if _package_imports(p) & tools}
    assert offenders == {}
