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

The backward stage starts at the first statement that applies tanh's
derivative rule, `(1.0 - h * h)`: the first adjoint statement of these MLPs.
"""

from __future__ import annotations

import argparse
import ast
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import exprgrad  # noqa: E402
from workloads import LECTURE_XS, LECTURE_YS, make_mlp, mlp_source  # noqa: E402

STAGES = ("arguments", "forward", "backward", "results")


def cuts(text: str, name: str) -> list[str]:
    """Module texts whose `name` returns after each stage, and the whole."""
    fn = next(f for f in ast.parse(text).body
              if isinstance(f, ast.FunctionDef) and f.name == name)
    lines = text.splitlines()
    body = fn.body[1:]  # after the docstring
    first_forward = next(s for s in body if not isinstance(s, ast.Try)).lineno
    first_backward = next(s.lineno for s in body if "(1.0 - " in lines[s.lineno - 1])
    returns = fn.body[-1].lineno
    return ["\n".join(lines[:line - 1] + ["    return None", ""])
            for line in (first_forward, first_backward, returns)] + [text]


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
    text = exprgrad.emit(mlp_source(task), "mlp.expr")
    params = tuple(task.params)
    times = [seconds_per_call(t, "loss_grad", params, number, args.repeat)
             for t in cuts(text, "loss_grad")]
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
