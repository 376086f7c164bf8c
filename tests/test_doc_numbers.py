"""What the docs state, checked against the commands that produce it, so the
docs cannot go stale: every `$ exprgrad explain ...` block of docs/explain.md
is that command's output, and docs/runtime.md's size of the compiled 2-8-8-1
loss is what examples/train_value.py builds."""

from __future__ import annotations

import importlib.util
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def shell_blocks(doc: Path, command: str) -> list[tuple[str, str]]:
    """(command line, output) of each ``` block that starts with `$ command`."""
    text = doc.read_text(encoding="utf-8")
    return re.findall(r"```\n\$ (" + re.escape(command) + r"[^\n]*)\n(.*?)```", text, re.S)


EXPLAIN_BLOCKS = shell_blocks(DOCS / "explain.md", "")


def test_explain_md_has_the_lecture_examples():
    commands = " ".join(c for c, _ in EXPLAIN_BLOCKS)
    assert "lecture.expr L --at a=2,b=-3,c=10,f=-2" in commands and "neuron" in commands


@pytest.mark.parametrize("command, output", EXPLAIN_BLOCKS, ids=[c[:60] for c, _ in
                                                                 EXPLAIN_BLOCKS])
def test_explain_md_shows_what_the_commands_print(command, output):
    script = f'exprgrad() {{ "{sys.executable}" -m exprgrad "$@"; }}\n{command}'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == output


def test_runtime_md_states_the_size_of_the_compiled_mlp_loss():
    stated = re.search(r"become a function of ([\d,]+) lines",
                       (DOCS / "runtime.md").read_text(encoding="utf-8"))
    assert stated, "docs/runtime.md no longer states the size"
    spec = importlib.util.spec_from_file_location("train_value", ROOT / "examples" /
                                                  "train_value.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    from exprgrad import nn
    points, labels = example.moons(30)
    random.seed(1337)  # the example's defaults: --points 30 --hidden 8 --seed 1337
    model = nn.MLP(2, [8, 8, 1])
    loss_grad = example.compile_loss(model, points, labels)
    assert loss_grad.source.count("\n") == int(stated.group(1).replace(",", ""))
