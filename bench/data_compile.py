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

`--widths 4,8,16` instead measures how the compile time of a 5-W-W-1 tanh
MLP loss over data grows with the width W, with and without a `max` term
(whose tie count every weight's gradient sum reads): processor seconds of
`exprgrad.emit`, the lines and `for` loops of the emitted text.

    python bench/data_compile.py
    python bench/data_compile.py --widths 4,8,16,32
"""

from __future__ import annotations

import argparse
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

WIDE_MLP = """
def loss(W1[{w}][5], b1[{w}], W2[{w}][{w}], b2[{w}], w3[{w}], b3, X[n][5], y[n]) \\
        wrt W1, b1, W2, b2, w3, b3:
    h = [[tanh(sum(W1[j][i]*X[k][i] for i in range(5)) + b1[j]) for j in range({w})] for k in range(n)]
    h2 = [[tanh(sum(W2[j][i]*h[k][i] for i in range({w})) + b2[j]) for j in range({w})]
          for k in range(n)]
    out = [sum(w3[j]*h2[k][j] for j in range({w})) + b3 for k in range(n)]
    return sum((out[k] - y[k])^2 for k in range(n)) / n{extra}
"""
MAX_TERM = " + max(abs(out[k]) for k in range(n))"


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


def widths(sizes: list[int]) -> None:
    """Compile time against the width of a two-hidden-layer MLP loss."""
    print("5-W-W-1 tanh MLP loss over data: processor seconds of emit, lines, loops")
    print(f"  {'W':>3s}  {'loss':>22s}  {'loss + max term':>22s}")
    exprgrad.emit(WIDE_MLP.format(w=1, extra=MAX_TERM), "warm.expr")  # imports, caches
    for w in sizes:
        cells = []
        for extra in ("", MAX_TERM):
            source = WIDE_MLP.format(w=w, extra=extra)
            start = time.process_time()
            text = exprgrad.emit(source, "wide.expr")
            seconds = time.process_time() - start
            cells.append(f"{seconds:6.2f} s {text.count(chr(10)):6d} {text.count(' in range('):4d}")
        print(f"  {w:3d}  {cells[0]:>22s}  {cells[1]:>22s}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", help="comma-separated widths W of a 5-W-W-1 MLP loss")
    args = parser.parse_args()
    if args.widths:
        widths([int(w) for w in args.widths.split(",")])
        return 0
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
