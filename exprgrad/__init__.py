"""exprgrad: compile math in `.expr` files into readable, verified Python
gradient code.

    >>> import exprgrad
    >>> m = exprgrad.compile("f(x) = 3*x^2 - 4*x + 5")
    >>> m.f_grad(3.0)
    (20.0, (14.0,))
"""

__version__ = "0.1.0"

from .compiler.pipeline import emit  # noqa: E402
from .errors import CompileError  # noqa: E402
from .runtime.modules import compile_source as compile  # noqa: E402
from .runtime.modules import load  # noqa: E402
from .runtime.importer import install  # noqa: E402
from .runtime.value import Value  # noqa: E402
from .runtime.trace import compile_value  # noqa: E402
from . import nn  # noqa: E402
from .drawing import draw, draw_dot  # noqa: E402
from .explain import explain  # noqa: E402  (the function; the package is exprgrad.explain)


def check(path_or_source, filename=None):
    """Verify an `.expr` file or source text (§4): a report, truthy iff all hold."""
    from .compiler.verify import check as verify  # SymPy loads only when needed
    return verify(path_or_source, filename)


__all__ = ["CompileError", "compile", "emit", "load", "__version__",
           "install", "Value", "nn", "compile_value", "draw", "draw_dot", "check",
           "explain"]
