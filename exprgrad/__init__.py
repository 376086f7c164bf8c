"""exprgrad: compile math in `.expr` files into readable, verified Python
gradient code.

    >>> import exprgrad
    >>> m = exprgrad.compile("f(x) = 3*x^2 - 4*x + 5")
    >>> m.f_grad(3.0)
    (20.0, (14.0,))

The public names load on first use (PEP 562), so `import exprgrad` and
`import exprgrad.compiler.ops` stay cheap: the parser (Lark), the verifier
(SymPy) and drawing (Graphviz) are imported only by what needs them.
"""

from __future__ import annotations

import importlib

from ._version import __version__

# public name → (module relative to this package, attribute in it; None: the module)
_LAZY = {
    "CompileError": (".errors", "CompileError"),
    "compile": (".runtime.modules", "compile_source"),
    "emit": (".compiler.pipeline", "emit"),
    "load": (".runtime.modules", "load"),
    "install": (".runtime.importer", "install"),
    "Value": (".runtime.value", "Value"),
    "compile_value": (".runtime.trace", "compile_value"),
    "nn": (".nn", None),
    "draw": (".drawing", "draw"),
    "draw_dot": (".drawing", "draw_dot"),
    "check": (".verify", "check"),
    "explain": (".explaining", "explain"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """Import a public name's module when the name is first read, and keep it."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'exprgrad' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
