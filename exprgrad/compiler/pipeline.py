"""The compiler's stages in order: parse → lower → differentiate →
schedule → print.

Each stage hands plain data to the next: an AST, a DAG with lowered
functions, the same DAG with adjoint nodes, statement programs
(`program.Function`), Python text.

A caller that wants to show progress passes `report`, a function called as
`report(stage, done, total, unit)` when each stage starts and as it goes
(`exprgrad.progress.report` is one: the command line passes it).  The
pipeline owns the hook, so no compiler module imports the tools above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..errors import CompileError, LimitError, Loc
from ..grammar import parse
from . import limits
from .loops import DataArray, RuntimeArray, loop_of, make_load
from .lower import LoweredFunction, Program, lower
from .options import DEFAULT, Options
from .printers import python
from .printers.python import check_function_name
from .program import Function
from .reverse import gradients
from .schedule import Signature, schedule
from .values import flatten


Report = Callable[..., None]  # (stage, done=None, total=None, unit="items")


def quiet(stage: str, done: int | None = None, total: int | None = None,
          unit: str = "items") -> None:
    """The report of a caller that shows no progress."""


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


def front_end(source: str, filename: str = "<string>", options: Options = DEFAULT,
              report: Report = quiet) -> Program:
    """Parse and lower: the DAG of every function and check in `source`,
    built with `options` (kept as `program.graph.options`)."""
    if len(source) > limits.MAX_SOURCE_BYTES:
        raise LimitError(f"the source is {len(source):,} characters; the limit is "
                           f"{limits.MAX_SOURCE_BYTES:,}", filename=filename)
    report("parsing")
    module = parse(source, filename)
    report("lowering")
    return lower(module, options)


def differentiate(program: Program, report: Report = quiet) -> list[Emitted]:
    """The forward function and the gradient (or vjp) function of every
    source function, with the adjoints built into the program's DAG."""
    emitted: list[Emitted] = []
    for done, f in enumerate(program.functions):
        report("differentiating", done, len(program.functions), "functions")
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
    leaves = [x for p in wrt for x in _wrt_items(p.placeholders)]
    params = _signature(f)
    if f.is_scalar:
        seeds = [(f.output, g.const(1.0))]
        name, what = f.name + "_grad", "gradient"
    elif _has_runtime_length(f.output):
        cotangent, seeds = _runtime_cotangent(g, f)
        params.append(Signature("cotangent", cotangent.shape, cotangent))
        name, what = f.name + "_vjp", "vector-Jacobian product for `cotangent`"
    else:
        shape = _cotangent_shape(f.output)
        cotangent = _build_cotangent(g, f.name, shape)
        seeds = list(zip(flatten(f.output), flatten(cotangent)))
        params.append(Signature("cotangent", shape, cotangent))
        name, what = f.name + "_vjp", "vector-Jacobian product for `cotangent`"
    adjoints = iter(gradients(g, seeds, leaves))
    grads = tuple(next(adjoints) if isinstance(p.placeholders, DataArray) else
                  _reshape(p.placeholders, adjoints) for p in wrt)
    names = ", ".join(p.name for p in wrt) or "nothing"
    doc = (f"{f.name} and its {what} with respect to {names}: "
           f"(value, ({', '.join('d_' + p.name for p in wrt)}{',' if len(wrt) == 1 else ''})).")
    return Emitted(name, params, (f.output, grads), doc, f.source.loc,
                   tuple(p.name for p in wrt), f.output)


def _wrt_items(placeholders) -> list:
    """What reverse mode differentiates with respect to: the input nodes of
    a parameter, or the parameter itself for one with a data axis."""
    return [placeholders] if isinstance(placeholders, DataArray) else flatten(placeholders)


def _has_runtime_length(output) -> bool:
    if isinstance(output, RuntimeArray):
        return True
    return isinstance(output, (list, tuple)) and any(map(_has_runtime_length, output))


