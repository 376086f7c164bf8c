"""Where the time of a generated gradient goes, stage by stage.

A generated `f_grad` is straight-line code, so a function profiler sees one
call; this script profiles it by truncation instead.  It times the function
cut after each stage (returning at once), and the difference between
consecutive cuts is that stage's cost:

  arguments   unpacking and converting the arguments (the prologue)
  forward     the forward statements
  backward    the adjoint statements (named temporaries)
  results     the return: the value and the gradient sums, as nested lists

    python bench/anatomy.py               # the lecture MLP(3, [4, 4, 1]) x 4
    python bench/anatomy.py --wide        # MLP(3, [16, 16, 1]) x 32

The stages are read from the scheduled program (`program.Function`): the
prologue is printed from the parameters, and each top-level statement says
whether it computes the reverse pass (`Assign.backward`); a cut is the
program with its body cut there and `return None`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exprgrad.compiler.pipeline import build  # noqa: E402
from exprgrad.compiler.printers import python  # noqa: E402
from exprgrad.compiler.program import Assign, Const, Function, Return, walk  # noqa: E402
from workloads import LECTURE_XS, LECTURE_YS, make_mlp, mlp_source  # noqa: E402

STAGES = ("arguments", "forward", "backward", "results")


def _backward(statement) -> bool:
    return any(isinstance(s, Assign) and s.backward for s in walk([statement]))


def cuts(function: Function) -> list[str]:
    """Module texts whose function returns 0.0 after each stage, and the whole."""
    body = function.body
    first_backward = next(i for i, s in enumerate(body) if _backward(s))
    ends = (0, first_backward, len(body) - 1)
    stages = [replace(function, body=body[:end] + [Return(Const(0.0))]) for end in ends]
    return [python.module([f], "mlp.expr") for f in (*stages, function)]


def seconds_per_call(text: str, name: str, args: tuple, number: int, repeat: int) -> float:
    namespace: dict = {}
    exec(compile(text, "<anatomy>", "exec"), namespace)
    fn = namespace[name]
    return min(timeit.repeat(lambda: fn(*args), number=number, repeat=repeat)) / number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wide", action="store_true", help="MLP(3, [16, 16, 1]) x 32")
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args(argv)
    if args.wide:
        task, number = make_mlp(3, [16, 16, 1], 32, seed=2), 50
    else:
        task, number = make_mlp(3, [4, 4, 1], 4, seed=1, xs=LECTURE_XS, ys=LECTURE_YS), 3000
    text, functions = build(mlp_source(task), "mlp.expr")
    params = tuple(task.params)
    gradient = next(f for f in functions if f.name == "loss_grad")
    times = [seconds_per_call(t, "loss_grad", params, number, args.repeat)
             for t in cuts(gradient)]
    forward = seconds_per_call(text, "loss", params, number, args.repeat)
    previous = 0.0
    print(f"{'stage':<10} {'µs':>8} {'share':>6}")
    for stage, total in zip(STAGES, times):
        print(f"{stage:<10} {1e6 * (total - previous):8.2f} {(total - previous) / times[-1]:6.0%}")
        previous = total
    print(f"{'loss_grad':<10} {1e6 * times[-1]:8.2f}\n{'loss':<10} {1e6 * forward:8.2f}"
          f"   (gradient / forward {times[-1] / forward:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
