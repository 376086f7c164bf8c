"""The import hook: `import model` finds `model.expr` on `sys.path`.

`install()` appends a finder to `sys.meta_path`.  Being last, it is asked
only after Python's own finders, so a `model.py` (or a package `model/`)
next to `model.expr` wins, as a hand-written module should.  The generated
text is cached like a `.pyc` (see `modules.py`); a bad source raises
`CompileError` from the `import` statement.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

from ..compiler.pipeline import printer
from .modules import generated_text, exec_generated

__all__ = ["install", "uninstall", "ExprFinder", "ExprLoader"]

SUFFIX = ".expr"


class ExprLoader(importlib.abc.Loader):
    """Compiles (or takes from the cache) one `.expr` file and runs the text."""

    def __init__(self, fullname: str, path: str, target: str = "python"):
        self.name = fullname
        self.path = path
        self.target = target

    def create_module(self, spec):
        return None  # Python's default module object

    def exec_module(self, module) -> None:
        text, cache_file = generated_text(self.path, self.target)
        module.__exprgrad_source__ = self.path
        module.__cached__ = cache_file
        exec_generated(text, module, cache_file)

    def get_source(self, fullname: str) -> str:
        """The generated Python text (what the module's code was compiled from)."""
        return generated_text(self.path, self.target)[0]

    def get_filename(self, fullname: str) -> str:
        return self.path


class ExprFinder(importlib.abc.MetaPathFinder):
    """Finds `NAME.expr` in the directories of `sys.path` (or of a package's
    `__path__` for `package.NAME`)."""

    target = "python"  # the code-generation target of what it loads

    def find_spec(self, fullname: str, path=None, target=None):
        name = fullname.rpartition(".")[2]
        for entry in sys.path if path is None else path:
            if not isinstance(entry, (str, os.PathLike)):
                continue
            candidate = os.path.abspath(os.path.join(os.fspath(entry) or os.curdir,
                                                     name + SUFFIX))
            if os.path.isfile(candidate):
                return importlib.util.spec_from_file_location(
                    fullname, candidate, loader=ExprLoader(fullname, candidate, self.target))
        return None

    def invalidate_caches(self) -> None:
        pass  # nothing is cached in memory


def install(target: str = "python") -> ExprFinder:
    """Make `import NAME` load `NAME.expr` files compiled for `target`
    ("python" or "array"); calling it again changes only the target."""
    printer(target)  # an unknown target fails here, not at the first import
    for finder in sys.meta_path:
        if isinstance(finder, ExprFinder):
            finder.target = target
            return finder
    finder = ExprFinder()
    finder.target = target
    sys.meta_path.append(finder)
    return finder


def uninstall() -> None:
    """Remove the import hook (modules already imported stay imported)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, ExprFinder)]
