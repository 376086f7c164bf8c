"""How long Graphviz takes to lay out exprgrad drawings of growing size.

    python bench/draw_render.py [RENDERER ...]

For each graph: the number of Graphviz nodes drawn and the seconds each
renderer (default: graphviz-pure, and the system dot if present) takes for
SVG and PNG.  A run that exceeds the time limit is reported as such.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from exprgrad.drawing.dot import draw_program, drawn_node_count
from exprgrad.compiler.pipeline import front_end

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 60.0


def cases():
    for n in (10, 50, 100, 200):
        yield f"chain sum(w[i]*w[i]), n={n}", \
            f"def f(w[{n}]):\n    return sum(w[i]*w[i] for i in range({n}))\n", "f"
    for n in (2, 3, 4, 6):
        yield f"dense layer tanh(W x), {n}x{n}", (
            f"def f(W[{n}][{n}], x[{n}]):\n"
            f"    h = [tanh(sum(W[j][i]*x[i] for i in range({n}))) for j in range({n})]\n"
            f"    return sum(h[j]*h[j] for j in range({n}))\n"), "f"
    with open(os.path.join(ROOT, "examples", "mlp.expr"), encoding="utf-8") as file:
        mlp = file.read()
    yield "examples/mlp.expr mlp", mlp, "mlp"
    yield "examples/mlp.expr loss", mlp, "loss"
    yield "examples/mlp.expr data_loss (any n)", mlp, "data_loss"


def timed(renderer: str, fmt: str, source: str) -> str:
    start = time.perf_counter()
    try:
        done = subprocess.run([renderer, f"-T{fmt}"], input=source.encode(),
                              capture_output=True, timeout=LIMIT)
    except subprocess.TimeoutExpired:
        return f"> {LIMIT:g} s"
    if done.returncode:
        return "failed"
    return f"{time.perf_counter() - start:.2f} s"


def main() -> None:
    renderers = sys.argv[1:] or [r for r in (shutil.which("graphviz-pure"), shutil.which("dot"))
                                 if r]
    print("| graph | Graphviz nodes | " + " | ".join(
        f"{os.path.basename(r)} {fmt}" for r in renderers for fmt in ("svg", "png")) + " |")
    print("|---|---|" + "---|" * (2 * len(renderers)))
    for title, source, name in cases():
        program = front_end(source)
        f = program.function(name)
        nodes = drawn_node_count(program.graph, program.graph.ancestors([f.output]))
        dot = draw_program(program, name, max_nodes=None).source
        times = [timed(r, fmt, dot) for r in renderers for fmt in ("svg", "png")]
        print(f"| {title} | {nodes} | " + " | ".join(times) + " |", flush=True)


if __name__ == "__main__":
    main()
