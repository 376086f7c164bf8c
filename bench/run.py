"""exprgrad side by side with micrograd, PyTorch, JAX, CasADi and SymPy.

Every installed system computes the same loss and its full gradient on the
same workloads, in one process.  Before anything is timed, every system's
loss and gradient are compared with exprgrad's (relative 1e-9); a system that
disagrees is reported and left out of the table.  Timing is interleaved: in
each round every system runs one batch of calls, in rotating order, so a
slow spell of the machine hits all systems alike; the table shows the median
time per call over the rounds and its ratio to exprgrad's.

    python bench/run.py                # the full table (several minutes)
    python bench/run.py --quick        # tiny sizes, a few rounds (the smoke test)

Workloads:
  readme     micrograd's README expression (two scalars, relu, powers)
  lecture    the lecture's MLP(3, [4, 4, 1]), tanh on every layer, 4 samples,
             41 parameters, weights and biases U(-1, 1)
  mlp16      MLP(3, [16, 16, 1]), tanh on every layer, 32 random samples
  compile    MLP(8, [64, 64, 1]) x 32 samples: the time from source to a
             callable gradient (exprgrad: parse, DAG, passes, emit, import;
             CasADi: building the SX graph and its gradient function)

micrograd's `_backward` closures form reference cycles, so the garbage
collector runs often on its graphs: it is timed as users run it ("GC on")
and with `gc.freeze()` after setup ("GC frozen").

The workloads are defined in `workloads.py`, the peers in `peers.py`; this
file has exprgrad's side, the timing and the table.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import math
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import exprgrad  # noqa: E402
from exprgrad.compiler.pipeline import build as build_module  # noqa: E402
from exprgrad.compiler.program import operations  # noqa: E402
from peers import (Call, casadi_mlp, casadi_mlp_function, casadi_readme, installed,  # noqa: E402
                   jax_mlp, jax_readme, micrograd_mlp, micrograd_readme, sympy_mlp,
                   sympy_readme, torch_batched_mlp, torch_readme, torch_scalar_mlp)
from workloads import (LECTURE_XS, LECTURE_YS, README_ARGS, README_SOURCE, MLPTask,  # noqa: E402
                       flatten, make_mlp, mlp_source)


# --- exprgrad ----------------------------------------------------------------
def exprgrad_mlp(task: MLPTask) -> tuple[Call, Call]:
    """(value + gradient, value only) callables: the generated functions
    themselves, bound to their arguments, so no wrapper is timed."""
    module = exprgrad.compile(mlp_source(task), "mlp.expr")
    return partial(module.loss_grad, *task.params), partial(module.loss, *task.params)


def exprgrad_readme() -> tuple[Call, Call]:
    module = exprgrad.compile(README_SOURCE, "readme.expr")
    return partial(module.readme_grad, *README_ARGS), partial(module.readme, *README_ARGS)


def operation_counts(source: str, name: str) -> tuple[int, int]:
    """Operations (op applications) the generated `name` and `name_grad`
    evaluate, leaving out the argument checks, read from the scheduled
    programs (`program.operations`)."""
    _, functions = build_module(source, "bench.expr")
    counts = {fn.name: operations(fn) for fn in functions}
    return counts[name], counts[name + "_grad"]


# --- timing ------------------------------------------------------------------
@dataclass
class Entry:
    """One system on one workload."""

    system: str
    call: Call | None
    setup: float = 0.0  # seconds to build the callable
    note: str = ""
    freeze_gc: bool = False
    times: list[float] = field(default_factory=list)  # seconds per call, one per round

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan


def build(system: str, factory: Callable[[], Call], note: str = "", freeze_gc=False) -> Entry:
    start = time.perf_counter()
    try:
        call = factory()
    except Exception as error:  # a peer that cannot run this workload is reported, not fatal
        return Entry(system, None, note=f"failed: {type(error).__name__}: {error}"[:80])
    return Entry(system, call, time.perf_counter() - start, note, freeze_gc)


def agree(reference: tuple[float, list[float]], entry: Entry, tol: float = 1e-9) -> str:
    """'' if the entry's loss and gradient match the reference, else why not."""
    value, grads = entry.call()
    ref_value, ref_grads = reference[0], flatten(reference[1])
    grads = flatten(list(_to_floats(grads)))
    if len(grads) != len(ref_grads):
        return f"{len(grads)} gradient entries, expected {len(ref_grads)}"
    for name, got, want in [("loss", float(value), ref_value),
                            *(("gradient", g, w) for g, w in zip(grads, ref_grads))]:
        if not math.isclose(got, want, rel_tol=tol, abs_tol=tol):
            return f"{name} {got!r} != {want!r}"
    return ""


