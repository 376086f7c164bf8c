"""Source text → typed AST.

Lark's LALR parser calls `ToAst`'s methods as it reduces each rule (no parse
tree is built, and nothing recurses), so a 100,000-term sum or 10,000 nested
parentheses parse in linear time.  Lark's exceptions are turned into
`ParseError`s that say what was expected.
"""

from __future__ import annotations

import math
from importlib import resources

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput,
                             UnexpectedToken, VisitError)
from lark.indenter import Indenter

from ..compiler import limits
from ..errors import CompileError, LimitError, Loc, ParseError
from . import ast, mistakes


def loc_of(token: Token) -> Loc:
    return Loc(token.line, token.column)


class _Indentation(Indenter):
    """Python-style blocks: a newline inside brackets is ignored.  As in
    Python, indentation that mixes tabs and spaces so that its depth depends
    on the tab width is refused (Python's TabError)."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def process(self, stream):
        self.narrow_levels = [0]  # the indentation depths with a tab counted as 1 column
        yield from super().process(stream)

    def handle_NL(self, token):
        if self.paren_level > 0:
            return
        yield token
        whitespace = token.rsplit("\n", 1)[1]
        indent = len(whitespace.expandtabs(self.tab_len))
        narrow = len(whitespace.expandtabs(1))
        self._check_tabs(indent, narrow, token)
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            self.narrow_levels.append(narrow)
            yield Token.new_borrow_pos(self.INDENT_type, token, token)
        else:
            while indent < self.indent_level[-1]:
                self.indent_level.pop()
                self.narrow_levels.pop()
                yield Token.new_borrow_pos(self.DEDENT_type, token, token)
            if indent != self.indent_level[-1]:
                line = token.end_line
                raise ParseError("this line's indentation matches no enclosing block; "
                                 "indent it like the lines above it", Loc(line, indent + 1))

    def _check_tabs(self, indent: int, narrow: int, token) -> None:
        """The line must be deeper, as deep or shallower than the current
        block whatever a tab's width is (8 columns or 1)."""
        wide_order = (indent > self.indent_level[-1]) - (indent < self.indent_level[-1])
        narrow_order = (narrow > self.narrow_levels[-1]) - (narrow < self.narrow_levels[-1])
        if wide_order != narrow_order:
            raise ParseError("this line mixes tabs and spaces in its indentation differently "
                             "from the lines above it; indent every line of a block the same "
                             "way (4 spaces is usual)", Loc(token.end_line, 1))


_AUGMENTED = {"+=": "+", "-=": "-", "*=": "*", "/=": "/"}


