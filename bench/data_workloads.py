"""Data-axis workloads: a loss over N samples given at call time, as `.expr`
source (the data parameters have a size name, `X[n][5]`), as data, and as
NumPy written by hand (value and gradient), the reference every system is
checked against.

  logistic    logistic regression, 5 features, mean softplus loss
  mlp         a 5-8-1 MLP, tanh on both layers, mean squared error
  oscillator  a damped oscillator A*exp(-t/tau)*cos(omega*t + phi) fitted to
              N points by least squares (mean squared residual)

Parameters are one flat vector per workload (row-major matrices, in the
order of the source's parameters); `unflatten` splits it for the source's
signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SOURCES = {
    "logistic": """\
def loss(w[5], b, X[n][5], y[n]) wrt w, b:
    z = [sum(w[i]*X[k][i] for i in range(5)) + b for k in range(n)]
    return sum(softplus(z[k]) - y[k]*z[k] for k in range(n)) / n
""",
    "mlp": """\
def loss(W1[8][5], b1[8], W2[1][8], b2[1], X[n][5], y[n]) wrt W1, b1, W2, b2:
    h = [[tanh(sum(W1[j][i]*X[k][i] for i in range(5)) + b1[j]) for j in range(8)]
         for k in range(n)]
    out = [tanh(sum(W2[0][j]*h[k][j] for j in range(8)) + b2[0]) for k in range(n)]
    return sum((out[k] - y[k])^2 for k in range(n)) / n
""",
    "oscillator": """\
def loss(A, tau, omega, phi, t[n], y[n]) wrt A, tau, omega, phi:
    return sum((A*exp(-t[k]/tau)*cos(omega*t[k] + phi) - y[k])^2 for k in range(n)) / n
""",
}

# Each parameter's shape, in the source's order; () is a scalar.
SHAPES = {
    "logistic": [(5,), ()],
    "mlp": [(8, 5), (8,), (1, 8), (1,)],
    "oscillator": [(), (), (), ()],
}


@dataclass
class DataTask:
    """One workload at one size: flat parameters and the data arrays."""

    name: str
    params: np.ndarray  # flat, float64
    data: tuple[np.ndarray, ...]  # (X, y) or (t, y), row-major, float64

    @property
    def size(self) -> int:
        return len(self.data[-1])

    def unflatten(self) -> list:
        """The parameters as the source's signature takes them (lists, floats)."""
        out, at = [], 0
        for shape in SHAPES[self.name]:
            count = int(np.prod(shape)) if shape else 1
            chunk = self.params[at:at + count]
            out.append(chunk.reshape(shape).tolist() if shape else float(chunk[0]))
            at += count
        return out


def make_task(name: str, size: int, seed: int = 0) -> DataTask:
    rng = np.random.default_rng(seed)
    if name == "oscillator":
        t = np.linspace(0.0, 10.0, size)
        truth = 2.0 * np.exp(-t / 3.0) * np.cos(1.7 * t + 0.3)
        y = truth + 0.05 * rng.standard_normal(size)
        return DataTask(name, np.asarray([1.8, 2.5, 1.6, 0.2]), (t, y))
    X = rng.uniform(-1.0, 1.0, (size, 5))
    count = sum(int(np.prod(s)) if s else 1 for s in SHAPES[name])
    params = rng.uniform(-1.0, 1.0, count)
    if name == "logistic":
        y = (X @ np.asarray([1.0, -2.0, 0.5, 0.0, 1.5]) + 0.1
             + 0.5 * rng.standard_normal(size) > 0).astype(np.float64)
    else:
        y = np.tanh(X[:, 0] * X[:, 1] - X[:, 2])
    return DataTask(name, params, (X, y))


# --- NumPy written by hand: (loss, flat gradient) ------------------------------
def numpy_logistic(params, X, y):
    w, b = params[:5], params[5]
    n = len(y)
    z = X @ w + b
    loss = np.sum(np.logaddexp(0.0, z) - y * z) / n
    e = np.exp(-np.abs(z))
    s = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)) - y  # sigmoid(z) - y
    return loss, np.concatenate([X.T @ s / n, [np.sum(s) / n]])


def numpy_mlp(params, X, y):
    W1, b1 = params[:40].reshape(8, 5), params[40:48]
    W2, b2 = params[48:56].reshape(1, 8), params[56:57]
    n = len(y)
    h = np.tanh(X @ W1.T + b1)
    out = np.tanh(h @ W2[0] + b2[0])
    r = out - y
    loss = np.sum(r * r) / n
    d_pre2 = 2.0 * r / n * (1.0 - out * out)
    d_pre1 = np.outer(d_pre2, W2[0]) * (1.0 - h * h)
    return loss, np.concatenate([(d_pre1.T @ X).ravel(), d_pre1.sum(axis=0),
                                 d_pre2 @ h, [d_pre2.sum()]])


def numpy_oscillator(params, t, y):
    A, tau, omega, phi = params
    n = len(y)
    e = np.exp(-t / tau)
    angle = omega * t + phi
    c, s = np.cos(angle), np.sin(angle)
    r = A * e * c - y
    loss = np.sum(r * r) / n
    d = 2.0 * r / n
    return loss, np.asarray([np.sum(d * e * c), np.sum(d * A * e * c * t) / tau**2,
                             -np.sum(d * A * e * s * t), -np.sum(d * A * e * s)])


HAND_NUMPY = {"logistic": numpy_logistic, "mlp": numpy_mlp, "oscillator": numpy_oscillator}
