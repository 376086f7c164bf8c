"""SymPy verification of what exprgrad emits and of hand derivations (§4).

`check(path_or_source)` compiles a file exactly as `exprgrad compile` does,
then verifies

* every emitted gradient (`f_grad`, `f_vjp`) of every function against
  SymPy's own derivative of the source function (`gradients.py`), running the
  emitted text itself at 50 digits and proving equality where SymPy can;
* every `check` statement (`checks.py`), with a counterexample when one is
  false and, for derivatives of a function with locals, where the hand
  derivation first goes wrong (`diagnose.py`).

The result is a `Report`: truthy iff everything holds.  See
docs/verification.md.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, replace

from ..errors import CompileError
from ..files import is_source_path
from ..compiler.pipeline import differentiate, front_end, generate
from .checks import check_tasks
from .gradients import gradient_tasks
from .numeric import load_emitted
from .report import (AT_POINT, FAILED, NUMERIC, PROVED, TIME_LIMIT, UNVERIFIED, Item,
                     Report)

__all__ = ["Settings", "Report", "Item", "check", "verify_source", "PROVED", "NUMERIC",
           "TIME_LIMIT", "AT_POINT", "FAILED", "UNVERIFIED", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 3.0


@dataclass(frozen=True)
class Settings:
    # Seconds per item for everything it does (SymPy translation, numeric
    # comparison, proof); a whole file takes at most items × timeout plus
    # compiling it once.
    timeout: float = DEFAULT_TIMEOUT
    points: int = 4  # random sample points that must agree (then one per branch)
    attempts: int = 60  # sample points tried (points outside a domain are redrawn)
    prove: bool = True  # try a SymPy proof after the numbers agree
    checks_only: bool = False  # only the `check` statements, not the emitted gradients


def check(path_or_source, filename: str | None = None, *, settings: Settings = Settings(),
          timeout: float | None = None, checks_only: bool | None = None, on_result=None,
          module_text: str | None = None, target: str = "python") -> Report:
    """Verify an `.expr` file (a path) or source text.  `timeout`: seconds
    per item (default 3); `checks_only`: only `check` statements;
    `on_result(item)` is called with each item as soon as it is ready;
    `module_text` replaces the generated module (to verify a module as it
    was written or edited); `target` is the target whose text is verified."""
    source, name = _read(path_or_source, filename)
    if timeout is not None:
        settings = replace(settings, timeout=timeout)
    if checks_only is not None:
        settings = replace(settings, checks_only=checks_only)
    return verify_source(source, name, settings=settings, module_text=module_text,
                         on_result=on_result, target=target)


def verify_source(source: str, filename: str = "<string>", *, settings: Settings = Settings(),
                  module_text: str | None = None, on_result=None,
                  target: str = "python") -> Report:
    """The report for `source`; items in source order, each passed to
    `on_result` as soon as it is verified."""
    if not settings.timeout > 0:
        raise ValueError("the time limit per item must be a positive number of seconds")
    report = Report(filename)
    try:
        program = front_end(source, filename)
        emitted = differentiate(program)
        text = module_text if module_text is not None else generate(program, emitted, target)
    except CompileError as error:  # scheduling has limits too (MAX_SCHEDULE_STEPS)
        report.error = str(error.located(filename, source) if error.source_line is None
                           else error)
        return report
    if target == "array" and not _array_target_runs():
        report.error = (f"{filename}: the array target's text runs on NumPy, which is not "
                        "installed (pip install 'exprgrad[array]'); nothing verified")
        return report
    try:
        namespace = load_emitted(text) if target == "python" else _load_as_is(text)
    except SyntaxError as error:
        report.error = (f"{filename}: the generated module is not valid Python (line "
                        f"{error.lineno}: {error.msg}); this is a bug in exprgrad")
        return report
    tasks = check_tasks(program, settings, namespace)
    if not settings.checks_only:
        tasks += gradient_tasks(program, emitted, namespace, settings, target)
    tasks.sort(key=lambda task: task[0])  # stable: a function's gradients before its checks
    for _, run in tasks:
        for item in run():
            report.items.append(item)
            if on_result is not None:
                on_result(item)
    return report


def _array_target_runs() -> bool:
    """The array target's module imports NumPy when it runs on lists."""
    return importlib.util.find_spec("numpy") is not None


def _load_as_is(text: str) -> dict:
    """A target's module run as users run it: the array target computes with
    its namespace's floats, which the 50-digit `math` of `load_emitted`
    cannot reach, so it is compared in double precision."""
    namespace = {"__name__": "exprgrad_verified"}
    exec(compile(text, "<exprgrad emitted module>", "exec"), namespace)
    return namespace


def _read(path_or_source, filename):
    if is_source_path(path_or_source):
        path = os.fspath(path_or_source)
        with open(path, encoding="utf-8") as file:
            return file.read(), filename or path
    return path_or_source, filename or "<string>"
