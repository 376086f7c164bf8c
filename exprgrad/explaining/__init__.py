"""The backward pass, step by step, as the micrograd lecture does it by hand.

    >>> import exprgrad
    >>> steps = exprgrad.explain("examples/lecture.expr", "L", at=dict(a=2, b=-3, c=10, f=-2))
    >>> print(steps)                                   # doctest: +SKIP

For every operation, from the result back to the inputs: its source name
and line, the local derivative (the op table's rule, in words and symbols:
`d = e + c, so dd/de = 1`), the chain rule with numbers (`dL/de = dL/dd ·
dd/de = -2 · 1 = -2`), and, where a value is used more than once, the sum
of what its uses pass back.  Then the gradient of every input.

A tool beside the compiler: it reads the DAG the compiler builds
(`pipeline.front_end`) and the compiler's reverse mode, never generated text.
"""

from __future__ import annotations

from ..compiler.pipeline import front_end
from ..drawing.evaluate import AS_WRITTEN
from ..files import source_and_name
from .from_dag import ExplainError, explain_function
from .steps import Explanation, Flow, Gradient, Step, Use

__all__ = ["explain", "Explanation", "ExplainError", "Step", "Flow", "Use", "Gradient"]


def explain(thing, function: str | None = None, at: dict | None = None,
            wrt=None, max_steps: int | None = None) -> Explanation:
    """The backward pass of `function` of an `.expr` file (its path or its
    source text) at the point `at`, or of a micrograd-style `Value` graph
    (`explain(value)`).

    `wrt` keeps only what flows to one parameter (its name; for a Value
    graph, the leaf Value).  `max_steps` describes at most that many steps
    (the rest are counted) while every gradient is still computed.
    The result prints as text, shows as a table in Jupyter and has
    `.to_json()`; its `.steps` and `.gradients` are plain data."""
    if max_steps is not None and max_steps < 0:
        raise ValueError("max_steps must be 0 or more (or None: every step)")
    if hasattr(thing, "_backward") and hasattr(thing, "data"):
        if function is not None or at is not None:
            raise TypeError("a Value graph is explained at the values it holds: "
                            "call explain(value) without a function or a point")
        from .from_values import explain_value
        return explain_value(thing, wrt, max_steps)
    if function is None:
        raise TypeError("explain(source, function, at={...}): name the function to explain")
    if at is None:
        raise TypeError(f"explain needs a point: at={{...}} with a value for each "
                        f"parameter of {function}")
    source, filename = source_and_name(thing)
    program = front_end(source, filename, AS_WRITTEN)  # x^2 explained as a power
    return explain_function(program, function, dict(at), wrt, max_steps)
