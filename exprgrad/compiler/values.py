"""Lowered values: a node id (a scalar), a nested list of them (an array),
or a tuple of those (a function's tuple result).  Every stage that walks a
value uses these loops, never recursion on the value's depth."""

from __future__ import annotations


def flatten(value) -> list[int]:
    """The node ids of a value, in row-major order."""
    if isinstance(value, int):
        return [value]
    out: list[int] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, int):
            out.append(v)
        else:
            stack.extend(reversed(v))
    return out
