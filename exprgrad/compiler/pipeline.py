"""The compiler's stages in order: parse → lower → differentiate →
schedule → print.

Each stage hands plain data to the next: an AST, a DAG with lowered
functions, the same DAG with adjoint nodes, statement programs
(`program.Function`), Python text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CompileError, LimitError, Loc
from ..grammar import parse
from . import limits
from .lower import LoweredFunction, Program, lower
from .options import DEFAULT, Options, building_with
from .printers import python
from .printers.python import check_function_name
from .program import Function
from .reverse import gradients
from .schedule import Signature, schedule
from .values import flatten


@dataclass
class Emitted:
    """A Python function to generate: parameters, result structure, docstring."""

    name: str
    params: list[Signature]
    result: object
    doc: str
    loc: Loc
    wrt: tuple[str, ...] = ()  # a gradient's: the parameters it is with respect to
    primal: object = None  # a gradient's: the part of the result that is the value


def front_end(source: str, filename: str = "<string>", options: Options = DEFAULT) -> Program:
    """Parse and lower: the DAG of every function and check in `source`,
    built with `options` (kept as `program.graph.options`)."""
    if len(source) > limits.MAX_SOURCE_BYTES:
        raise LimitError(f"the source is {len(source):,} characters; the limit is "
                           f"{limits.MAX_SOURCE_BYTES:,}", filename=filename)
    with building_with(options):
        return lower(parse(source, filename))


def differentiate(program: Program) -> list[Emitted]:
    """The forward function and the gradient (or vjp) function of every
    source function, with the adjoints built into the program's DAG."""
    emitted: list[Emitted] = []
    for f in program.functions:
        emitted.append(_forward(f))
        emitted.append(_gradient(program, f))
    _check_names(emitted, program)
    return emitted


def _signature(f: LoweredFunction) -> list[Signature]:
    return [Signature(p.name, p.shape, p.placeholders) for p in f.params]


def _params_text(f: LoweredFunction) -> str:
    return ", ".join(p.name + "".join(f"[{n}]" for n in p.shape) for p in f.params)


def _forward(f: LoweredFunction) -> Emitted:
    doc = f"{f.name}({_params_text(f)}): the value, as defined at line {f.source.loc.line}."
    return Emitted(f.name, _signature(f), f.output, doc, f.source.loc)


def _gradient(program: Program, f: LoweredFunction) -> Emitted:
    g = program.graph
    g.loc = f.source.loc
    wrt = [f.params[i] for i in f.wrt]
    leaves = [x for p in wrt for x in flatten(p.placeholders)]
    params = _signature(f)
    if f.is_scalar:
        seeds = [(f.output, g.const(1.0))]
        name, what = f.name + "_grad", "gradient"
    else:
        shape = _cotangent_shape(f.output)
        cotangent = _build_cotangent(g, f.name, shape)
        seeds = list(zip(flatten(f.output), flatten(cotangent)))
        params.append(Signature("cotangent", shape, cotangent))
        name, what = f.name + "_vjp", "vector-Jacobian product for `cotangent`"
    adjoints = iter(gradients(g, seeds, leaves))
    grads = tuple(_reshape(p.placeholders, adjoints) for p in wrt)
    names = ", ".join(p.name for p in wrt) or "nothing"
    doc = (f"{f.name} and its {what} with respect to {names}: "
           f"(value, ({', '.join('d_' + p.name for p in wrt)}{',' if len(wrt) == 1 else ''})).")
    return Emitted(name, params, (f.output, grads), doc, f.source.loc,
                   tuple(p.name for p in wrt), f.output)


def _cotangent_shape(output):
    if isinstance(output, tuple):
        return [_array_shape(o) for o in output]
    return _array_shape(output)


def _array_shape(value) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else 0
    return tuple(shape)


def _build_cotangent(g, fname: str, shape):
    counter = iter(range(1 << 62))

    def make(s, prefix):
        if isinstance(s, list):
            return tuple(make(part, (*prefix, i)) for i, part in enumerate(s))
        if not s:
            k = next(counter)
            return g.input(("cotangent", fname, k), "_".join(["ct", *map(str, prefix)]))
        return [make(s[1:], (*prefix, i)) for i in range(s[0])]
    return make(shape, ())


def _reshape(like, flat_iter):
    if isinstance(like, int):
        return next(flat_iter)
    return [_reshape(v, flat_iter) for v in like]


def _check_names(emitted: list[Emitted], program: Program) -> None:
    seen: dict[str, Emitted] = {}
    for e in emitted:
        check_function_name(e.name, e.loc)
        if e.name in seen:
            raise CompileError(f"the generated function '{e.name}' would be defined twice "
                               f"(by this function and by line {seen[e.name].loc.line}); "
                               "rename one of them", e.loc)
        seen[e.name] = e


def scheduled(program: Program, emitted: list[Emitted]) -> list[Function]:
    """The statement program of every function to generate."""
    inline = program.graph.options.inline
    return [schedule(program.graph, e.name, e.params, e.result, e.doc, wrt=e.wrt,
                     primal=e.primal, inline=inline) for e in emitted]


def generate(program: Program, emitted: list[Emitted]) -> str:
    """The module text: header, helpers, functions, `__all__`."""
    return python.module(scheduled(program, emitted), program.filename)


def build(source: str, filename: str = "<string>",
          options: Options = DEFAULT) -> tuple[str, list[Function]]:
    """The module text and the statement programs it prints."""
    program = front_end(source, filename, options)
    try:
        emitted = differentiate(program)
    except CompileError as error:
        raise error.located(filename, source) from None
    functions = scheduled(program, emitted)
    return python.module(functions, program.filename), functions


def emit(source: str, filename: str = "<string>", options: Options = DEFAULT) -> str:
    """Compile `.expr` source text to the text of a Python module."""
    return build(source, filename, options)[0]
