"""Fit logistic regression to a data set read at run time.

logistic.expr is compiled once; its `loss_grad` takes the data as lists of
any length.  The script writes a CSV of 2,000 samples (5 features and a
0/1 label, from a known model), reads it back, and fits the weights twice:
by plain gradient descent, and with `scipy.optimize.minimize(...,
jac=True)` when SciPy is installed (it is not a dependency of exprgrad).
Run:  python examples/fit.py
"""

import csv
import math
import random
import sys
import tempfile
from pathlib import Path

import exprgrad

TRUE_W, TRUE_B = [1.5, -2.0, 0.5, 0.0, 1.0], -0.3


def write_data(path: Path, n: int = 2000, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["x0", "x1", "x2", "x3", "x4", "label"])
        for _ in range(n):
            x = [rng.gauss(0, 1) for _ in range(5)]
            z = sum(w * v for w, v in zip(TRUE_W, x)) + TRUE_B
            out.writerow(x + [1.0 if rng.random() < 1 / (1 + math.exp(-z)) else 0.0])


def read_data(path: Path):
    with path.open() as f:
        rows = list(csv.reader(f))[1:]
    return [[float(v) for v in row[:5]] for row in rows], [float(row[5]) for row in rows]


def descend(model, X, y, steps: int = 300, rate: float = 0.5):
    w, b = [0.0] * 5, 0.0
    for _ in range(steps):
        loss, (d_w, d_b) = model.loss_grad(w, b, X, y)
        w = [wi - rate * g for wi, g in zip(w, d_w)]
        b -= rate * d_b
    return loss, w, b


def with_scipy(model, X, y):
    try:
        from scipy.optimize import minimize
    except ImportError:
        return None

    def objective(theta):
        loss, (d_w, d_b) = model.loss_grad(list(theta[:5]), float(theta[5]), X, y)
        return loss, [*d_w, d_b]
    result = minimize(objective, [0.0] * 6, jac=True, method="L-BFGS-B")
    return float(result.fun), [float(v) for v in result.x[:5]], float(result.x[5])


def main() -> int:
    model = exprgrad.load(Path(__file__).with_name("logistic.expr"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.csv"
        write_data(path)
        X, y = read_data(path)
    loss, w, b = descend(model, X, y)
    print(f"gradient descent: loss {loss:.4f}, w = {[round(v, 2) for v in w]}, b = {b:.2f}")
    fitted = with_scipy(model, X, y)
    if fitted is not None:
        loss, w, b = fitted
        print(f"scipy L-BFGS-B:   loss {loss:.4f}, w = {[round(v, 2) for v in w]}, b = {b:.2f}")
    print(f"true model:       w = {TRUE_W}, b = {TRUE_B}")
    return 0 if loss < 0.6 else 1


if __name__ == "__main__":
    sys.exit(main())
