"""The peers exprgrad is measured against: micrograd, PyTorch, JAX, CasADi and
SymPy, each building, for a workload, a zero-argument callable that returns
(loss, flat gradient) as Python floats: the thing that is timed.  Each peer
is imported only when its builder runs, so any subset may be installed."""

from __future__ import annotations

import importlib
import math
import sys
from typing import Callable

from workloads import README_ARGS, MLPTask

Call = Callable[[], tuple[float, list[float]]]


def _micrograd_value():
    from micrograd.engine import Value

    if not hasattr(Value, "tanh"):
        def tanh(self):  # the lecture's tanh (micrograd 0.1.0 ships only relu)
            t = math.tanh(self.data)
            out = Value(t, (self,), "tanh")

            def _backward():
                self.grad += (1 - t * t) * out.grad
            out._backward = _backward
            return out
        Value.tanh = tanh
    return Value


def micrograd_mlp(task: MLPTask) -> Call:
    Value = _micrograd_value()
    params = [[[Value(w) for w in row] for row in W] if isinstance(W[0], list)
              else [Value(b) for b in W] for W in task.params]
    leaves = flatten_values(params)
    layers = [(params[i], params[i + 1]) for i in range(0, len(params), 2)]
    xs, ys = task.xs, task.ys
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # micrograd's topo sort recurses

    def call():
        for p in leaves:
            p.grad = 0.0
        loss = 0.0
        for x, y in zip(xs, ys):
            h = x
            for W, b in layers:
                h = [(sum((w * hi for w, hi in zip(row, h)), bj)).tanh() for row, bj in zip(W, b)]
            loss = (h[0] - y) ** 2 + loss
        loss.backward()
        return loss.data, [p.grad for p in leaves]
    return call


def flatten_values(nested) -> list:
    out, stack = [], [nested]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(reversed(v))
        else:
            out.append(v)
    return out


def micrograd_readme() -> Call:
    Value = _micrograd_value()

    def call():
        a, b = Value(README_ARGS[0]), Value(README_ARGS[1])
        c = a + b
        d = a * b + b**3
        c += c + 1
        c += 1 + c + (-a)
        d += d * 2 + (b + a).relu()
        d += 3 * d + (b - a).relu()
        e = c - d
        f = e**2
        g = f / 2.0
        g += 10.0 / f
        g.backward()
        return g.data, [a.grad, b.grad]
    return call


def torch_scalar_mlp(task: MLPTask) -> Call:
    """PyTorch eager, one 0-d tensor per parameter (micrograd's style)."""
    import torch

    params = [[[torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in row]
               for row in W] if isinstance(W[0], list)
              else [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in W]
              for W in task.params]
    leaves = flatten_values(params)
    layers = [(params[i], params[i + 1]) for i in range(0, len(params), 2)]
    xs, ys = task.xs, task.ys

    def call():
        loss = 0.0
        for x, y in zip(xs, ys):
            h = x
            for W, b in layers:
                h = [torch.tanh(sum((w * hi for w, hi in zip(row, h)), bj))
                     for row, bj in zip(W, b)]
            loss = (h[0] - y) ** 2 + loss
        grads = torch.autograd.grad(loss, leaves)
        return loss.item(), [g.item() for g in grads]
    return call


def torch_batched_mlp(task: MLPTask) -> Call:
    """PyTorch eager on tensors: one matrix product per layer."""
    import torch

    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in task.params]
    X = torch.tensor(task.xs, dtype=torch.float64)
    Y = torch.tensor(task.ys, dtype=torch.float64)

    def call():
        h = X
        for i in range(0, len(tensors), 2):
            h = torch.tanh(h @ tensors[i].T + tensors[i + 1])
        loss = ((h[:, 0] - Y) ** 2).sum()
        grads = torch.autograd.grad(loss, tensors)
        return loss.item(), [x for g in grads for x in g.reshape(-1).tolist()]
    return call


def torch_readme() -> Call:
    import torch

    def call():
        a = torch.tensor(README_ARGS[0], dtype=torch.float64, requires_grad=True)
        b = torch.tensor(README_ARGS[1], dtype=torch.float64, requires_grad=True)
        c = a + b
        d = a * b + b**3
        c = c + c + 1
        c = c + 1 + c + (-a)
        d = d + d * 2 + (b + a).relu()
        d = d + 3 * d + (b - a).relu()
        e = c - d
        f = e**2
        g = f / 2.0
        g = g + 10.0 / f
        da, db = torch.autograd.grad(g, (a, b))
        return g.item(), [da.item(), db.item()]
    return call


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    return jax


