"""The backward pass of a micrograd-style `Value` graph.

For `exprgrad.Value` the numbers come from the same compiled derivative
rules `backward()` runs, and the formulas from the op table's rules.  Any
other Value class (micrograd's own) is explained by running each node's
`_backward` on its own, once with a gradient of 1 (the local derivatives)
and once with the node's gradient (the contributions); every `.grad` is put
back as it was afterwards.  The graph is walked with loops, never recursion.
"""

from __future__ import annotations

from ..compiler.ops import ATOM
from ..runtime.value import Value, numeric_rule
from .formulas import apply_text, local_derivatives, rule_words
from .steps import Explanation, Flow, NodeRecord, assemble


def explain_value(root, wrt=None, max_steps: int | None = None) -> Explanation:
    """Steps of the backward pass from `root` (a Value); `wrt`, a leaf Value
    of the graph, keeps only what flows to it."""
    exprgrad_graph = isinstance(root, Value)
    if not exprgrad_graph:
        _require_value_like(root)
    nodes = root._topo() if exprgrad_graph else _micrograd_topo(root)
    inputs_of = _exprgrad_inputs if exprgrad_graph else _micrograd_inputs
    names = _names(nodes)
    keep = _depending_on(nodes, inputs_of, wrt) if wrt is not None else None
    build = _exprgrad_records if exprgrad_graph else _micrograd_records
    records, adjoint = build(nodes, names, keep, max_steps)
    leaves = [(id(v), names[id(v)], adjoint.get(id(v), 0.0)) for v in nodes
              if not inputs_of(v) and (keep is None or id(v) in keep)]
    result = names[id(root)]
    title = f"{result}, a {type(root).__name__} graph of {len(nodes):,} values"
    return assemble(result, title, root.data, records, leaves,
                    None if wrt is None else names[id(wrt)], max_steps, id(root))


def _require_value_like(root) -> None:
    missing = [a for a in ("data", "grad", "_prev", "_op", "_backward") if not hasattr(root, a)]
    if missing:
        raise TypeError(f"explain needs .expr source, a path or a Value graph, not "
                        f"{type(root).__name__} (it has no {', '.join(missing)})")


def _exprgrad_inputs(v) -> tuple:
    return v._args


def _micrograd_inputs(v) -> tuple:
    return tuple(v._prev)


def _micrograd_topo(root) -> list:
    """micrograd's build_topo, as a loop: each value after all its inputs
    (a value is finished only once every input pushed above it is)."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        v, finished = stack.pop()
        if finished:
            order.append(v)
            continue
        if id(v) in visited:
            continue
        visited.add(id(v))
        stack.append((v, True))
        stack.extend((child, False) for child in v._prev if id(child) not in visited)
    return order


def _names(nodes) -> dict[int, str]:
    """Labels where the Values have them (repeated labels get primes), t1, t2, ... else."""
    labels = {getattr(v, "label", "") for v in nodes}
    names: dict[int, str] = {}
    used: set[str] = set()
    counter = 0
    for v in nodes:
        label = getattr(v, "label", "")
        if isinstance(label, str) and label:
            name = label
            while name in used:
                name += "'"
        else:
            counter += 1
            while f"t{counter}" in labels or f"t{counter}" in used:
                counter += 1
            name = f"t{counter}"
        names[id(v)] = name
        used.add(name)
    return names


def _depending_on(nodes, inputs_of, wrt) -> set[int]:
    """Ids of the Values that depend on `wrt` (itself included)."""
    if not any(v is wrt for v in nodes):
        raise ValueError("wrt must be a Value of the graph being explained")
    keep = {id(wrt)}
    for v in nodes:
        if any(id(a) in keep for a in inputs_of(v)):
            keep.add(id(v))
    return keep


def _exprgrad_records(nodes, names, keep, limit) -> tuple[list[NodeRecord], dict[int, float]]:
    adjoint = {id(nodes[-1]): 1.0}
    records = []
    for v in reversed(nodes):
        grad = adjoint.get(id(v), 0.0)
        if not v._args or keep is not None and id(v) not in keep:
            continue
        op = v._impl
        data = [a.data for a in v._args]
        parts = [(names[id(a)], ATOM) for a in v._args]
        definition = (apply_text(op.name, op.attr, parts)[0] if op.name else
                      f"{op.label}({', '.join(t for t, _ in parts)})")
        record = NodeRecord(id(v), names[id(v)], f"{names[id(v)]} = {definition}", None, v.data,
                            grad, rule_words(op.name, op.label))
        records.append(record)
        if op.back is None:
            continue
        locals_ = [None] * len(data) if limit is not None and len(records) > limit else \
            local_derivatives(op.name, op.attr, (names[id(v)], v.data),
                              [(names[id(a)], a.data, True) for a in v._args])
        try:
            contributions = op.back(grad, v.data, *data)
        except (ArithmeticError, ValueError):
            contributions = numeric_rule(op, grad, v.data, data)
        for position, (a, local, c) in enumerate(zip(v._args, locals_, contributions)):
            adjoint[id(a)] = adjoint.get(id(a), 0.0) + c
            if keep is None or id(a) in keep:
                record.flows.append((id(a), Flow(names[id(a)], local[0] if local else "",
                                             local[1] if local else None, c, position)))
    return records, adjoint


def _micrograd_records(nodes, names, keep, limit) -> tuple[list[NodeRecord], dict[int, float]]:
    saved = [(v, v.grad) for v in nodes]
    adjoint = {id(nodes[-1]): 1.0}
    records = []
    try:
        for v in reversed(nodes):
            children = list(v._prev)
            grad = adjoint.get(id(v), 0.0)
            if not children or keep is not None and id(v) not in keep:
                continue
            record = NodeRecord(id(v), names[id(v)], f"{names[id(v)]} = "
                                f"{_micrograd_definition(v._op, [names[id(c)] for c in children])}",
                                None, v.data, grad, rule_words(None, v._op))
            records.append(record)
            described = limit is None or len(records) <= limit
            local = _run_backward(v, children, 1.0) if described else [None] * len(children)
            pushed = _run_backward(v, children, grad)
            for position, (c, d, p) in enumerate(zip(children, local, pushed)):
                adjoint[id(c)] = adjoint.get(id(c), 0.0) + p
                if keep is None or id(c) in keep:
                    record.flows.append((id(c), Flow(names[id(c)], "", d, p, position)))
    finally:
        for v, grad in saved:
            v.grad = grad
    return records, adjoint


def _run_backward(v, children, grad: float) -> list[float]:
    """What v._backward adds to each child's .grad for a gradient `grad`."""
    for c in children:
        c.grad = 0.0
    v.grad = grad
    v._backward()
    return [c.grad for c in children]


def _micrograd_definition(op: str, inputs: list[str]) -> str:
    if len(inputs) == 2 and op in ("+", "*", "-", "/"):
        return f" {op} ".join(inputs)
    if op.startswith("**") and len(inputs) == 1:
        return f"{inputs[0]}{op}"
    return f"{op or '?'}({', '.join(inputs)})"
