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

import os
from dataclasses import dataclass

from ...errors import CompileError
from ...files import is_source_path
from ..pipeline import differentiate, front_end, generate
from .checks import verify_checks
from .gradients import verify_gradients
from .numeric import load_emitted
from .report import AT_POINT, FAILED, NUMERIC, PROVED, UNVERIFIED, Item, Report

__all__ = ["Settings", "Report", "Item", "check", "verify_source", "PROVED", "NUMERIC",
           "AT_POINT", "FAILED", "UNVERIFIED"]


@dataclass(frozen=True)
class Settings:
    proof_seconds: float = 2.0  # per item; a slower SymPy proof falls back to numerics
    points: int = 4  # sample points that must agree
    attempts: int = 60  # sample points tried (points outside a domain are redrawn)


def check(path_or_source, filename: str | None = None, *, settings: Settings = Settings(),
          module_text: str | None = None) -> Report:
    """Verify an `.expr` file (a path) or source text.  `module_text` replaces
    the generated module (to verify a module as it was written or edited)."""
    source, name = _read(path_or_source, filename)
    return verify_source(source, name, settings=settings, module_text=module_text)


def verify_source(source: str, filename: str = "<string>", *, settings: Settings = Settings(),
                  module_text: str | None = None) -> Report:
    report = Report(filename)
    try:
        program = front_end(source, filename)
        emitted = differentiate(program)
    except CompileError as error:
        report.error = str(error.located(filename, source) if error.source_line is None
                           else error)
        return report
    text = module_text if module_text is not None else generate(program, emitted)
    namespace = load_emitted(text)
    report.items += verify_gradients(program, emitted, namespace, settings)
    report.items += verify_checks(program, settings)
    report.items.sort(key=lambda item: (item.line, item.kind != "gradient"))
    return report


def _read(path_or_source, filename):
    if is_source_path(path_or_source):
        path = os.fspath(path_or_source)
        with open(path, encoding="utf-8") as file:
            return file.read(), filename or path
    return path_or_source, filename or "<string>"