def jax_mlp(task: MLPTask) -> Call:
    """`jax.jit(jax.value_and_grad(loss))` on arrays (one matrix product per layer)."""
    jax = _jax()
    jnp = jax.numpy
    X = jnp.asarray(task.xs, dtype=jnp.float64)
    Y = jnp.asarray(task.ys, dtype=jnp.float64)
    params = [jnp.asarray(p, dtype=jnp.float64) for p in task.params]

    def loss(ps):
        h = X
        for i in range(0, len(ps), 2):
            h = jnp.tanh(h @ ps[i].T + ps[i + 1])
        return jnp.sum((h[:, 0] - Y) ** 2)

    f = jax.jit(jax.value_and_grad(loss))
    f(params)  # trace and compile outside the timing

    def call():
        value, grads = f(params)
        value = float(value)  # waits for the result
        return value, grads
    return call


def jax_readme() -> Call:
    jax = _jax()
    jnp = jax.numpy

    def g_of(a, b):
        c = a + b
        d = a * b + b**3
        c = c + c + 1
        c = c + 1 + c + (-a)
        d = d + d * 2 + jax.nn.relu(b + a)
        d = d + 3 * d + jax.nn.relu(b - a)
        e = c - d
        f = e**2
        g = f / 2.0
        return g + 10.0 / f

    f = jax.jit(jax.value_and_grad(g_of, argnums=(0, 1)))
    a, b = jnp.float64(README_ARGS[0]), jnp.float64(README_ARGS[1])
    f(a, b)

    def call():
        value, grads = f(a, b)
        return float(value), grads
    return call


def casadi_mlp(task: MLPTask) -> Call:
    """A CasADi SX function of the flat parameter vector, with its gradient."""
    f, flat = casadi_mlp_function(task)

    def call():
        value, grad = f(flat)
        return float(value), grad
    return call


def casadi_mlp_function(task: MLPTask):
    import casadi as ca

    dims = task.dims
    sizes = [n_out * n_in + n_out for n_in, n_out in zip(dims, dims[1:])]
    p = ca.SX.sym("p", sum(sizes))
    X = ca.DM(task.xs).T  # (nin, samples)
    h, at = X, 0
    for n_in, n_out in zip(dims, dims[1:]):
        W = ca.reshape(p[at:at + n_out * n_in], n_in, n_out).T  # row-major rows
        at += n_out * n_in
        b = p[at:at + n_out]
        at += n_out
        h = ca.tanh(ca.mtimes(W, h) + ca.repmat(b, 1, len(task.xs)))
    loss = ca.sumsqr(h[0, :] - ca.DM(task.ys).T)
    f = ca.Function("f", [p], [loss, ca.gradient(loss, p)])
    import numpy as np
    return f, np.asarray(task.flat())


def casadi_readme() -> Call:
    import casadi as ca

    a, b = ca.SX.sym("a"), ca.SX.sym("b")
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + ca.fmax(b + a, 0)
    d = d + 3 * d + ca.fmax(b - a, 0)
    e = c - d
    f = e**2
    g = f / 2.0 + 10.0 / f
    x = ca.vertcat(a, b)
    fn = ca.Function("g", [x], [g, ca.gradient(g, x)])
    import numpy as np
    point = np.asarray(README_ARGS)

    def call():
        value, grad = fn(point)
        return float(value), grad
    return call


def sympy_mlp(task: MLPTask) -> Call:
    """`sympy.diff` of the unrolled loss per parameter + `lambdify(cse=True)`."""
    import sympy as sp

    dims = task.dims
    syms, params = [], []
    for layer, (n_in, n_out) in enumerate(zip(dims, dims[1:]), 1):
        W = [[sp.Symbol(f"W{layer}_{j}_{i}") for i in range(n_in)] for j in range(n_out)]
        b = [sp.Symbol(f"b{layer}_{j}") for j in range(n_out)]
        params += [W, b]
        syms += [s for row in W for s in row] + b
    loss = 0
    for x, y in zip(task.xs, task.ys):
        h = [sp.Float(v) for v in x]
        for i in range(0, len(params), 2):
            h = [sp.tanh(sum((w * hi for w, hi in zip(row, h)), bj))
                 for row, bj in zip(params[i], params[i + 1])]
        loss = loss + (h[0] - y) ** 2
    grads = [sp.diff(loss, s) for s in syms]
    f = sp.lambdify(syms, [loss, *grads], modules="math", cse=True)
    flat = task.flat()

    def call():
        value, *grad = f(*flat)
        return value, grad
    return call


def sympy_readme() -> Call:
    import sympy as sp

    a, b = sp.symbols("a b")

    def relu(x):
        return sp.Piecewise((x, x > 0), (0, True))
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + relu(b + a)
    d = d + 3 * d + relu(b - a)
    e = c - d
    f = e**2
    g = f / 2.0 + 10.0 / f
    fn = sp.lambdify([a, b], [g, sp.diff(g, a), sp.diff(g, b)], modules="math", cse=True)
    x, y = README_ARGS

    def call():
        value, *grad = fn(x, y)
        return value, grad
    return call


def installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # an installed but broken peer counts as absent
        return False
    return True