@v_args(inline=True)
class ToAst(Transformer):
    """One method per grammar rule or alias; each returns an `ast` node."""

    # --- statements ----------------------------------------------------------
    def module(self, *statements):
        return list(statements)

    def constant(self, name, value):
        return ast.Constant(loc_of(name), str(name), value)

    def function_line(self, name, params, wrt, value):
        result = ast.Return(getattr(value, "loc", loc_of(name)), (value,))
        return ast.Function(loc_of(name), str(name), params or (), wrt, (), result)

    def function_def(self, _def, name, params, wrt, *body):
        *statements, result = body
        for statement in statements:
            if isinstance(statement, ast.Return):
                raise ParseError("'return' must be the last statement of a function; "
                                 "move the statements after it before it", statement.loc)
        if not isinstance(result, ast.Return):
            raise ParseError(f"function '{name}' does not end with a 'return' statement; "
                             "add 'return <expression>' as its last line", loc_of(name))
        return ast.Function(loc_of(name), str(name), params or (), wrt, tuple(statements), result)

    def params(self, *params):
        return tuple(p for p in params if p is not None)

    def param(self, name, *dims):
        sizes = [d for d in dims if d.type == "INT"]
        for d in sizes:
            if len(d.lstrip("0")) > len(str(limits.MAX_RANGE)) or int(d) > limits.MAX_RANGE:
                raise LimitError(f"array parameter '{name}' has a dimension of "
                                 f"{_abbreviate(str(d))}; an array has at most "
                                 f"{limits.MAX_RANGE:,} elements", loc_of(d))
            if int(d) == 0:
                raise ParseError(f"array parameter '{name}' has a zero size; sizes start at 1",
                                 loc_of(d))
        # A dimension written as a name (`X[n][5]`) is a data axis: its length
        # is given at call time.
        shape = tuple(int(d) if d.type == "INT" else str(d) for d in dims
                      if d.type in ("INT", "NAME"))
        return ast.Param(loc_of(name), str(name), shape)

    def wrt(self, _wrt, *names):
        return tuple(ast.Name(loc_of(n), str(n)) for n in names)

    def assign(self, name, op, value):
        return ast.Assign(loc_of(name), str(name), _AUGMENTED.get(str(op)), value)

    def return_(self, keyword, *values):
        return ast.Return(loc_of(keyword), tuple(v for v in values if v is not None))

    def check(self, keyword, test, where, within):
        if not (isinstance(test, ast.Compare) and test.ops == ("==",)):
            raise ParseError("a check compares two expressions: write 'check lhs == rhs'",
                             getattr(test, "loc", loc_of(keyword)))
        lhs, rhs = test.operands
        return ast.Check(loc_of(keyword), lhs, rhs, where or (), within)

    def where(self, *bindings):
        return tuple(bindings)

    def binding(self, name, value):
        return ast.Binding(loc_of(name), str(name), value)

    def within(self, value):
        return value

    # --- expressions ---------------------------------------------------------
    def conditional(self, body, keyword, test, orelse):
        return ast.Conditional(loc_of(keyword), body, test, orelse)

    def bool_op(self, left, op, right):
        return ast.BoolOp(loc_of(op), str(op), left, right)

    def unary(self, op, operand):
        return ast.Unary(loc_of(op), str(op), operand)

    def compare(self, first, *rest):
        ops = tuple(str(t) for t in rest[0::2])
        return ast.Compare(loc_of(rest[0]), ops, (first, *rest[1::2]))

    def binary(self, left, op, right):
        symbol = "**" if op.type == "POW" else str(op)
        return ast.Binary(loc_of(op), symbol, left, right)

    def index(self, value, bracket, index):
        return ast.Index(loc_of(bracket), value, index)

    def call(self, name, arguments):
        return ast.Call(loc_of(name), str(name), arguments or ())

    def arguments(self, *args):
        return tuple(a for a in args if a is not None)

    def generator(self, element, *clauses):
        return ast.Generator(clauses[0].loc, element, clauses)

    def comp_for(self, keyword, name, iterable):
        return ast.For(loc_of(name), str(name), iterable)

    def name(self, token):
        return ast.Name(loc_of(token), str(token))

    def number(self, token):
        text = str(token)
        try:
            value = float(text)
        except OverflowError:  # only an integer with hundreds of digits gets here
            value = math.inf
        if math.isinf(value):
            raise ParseError(f"the number {_abbreviate(text)} is too large for a float "
                             "(the largest is about 1.8e308)", loc_of(token))
        return ast.Number(loc_of(token), value, text)

    def list_literal(self, bracket, *items):
        return ast.ListLiteral(loc_of(bracket), tuple(i for i in items if i is not None))

    def list_comp(self, bracket, element, *clauses):
        return ast.ListComp(loc_of(bracket), element, clauses)


def _abbreviate(text: str) -> str:
    return text if len(text) <= 24 else text[:10] + "..." + text[-10:]


def _checked_name(token: Token) -> Token:
    """Refuse absurdly long identifiers before they reach the generated code."""
    if len(token) > limits.MAX_NAME_LENGTH:
        raise LimitError(f"the name {_abbreviate(str(token))} is {len(token):,} characters "
                         f"long; the limit is {limits.MAX_NAME_LENGTH}", loc_of(token))
    return token


_PARSER: Lark | None = None


