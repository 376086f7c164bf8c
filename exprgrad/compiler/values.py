"""Lowered values: a node id (a scalar), a nested list of them (an array),
a tuple of those (a function's tuple result), or a value of runtime length
(`loops.RuntimeArray`, `loops.DataArray`).  This module owns their shape,
leaves and rebuilding.  Every stage that walks a
value uses these loops, never recursion on the value's depth."""

from __future__ import annotations

from .loops import DataArray, RuntimeArray, is_runtime


def flatten(value) -> list[int]:
    """The node ids of a value, in row-major order (a runtime array's are
    those of its element, one iteration)."""
    if isinstance(value, int):
        return [value]
    out: list[int] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, int):
            out.append(v)
        elif isinstance(v, RuntimeArray):
            stack.append(v.element)
        else:
            stack.extend(reversed(v))
    return out


def point_mismatch(function: str, params: list[str], given) -> str | None:
    """What is wrong with a point given for `function(params)`: the names it
    misses and the names it has that are not parameters; None if it fits."""
    missing = [p for p in params if p not in given]
    unknown = [str(p) for p in given if p not in params]
    if not missing and not unknown:
        return None
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
        ([f"unknown {', '.join(unknown)}"] if unknown else [])
    return f"{function}({', '.join(params)}): {'; '.join(problems)}"


def indexed_leaves(value, prefix=()):
    """(index, node) of a list's elements; a map's element counts as one
    element (its iteration), a data parameter has no nodes."""
    for i, v in enumerate(value):
        while isinstance(v, RuntimeArray):
            v = v.element
        if isinstance(v, int):
            yield (*prefix, i), v
        elif not isinstance(v, DataArray):
            yield from indexed_leaves(v, (*prefix, i))


def shape(value) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def shape_text(shape: tuple[int, ...]) -> str:
    return "a scalar" if not shape else "shape " + str(list(shape))


def whole_parameter(value) -> bool:
    return isinstance(value, DataArray) and not value.prefix


def has_runtime_part(value) -> bool:
    """Whether a (compile-time) list holds arrays of runtime length, as the
    items of a generator whose inner clause runs over a data axis do."""
    return isinstance(value, list) and any(is_runtime(v) or has_runtime_part(v)
                                           for v in value)


def describe(value) -> str:
    if is_runtime(value):
        return "an array of runtime length"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} values"
    if isinstance(value, int):
        return "a scalar"
    return f"an array of shape {list(shape(value))}"


def build(shape: tuple[int, ...], make, prefix=()):
    if not shape:
        return make(prefix)
    return [build(shape[1:], make, (*prefix, i)) for i in range(shape[0])]


def zip_map(fn, a, b):
    if isinstance(a, int):
        return fn(a, b)
    return [zip_map(fn, x, y) for x, y in zip(a, b)]


def rebuild(value, replaced):
    if isinstance(value, int):
        return next(replaced)
    if isinstance(value, tuple):
        return tuple(rebuild(v, replaced) for v in value)
    return [rebuild(v, replaced) for v in value]