def _to_floats(value):
    """Tensors, arrays and DMs → nested lists of floats."""
    if hasattr(value, "tolist"):
        return value.tolist() if not hasattr(value, "full") else value.full().tolist()
    if hasattr(value, "full"):
        return value.full().tolist()
    if isinstance(value, (list, tuple)):
        return [_to_floats(v) for v in value]
    return value


def batch_size(call: Call, target: float) -> int:
    """Calls per batch so a batch takes about `target` seconds."""
    once = math.inf
    for _ in range(5):  # the fastest of a few tries: one preempted call is no estimate
        start = time.perf_counter()
        call()
        once = min(once, time.perf_counter() - start)
    return max(1, min(200_000, int(target / max(once, 1e-7))))


def time_interleaved(entries: list[Entry], rounds: int, target: float) -> None:
    sizes = {id(e): batch_size(e.call, target) for e in entries}
    for r in range(rounds):
        k = r % len(entries)
        for e in entries[k:] + entries[:k]:  # rotate the order every round
            n = sizes[id(e)]
            call = e.call
            gc.collect()  # each batch pays for its own garbage, not the previous system's
            if e.freeze_gc:
                gc.freeze()
            start = time.perf_counter()
            for _ in range(n):
                call()
            elapsed = time.perf_counter() - start
            if e.freeze_gc:
                gc.unfreeze()
            e.times.append(elapsed / n)


# --- the benchmark -----------------------------------------------------------
def peers_for_mlp(task: MLPTask, sympy_ok: bool) -> list[Entry]:
    entries = []
    if installed("micrograd"):
        entries.append(build("micrograd (GC on)", lambda: micrograd_mlp(task)))
        entries.append(build("micrograd (GC frozen)", lambda: micrograd_mlp(task),
                             freeze_gc=True))
    if installed("torch"):
        entries.append(build("torch scalar tensors", lambda: torch_scalar_mlp(task)))
        entries.append(build("torch batched", lambda: torch_batched_mlp(task)))
    if installed("jax"):
        entries.append(build("jax jit(value_and_grad)", lambda: jax_mlp(task)))
    if installed("casadi"):
        entries.append(build("casadi SX function", lambda: casadi_mlp(task)))
    if installed("sympy"):
        if sympy_ok:
            entries.append(build("sympy diff + lambdify", lambda: sympy_mlp(task)))
        else:
            entries.append(Entry("sympy diff + lambdify", None,
                                 note="not run: setup too slow at this size (--sympy-all)"))
    return entries


def peers_for_readme() -> list[Entry]:
    entries = []
    if installed("micrograd"):
        entries.append(build("micrograd (GC on)", micrograd_readme))
        entries.append(build("micrograd (GC frozen)", micrograd_readme, freeze_gc=True))
    if installed("torch"):
        entries.append(build("torch scalar tensors", torch_readme))
    if installed("jax"):
        entries.append(build("jax jit(value_and_grad)", jax_readme))
    if installed("casadi"):
        entries.append(build("casadi SX function", casadi_readme))
    if installed("sympy"):
        entries.append(build("sympy diff + lambdify", sympy_readme))
    return entries


@dataclass
class Result:
    workload: str
    entries: list[Entry]
    forward: Entry  # exprgrad's value-only function
    operations: tuple[int, int]  # arithmetic operations in (forward, value + gradient)


