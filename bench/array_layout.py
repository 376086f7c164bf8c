"""The array target's layout and namespace choices, measured on logistic
regression (5 features, mean softplus loss, value + gradient).

The array target prints a loop body's scalar statements once, as array
operations over the data axis; a compile-time dimension stays unrolled, so
`X[k][i]` for i = 0..4 reads five columns of a row-major (N, 5) array.  This
script times these variants:

  printed     the module exprgrad.compile(..., target="array") makes: a row
              times the weights and the gradient's column sums as
              vector-matrix products (xp.matmul(X[:, 0:5], w[0:5]),
              xp.matmul(d_z, X[:, 0:5])), one pass over X each
  views       written by hand: one statement per column, X[:, i]: strided
              column views, no copy
  transposed  by hand: per column, from one contiguous copy of X.T per call
  numpy ns    views, with NumPy 2's own namespace instead of array-api-compat's

against NumPy written by hand (bench/data_workloads.py), interleaved, as
ratios; and, when JAX is installed, the printed module under `jax.jit` against
JAX's own `jit(value_and_grad)` (bench/data_peers.py), as ratios to JAX.

    python bench/array_layout.py                 # N = 10^4, 10^5, 10^6
    python bench/array_layout.py --sizes 1000 --rounds 3
    python bench/array_layout.py --hlo           # what XLA runs, instead of timing
    python bench/array_layout.py --hlo mlp       # the same for another workload
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as in data_run.py: one thread
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import exprgrad  # noqa: E402
from data_workloads import SOURCES, make_task, numpy_logistic  # noqa: E402
from exprgrad.compiler import array_runtime as rt  # noqa: E402
from run import Entry, agree, format_time, installed, time_interleaved  # noqa: E402


def by_column(columns, namespace=rt._namespace):
    """loss_grad one statement per feature column, with `columns(xp, X)`
    giving the five columns."""
    def loss_grad(w, b, X, y):
        xp = namespace(X, y)
        X = rt._data(xp, X, "X", 2)
        y = rt._data(xp, y, "y", 1)
        n = float(X.shape[0])
        X_0, X_1, X_2, X_3, X_4 = columns(xp, X)
        z = w[0] * X_0 + w[1] * X_1 + w[2] * X_2 + w[3] * X_3 + w[4] * X_4 + b
        t = (rt._sigmoid(xp, z) - y) / n
        loss = xp.sum(rt._softplus(xp, z) - y * z) / n
        out = rt._out  # floats from NumPy; arrays (traceable) from JAX
        return out(loss), ([out(xp.sum(t * X_0)), out(xp.sum(t * X_1)), out(xp.sum(t * X_2)),
                            out(xp.sum(t * X_3)), out(xp.sum(t * X_4))], out(xp.sum(t)))
    return loss_grad


def column_views(xp, X):
    return [X[:, i] for i in range(X.shape[1])]


def transposed_once(xp, X):
    T = xp.asarray(xp.permute_dims(X, (1, 0)), copy=True)
    return [T[i, :] for i in range(T.shape[0])]


def numpy_namespace(*data):
    return np


def printed_logistic():
    """The generated module's loss_grad."""
    return exprgrad.compile(SOURCES["logistic"], "logistic.expr", target="array").loss_grad


VARIANTS = {
    "printed": printed_logistic(),
    "views": by_column(column_views),
    "transposed": by_column(transposed_once),
    "numpy ns": by_column(column_views, numpy_namespace),
}


def jax_entries(task) -> list[Entry]:
    """JAX's own jit(value_and_grad), and the printed module under jax.jit."""
    from data_peers import _jax, jax_jit

    jax = _jax()
    X, y = (jax.numpy.asarray(a) for a in task.data)
    w, b = jax.numpy.asarray(task.params[:5]), jax.numpy.asarray(task.params[5])
    printed = jax.jit(VARIANTS["printed"])
    jax.block_until_ready(printed(w, b, X, y))

    def call():
        value, grads = printed(w, b, X, y)
        return float(value), grads  # waits for the result
    return [Entry("jax jit(value_and_grad)", jax_jit(task)), Entry("printed under jax.jit", call)]


