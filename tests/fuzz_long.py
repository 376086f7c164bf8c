"""The long fuzz run: every generated program through compile *and* check.

    python tests/fuzz_long.py --minutes 10 [--programs N] [--start K] [--seed 1]
                              [--workers 2] [--hang 30] [--check-seconds 1]
                              [--log FILE] [--label TEXT]

Cycles through four kinds of program: valid generated programs (values and
gradients compared with the mpmath model), corrupted ones (must compile or
raise a located CompileError), stress programs (power towers, float-range
constants, deep `diff` nesting, nested reductions, long names, the array
built-ins) and data-axis programs (size-name parameters, maps, reductions,
shifted indices, nested runtime loops, conditionals, calls, `check`
statements; the plain and array targets must agree on values and gradients).

Each program goes through

1. `exprgrad.emit` for the plain target, and for the array target when
   NumPy is installed; every emitted text is compiled with `compile()` (and
   run: the module is loaded and its functions called);
2. `exprgrad.check` with `--check-seconds` per item (its own time budget):
   it must return a report, never raise; a FAILED item of a valid or
   data-axis program, a FAILED gradient item of a stress program (its
   `check` statements are random claims, which may fail), or a report
   saying the emitted module is not valid Python, is a finding.

A program runs in a worker process; one still running after `--hang`
seconds of processor time (or ten times that of wall time) is a hang: the
worker is killed (and replaced) and the program is
reported.  A worker that dies (a crash, memory past `--memory-mb`) is a
finding too.  Findings are printed with the program's kind and seed (the
generators are functions of `random.Random(seed)`, so `--replay KIND:SEED`
runs one again).  Ends with one summary line; with `--log`, appends it
there.  Exit status 1 if anything was found.

A run is the programs K, K + 1, ... of its seed's sequence: `--start`
continues an earlier run of the same seed on the same code where it
stopped (the summary says which programs it ran), so one code version can
be fuzzed across several sittings.

Run it from a checkout that stays as it is for the whole run (`git worktree
add --detach DIR`): a worker imports parts of exprgrad when it first needs
them, so edits made during a run would mix two versions of the compiler.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import sys
import time
import traceback
from collections import Counter
from multiprocessing.connection import wait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import exprgrad  # noqa: E402
from exprgrad.runtime.modules import module_from_text  # noqa: E402
from exprgrad.verify import FAILED, Settings  # noqa: E402
from fuzz_strategies import data_program, mutate, random_program, stress_program  # noqa: E402
from test_fuzz import (assert_located, call_data_functions, call_stress_functions,  # noqa: E402
                       check_gradients, refused_as_designed)

KINDS = ("valid", "mutated", "stress", "data")
SLOW_CHECK = 15.0  # seconds of one program's check that are reported (with its source)
FILENAME = "fuzz.expr"

try:
    import numpy
    TARGETS = ("python", "array") if numpy else ("python",)
except ImportError:  # the array target needs an Array API namespace
    TARGETS = ("python",)


class Finding(Exception):
    """A broken property: what it is, for the report."""


def generate(kind: str, seed: int):
    rnd = random.Random(seed)
    if kind == "stress":
        program = stress_program(rnd)
    elif kind == "data":
        program = data_program(rnd)
    else:
        program = random_program(rnd, depth=rnd.choice([2, 3, 3, 4]))
    source = mutate(program.source, rnd) if kind == "mutated" else program.source
    return program, source, rnd


def compile_both(source: str) -> dict:
    """target -> module, or {} if refused (with a located error)."""
    modules = {}
    for target in TARGETS:
        try:
            text = exprgrad.emit(source, FILENAME, target=target)
        except exprgrad.CompileError as error:
            assert_located(error, source, FILENAME)
            if modules:
                raise Finding(f"the {target} target refused what another compiled: {error}")
            return {}
        compile(text, f"<{target} module>", "exec")  # a SyntaxError is a finding
        modules[target] = module_from_text(text, FILENAME)
    return modules


def run_one(kind: str, seed: int, check_seconds: float) -> tuple[Counter, list]:
    """Counts and findings [(what, source, traceback)] of one program."""
    counts: Counter = Counter()
    findings: list = []
    try:
        program, source, rnd = generate(kind, seed)
    except Exception:  # noqa: BLE001 - the generator's own bug, not the compiler's
        counts["generator errors"] += 1
        return counts, [("generator error", "", traceback.format_exc(limit=8))]
    counts[kind] += 1
    try:
        modules = compile_both(source)
        counts[f"{kind} compiled" if modules else f"{kind} refused"] += 1
        if kind == "valid" and not modules and not refused_as_designed(source):
            raise Finding("a valid program was refused")
        if modules:
            counts["modules"] += len(modules)
            plain = modules["python"]
            if kind == "valid":
                counts["functions compared"] += check_gradients(program, plain, rnd)
            elif kind == "stress":
                counts["calls"] += call_stress_functions(program, plain, rnd)
            elif kind == "data":
                counts["calls"] += call_data_functions(program, modules, rnd)
    except Exception:  # noqa: BLE001 - every escape is a finding
        counts["internal errors"] += 1
        findings.append((f"compile finding ({kind}, seed {seed})", source,
                         traceback.format_exc(limit=8)))
    start = time.monotonic()
    try:
        report = exprgrad.check(source, FILENAME, settings=Settings(timeout=check_seconds))
        counts["checked"] += 1
        if report.error is not None:
            counts["check: compile error reported"] += 1
            if "not valid Python" in report.error:
                raise Finding(report.error)
        for item in report.items:
            counts[f"item {item.status}"] += 1
            if item.status == FAILED and kind == "stress" and item.kind != "gradient":
                counts["stress FAILED checks"] += 1  # the generator's claims are random
            elif item.status == FAILED and (kind != "mutated" or item.kind == "gradient"):
                raise Finding(item.text(FILENAME))  # a corruption may make a check false
    except Exception:  # noqa: BLE001 - every escape is a finding
        counts["check findings"] += 1
        findings.append((f"check finding ({kind}, seed {seed})", source,
                         traceback.format_exc(limit=8)))
    elapsed = time.monotonic() - start
    counts["slowest check ms"] = int(elapsed * 1000)
    if elapsed > SLOW_CHECK:  # not a hang, but each is looked at: the budget is per item
        counts["slow checks"] += 1
        findings.append((f"slow check: {elapsed:.1f} s ({kind}, seed {seed})", source, ""))
    return counts, findings


# --- workers: one program at a time, killed when it hangs ---------------------------
def worker_main(conn, check_seconds: float, memory_mb: int) -> None:
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        job = conn.recv()
        if job is None:
            return
        kind, seed = job
        conn.send(run_one(kind, seed, check_seconds))


class Slot:
    """A worker process and the job it is running."""

    def __init__(self, args):
        self.args = args
        self.job = None
        self.started = 0.0
        self.start()

    def start(self):
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=worker_main, daemon=True,
                                       args=(child, self.args.check_seconds,
                                             self.args.memory_mb))
        self.process.start()
        child.close()

    def send(self, job):
        self.job, self.started = job, time.monotonic()
        self.cpu_at_start = self.cpu_seconds()
        self.conn.send(job)

    def cpu_seconds(self) -> float:
        """The worker's processor time so far (Linux /proc; else 0)."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def hangs(self, seconds: float) -> bool:
        """Past `seconds` of processor time on one program (wall time is no
        measure on a loaded machine), or ten times that of wall time."""
        wall = time.monotonic() - self.started
        return wall > seconds and (self.cpu_seconds() - self.cpu_at_start > seconds
                                   or wall > 10 * seconds)

    def restart(self):
        self.process.kill()
        self.process.join()
        self.conn.close()
        self.job = None
        self.start()

    def stop(self):
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def run(args) -> Counter:
    total: Counter = Counter()
    end = time.monotonic() + args.minutes * 60
    last = args.start + (args.programs or 10 ** 12)
    jobs = ((KINDS[k % len(KINDS)], args.seed * 1_000_003 + k)
            for k in range(args.start, last))
    slots = [Slot(args) for _ in range(args.workers)]
    last_progress = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            for slot in slots:
                job = next(jobs, None) if slot.job is None and now < end else None
                if job is not None:
                    slot.send(job)
            busy = [s for s in slots if s.job is not None]
            if not busy:
                break
            ready = wait([s.conn for s in busy], timeout=0.5)
            for slot in busy:
                if slot.conn in ready:
                    try:
                        counts, findings = slot.conn.recv()
                    except (EOFError, OSError):
                        total["worker deaths"] += 1
                        report(f"worker died ({slot.job[0]}, seed {slot.job[1]})",
                               slot.job, "")
                        slot.restart()
                        continue
                    merge(total, counts)
                    for what, source, trace in findings:
                        report(what, slot.job, source, trace)
                    slot.job = None
                elif slot.hangs(args.hang):
                    total["hangs"] += 1
                    total[slot.job[0]] += 1
                    report(f"hang: over {args.hang} s ({slot.job[0]}, seed {slot.job[1]})",
                           slot.job, "")
                    slot.restart()
            if time.monotonic() - last_progress > 60:
                last_progress = time.monotonic()
                print("progress:", summary(total, args), flush=True)
    finally:
        for slot in slots:
            slot.stop()
    return total


