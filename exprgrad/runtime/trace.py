"""`compile_value`: a recorded `Value` graph → a generated gradient function.

The graph a micrograd-style program records is lowered into the compiler's
op DAG (the chosen inputs become `input` placeholders, every other leaf a
constant), differentiated by the compiler's reverse mode and emitted by its
code generator: the result is the same straight-line Python a `.expr` file
compiles to, so a training loop can record its loss once and then run the
generated function at every step.
"""

from __future__ import annotations

import keyword

from ..compiler.graph import Graph
from ..compiler.printers import python
from ..compiler.reverse import gradients
from ..compiler.schedule import Signature, schedule
from .modules import module_from_text
from .value import Value

__all__ = ["compile_value"]

TRACE_FILENAME = "<compile_value>"


def compile_value(out: Value, inputs, name: str = "value_grad"):
    """`fn(*input_values) -> (value, grads)`: `out` as a function of `inputs`
    (leaf Values), with one gradient per input.  Other leaves are constants
    with the values they hold now.  The generated text is `fn.source`."""
    inputs = _check_inputs(out, list(inputs))
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) \
            or name.startswith("_"):
        raise ValueError(f"name must be a Python identifier that is not a keyword and has no "
                         f"leading underscore, got {name!r}")
    g = Graph()
    params = _placeholders(g, inputs)
    result = _lower(g, out, {id(v): p.placeholders for v, p in zip(inputs, params)})
    grads = gradients(g, [(result, g.const(1.0))], [p.placeholders for p in params])
    doc = (f"The traced value and its gradient with respect to "
           f"{', '.join(p.name for p in params) or 'nothing'}.")
    program = schedule(g, name, params, (result, tuple(grads)), doc,
                       wrt=tuple(p.name for p in params), primal=result)
    header = ['"""A Value graph compiled by exprgrad.compile_value."""', "", "import math"]
    text = python.module([program], TRACE_FILENAME, header=header, exported=False)
    fn = getattr(module_from_text(text, TRACE_FILENAME, "exprgrad_trace"), name)
    fn.source = text
    return fn


def _check_inputs(out, inputs: list) -> list[Value]:
    if not isinstance(out, Value):
        raise TypeError(f"compile_value needs a Value to compile, got {type(out).__name__}")
    seen: set[int] = set()
    for i, v in enumerate(inputs):
        if not isinstance(v, Value):
            raise TypeError(f"inputs[{i}] is a {type(v).__name__}, not a Value")
        if v._args:
            raise ValueError(f"inputs[{i}] ({v!r}) is computed from other Values; "
                             "inputs must be leaves (parameters or data)")
        if id(v) in seen:
            raise ValueError(f"inputs[{i}] ({v!r}) appears twice")
        seen.add(id(v))
    return inputs


def _placeholders(g: Graph, inputs: list[Value]) -> list[Signature]:
    """One scalar parameter per input, named by its label where it has one."""
    params = []
    for i, v in enumerate(inputs):
        hint = v.label if isinstance(v.label, str) and v.label.isidentifier() else f"x{i}"
        params.append(Signature(hint, (), g.input(("value", i), hint)))
    return params


def _lower(g: Graph, out: Value, placeholder: dict[int, int]) -> int:
    """Build `out`'s graph in `g`, inputs first (iteratively, in creation
    order, which is a topological order); returns the node of `out`."""
    node: dict[int, int] = dict(placeholder)
    for v in out._topo():
        key = id(v)
        if key in node:
            continue
        if not v._args:
            node[key] = g.const(v.data)
            continue
        op = v._impl
        if op.name is None:
            raise ValueError(f"{v!r} was built by hand with op {op.label!r}, which has no "
                             "derivative rule; compile_value needs Values built by operations")
        node[key] = g.add(op.name, *(node[id(a)] for a in v._args), attr=op.attr)
        if isinstance(v.label, str) and v.label.isidentifier():
            g.name(node[key], v.label)
    return node[id(out)]
