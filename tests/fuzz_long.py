"""The long fuzz run: the properties of tests/test_fuzz.py for minutes.

    python tests/fuzz_long.py --minutes 5 [--seed 1] [--slow 5]

Alternates valid generated programs (compiled, values and gradients checked
against the mpmath model) and corrupted ones (must compile or raise a
located CompileError).  Any other exception, a wrong gradient, or a compile
slower than --slow seconds is printed with its source and counted.  Ends with
one summary line: programs tried, compared, refused, findings.  Exit status
1 if anything was found.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fuzz_strategies import mutate, random_program  # noqa: E402
from test_fuzz import check_gradients, compile_or_refuse, no_hang  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow", type=float, default=5.0, help="seconds that count as slow")
    parser.add_argument("--hang", type=int, default=60, help="seconds that count as a hang")
    args = parser.parse_args()
    end = time.monotonic() + args.minutes * 60
    counts = dict(valid=0, mutated=0, compared=0, refused=0, findings=0, slowest=0.0)
    k = 0
    while time.monotonic() < end:
        seed = args.seed * 1_000_003 + k
        k += 1
        rnd = random.Random(seed)
        program = random_program(rnd, depth=rnd.choice([2, 3, 3, 4]))
        valid = k % 2 == 0
        source = program.source if valid else mutate(program.source, rnd)
        start = time.monotonic()
        try:
            with no_hang(args.hang):
                module = compile_or_refuse(source)
                elapsed = time.monotonic() - start
                if valid:
                    counts["valid"] += 1
                    if module is None:
                        raise AssertionError("a valid program was refused")
                    counts["compared"] += check_gradients(program, module, rnd)
                else:
                    counts["mutated"] += 1
                    counts["refused"] += module is None
        except Exception:  # noqa: BLE001 - every escape is a finding
            counts["findings"] += 1
            print(f"--- finding (seed {seed}, {'valid' if valid else 'mutated'}):\n{source}")
            traceback.print_exc(limit=6)
            continue
        counts["slowest"] = max(counts["slowest"], elapsed)
        if elapsed > args.slow:
            counts["findings"] += 1
            print(f"--- slow: {elapsed:.1f} s (seed {seed}):\n{source[:2000]}")
    print(f"tried {counts['valid'] + counts['mutated']} programs in {args.minutes:g} min: "
          f"{counts['valid']} valid ({counts['compared']} functions' gradients compared), "
          f"{counts['mutated']} corrupted ({counts['refused']} refused with CompileError); "
          f"slowest compile {counts['slowest']:.2f} s; findings: {counts['findings']}")
    return 1 if counts["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
