"""The benchmark's workloads: micrograd's README expression and tanh MLPs
over sample data, as `.expr` source and as plain Python parameters, the same
for every system."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

Params = list  # [W1, b1, W2, b2, ...]: nested lists of floats


@dataclass
class MLPTask:
    """An MLP with tanh on every layer and a squared-error loss."""

    nin: int
    sizes: list[int]
    xs: list[list[float]]
    ys: list[float]
    params: Params = field(default_factory=list)

    @property
    def dims(self) -> list[int]:
        return [self.nin, *self.sizes]

    def flat(self) -> list[float]:
        return flatten(self.params)


def make_mlp(nin: int, sizes: list[int], samples: int, seed: int, xs=None, ys=None) -> MLPTask:
    rng = random.Random(seed)
    if xs is None:
        xs = [[round(rng.uniform(-1, 1), 4) for _ in range(nin)] for _ in range(samples)]
        ys = [rng.choice((-1.0, 1.0)) for _ in range(samples)]
    task = MLPTask(nin, sizes, xs, ys)
    dims = task.dims
    for n_in, n_out in zip(dims, dims[1:]):
        task.params.append([[rng.uniform(-1, 1) for _ in range(n_in)] for _ in range(n_out)])
        task.params.append([rng.uniform(-1, 1) for _ in range(n_out)])
    return task


LECTURE_XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
LECTURE_YS = [1.0, -1.0, -1.0, 1.0]


def mlp_source(task: MLPTask) -> str:
    """The task as an `.expr` function `loss(W1, b1, W2, b2, ...)`."""
    dims = task.dims
    params = []
    for layer, (n_in, n_out) in enumerate(zip(dims, dims[1:]), 1):
        params += [f"W{layer}[{n_out}][{n_in}]", f"b{layer}[{n_out}]"]
    lines = [f"xs = {task.xs!r}", f"ys = {task.ys!r}", "",
             f"def loss({', '.join(params)}):", "    h0 = xs"]
    samples = len(task.xs)
    for layer, (n_in, n_out) in enumerate(zip(dims, dims[1:]), 1):
        lines.append(f"    h{layer} = [[tanh(sum(W{layer}[j][i]*h{layer - 1}[k][i] "
                     f"for i in range({n_in})) + b{layer}[j]) for j in range({n_out})] "
                     f"for k in range({samples})]")
    last = len(dims) - 1
    lines.append(f"    return sum((h{last}[k][0] - ys[k])^2 for k in range({samples}))")
    return "\n".join(lines) + "\n"


README_SOURCE = """\
def readme(a, b):
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + relu(b + a)
    d += 3 * d + relu(b - a)
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g
"""
README_ARGS = (-4.0, 2.0)


def flatten(value) -> list[float]:
    out: list[float] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        else:
            out.append(float(v))
    return out