def run_workload(name: str, ours: tuple[Call, Call], operations: tuple[int, int],
                 peers: list[Entry], rounds: int, target: float, log) -> Result:
    grad_call, forward_call = ours
    exprgrad_entry = Entry("exprgrad", grad_call)
    forward = Entry("exprgrad forward only", forward_call)
    reference = grad_call()
    runnable = [exprgrad_entry, forward]
    for e in peers:
        if e.call is None:
            continue
        why = agree(reference, e)
        if why:
            e.note = f"DISAGREES: {why}"[:80]
            e.call = None
            log(f"  {e.system}: {e.note}")
        else:
            runnable.append(e)
    log(f"  {name}: {len(runnable) - 2} peer(s) agree with exprgrad; timing {rounds} rounds")
    time_interleaved(runnable, rounds, target)
    return Result(name, [exprgrad_entry, *peers], forward, operations)


def compile_child(nin: int, sizes: list[int], samples: int) -> dict:
    """In a fresh process: `exprgrad.compile` of a large MLP, as users run it.
    Wall and CPU seconds, peak RSS of the process, DAG nodes, statements."""
    from exprgrad.compiler.pipeline import front_end

    task = make_mlp(nin, sizes, samples, seed=3)
    source = mlp_source(task)
    exprgrad.emit("f(x) = x\n")  # load the grammar outside the timing
    wall, cpu = time.perf_counter(), time.process_time()
    module = exprgrad.compile(source, "big.expr")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = peak_rss_bytes()
    start = time.perf_counter()
    module.loss_grad(*task.params)
    call = time.perf_counter() - start
    program = front_end(source, "big.expr")
    from exprgrad.compiler.pipeline import differentiate, generate
    text = generate(program, differentiate(program))
    statements = len(re.findall(r"  # big\.expr:\d+:\d+$", text, re.MULTILINE))
    return {"wall": wall, "cpu": cpu, "peak": peak, "call": call,
            "nodes": len(program.graph), "statements": statements}


