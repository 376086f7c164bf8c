"""Source text → typed AST: the Lark grammar and the transformer that builds
`exprgrad.grammar.ast` nodes."""

from .parser import parse

__all__ = ["parse"]