def hlo_summary(workload: str = "logistic", n: int = 1000) -> str:
    """What XLA runs for JAX's own jit(value_and_grad) and for the printed
    module under jax.jit: the optimised HLO's top-level kernels by kind, and
    how many of them read the first data argument (X: one pass over the
    data each)."""
    from data_peers import LOSSES, _jax

    jax = _jax()
    jnp = jax.numpy
    task = make_task(workload, n)
    data = [jnp.asarray(a) for a in task.data]
    loss = LOSSES[workload]
    theirs = jax.jit(jax.value_and_grad(lambda p, *data: loss(jnp, p, *data)))
    module = exprgrad.compile(SOURCES[workload], f"{workload}.expr", target="array")
    params = [jnp.asarray(p) for p in task.unflatten()]
    programs = {"jax jit(value_and_grad)": theirs.lower(jnp.asarray(task.params), *data),
                "printed under jax.jit": jax.jit(module.loss_grad).lower(*params, *data)}
    shape = ",".join(str(d) for d in task.data[0].shape)
    lines = []
    for name, lowered in programs.items():
        text = lowered.compile().as_text()
        entry = text[text.index("\nENTRY"):].split("\n}")[0].splitlines()[1:]
        x = re.search(r"%(\S+) = f64\[" + shape + r"\]\S* parameter", "\n".join(entry))
        kinds: collections.Counter = collections.Counter()
        reading_x = 0
        for line in entry:
            match = re.match(r"\s*(?:ROOT )?%\S+ = .*?\s([a-z][\w-]*)\((.*?)\)", line)
            if not match or match.group(1) in ("parameter", "constant", "bitcast", "tuple"):
                continue
            kinds[match.group(1)] += 1
            reading_x += f"%{x.group(1)}" in re.split(r"[ ,]+", match.group(2))
        lines.append(f"{workload}, {name}: {sum(kinds.values())} kernels ("
                     + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
                     + f"), {reading_x} reading the data")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--hlo", nargs="?", const="logistic", choices=sorted(SOURCES),
                        help="print what XLA runs for a workload (N = 1000) instead of timing")
    args = parser.parse_args(argv)
    if args.hlo:
        print(hlo_summary(args.hlo))
        return 0
    print("| variant | " + " | ".join(f"N = {n:,}" for n in args.sizes) + " |")
    print("|---" * (len(args.sizes) + 1) + "|")
    rows: dict[str, list[str]] = {}
    for n in args.sizes:
        task = make_task("logistic", n)
        X, y = task.data
        w, b = task.unflatten()
        hand = Entry("numpy by hand", lambda: numpy_logistic(task.params, X, y))
        entries = [hand] + [Entry(name, lambda f=f: f(w, b, X, y))
                            for name, f in VARIANTS.items()]
        reference = hand.call()
        reference = (float(reference[0]), [float(g) for g in reference[1]])
        for e in entries[1:]:
            assert agree(reference, e) == "", e.system
        time_interleaved(entries, args.rounds, 0.05)
        for e in entries:
            rows.setdefault(e.system, []).append(
                f"{format_time(e.median)} ({e.median / hand.median:.2f}×)")
        if installed("jax"):
            jitted = jax_entries(task)
            for e in jitted:
                assert agree(reference, e) == "", e.system
            time_interleaved(jitted, args.rounds, 0.05)
            for e in jitted:
                rows.setdefault(e.system, []).append(
                    f"{format_time(e.median)} ({e.median / jitted[0].median:.2f}× JAX)")
    for system, cells in rows.items():
        print(f"| {system} | " + " | ".join(cells) + " |")
    print(f"\nMedian per call over {args.rounds} interleaved rounds; (n×) = time / NumPy "
          f"by hand's.  numpy {np.__version__}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
