"""Generated Python text → a live module object.

The generated text is registered with `linecache`, so a traceback from
generated code shows the generated line and its `# model.expr:12:9` comment.
"""

from __future__ import annotations

import hashlib
import linecache
import os
import types

from ..compiler.pipeline import emit


def module_from_text(text: str, filename: str, module_name: str | None = None) -> types.ModuleType:
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    code_name = f"<exprgrad {filename} {digest}>"
    linecache.cache[code_name] = (len(text), None, text.splitlines(True), code_name)
    name = module_name or _module_name(filename)
    module = types.ModuleType(name, f"Compiled by exprgrad from {filename}.")
    module.__file__ = code_name
    module.__exprgrad_source__ = filename
    exec(compile(text, code_name, "exec"), module.__dict__)
    return module


def compile_source(source: str, filename: str = "<string>") -> types.ModuleType:
    """Compile `.expr` source text to a module with f, f_grad/f_vjp, ..."""
    return module_from_text(emit(source, filename), filename)


def load(path: str | os.PathLike) -> types.ModuleType:
    """The module for an `.expr` file."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as file:
        source = file.read()
    return module_from_text(emit(source, path), path, _module_name(path))


def _module_name(filename: str) -> str:
    base = os.path.basename(filename)
    stem = base[:-5] if base.endswith(".expr") else base
    return stem if stem.isidentifier() else "exprgrad_module"
