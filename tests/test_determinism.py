"""Identical input gives byte-identical output: across runs, across processes
and across PYTHONHASHSEED values (set and dict order must never leak into
the generated text)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import exprgrad

from fuzz_strategies import random_program

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.expr"))

# Emits every source given on stdin (a JSON list) and prints the SHA-256 of each text.
EMIT_ALL = """
import hashlib, json, sys
import exprgrad
sources = json.load(sys.stdin)
print(json.dumps([hashlib.sha256(exprgrad.emit(s, n).encode()).hexdigest()
                  for n, s in sources]))
"""


def _sources() -> list[tuple[str, str]]:
    sources = [(p.name, p.read_text()) for p in EXAMPLES]
    sources += [(f"fuzz{seed}.expr", random_program(random.Random(seed)).source)
                for seed in (3, 17, 101, 2024, 99991)]
    # names that hash differently under each seed, in sets the compiler builds
    sources.append(("names.expr", "\n".join(
        f"def f{k}(alpha{k}, beta{k}, gamma{k}):\n"
        f"    tmp = alpha{k} * beta{k} + max(alpha{k}, gamma{k}, beta{k})\n"
        f"    return tmp * tmp + relu(gamma{k} - tmp)"
        for k in range(8))))
    return sources


def _hashes_in_subprocess(seed: str, sources) -> list[str]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    done = subprocess.run([sys.executable, "-c", EMIT_ALL], input=json.dumps(sources),
                          capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_output_is_identical_across_hash_seeds():
    sources = _sources()
    assert len(EXAMPLES) >= 1
    here = [hashlib.sha256(exprgrad.emit(s, n).encode()).hexdigest() for n, s in sources]
    for seed in ("0", "1", "12345", "4294967295"):
        assert _hashes_in_subprocess(seed, sources) == here, seed


def test_output_is_identical_across_runs_in_one_process():
    for name, source in _sources():
        first = exprgrad.emit(source, name)
        assert all(exprgrad.emit(source, name) == first for _ in range(2))
