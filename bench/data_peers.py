"""The peers on the data-axis workloads: NumPy written by hand, JAX
`jit(value_and_grad)`, PyTorch batched (eager, autograd) and CasADi's
per-sample function mapped over the samples (`Function.map`, sums reduced
inside CasADi).  Each builder takes a `DataTask` and returns a zero-argument
callable giving (loss, flat gradient); each peer is imported only when its
builder runs, so any subset may be installed."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from data_workloads import HAND_NUMPY, DataTask
from peers import _jax  # JAX in float64 on the CPU, as for the other workloads

Call = Callable[[], tuple[float, object]]


def hand_numpy(task: DataTask) -> Call:
    function, params, data = HAND_NUMPY[task.name], task.params, task.data
    return lambda: function(params, *data)


# --- the forward loss, once per array library ----------------------------------
def _logistic(lib, params, X, y):
    z = X @ params[:5] + params[5]
    softplus = lib.maximum(z, 0.0 * z) + lib.log1p(lib.exp(-lib.abs(z)))
    return lib.sum(softplus - y * z) / y.shape[0]


def _mlp(lib, params, X, y):
    W1, b1 = params[:40].reshape(8, 5), params[40:48]
    w2, b2 = params[48:56], params[56]
    out = lib.tanh(lib.tanh(X @ W1.T + b1) @ w2 + b2)
    return lib.sum((out - y) ** 2) / y.shape[0]


def _oscillator(lib, params, t, y):
    A, tau, omega, phi = params[0], params[1], params[2], params[3]
    r = A * lib.exp(-t / tau) * lib.cos(omega * t + phi) - y
    return lib.sum(r * r) / y.shape[0]


LOSSES = {"logistic": _logistic, "mlp": _mlp, "oscillator": _oscillator}


def jax_jit(task: DataTask) -> Call:
    jax = _jax()
    jnp = jax.numpy
    loss = LOSSES[task.name]
    f = jax.jit(jax.value_and_grad(lambda p, *data: loss(jnp, p, *data)))
    params = jnp.asarray(task.params)
    data = [jnp.asarray(a) for a in task.data]
    f(params, *data)[0].block_until_ready()  # trace and compile outside the timing

    def call():
        value, grad = f(params, *data)
        return float(value), grad
    return call


def torch_batched(task: DataTask) -> Call:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    loss = LOSSES[task.name]
    params = torch.tensor(task.params, dtype=torch.float64, requires_grad=True)
    data = [torch.from_numpy(a) for a in task.data]

    def call():
        value = loss(torch, params, *data)
        (grad,) = torch.autograd.grad(value, params)
        return value.item(), grad
    return call


def casadi_map(task: DataTask) -> Call:
    """One sample's loss and gradient as an SX function, mapped over the
    samples; CasADi sums the mapped outputs (reduce_out)."""
    import casadi as ca

    p = ca.SX.sym("p", len(task.params))
    width = task.data[0].shape[1] if task.data[0].ndim == 2 else 1
    x, y = ca.SX.sym("x", width), ca.SX.sym("y")
    loss = _casadi_sample(task.name, ca, p, x, y)
    sample = ca.Function("sample", [p, x, y], [loss, ca.gradient(loss, p)])
    n = task.size
    mapped = sample.map("mapped", "serial", n, [0], [0, 1])
    columns = np.ascontiguousarray(task.data[0].reshape(n, width).T)
    labels = task.data[1].reshape(1, n)
    params = task.params

    def call():
        value, grad = mapped(params, columns, labels)
        return float(value) / n, np.asarray(grad).ravel() / n
    return call


def _casadi_sample(name, ca, p, x, y):
    """One sample's term of the sum (the mean divides by n afterwards)."""
    if name == "logistic":
        z = ca.dot(p[:5], x) + p[5]
        return ca.fmax(z, 0) + ca.log1p(ca.exp(-ca.fabs(z))) - y * z
    if name == "mlp":
        W1 = ca.reshape(p[:40], 5, 8).T  # row-major rows
        h = ca.tanh(ca.mtimes(W1, x) + p[40:48])
        return (ca.tanh(ca.dot(p[48:56], h) + p[56]) - y) ** 2
    A, tau, omega, phi = p[0], p[1], p[2], p[3]
    return (A * ca.exp(-x / tau) * ca.cos(omega * x + phi) - y) ** 2


PEERS = {
    "numpy by hand": hand_numpy,
    "jax jit(value_and_grad)": jax_jit,
    "torch batched": torch_batched,
    "casadi Function.map": casadi_map,
}
PEER_MODULES = {"numpy by hand": "numpy", "jax jit(value_and_grad)": "jax",
                "torch batched": "torch", "casadi Function.map": "casadi"}
