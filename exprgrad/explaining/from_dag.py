"""The backward pass of a function of an `.expr` file, from its DAG.

The numbers are the compiler's own: values by evaluating the DAG at the
point, gradients by asking reverse mode (`reverse.gradients`) for the
adjoint of every operation and `reverse.contributions` for what each one
passes to each input, so every number equals what `f_grad` computes.  The
local derivatives shown are the op table's rules applied with a gradient of
1 (`formulas.local_derivatives`).
"""

from __future__ import annotations

from .. import progress
from ..compiler.reverse import contributions, depends_on, gradients
from ..drawing.evaluate import PointError, evaluate, parameter_labels, point_inputs
from .formulas import apply_text, expression, format_number, local_derivatives, rule_words
from .steps import Explanation, Flow, NodeRecord, assemble


class ExplainError(ValueError):
    """An explanation that cannot be made as asked; the message says why."""


def explain_function(program, name: str, at: dict, wrt: str | None = None,
                     max_steps: int | None = None) -> Explanation:
    function = _function(program, name)
    g = program.graph
    try:
        known = point_inputs(function, at)
    except PointError as error:
        raise ExplainError(str(error)) from None
    output = function.output
    names = _Names(g, function, output)
    leaves = _leaves(function, wrt)
    active = depends_on(g, g.ancestors([output]), set(leaves))
    operations = [n for n in g.ancestors([output]) if n in active and g.nodes[n].args
                  and g.kind(n) == "number"]
    wanted = operations + [leaf for leaf in leaves if leaf in active]
    adjoint_nodes = dict(zip(wanted, gradients(g, [(output, g.const(1.0))], wanted)))
    flow_nodes = {n: contributions(g, n, adjoint_nodes[n], active) for n in operations}
    roots = [output, *adjoint_nodes.values(),
             *(c for cs in flow_nodes.values() for c in cs if c is not None)]
    values = evaluate(g, roots, known)
    records = []
    for n in reversed(operations):
        if len(records) % 1000 == 0:
            progress.report("explaining", len(records), len(operations), "steps")
        describe = max_steps is None or len(records) < max_steps  # the rest are only counted
        records.append(_record(g, n, names, values, adjoint_nodes[n], flow_nodes[n], active,
                               program.filename, describe))
    gradient_of = [(leaf, names(leaf), values[adjoint_nodes[leaf]] if leaf in adjoint_nodes
                    else 0.0) for leaf in leaves]
    point = ", ".join(f"{k}={v}" for k, v in at.items())
    title = f"{name} at {point} ({program.filename})" if point else f"{name} ({program.filename})"
    return assemble(names(output), title, values[output], records, gradient_of, wrt, max_steps,
                    output)


def _function(program, name: str):
    names = [f.name for f in program.functions]
    if name not in names:
        raise ExplainError(f"no function '{name}' in {program.filename}; it defines: "
                           f"{', '.join(names) or 'no functions'}")
    function = program.function(name)
    if not function.is_scalar:
        raise ExplainError(f"{name} does not return a scalar, so it has no gradient to explain")
    return function


def _leaves(function, wrt: str | None) -> list[int]:
    """The input nodes whose gradients are explained: every parameter's, or `wrt`'s."""
    params = [p for p in function.params if wrt is None or p.name == wrt]
    if not params:
        raise ExplainError(f"--wrt {wrt}: {function.name} has no parameter {wrt}; its "
                           f"parameters are {', '.join(p.name for p in function.params)}")
    leaves: list[int] = []
    for p in params:
        pending = [p.placeholders]
        while pending:
            v = pending.pop()
            if isinstance(v, int):
                leaves.append(v)
            else:
                pending.extend(reversed(v))
    return list(dict.fromkeys(leaves))


def _record(g, n, names, values, adjoint, flows, active, filename, describe) -> NodeRecord:
    """Node n's step; without `describe`, only the numbers the sums need."""
    node = g.nodes[n]
    if not describe:
        record = NodeRecord(n, names(n), "", None, values[n], values[adjoint], "")
        record.flows = [(a, Flow(names(a), "", None, values[c], position))
                        for position, (a, c) in enumerate(zip(node.args, flows))
                        if c is not None and a in active]
        return record
    inputs = [(None if g.is_const(a) else names(a), values[a], a in active) for a in node.args]
    locals_ = local_derivatives(node.op, node.attr, (names(n), values[n]), inputs)
    record = NodeRecord(n, names(n), f"{names(n)} = {names.definition(n)}",
                        _location(g, n, filename), values[n], values[adjoint],
                        rule_words(node.op))
    for position, (a, local, c) in enumerate(zip(node.args, locals_, flows)):
        if local is None or c is None:
            continue
        record.flows.append((a, Flow(names(a), local[0], local[1], values[c], position)))
    return record


def _location(g, n: int, filename: str) -> str | None:
    loc = g.locs[n]
    return f"{filename}:{loc.line}" if loc is not None else None


class _Names:
    """Names for the nodes of one function: parameters as written (x,
    w[0]), the source's names (a name given to several values gets primes:
    c, c', c''), the result by the function's name, the rest t1, t2, ..."""

    def __init__(self, g, function, output: int):
        self.g = g
        self.given: dict[int, str] = dict(parameter_labels(function))
        self.given.setdefault(output, g.names.get(output) or function.name)
        used = set(self.given.values())  # names given so far
        taken = used | set(g.names.values())  # names t1, t2, ... must avoid
        counter = 0
        for n in g.ancestors([output]):
            if n in self.given or g.nodes[n].op in ("const", "bool") or g.kind(n) != "number":
                continue
            name = g.names.get(n)
            if name is not None:
                while name in used:
                    name += "'"
            else:
                counter += 1
                while f"t{counter}" in taken:
                    counter += 1
                name = f"t{counter}"
            self.given[n] = name
            used.add(name)
            taken.add(name)

    def __call__(self, n: int) -> str:
        name = self.given.get(n)
        if name is not None:
            return name
        return expression(self.g, n, self._leaf)[0]  # constants and conditions, spelled out

    def _leaf(self, n: int) -> str | None:
        node = self.g.nodes[n]
        if node.op in ("const", "bool"):
            return format_number(node.attr)
        return self.given.get(n)

    def definition(self, n: int) -> str:
        """The operation of node n on its inputs' names: `e + c`."""
        node = self.g.nodes[n]
        parts = [expression(self.g, a, self._leaf) for a in node.args]
        return apply_text(node.op, node.attr, parts)[0]
