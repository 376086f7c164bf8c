"""How compile time grows with the size of the unrolled DAG.

Each workload is a family of `.expr` sources of growing size: a long
reduction, micrograd's MLP loss over more and more samples, and a linear
model over data rows (a data axis n) of growing fixed width.  For each
source the compiler's stages are timed separately (parse, lower,
differentiate, emit Python text, Python compile + import) and divided by
the number of DAG nodes; a flat microseconds-per-node column means compile
time is linear in the DAG size.

    python bench/compile_scale.py            # the full table
    python bench/compile_scale.py --quick    # smaller sizes

Other benchmarks import `workloads()` and `measure(source)`.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from typing import Iterator

from exprgrad.compiler.pipeline import differentiate, generate
from exprgrad.compiler.lower import lower
from exprgrad.grammar import parse
from exprgrad.runtime.modules import module_from_text

STAGES = ("parse", "lower", "differentiate", "emit", "python")

REDUCTION_SIZES = (1_250, 2_500, 5_000, 10_000, 20_000)
MLP_SAMPLES = (25, 50, 100, 200, 400)
ROW_WIDTHS = (250, 500, 1_000, 2_000, 4_000)


def reduction_source(n: int) -> str:
    """A sum of n products of array elements: one long chain of adds."""
    return (f"f(w[{n}], v[{n}]) = sum(w[i]*v[i] + sin(w[i]) for i in range({n}))\n")


def mlp_source(samples: int, seed: int = 0) -> str:
    """micrograd's MLP(3, [4, 4, 1]) with its squared-error loss over
    `samples` fixed random samples (compile-time constants)."""
    rng = random.Random(seed)
    xs = [[round(rng.uniform(-2, 2), 3) for _ in range(3)] for _ in range(samples)]
    ys = [rng.choice((-1.0, 1.0)) for _ in range(samples)]
    return "\n".join([
        f"xs = {xs}",
        f"ys = {ys}",
        "def mlp(x[3], W1[4][3], b1[4], W2[4][4], b2[4], w3[4], b3):",
        "    h1 = [relu(b1[j] + sum(W1[j][i]*x[i] for i in range(3))) for j in range(4)]",
        "    h2 = [relu(b2[j] + sum(W2[j][i]*h1[i] for i in range(4))) for j in range(4)]",
        "    return b3 + sum(w3[i]*h2[i] for i in range(4))",
        "def loss(W1[4][3], b1[4], W2[4][4], b2[4], w3[4], b3):",
        "    return sum((mlp(xs[k], W1, b1, W2, b2, w3, b3) - ys[k])^2 "
        "for k in range(len(xs)))",
        "",
    ])


def rows_source(width: int) -> str:
    """The squared residuals of a linear model over data rows `X[n][width]`:
    `X[k][i]` unrolled over i reads a row of a data parameter, once a
    quadratic cost in the width (the row was rebuilt for each i, and reverse
    mode walked the shared adjoint once per load)."""
    return (f"def f(w[{width}], X[n][{width}], y[n]):\n"
            f"    z = [sum(w[i]*X[k][i] for i in range({width})) - y[k] for k in range(n)]\n"
            "    return sum(z[k]^2 for k in range(n))\n")


def workloads(quick: bool = False) -> Iterator[tuple[str, str]]:
    """(name, source) pairs, smallest first within each family."""
    reductions = REDUCTION_SIZES[:3] if quick else REDUCTION_SIZES
    samples = MLP_SAMPLES[:3] if quick else MLP_SAMPLES
    widths = ROW_WIDTHS[:3] if quick else ROW_WIDTHS
    for n in reductions:
        yield f"reduction n={n}", reduction_source(n)
    for s in samples:
        yield f"mlp samples={s}", mlp_source(s)
    for width in widths:
        yield f"rows width={width}", rows_source(width)


def measure(source: str, filename: str = "bench.expr") -> dict:
    """Compile `source` once, timing each stage (seconds).  Returns
    {"nodes": DAG nodes after differentiation, "lines": generated lines,
    "parse": s, "lower": s, "differentiate": s, "emit": s, "python": s,
    "total": s}."""
    times: dict = {}
    gc.collect()
    start = time.process_time()
    module = parse(source, filename)
    times["parse"] = _lap(start)
    start = time.process_time()
    program = lower(module)
    times["lower"] = _lap(start)
    start = time.process_time()
    emitted = differentiate(program)
    times["differentiate"] = _lap(start)
    start = time.process_time()
    text = generate(program, emitted)
    times["emit"] = _lap(start)
    start = time.process_time()
    module_from_text(text, filename)
    times["python"] = _lap(start)
    times["total"] = sum(times[s] for s in STAGES)
    times["nodes"] = len(program.graph)
    times["lines"] = text.count("\n")
    return times


def _lap(start: float) -> float:
    """CPU time of this process: steadier than wall time on a busy machine."""
    return time.process_time() - start


def table(rows: list[tuple[str, dict]]) -> str:
    """Per workload: nodes, total seconds, then µs per node for each stage."""
    header = (f"{'workload':<22}{'nodes':>9}{'total s':>9}  µs/node:"
              + "".join(f"{s:>9}" for s in (*STAGES, "total")))
    lines = [header, "-" * len(header)]
    for name, m in rows:
        per_node = [1e6 * m[s] / m["nodes"] for s in (*STAGES, "total")]
        lines.append(f"{name:<22}{m['nodes']:>9,}{m['total']:>9.2f}          "
                     + "".join(f"{x:>9.2f}" for x in per_node))
    return "\n".join(lines)


def growth(rows: list[tuple[str, dict]]) -> str:
    """Time ratio over node ratio between the smallest and largest size of
    each family: about 1.0 when compile time is linear in the DAG size."""
    families: dict[str, list[dict]] = {}
    for name, m in rows:
        families.setdefault(name.split()[0], []).append(m)
    out = []
    for family, ms in families.items():
        first, last = ms[0], ms[-1]
        ratio = (last["total"] / first["total"]) / (last["nodes"] / first["nodes"])
        out.append(f"{family}: {last['nodes'] / first['nodes']:.1f}x the nodes took "
                   f"{last['total'] / first['total']:.1f}x the time "
                   f"(time ratio / node ratio = {ratio:.2f})")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes only")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(1000)  # the compiler must not need more
    measure("f(x) = x\n")  # warm-up: the grammar is loaded once, on first use
    rows = []
    for name, source in workloads(args.quick):
        rows.append((name, measure(source)))
    print(table(rows))
    print()
    print(growth(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
