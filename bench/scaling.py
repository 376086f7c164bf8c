"""Compile time, peak memory and call time against DAG size, 10² to 10⁶ nodes.

Each size is compiled in a fresh Python process, so its peak memory (max
RSS of `exprgrad.compile`) is its own; the stages are then timed in CPU seconds by
`compile_scale.measure` (parse, lower, differentiate, emit, Python compile +
import).  Then the generated gradient is called and timed.  The results go
to a log-log plot (compile seconds and µs per gradient call against nodes)
and a table.

    python bench/scaling.py                    # 10² … 10⁶ nodes, writes bench/scaling.png
    python bench/scaling.py --quick -o /tmp/s.png   # up to ~10⁴ nodes
    python bench/scaling.py --identity         # only the identity table (memory per element)

Workloads: `chain` (sum of tanh(w[i]) * w[i+1] over a vector: ~10 nodes
per element) for the small end, and the lecture MLP(3, [4, 4, 1]) with tanh
on every layer over a growing number of samples (~210 nodes per sample);
`identity` (`f(w[n]) = w`, whose vjp returns its cotangent: two input nodes
per element and nothing else, so it measures what each array element costs;
it has a table of its own, up to and past the DAG limit of 10⁶ nodes).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

FULL = [("chain", 10), ("chain", 100), ("chain", 1000), ("mlp", 4), ("mlp", 40),
        ("mlp", 400), ("mlp", 1500), ("mlp", 4700)]
# f(w[n]) = w: its vjp needs 2n + 2 nodes, so 490,000 elements is about the
# most the DAG limit allows and 1,000,000 is refused (how fast, in what memory).
IDENTITY = [("identity", 100_000), ("identity", 300_000), ("identity", 490_000),
            ("identity", 1_000_000)]
QUICK = [("chain", 10), ("chain", 100), ("mlp", 4), ("mlp", 40)]


def chain_source(n: int) -> str:
    return f"f(w[{n + 1}]) = sum(tanh(w[i]) * w[i + 1] for i in range({n}))\n"


def chain_args(n: int, rng: random.Random) -> tuple:
    return ([rng.uniform(-1, 1) for _ in range(n + 1)],)


def one(family: str, size: int) -> dict:
    """Compile one workload in this process; CPU seconds per stage, max RSS."""
    import exprgrad
    from compile_scale import measure
    from exprgrad.errors import LimitError
    from run import peak_rss_bytes
    from workloads import make_mlp, mlp_source

    rng = random.Random(size)
    exprgrad.emit("f(x) = x\n")  # load the grammar outside the timing
    if family == "chain":
        source, args = chain_source(size), chain_args(size, rng)
    elif family == "identity":
        source = f"f(w[{size}]) = w\n"
        args = ([rng.uniform(-1, 1) for _ in range(size)], [1.0] * size)
    else:
        task = make_mlp(3, [4, 4, 1], size, seed=size)
        source, args = mlp_source(task), tuple(task.params)
    before = peak_rss_bytes() / 1024
    start = time.process_time()
    try:
        module = exprgrad.compile(source, "scale.expr")  # as users compile: the peak memory
    except LimitError as error:
        return dict(family=family, size=size, refused=error.message,
                    total=time.process_time() - start, rss_mib=peak_rss_bytes() / 1024 ** 2,
                    rss_before_mib=before / 1024)
    peak = peak_rss_bytes() / 1024
    times = measure(source, "scale.expr")  # again, stage by stage: the CPU times
    grad = getattr(module, "f_grad", None) or getattr(module, "f_vjp", None) or module.loss_grad
    grad(*args)
    calls = []
    for _ in range(5):
        n = max(1, int(0.05 / max(_once(grad, args), 1e-7)))
        start = time.perf_counter()
        for _ in range(n):
            grad(*args)
        calls.append((time.perf_counter() - start) / n)
    times.update(family=family, size=size, rss_mib=peak / 1024, rss_before_mib=before / 1024,
                 call_us=1e6 * statistics.median(calls))
    return times


def _once(fn, args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def run_all(points, log) -> list[dict]:
    rows = []
    for family, size in points:
        out = subprocess.run([sys.executable, __file__, "--one", family, str(size)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        if "refused" in row:
            log(f"{family} {size}: refused in {row['total']:.2f} s, {row['rss_mib']:.0f} MiB: "
                f"{row['refused']}")
        else:
            log(f"{family} {size}: {row['nodes']:,} nodes, {row['total']:.2f} s, "
                f"{row['rss_mib']:.0f} MiB, {row['call_us']:.0f} µs/call")
        rows.append(row)
    return rows


def identity_table(rows: list[dict]) -> str:
    """Memory per element: the peak RSS of compiling f(w[n]) = w (f and
    f_vjp) above the process's RSS before it, per element and per node."""
    lines = ["| elements | DAG nodes | compile (CPU s) | peak RSS | per element | per DAG node | "
             "f_vjp call |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        above = (r["rss_mib"] - r["rss_before_mib"]) * 1024  # KiB
        if "refused" in r:
            lines.append(f"| {r['size']:,} | refused: more than the DAG limit | {r['total']:.2f} | "
                         f"{r['rss_mib']:,.0f} MiB | | | |")
            continue
        lines.append(f"| {r['size']:,} | {r['nodes']:,} | {r['total']:.2f} | "
                     f"{r['rss_mib']:,.0f} MiB | {above / r['size']:.2f} KiB | "
                     f"{1024 * above / r['nodes']:,.0f} B | {_us(r['call_us'])} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    lines = ["| workload | DAG nodes | generated lines | compile (CPU s) | µs/node | "
             "peak RSS | gradient call |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = {"chain": f"chain n={r['size']}", "identity": f"identity n={r['size']}"}.get(
            r["family"], f"MLP × {r['size']} samples")
        lines.append(f"| {name} | {r['nodes']:,} | {r['lines']:,} | {r['total']:.3f} | "
                     f"{1e6 * r['total'] / r['nodes']:.1f} | {r['rss_mib']:,.0f} MiB | "
                     f"{_us(r['call_us'])} |")
    return "\n".join(lines)


def _us(us: float) -> str:
    return f"{us:.1f} µs" if us < 1000 else f"{us / 1000:.1f} ms"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["nodes"])
    nodes = [r["nodes"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for family, marker in (("chain", "o"), ("mlp", "s")):
        part = [r for r in rows if r["family"] == family]
        if not part:
            continue
        label = "chain" if family == "chain" else "MLP(3,[4,4,1]) × samples"
        xs = [r["nodes"] for r in part]
        left.loglog(xs, [r["total"] for r in part], marker=marker, label=label)
        right.loglog(xs, [r["call_us"] for r in part], marker=marker, label=label)
    lo, hi = min(nodes), max(nodes)
    left.loglog([lo, hi], [30e-6 * lo, 30e-6 * hi], "k--", lw=0.8, label="30 µs per node")
    left.set(xlabel="DAG nodes", ylabel="compile time (CPU s)",
             title="source → imported module")
    right.set(xlabel="DAG nodes", ylabel="µs per gradient call",
              title="generated f_grad (value + gradient)")
    for ax in (left, right):
        ax.grid(True, which="both", lw=0.3)
        ax.legend()
    fig.suptitle("exprgrad compile and run time against DAG size (log-log)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--identity", action="store_true",
                        help="only the identity table: memory per array element")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "scaling.png")
    parser.add_argument("--one", nargs=2, metavar=("FAMILY", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return 0
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if not args.identity:
        rows = run_all(QUICK if args.quick else FULL, log)
        print(table(rows))
        plot(rows, args.output)
        print(f"\nwrote {args.output}\n")
    if not args.quick:
        print(identity_table(run_all(IDENTITY, log)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
