"""Data axes: compile time independent of the data's length, and the
rolled loop's cost per sample against the same model unrolled.

Three numbers, each the best of several runs:

* the compile time (source → importable module) of examples/logistic.expr
  and of a 5-8-1 tanh MLP loss over data, which do not depend on N;
* per call, logistic regression's value and gradient at N = 1,000: the
  rolled `for` loop (`X[n][5]`) against the same function compiled with the
  data as fixed-size parameters (`X[1000][5]`, unrolled: today's code);
* a call at N = 1,000,000, which the unrolled form cannot compile (the DAG
  limit is a million nodes).

    python bench/data_compile.py
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import exprgrad  # noqa: E402

LOGISTIC = (ROOT / "examples" / "logistic.expr").read_text()
MLP = """
def mlp(x[5], W1[8][5], b1[8], w2[8], b2):
    h = [tanh(b1[j] + sum(W1[j][i]*x[i] for i in range(5))) for j in range(8)]
    return tanh(b2 + sum(w2[j]*h[j] for j in range(8)))

def loss(W1[8][5], b1[8], w2[8], b2, X[n][5], y[n]) wrt W1, b1, w2, b2:
    return sum((mlp(X[k], W1, b1, w2, b2) - y[k])^2 for k in range(n)) / n
"""
UNROLLED = """
def loss(w[5], b, X[{n}][5], y[{n}]) wrt w, b:
    z = [sum(w[i]*X[k][i] for i in range(5)) + b for k in range({n})]
    return sum(softplus(z[k]) - y[k]*z[k] for k in range({n})) / {n}
"""


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def data(n: int, rng: random.Random):
    X = [[rng.uniform(-1, 1) for _ in range(5)] for _ in range(n)]
    y = [float(rng.random() < 0.5) for _ in range(n)]
    return X, y


def main() -> int:
    rng = random.Random(0)
    w, b = [0.1, -0.2, 0.3, 0.0, 0.05], 0.1
    print("compile (source to module), best of 5:")
    for name, source in (("examples/logistic.expr", LOGISTIC), ("5-8-1 tanh MLP loss", MLP)):
        seconds = best(lambda: exprgrad.compile(source, "bench.expr"))
        print(f"  {name:28s} {seconds * 1e3:7.1f} ms (for every N)")
    n = 1000
    X, y = data(n, rng)
    rolled = exprgrad.compile(LOGISTIC, "logistic.expr").loss_grad
    start = time.perf_counter()
    unrolled = exprgrad.compile(UNROLLED.format(n=n), "unrolled.expr").loss_grad
    unrolled_compile = time.perf_counter() - start
    assert abs(rolled(w, b, X, y)[0] - unrolled(w, b, X, y)[0]) < 1e-12
    r = best(lambda: [rolled(w, b, X, y) for _ in range(20)], 7) / 20
    u = best(lambda: [unrolled(w, b, X, y) for _ in range(20)], 7) / 20
    print(f"logistic regression, value + gradient, N = {n} (unrolled compile: "
          f"{unrolled_compile:.1f} s):")
    print(f"  rolled loop   {r * 1e6 / n:6.3f} µs per sample")
    print(f"  unrolled      {u * 1e6 / n:6.3f} µs per sample   rolled/unrolled = {r / u:.2f}")
    X, y = data(1_000_000, rng)
    seconds = best(lambda: rolled(w, b, X, y), 3)
    print(f"N = 1,000,000: {seconds:.2f} s per call ({seconds * 1e6 / 1e6:.3f} µs per sample)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
