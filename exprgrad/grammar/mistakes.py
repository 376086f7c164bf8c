"""Syntax errors that people coming from Python make, explained.

The parser's generic message ("unexpected name 'i'; expected ...") is right
but says nothing about what to write instead.  `explain` recognises a few
common mistakes from the text around a syntax error and returns a message
that does; anything it does not recognise keeps the generic message.
"""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..compiler.library import known_function
from ..errors import Loc

_STATEMENTS = {
    "for": "exprgrad has no 'for' statement; a loop is a comprehension, e.g. "
           "'acc = sum(w[i] * x[i] for i in range(3))' or '[x * i for i in range(3)]'",
    "while": "exprgrad has no 'while' loop; loops run over range(n) with n known at compile "
             "time, as comprehensions: 'sum(... for i in range(n))'",
    "if": "exprgrad has no 'if' statement; choose a value with a conditional expression: "
          "'y = a if x > 0 else b'",
    "elif": "exprgrad has no 'if' statement; chain conditional expressions: "
            "'y = a if x > 0 else b if x < -1 else c'",
    "else": "exprgrad has no 'if' statement; choose a value with a conditional expression: "
            "'y = a if x > 0 else b'",
    "import": "exprgrad has nothing to import: its functions (exp, log, tanh, ...) are built "
              "in; remove this line",
    "from": "exprgrad has nothing to import: its functions (exp, log, tanh, ...) are built "
            "in; remove this line",
    "lambda": "exprgrad has no 'lambda'; define a function on its own line: 'g(x) = x * 2'",
}
# The keyword starts the line and is not a local of that name being assigned.
_STATEMENT_START = re.compile(r"^(\s*)(" + "|".join(_STATEMENTS) + r")\b(?!\s*([-+*/]?=[^=]))")
_OPERATOR_BEFORE = re.compile(r"(\*\*|[-+*/^%]|[<>=!]=|[<>])\s*$")
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "POW", "COMPARE"}
_DOTTED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")


def explain(error: UnexpectedInput, source: str, loc: Loc) -> tuple[str, Loc] | None:
    """(message, location) for a recognised mistake, or None."""
    lines = source.split("\n")
    if not 1 <= loc.line <= len(lines):
        return None
    line = lines[loc.line - 1]
    for check in (_python_statement, _dotted_name, _operators_in_a_row):
        found = check(error, line, loc)
        if found is not None:
            return found
    return None


def _python_statement(error, line: str, loc: Loc):
    """`for i in range(3):`, `if x > 0:`, `import math` written as statements."""
    match = _STATEMENT_START.match(line)
    if match is None or loc.column <= match.end(1):
        return None
    keyword = match.group(2)
    if keyword in ("if", "else") and not line.rstrip().endswith(":"):
        return None  # a conditional expression split oddly: the generic message fits
    return _STATEMENTS[keyword], Loc(loc.line, match.end(1) + 1)


def _dotted_name(error, line: str, loc: Loc):
    """`math.exp(x)`, `np.tanh(x)`: there are no modules or attributes."""
    if not isinstance(error, UnexpectedCharacters) or error.char != ".":
        return None
    start = loc.column - 1
    for match in _DOTTED.finditer(line):
        if match.start(0) < start < match.end(0) and line[start] == ".":
            module, name = match.groups()
            instead = known_function(name)
            advice = (f"write '{instead}(...)'" if instead else
                      "call a built-in or your own function by its plain name")
            return (f"'{module}.{name}': exprgrad has no modules or attributes ('.' appears "
                    f"only in numbers); its functions are built in: {advice}",
                    Loc(loc.line, match.start(0) + 1))
    return None


def _operators_in_a_row(error, line: str, loc: Loc):
    """`x +* 2`: an operator where an operand must be."""
    token = getattr(error, "token", None)
    if not isinstance(error, UnexpectedToken) or not isinstance(token, Token) or \
            token.type not in _OPERATORS:
        return None
    match = _OPERATOR_BEFORE.search(line[:loc.column - 1])
    if match is None:
        return None
    first, second = match.group(1), str(token)
    if first == second == "/":
        return ("'//' (integer division) is not part of the language: all arithmetic is on "
                "floats; write '/'", Loc(loc.line, match.start(1) + 1))
    return (f"'{first}' is followed by '{second}': an operator needs an operand on each "
            "side; remove one of them or write the missing operand between them", loc)