def peak_rss_bytes() -> int:
    """This process's peak resident memory.  /proc's VmHWM starts afresh at
    exec; ru_maxrss (the fallback) also counts the parent's before exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def compile_row(task: MLPTask, log) -> list[tuple[str, str]]:
    """Source → callable gradient for a large MLP: exprgrad and CasADi."""
    child = subprocess.run(
        [sys.executable, __file__, "--compile-child",
         json.dumps([task.nin, task.sizes, len(task.xs)])],
        capture_output=True, text=True, check=True)
    m = json.loads(child.stdout.strip().splitlines()[-1])
    rows = [("exprgrad", f"{m['cpu']:.1f} s CPU ({m['wall']:.1f} s wall) from source to "
             f"imported module: {1e6 * m['cpu'] / m['nodes']:.1f} µs per DAG node, "
             f"{m['nodes']:,} DAG nodes, {m['statements']:,} generated statements, peak RSS "
             f"{m['peak'] / 2**20:,.0f} MiB; one gradient call {1e3 * m['call']:.1f} ms")]
    log(f"  compile: exprgrad {m['cpu']:.1f} s CPU")
    if installed("casadi"):
        start = time.perf_counter()
        f, flat = casadi_mlp_function(task)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        f(flat)
        call = time.perf_counter() - start
        rows.append(("casadi SX function", f"{seconds:.2f} s to build the function (matrix "
                     f"form); one gradient call {1e3 * call:.2f} ms"))
        log(f"  compile: casadi {seconds:.2f} s")
    return rows


def format_time(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    us = seconds * 1e6
    if us < 1000:
        return f"{us:.1f} µs" if us < 100 else f"{us:.0f} µs"
    if us < 1e6:
        return f"{us / 1000:.1f} ms"
    return f"{us / 1e6:.2f} s"


ORDER = ["exprgrad", "micrograd (GC on)", "micrograd (GC frozen)", "torch scalar", "torch batched",
         "jax", "casadi", "sympy"]


def markdown(results: list[Result], compile_rows, workload_titles: dict[str, str],
             big: MLPTask) -> str:
    systems: list[str] = []
    for r in results:
        for e in r.entries:
            if e.system not in systems:
                systems.append(e.system)
    systems.sort(key=lambda s: [k for k, name in enumerate(ORDER) if s.startswith(name)] or [99])
    head = "| system | " + " | ".join(workload_titles[r.workload] for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for system in systems:
        cells = []
        for r in results:
            e = next((e for e in r.entries if e.system == system), None)
            ours = r.entries[0].median
            if e is None:
                cells.append("—")
            elif not e.times:
                cells.append(e.note or "—")
            elif system == "exprgrad":
                cells.append(f"**{format_time(e.median)}** (1×)")
            else:
                cells.append(f"{format_time(e.median)} ({e.median / ours:.1f}×)")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    ratios = [f"{r.entries[0].median / r.forward.median:.2f}" for r in results]
    forwards = [format_time(r.forward.median) for r in results]
    lines.append("| exprgrad forward only | " + " | ".join(forwards) + " |")
    lines.append("| exprgrad gradient / forward | " + " | ".join(ratios) + " |")
    operations = [f"{g:,} / {f:,} = {g / f:.2f}" for f, g in (r.operations for r in results)]
    lines.append("| exprgrad operations, gradient / forward | " + " | ".join(operations) + " |")
    setups = []
    for r in results:
        parts = [f"{e.system.split(' (')[0]} {e.setup:.2f} s" for e in r.entries[1:]
                 if e.times and e.setup >= 0.05 and "frozen" not in e.system]
        setups.append(", ".join(parts) or "—")
    text = "\n".join(lines)
    text += "\n\nSetup time (building the callable, where ≥ 0.05 s):\n\n"
    text += "\n".join(f"- {workload_titles[r.workload]}: {s}" for r, s in zip(results, setups))
    if compile_rows:
        text += (f"\n\nCompile, MLP({big.nin}, {big.sizes}) × {len(big.xs)} samples "
                 "(source to a callable gradient):\n\n")
        text += "\n".join(f"- {system}: {what}" for system, what in compile_rows)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few rounds (for the smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds")
    parser.add_argument("--sympy-all", action="store_true",
                        help="also run SymPy on MLP(3, [16, 16, 1]) (setup takes minutes)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile row")
    parser.add_argument("--compile-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compile_child:
        print(json.dumps(compile_child(*json.loads(args.compile_child))))
        return 0
    rounds = args.rounds or (3 if args.quick else 21)
    target = 0.002 if args.quick else 0.02

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.quick:
        lecture = make_mlp(3, [4, 4, 1], 4, seed=1, xs=LECTURE_XS, ys=LECTURE_YS)
        wide = make_mlp(2, [3, 1], 4, seed=2)
        big = make_mlp(3, [8, 8, 1], 4, seed=3)
        titles = {"readme": "README expr", "lecture": "MLP(3,[4,4,1])×4",
                  "mlp16": "MLP(2,[3,1])×4"}
    else:
        lecture = make_mlp(3, [4, 4, 1], 4, seed=1, xs=LECTURE_XS, ys=LECTURE_YS)
        wide = make_mlp(3, [16, 16, 1], 32, seed=2)
        big = make_mlp(8, [64, 64, 1], 32, seed=3)
        titles = {"readme": "micrograd README expr", "lecture": "lecture MLP(3,[4,4,1])×4",
                  "mlp16": "MLP(3,[16,16,1])×32"}

    results = []
    log("readme expression")
    results.append(run_workload("readme", exprgrad_readme(),
                                operation_counts(README_SOURCE, "readme"),
                                peers_for_readme(), rounds, target, log))
    log("lecture MLP")
    results.append(run_workload("lecture", exprgrad_mlp(lecture),
                                operation_counts(mlp_source(lecture), "loss"),
                                peers_for_mlp(lecture, sympy_ok=not args.quick), rounds, target,
                                log))
    log("wide MLP")
    results.append(run_workload("mlp16", exprgrad_mlp(wide),
                                operation_counts(mlp_source(wide), "loss"),
                                peers_for_mlp(wide, sympy_ok=args.sympy_all),
                                rounds, target, log))
    compile_rows = [] if args.no_compile else compile_row(big, log)
    print(markdown(results, compile_rows, titles, big))
    print(f"\nMedian time per call (value + full gradient) over {rounds} interleaved rounds; "
          f"(n×) = time / exprgrad's.  Python {sys.version.split()[0]}, "
          + ", ".join(f"{m} {_version(m)}" for m in ("torch", "jax", "casadi", "sympy")
                      if installed(m)) + ".")
    return 0


def _version(module: str) -> str:
    return getattr(importlib.import_module(module), "__version__", "?")


if __name__ == "__main__":
    sys.exit(main())