def _parser() -> Lark:
    global _PARSER
    if _PARSER is None:
        grammar = resources.files(__package__).joinpath("exprgrad.lark").read_text()
        _PARSER = Lark(grammar, start="module", parser="lalr", lexer="contextual",
                       postlex=_Indentation(), transformer=ToAst(), maybe_placeholders=True,
                       cache=False, lexer_callbacks={"NAME": _checked_name})
    return _PARSER


_TOKEN_NAMES = {
    "_NL": "end of line", "_INDENT": "indented block", "_DEDENT": "end of block",
    "$END": "end of file", "NAME": "name", "NUMBER": "number", "INT": "integer size",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
    "COLON": "':'", "EQUAL": "'='", "AUGMENT": "'+='", "COMPARE": "comparison",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "POW": "'**'",
}


def _describe(token_type: str) -> str:
    if token_type in _TOKEN_NAMES:
        return _TOKEN_NAMES[token_type]
    if token_type.isupper() and token_type.isalpha():
        return f"'{token_type.lower()}'"
    return token_type


def _token_text(token: Token) -> str:
    """`'*'` for an operator (its kind is its text), `name 'foo'` otherwise."""
    kind = _describe(token.type)
    shown = f"'{_abbreviate(str(token))}'"
    return shown if kind == shown else f"{kind} {shown}"


def _syntax_error(error: UnexpectedInput, source: str = "") -> ParseError:
    loc = Loc(max(error.line, 1), max(error.column, 1))
    hinted = mistakes.explain(error, source, loc)
    if hinted is not None:
        return ParseError(*hinted)
    if isinstance(error, UnexpectedCharacters):
        char = error.char
        shown = repr(char) if char.isprintable() and char != " " else f"U+{ord(char):04X}"
        return ParseError(f"unexpected character {shown}; exprgrad source uses ASCII names, "
                          "numbers, operators and brackets", loc)
    expected = sorted({_describe(t) for t in getattr(error, "expected", ()) or ()})
    hint = f"; expected {', '.join(expected[:8])}" if expected else ""
    if isinstance(error, UnexpectedEOF) or getattr(error, "token", None) is None or \
            error.token.type == "$END":
        return ParseError(f"unexpected end of file{hint}", loc)
    token = error.token
    if token.type == "_INDENT":  # point at the over-indented line, not the end of the last
        loc = Loc(token.end_line, token.end_column)
    what = "unexpected end of line" if token.type == "_NL" else \
        "unexpected indentation" if token.type == "_INDENT" else \
        f"unexpected {_token_text(token)}"
    return ParseError(what + hint, loc)


def parse(source: str, filename: str = "<string>") -> ast.Module:
    """Parse `.expr` source text; every problem is a located `CompileError`."""
    text = source if source.endswith("\n") else source + "\n"
    try:
        statements = _parser().parse(text)
    except CompileError as error:
        raise error.located(filename, source)
    except VisitError as error:
        original = error.orig_exc
        if isinstance(original, CompileError):
            raise original.located(filename, source) from None
        raise
    except UnexpectedToken as error:
        if isinstance(error.token, Token) and error.token.type not in ("$END",):
            raise _syntax_error(error, text).located(filename, source) from None
        raise _end_of_file(error, text).located(filename, source) from None
    except UnexpectedInput as error:
        raise _syntax_error(error, text).located(filename, source) from None
    except LarkError as error:  # pragma: no cover - Lark's other errors are grammar bugs
        raise ParseError(f"could not parse: {error}", Loc(1, 1)).located(filename, source)
    return ast.Module(filename, source, tuple(statements))


def _end_of_file(error: UnexpectedInput, text: str) -> ParseError:
    lines = text.rstrip().split("\n") or [""]
    loc = Loc(len(lines), len(lines[-1]) + 1)
    expected = sorted({_describe(t) for t in getattr(error, "expected", ()) or ()})
    hint = f"; expected {', '.join(expected[:8])}" if expected else ""
    return ParseError(f"unexpected end of file{hint}", loc)
