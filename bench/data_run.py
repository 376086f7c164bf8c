"""Data-axis workloads side by side: exprgrad (array target on NumPy and,
when JAX is installed, the same module under `jax.jit`; the plain target)
against NumPy written by hand, JAX `jit(value_and_grad)`, PyTorch batched
and CasADi `Function.map`, for N = 10^3 … 10^6.

Every system's loss and gradient are first compared with NumPy by hand
(relative 1e-9); one that disagrees is reported and left out.  Timing is
interleaved as in run.py (rotating order, median over rounds), every system
on one thread (OMP_NUM_THREADS=1 and the like, unless set); a cell shows
the median time per call (value + full gradient) and its ratio to NumPy by
hand.  A system that cannot run a workload says why in its cell.  The last
row of each table divides the array target under `jax.jit` by JAX's own
`jit(value_and_grad)`: the ratio of the medians, and in parentheses the
lowest and highest ratio of one round's two times.

    python bench/data_run.py                  # N = 10^3 … 10^6 (a few minutes)
    python bench/data_run.py --quick          # N = 10, 100; a few rounds
    python bench/data_run.py --sizes 1000000 --workloads logistic
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# One thread per system, set before NumPy, JAX or PyTorch start their pools: on a
# shared machine spinning thread pools measure the neighbours, not the system.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import exprgrad  # noqa: E402
from data_peers import PEER_MODULES, PEERS, Call  # noqa: E402
from data_workloads import SOURCES, DataTask, make_task  # noqa: E402
from run import Entry, agree, build, format_time, installed, time_interleaved  # noqa: E402

REFERENCE = "numpy by hand"
ON_JAX = "exprgrad array target, jax.jit"
JAX = "jax jit(value_and_grad)"


def exprgrad_call(task: DataTask, target: str) -> Call:
    """The generated `loss_grad` bound to the task's parameters and data."""
    options = {} if target == "python" else {"target": target}
    module = exprgrad.compile(SOURCES[task.name], f"{task.name}.expr", **options)
    args = [*task.unflatten(), *task.data]
    gradient = module.loss_grad
    return lambda: gradient(*args)


def exprgrad_jax_call(task: DataTask) -> Call:
    """The array target's `loss_grad` under `jax.jit`, on JAX arrays, compiled
    by XLA before timing (as JAX's own entry is)."""
    from peers import _jax

    jax = _jax()
    module = exprgrad.compile(SOURCES[task.name], f"{task.name}.expr", target="array")
    args = [jax.numpy.asarray(a) for a in [*task.unflatten(), *task.data]]
    gradient = jax.jit(module.loss_grad)
    jax.block_until_ready(gradient(*args))

    def call():
        value, grads = gradient(*args)
        return float(value), grads  # one XLA executable: every result is ready with the value
    return call


def systems_for(task: DataTask, plain_limit: int) -> list[Entry]:
    entries = [build("exprgrad array target", lambda: exprgrad_call(task, "array"))]
    if installed("jax"):
        entries.append(build(ON_JAX, lambda: exprgrad_jax_call(task)))
    if task.size <= plain_limit:
        entries.append(build("exprgrad plain target", lambda: exprgrad_call(task, "python")))
    for system, factory in PEERS.items():
        if installed(PEER_MODULES[system]):
            entries.append(build(system, lambda factory=factory: factory(task)))
    return entries


def run_size(task: DataTask, rounds: int, target: float, plain_limit: int, log) -> list[Entry]:
    entries = systems_for(task, plain_limit)
    reference = next(e for e in entries if e.system == REFERENCE).call()
    reference = (float(reference[0]), [float(g) for g in reference[1]])
    runnable = []
    for e in entries:
        if e.call is None:
            continue
        why = agree(reference, e)
        if why:
            e.note, e.call = f"DISAGREES: {why}"[:80], None
            log(f"  {e.system}: {e.note}")
        else:
            runnable.append(e)
    log(f"  {task.name} N={task.size:,}: {len(runnable)} system(s); {rounds} rounds")
    time_interleaved(runnable, rounds, target)
    return entries


def table(name: str, sizes: list[int], results: dict[int, list[Entry]]) -> str:
    systems: list[str] = []
    for entries in results.values():
        systems += [e.system for e in entries if e.system not in systems]
    lines = [f"| {name} | " + " | ".join(f"N = {n:,}" for n in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    for system in systems:
        cells = []
        for n in sizes:
            entries = results[n]
            e = next((e for e in entries if e.system == system), None)
            ref = next(e for e in entries if e.system == REFERENCE).median
            if e is None:
                cells.append("—")
            elif not e.times:
                cells.append(_short(e.note) or "—")
            else:
                cells.append(f"{format_time(e.median)} ({e.median / ref:.2f}×)")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    if ON_JAX in systems and JAX in systems:
        lines.append(f"| {ON_JAX} ÷ {JAX} | "
                     + " | ".join(_over(results[n], ON_JAX, JAX) for n in sizes) + " |")
    return "\n".join(lines)


def _over(entries: list[Entry], system: str, other: str) -> str:
    """The ratio of two systems' medians, and the range of their ratio
    round by round (each round times both, one after the other): how much
    the machine's load moved it."""
    a = next((e for e in entries if e.system == system and e.times), None)
    b = next((e for e in entries if e.system == other and e.times), None)
    if a is None or b is None:
        return "—"
    rounds = sorted(x / y for x, y in zip(a.times, b.times))
    return f"{a.median / b.median:.2f}× ({rounds[0]:.2f}–{rounds[-1]:.2f})"


def _short(note: str) -> str:
    """'failed: ParseError: …' → 'cannot run (ParseError)'; table cells stay short."""
    if note.startswith("failed: "):
        return f"cannot run ({note.split(':')[1].strip()})"
    return note.replace("|", "/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10, 100; 2 rounds")
    parser.add_argument("--sizes", type=int, nargs="+", help="sample counts")
    parser.add_argument("--workloads", nargs="+", choices=sorted(SOURCES), help="which")
    parser.add_argument("--rounds", type=int, help="timing rounds (default 7)")
    parser.add_argument("--plain-limit", type=int, default=100_000,
                        help="largest N for the plain target (default 100000)")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([10, 100] if args.quick else [1_000, 10_000, 100_000, 1_000_000])
    rounds = args.rounds or (2 if args.quick else 7)
    target = 0.002 if args.quick else 0.05

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    for name in args.workloads or ["logistic", "mlp", "oscillator"]:
        results = {n: run_size(make_task(name, n), rounds, target, args.plain_limit, log)
                   for n in sizes}
        print(table(name, sizes, results) + "\n")
    print(f"Median time per call (loss + full gradient) over {rounds} interleaved rounds; "
          f"(n×) = time / NumPy by hand's.  Python {sys.version.split()[0]}, numpy "
          f"{np.__version__}, " + ", ".join(f"{m} {_version(m)}" for m in
                                           ("jax", "torch", "casadi") if installed(m)) + ".")
    return 0


def _version(module: str) -> str:
    return getattr(__import__(module), "__version__", "?")


if __name__ == "__main__":
    sys.exit(main())
