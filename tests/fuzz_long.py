"""The long fuzz run: the properties of tests/test_fuzz.py for minutes.

    python tests/fuzz_long.py --minutes 5 [--seed 1] [--slow 5] [--workers 2]
                              [--check-every 50] [--check-seconds 20] [--skip-known]

Cycles through three kinds of program: valid generated programs (compiled,
values and gradients checked against the mpmath model), corrupted ones
(must compile or raise a located CompileError) and stress programs (power
towers, float-range constants, deep `diff` nesting, nested reductions, long
names, the array built-ins; compiled or refused with a located error, and
their functions may raise only arithmetic errors).  Every emitted module is
compiled with `compile()`.  Every `--check-every`-th valid or stress program
also goes through `exprgrad.check`, which must finish within
`--check-seconds` and raise nothing.

Any other exception, a wrong gradient, or a compile slower than --slow
seconds is printed with its source and counted; a compile still running
after --hang seconds is stopped and counted as a hang.  Ends with one
summary line: programs tried by kind, internal errors, hangs, check runs.
Exit status 1 if anything was found.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
import traceback
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import exprgrad  # noqa: E402
from fuzz_strategies import mutate, random_program, stress_program  # noqa: E402
from test_fuzz import (call_stress_functions, check_gradients, compile_or_refuse,  # noqa: E402
                       no_hang, refused_as_designed)

KINDS = ("valid", "mutated", "stress")


class Hang(Exception):
    """The body ran past its time budget."""


def run_one(kind: str, seed: int, args, counts: Counter) -> None:
    rnd = random.Random(seed)
    try:
        program = stress_program(rnd, not args.skip_known) if kind == "stress" else \
            random_program(rnd, depth=rnd.choice([2, 3, 3, 4]))
        source = mutate(program.source, rnd) if kind == "mutated" else program.source
    except Exception:  # noqa: BLE001 - the generator's own bug, not the compiler's
        counts["generator errors"] += 1
        _report("generator error", kind, seed, "")
        return
    counts[kind] += 1
    start = time.monotonic()
    try:
        with no_hang(args.hang):
            module = compile_or_refuse(source)
            counts["refused"] += module is None
            if kind == "valid":
                if module is None and refused_as_designed(source):
                    counts["constant overflow"] += 1
                    return
                if module is None:
                    raise AssertionError("a valid program was refused")
                counts["compared"] += check_gradients(program, module, rnd)
            elif kind == "stress" and module is not None:
                counts["calls"] += call_stress_functions(program, module, rnd)
    except AssertionError as error:
        hang = "still running after" in str(error)
        counts["hangs" if hang else "internal errors"] += 1
        _report("hang" if hang else "finding", kind, seed, source)
        return
    except Exception:  # noqa: BLE001 - every escape is a finding
        counts["internal errors"] += 1
        _report("finding", kind, seed, source)
        return
    elapsed = time.monotonic() - start
    counts["slowest ms"] = max(counts["slowest ms"], int(elapsed * 1000))
    if elapsed > args.slow:
        counts["slow"] += 1
        print(f"--- slow: {elapsed:.1f} s ({kind}, seed {seed}):\n{source[:2000]}", flush=True)
    if kind != "mutated" and args.check_every and counts[kind] % args.check_every == 0:
        run_check(kind, seed, source, args, counts)


def run_check(kind: str, seed: int, source: str, args, counts: Counter) -> None:
    counts["checks"] += 1
    start = time.monotonic()
    try:
        with no_hang(args.check_seconds):
            exprgrad.check(source, "fuzz.expr", timeout=1.0)
    except Exception as error:  # noqa: BLE001 - every escape is a finding
        if isinstance(error, AssertionError) and "still running after" in str(error):
            counts["check hangs"] += 1
            _report(f"check over {args.check_seconds} s", kind, seed, source)
        else:
            counts["check internal errors"] += 1
            _report("check finding", kind, seed, source)
    counts["slowest check ms"] = max(counts["slowest check ms"],
                                     int((time.monotonic() - start) * 1000))


def _report(what: str, kind: str, seed: int, source: str) -> None:
    print(f"--- {what} ({kind}, seed {seed}):\n{source[:3000]}", flush=True)
    traceback.print_exc(limit=6, file=sys.stdout)
    sys.stdout.flush()


def worker(job) -> Counter:
    index, workers, args = job
    end = time.monotonic() + args.minutes * 60
    counts: Counter = Counter()
    k = index
    while time.monotonic() < end:
        run_one(KINDS[k % len(KINDS)], args.seed * 1_000_003 + k, args, counts)
        k += workers
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow", type=float, default=5.0, help="seconds that count as slow")
    parser.add_argument("--hang", type=int, default=60, help="seconds that count as a hang")
    parser.add_argument("--workers", type=int, default=1, help="processes running programs")
    parser.add_argument("--check-every", type=int, default=0,
                        help="also run exprgrad.check on every N-th valid and stress program")
    parser.add_argument("--check-seconds", type=int, default=20,
                        help="seconds a check may take before it counts as a hang")
    parser.add_argument("--skip-known", action="store_true",
                        help="leave out one-element arrays with long names (a case the code "
                             "generator once emitted as invalid Python)")
    args = parser.parse_args()
    jobs = [(i, args.workers, args) for i in range(args.workers)]
    if args.workers == 1:
        results = [worker(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            results = pool.map(worker, jobs)
    total: Counter = Counter()
    for counts in results:
        for key, value in counts.items():
            total[key] = max(total[key], value) if key.startswith("slowest") else \
                total[key] + value
    tried = sum(total[k] for k in KINDS)
    print(f"tried {tried} programs in {args.minutes:g} min with {args.workers} worker(s): "
          f"{total['valid']} valid ({total['compared']} functions' gradients compared, "
          f"{total['constant overflow']} refused for a constant past the float range), "
          f"{total['mutated']} corrupted, {total['stress']} stress "
          f"({total['calls']} compiled functions called); {total['refused']} refused with a "
          f"located CompileError; slowest compile {total['slowest ms'] / 1000:.2f} s; "
          f"internal errors: {total['internal errors']}; hangs: {total['hangs']}; "
          f"slow: {total['slow']}; generator errors: {total['generator errors']}; "
          f"checks: {total['checks']} (internal errors "
          f"{total['check internal errors']}, over {args.check_seconds} s "
          f"{total['check hangs']}, slowest {total['slowest check ms'] / 1000:.1f} s)")
    findings = total["internal errors"] + total["hangs"] + total["slow"] + \
        total["generator errors"] + \
        total["check internal errors"] + total["check hangs"]
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
