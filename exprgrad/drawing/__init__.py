"""Pictures of the op DAG and of `Value` graphs (Graphviz), beside the
compiler: `draw` for a function of an `.expr` file, `draw_dot` for a
micrograd-style `Value` graph (both in `dot`), `render` for turning either
into a file, and `evaluate` for the numbers of a DAG at a point.

The public names load `dot` (and so Graphviz) on first use, so what needs
only the numbers (`exprgrad.explain`) does not import Graphviz.
"""

from __future__ import annotations

_PUBLIC = ("DrawError", "Drawing", "draw", "draw_dot", "draw_program")

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'exprgrad.drawing' has no attribute {name!r}")
    from . import dot
    value = getattr(dot, name)
    globals()[name] = value
    return value
