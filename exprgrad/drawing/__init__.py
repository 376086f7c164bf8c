"""Pictures of the op DAG and of `Value` graphs (Graphviz), beside the
compiler: `draw` for a function of an `.expr` file, `draw_dot` for a
micrograd-style `Value` graph, `render` for turning either into a file."""

from .dot import DrawError, Drawing, draw, draw_dot, draw_program

__all__ = ["DrawError", "Drawing", "draw", "draw_dot", "draw_program"]