def merge(total: Counter, counts: Counter) -> None:
    for key, value in counts.items():
        total[key] = max(total[key], value) if key.startswith("slowest") else total[key] + value


def report(what: str, job, source: str, trace: str = "") -> None:
    if not source and job is not None:
        try:
            source = generate(*job)[1]
        except Exception:  # noqa: BLE001
            source = "(the generator failed too)"
    print(f"--- {what}:\n{source[:3000]}\n{trace}", flush=True)


FINDINGS = ("internal errors", "check findings", "hangs", "worker deaths", "generator errors")


def summary(total: Counter, args) -> str:
    tried = sum(total[k] for k in KINDS)
    per_kind = ", ".join(f"{k} {total[k]} ({total[k + ' compiled']} compiled, "
                         f"{total[k + ' refused']} refused)" for k in KINDS)
    items = ", ".join(f"{key[5:]} {value}" for key, value in sorted(total.items())
                      if key.startswith("item "))
    found = ", ".join(f"{key} {total[key]}" for key in FINDINGS)
    return (f"tried {tried} programs (numbers {args.start} to {args.start + tried - 1} of "
            f"seed {args.seed}; `--start {args.start + tried}` continues): {per_kind}; "
            f"through compile {tried - total['hangs']} "
            f"({total['modules']} emitted modules compiled with compile(), targets "
            f"{'+'.join(TARGETS)}); through check {total['checked']} "
            f"({total['check: compile error reported']} reported a compile error; items: "
            f"{items}; slowest check {total['slowest check ms'] / 1000:.1f} s, "
            f"{total['slow checks']} over {SLOW_CHECK:g} s); "
            f"{total['functions compared']} functions' gradients compared with the model, "
            f"{total['calls']} compiled functions called; FAILED check statements of "
            f"stress programs (random claims): {total['stress FAILED checks']}; "
            f"findings: {found}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--programs", type=int, default=0,
                        help="stop after this many programs (0: when the minutes are up)")
    parser.add_argument("--start", type=int, default=0,
                        help="the first program of the seed's sequence (continues a run)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hang", type=float, default=30,
                        help="processor seconds on one program that count as a hang")
    parser.add_argument("--workers", type=int, default=1, help="processes running programs")
    parser.add_argument("--check-seconds", type=float, default=1.0,
                        help="exprgrad.check's time budget per item")
    parser.add_argument("--memory-mb", type=int, default=3000,
                        help="address-space limit of a worker (0: none)")
    parser.add_argument("--log", help="append the summary line to this file")
    parser.add_argument("--label", default="", help="text put before the summary in the log")
    parser.add_argument("--replay", help="KIND:SEED: run one program and print its counts")
    args = parser.parse_args()
    if args.replay:
        kind, seed = args.replay.split(":")
        counts, findings = run_one(kind, int(seed), args.check_seconds)
        print(generate(kind, int(seed))[1])
        for what, _source, trace in findings:
            print(f"--- {what}\n{trace}")
        print(json.dumps(counts))
        return 1 if findings else 0
    started = time.time()
    total = run(args)
    line = summary(total, args)
    print(line, flush=True)
    if args.log:
        with open(args.log, "a", encoding="utf-8") as log:
            log.write(f"{args.label} seed {args.seed}, {args.workers} worker(s), "
                      f"{(time.time() - started) / 60:.1f} min: {line}\n")
    return 1 if any(total[key] for key in FINDINGS) else 0


if __name__ == "__main__":
    sys.exit(main())