def _runtime_cotangent(g, f: LoweredFunction):
    """The cotangent of an output of runtime length is a data parameter of
    the output's shape; the vjp is the gradient of the output's dot product
    with it, one reduction over the output's loop."""
    output = f.output
    if not isinstance(output, RuntimeArray):
        raise CompileError("a function whose result holds an array of runtime length must "
                           "return that array alone (its vjp takes one cotangent array)",
                           f.source.result.loc)
    shape, total = [], None
    value, loops = output, []
    while isinstance(value, RuntimeArray):
        loop = loop_of(g, value.index)
        if loop.offset != 0 or loop.start != 0:
            raise CompileError("a returned array of runtime length must run over a whole "
                               f"data axis, range({loop.size}), not {loop.range_text()} (its "
                               "cotangent has the axis' length)", f.source.result.loc)
        shape.append(loop.size)
        loops.append(value.index)
        value = value.element
    inner = _array_shape(value)
    shape += inner
    elements = flatten(value)
    for position, leaf in enumerate(elements):
        index = tuple((i, 0) for i in range(len(loops))) + _unravel(position, inner)
        ct = make_load(g, "cotangent", index, loops, g.locs[leaf], "ct")
        term = g.add("mul", ct, leaf)
        total = term if total is None else g.add("add", total, term)
    for index in reversed(loops):
        total = g.add("sum_over", total, index)
    return DataArray("cotangent", tuple(shape)), [(total, g.const(1.0))]


def _unravel(position: int, shape: tuple) -> tuple:
    index = []
    for size in reversed(shape):
        index.append(position % size)
        position //= size
    return tuple(reversed(index))


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
    g.reserve(_size(shape))  # one input node per element
    counter = iter(range(1 << 62))

    def make(s, prefix):
        if isinstance(s, list):
            return tuple(make(part, (*prefix, i)) for i, part in enumerate(s))
        if not s:
            k = next(counter)
            return g.input(("cotangent", fname, k), "_".join(["ct", *map(str, prefix)]))
        return [make(s[1:], (*prefix, i)) for i in range(s[0])]
    return make(shape, ())


def _size(shape) -> int:
    """Elements of an array shape, or of a tuple's list of shapes."""
    return sum(_size(s) for s in shape) if isinstance(shape, list) else math.prod(shape)


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


def scheduled(program: Program, emitted: list[Emitted], report: Report = quiet) -> list[Function]:
    """The statement program of every function to generate."""
    inline = program.graph.options.inline
    functions = []
    for done, e in enumerate(emitted):
        report("scheduling", done, len(emitted), "functions")
        functions.append(schedule(program.graph, e.name, e.params, e.result, e.doc, wrt=e.wrt,
                                  primal=e.primal, inline=inline))
    return functions


TARGETS = ("python", "array")  # python: plain Python (math); array: the Array API (NumPy, …)


def printer(target: str):
    """The module printer of a target."""
    if target == "python":
        return python.module
    if target == "array":
        from .printers import array  # NumPy is needed only to run its output
        return array.module
    raise ValueError(f"unknown target {target!r}; the targets are {', '.join(TARGETS)}")


def generate(program: Program, emitted: list[Emitted], target: str = "python",
             report: Report = quiet) -> str:
    """The module text: header, helpers, functions, `__all__`."""
    functions = scheduled(program, emitted, report)
    report("printing")
    return printer(target)(functions, program.filename)


def build(source: str, filename: str = "<string>", options: Options = DEFAULT,
          target: str = "python", report: Report = quiet) -> tuple[str, list[Function]]:
    """The module text and the statement programs it prints."""
    print_module = printer(target)
    program = front_end(source, filename, options, report)
    try:
        emitted = differentiate(program, report)
        functions = scheduled(program, emitted, report)
    except CompileError as error:
        raise error.located(filename, source) from None
    report("printing")
    return print_module(functions, program.filename), functions


def emit(source: str, filename: str = "<string>", options: Options = DEFAULT,
         target: str = "python", report: Report = quiet) -> str:
    """Compile `.expr` source text to the text of a Python module for
    `target` ("python", the default, or "array"); `report` hears of each
    stage as it starts (see the module docstring)."""
    return build(source, filename, options, target, report)[0]
