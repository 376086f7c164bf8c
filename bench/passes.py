"""What each optimisation buys: the same workloads compiled with one of them
turned off, side by side with all of them on.

    python bench/passes.py            # README expression, lecture MLP, MLP(3,[16,16,1])×32
    python bench/passes.py --quick    # tiny sizes (the smoke test)

A variant is a `compiler.options.Options` (the passes it turns off) and,
for the one that is not a pass, a change of the op table.  For each: the DAG
nodes built, the nodes `f_grad` needs (all that is emitted), the statements
and operations of the generated `f_grad`, and its time per call (min of
repeated batches).  Hash-consing cannot be turned off (every node is built
through it), so its effect is counted instead: how many node requests an
existing node answered.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exprgrad.compiler import graph, ops, rules  # noqa: E402
from exprgrad.compiler.options import DEFAULT, Options  # noqa: E402
from exprgrad.compiler.pipeline import differentiate, front_end, scheduled  # noqa: E402
from exprgrad.compiler.printers import python  # noqa: E402
from exprgrad.compiler.program import operations  # noqa: E402
from exprgrad.compiler.refs import call  # noqa: E402
from exprgrad.compiler.values import flatten  # noqa: E402
from exprgrad.runtime.modules import module_from_text  # noqa: E402
from workloads import (LECTURE_XS, LECTURE_YS, README_ARGS, README_SOURCE,  # noqa: E402
                       make_mlp, mlp_source)


@contextmanager
def _tanh_from_cosh():
    """tanh's derivative as a table without forward-value reuse writes it:
    1/cosh².  Reverse mode caches each rule's template, so the cache is
    emptied on the way in and out."""
    rule = lambda d, out, x: (d / (call("cosh", x) * call("cosh", x)),)  # noqa: E731
    with patch.dict(ops.OPS, {"tanh": replace(ops.OPS["tanh"], grad=rule)}):
        rules.rule_template.cache_clear()
        try:
            yield
        finally:
            rules.rule_template.cache_clear()


# name → (options, op table change)
VARIANTS = {
    "all passes": (DEFAULT, nullcontext),
    "no identities or strength reduction": (Options(identities=False, strength=False),
                                            nullcontext),
    "no inlining of single-use values": (Options(inline=False), nullcontext),
    "tanh' recomputed (1/cosh²), no reuse": (DEFAULT, _tanh_from_cosh),
}


def workloads(quick: bool) -> dict[str, tuple[str, str, tuple]]:
    """name → (source, function name, arguments)."""
    lecture = make_mlp(3, [4, 4, 1], 4, seed=1, xs=LECTURE_XS, ys=LECTURE_YS)
    wide = make_mlp(2, [3, 1], 4, seed=2) if quick else make_mlp(3, [16, 16, 1], 32, seed=2)
    return {
        "README expr": (README_SOURCE, "readme", README_ARGS),
        "lecture MLP": (mlp_source(lecture), "loss", tuple(lecture.params)),
        "wide MLP": (mlp_source(wide), "loss", tuple(wide.params)),
    }


def build(source: str, name: str, options: Options = DEFAULT) -> tuple[dict, object]:
    """(counts, f_grad) of `source` compiled with `options`."""
    program = front_end(source, "bench.expr", options)
    emitted = differentiate(program)
    gradient = next(e for e in emitted if e.name == name + "_grad")
    needed = program.graph.ancestors(flatten(gradient.result))
    functions = scheduled(program, emitted)
    text = python.module(functions, program.filename)
    fn = next(f for f in functions if f.name == name + "_grad")
    counts = {"nodes": len(program.graph), "needed": len(needed),
              "statements": len(fn.body), "operations": operations(fn)}
    return counts, getattr(module_from_text(text, "bench.expr"), name + "_grad")


def time_interleaved(grads: dict[str, object], args: tuple, rounds: int) -> dict[str, float]:
    """µs per call of each function: the best batch, batches taken in turn so
    a slow spell of the machine hits every variant alike."""
    number = max(1, int(0.01 / _once(grads["all passes"], args)))
    best = dict.fromkeys(grads, float("inf"))
    for _ in range(rounds):
        for variant, grad in grads.items():
            seconds = timeit.timeit(lambda: grad(*args), number=number) / number
            best[variant] = min(best[variant], 1e6 * seconds)
    return best


def _once(fn, args) -> float:
    timer = timeit.default_timer
    start = timer()
    fn(*args)
    return max(timer() - start, 1e-7)


def sharing(source: str) -> tuple[int, int]:
    """(node requests, requests answered by an existing node) while building
    the DAG and its adjoints: what hash-consing saved."""
    counts = [0, 0]
    add = graph.Graph.add

    def counting_add(self, op, *args, attr=None):
        counts[0] += 1
        counts[1] += self.find(op, args, attr) is not None
        return add(self, op, *args, attr=attr)

    differentiate(front_end(source, "bench.expr"))  # fills the rule-template cache first,
    with patch.object(graph.Graph, "add", counting_add):
        differentiate(front_end(source, "bench.expr"))  # so only the program's nodes count
    return counts[0], counts[1]


def table(results: dict[str, dict[str, dict]]) -> str:
    lines = ["| workload | variant | f_grad per call | vs all passes | operations | statements "
             "| DAG nodes needed / built |", "|---|---|---:|---:|---:|---:|---:|"]
    for workload, variants in results.items():
        base = variants["all passes"]["us"]
        for variant, m in variants.items():
            lines.append(f"| {workload} | {variant} | {m['us']:,.1f} µs | {m['us'] / base:.2f}× "
                         f"| {m['operations']:,} | {m['statements']:,} "
                         f"| {m['needed']:,} / {m['nodes']:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 15
    results: dict[str, dict[str, dict]] = {}
    shared = {}
    for workload, (source, name, call_args) in workloads(args.quick).items():
        results[workload], grads = {}, {}
        for variant, (options, op_table) in VARIANTS.items():
            with op_table():
                results[workload][variant], grads[variant] = build(source, name, options)
        for variant, us in time_interleaved(grads, call_args, repeat).items():
            results[workload][variant]["us"] = us
        shared[workload] = sharing(source)
    print(table(results))
    counted = [f"{w} {hits:,} of {total:,} ({hits / total:.0%})"
               for w, (total, hits) in shared.items()]
    print("\nHash-consing (CSE), node requests answered by an existing node: "
          + "; ".join(counted))
    print("f_grad per call: the best of interleaved batches.  DAG nodes needed: what "
          "f_grad's results use (all that is emitted), of all the nodes built.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
