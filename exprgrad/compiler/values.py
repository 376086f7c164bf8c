"""Lowered values: a node id (a scalar), a nested list of them (an array),
or a tuple of those (a function's tuple result).  Every stage that walks a
value uses these loops, never recursion on the value's depth."""

from __future__ import annotations

from .loops import RuntimeArray


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
