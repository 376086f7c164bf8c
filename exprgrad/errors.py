"""The one exception hierarchy of exprgrad.

Every problem with a user's source text is a `CompileError` that knows where it
happened.  `str(error)` is what a user sees on the command line: the location,
the message, the offending line and a caret under the column.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Loc:
    """A 1-based line and column in a source file."""

    line: int
    column: int


class CompileError(Exception):
    """Bad source text: says what is wrong, where, and what to do."""

    def __init__(self, message: str, loc: Loc | None = None, filename: str = "<string>",
                 source: str | None = None):
        self.message = message
        self.filename = filename
        self.line = loc.line if loc else 1
        self.column = loc.column if loc else 1
        self.source_line = _line_of(source, self.line) if source is not None else None
        super().__init__(str(self))

    def located(self, filename: str, source: str) -> "CompileError":
        """Attach the file name and source text once they are known (errors are
        raised deep in the compiler, which only knows line and column)."""
        self.filename = filename
        self.source_line = _line_of(source, self.line)
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        head = f"{self.filename}:{self.line}:{self.column}: error: {self.message}"
        if self.source_line is None:
            return head
        shown, caret_at = _window(self.source_line.expandtabs(1), max(self.column, 1) - 1)
        return f"{head}\n    {shown}\n    {' ' * caret_at}^"


class ParseError(CompileError):
    """The text does not follow the grammar (syntax, characters, indentation)."""


class NameResolutionError(CompileError):
    """A name is undefined, defined twice, or used as the wrong kind of thing."""


class CallError(CompileError):
    """A call has the wrong number or shape of arguments, or recurses."""


class ShapeError(CompileError):
    """An array is used where a scalar is expected, or shapes do not agree."""


class LimitError(CompileError):
    """The program exceeds one of exprgrad's documented resource limits."""


class ConstantOverflowError(CompileError):
    """An operation on compile-time constants overflows a float (`exp(1000)`,
    `2^2^2^2^2`), which the program would raise on at run time."""


_WIDTH = 100


def _line_of(source: str, line: int) -> str:
    lines = source.split("\n")
    return lines[line - 1].rstrip("\r") if 1 <= line <= len(lines) else ""


def _window(text: str, column: int) -> tuple[str, int]:
    """Cut a very long line down to the part around the column."""
    if len(text) <= _WIDTH:
        return text, column
    start = max(0, min(column - _WIDTH // 2, len(text) - _WIDTH))
    prefix = "... " if start else ""
    suffix = " ..." if start + _WIDTH < len(text) else ""
    return prefix + text[start:start + _WIDTH] + suffix, len(prefix) + column - start
