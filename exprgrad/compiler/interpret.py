"""A reference interpreter for the DAG, runtime loops included.

Slow and simple on purpose: it gives the meaning of a lowered program (and
of its adjoints) independently of the scheduler and the printers, so tests
can compare the generated code of every target against it.  Conditionals
are lazy, as in the language: only the branch taken is evaluated.
"""

from __future__ import annotations

import math

from .loops import OVER_OPS, RuntimeArray, loop_of
from .ops import OPS


def evaluate(g, value, inputs: dict[int, float], data: dict[str, object],
             sizes: dict[str, int]):
    """The value of a lowered value (node, lists, tuples, runtime arrays):
    `inputs` gives input nodes' values, `data` the data parameters (nested
    sequences) by name and `sizes` the lengths of the size names."""
    return _Interpreter(g, inputs, data, sizes).value(value, {})


class _Interpreter:
    def __init__(self, g, inputs, data, sizes):
        self.g, self.inputs, self.data, self.sizes = g, inputs, data, sizes

    def value(self, value, env):
        if isinstance(value, int):
            return self.node(value, env)
        if isinstance(value, RuntimeArray):
            loop = loop_of(self.g, value.index)
            return [self.value(value.element, {**env, value.index: k})
                    for k in self.range(loop)]
        if isinstance(value, tuple):
            return tuple(self.value(v, env) for v in value)
        return [self.value(v, env) for v in value]

    def range(self, loop) -> range:
        return range(loop.start, self.sizes[loop.size] + loop.offset)

    def node(self, n: int, env: dict, memo=None):
        memo = {} if memo is None else memo
        stack = [n]
        g = self.g
        while stack:
            m = stack[-1]
            if m in memo:
                stack.pop()
                continue
            node = g.nodes[m]
            op = node.op
            if op == "where":
                cond, then, otherwise = node.args
                if cond not in memo:
                    stack.append(cond)
                    continue
                branch = then if memo[cond] else otherwise
                if branch not in memo:
                    stack.append(branch)
                    continue
                memo[m] = memo[branch]
                stack.pop()
                continue
            if op in OVER_OPS:
                memo[m] = self.reduce(m, env)
                stack.pop()
                continue
            missing = [a for a in node.args if a not in memo]
            if missing and op != "load":
                stack.extend(missing)
                continue
            memo[m] = self.leaf_or_op(m, env, memo)
            stack.pop()
        return memo[n]

    def leaf_or_op(self, m: int, env: dict, memo: dict):
        node = self.g.nodes[m]
        op = node.op
        if op == "const" or op == "bool":
            return node.attr
        if op == "input":
            return float(self.inputs[m])
        if op == "size":
            return float(self.sizes[node.attr])
        if op == "loop_index":
            return float(env[m])
        if op == "load":
            param, index = node.attr
            value = self.data[param]
            for entry in index:
                i = entry if isinstance(entry, int) else env[node.args[entry[0]]] + entry[1]
                value = value[i]
            return float(value)
        spec = OPS[op]
        args = [memo[a] for a in node.args]
        return spec.fn(*args, node.attr) if spec.has_attr else spec.fn(*args)

    def reduce(self, m: int, env: dict):
        node = self.g.nodes[m]
        body, index = node.args
        loop = loop_of(self.g, index)
        values = [self.node(body, {**env, index: k}) for k in self.range(loop)]
        if node.op == "sum_over":
            return sum(values, 0.0)
        if node.op == "prod_over":
            return math.prod(values)
        if not values:
            raise ValueError(f"{node.op[:3]}() over an empty range")
        return min(values) if node.op == "min_over" else max(values)
