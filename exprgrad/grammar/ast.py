"""The typed syntax tree of an `.expr` file.

Every node carries the `Loc` of the token that best names it (an operator, a
function name, a variable) so that errors and generated-code comments point
at the right column.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Loc

# --- expressions -------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Number:
    loc: Loc
    value: float
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class Name:
    loc: Loc
    id: str


@dataclass(frozen=True, slots=True, eq=False)
class Unary:
    loc: Loc
    op: str  # '-', '+', 'not'
    operand: "Expr"


@dataclass(frozen=True, slots=True, eq=False)
class Binary:
    loc: Loc
    op: str  # '+', '-', '*', '/', '**'
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True, eq=False)
class Compare:
    """A comparison chain `a < b <= c` (Python semantics: each operand once)."""

    loc: Loc
    ops: tuple[str, ...]
    operands: tuple["Expr", ...]


@dataclass(frozen=True, slots=True, eq=False)
class BoolOp:
    loc: Loc
    op: str  # 'and', 'or'
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True, eq=False)
class Conditional:
    loc: Loc
    body: "Expr"
    test: "Expr"
    orelse: "Expr"


@dataclass(frozen=True, slots=True, eq=False)
class For:
    """One `for NAME in iterable` clause of a comprehension."""

    loc: Loc
    var: str
    iterable: "Expr"


@dataclass(frozen=True, slots=True, eq=False)
class Generator:
    """`element for i in ...` as the only argument of sum/prod/min/max."""

    loc: Loc
    element: "Expr"
    clauses: tuple[For, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Call:
    loc: Loc
    func: str
    args: tuple["Expr", ...]


@dataclass(frozen=True, slots=True, eq=False)
class ListLiteral:
    loc: Loc
    items: tuple["Expr", ...]


@dataclass(frozen=True, slots=True, eq=False)
class ListComp:
    loc: Loc
    element: "Expr"
    clauses: tuple[For, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Index:
    loc: Loc
    value: "Expr"
    index: "Expr"


Expr = (Number | Name | Unary | Binary | Compare | BoolOp | Conditional | Generator | Call
        | ListLiteral | ListComp | Index)

# --- statements --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Assign:
    """`name = value` or an augmented `name op= value` (op is '+', '-', '*', '/')."""

    loc: Loc
    target: str
    op: str | None
    value: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Return:
    loc: Loc
    values: tuple[Expr, ...]  # more than one: a tuple output


@dataclass(frozen=True, slots=True, eq=False)
class Param:
    loc: Loc
    name: str
    shape: tuple[int | str, ...]  # () for a scalar, (4, 3) for W[4][3], ("n", 5) for X[n][5]


@dataclass(frozen=True, slots=True, eq=False)
class Function:
    loc: Loc
    name: str
    params: tuple[Param, ...]
    wrt: tuple[Name, ...] | None  # None: differentiate with respect to every parameter
    body: tuple[Assign, ...]
    result: Return


@dataclass(frozen=True, slots=True, eq=False)
class Constant:
    loc: Loc
    name: str
    value: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Binding:
    """One `name = value` of a check's `where` clause."""

    loc: Loc
    name: str
    value: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Check:
    loc: Loc
    lhs: Expr
    rhs: Expr
    where: tuple[Binding, ...]
    within: Expr | None


@dataclass(frozen=True, slots=True, eq=False)
class Module:
    filename: str
    source: str
    statements: tuple[Constant | Function | Check, ...]

    @property
    def functions(self) -> list[Function]:
        return [s for s in self.statements if isinstance(s, Function)]

    @property
    def constants(self) -> list[Constant]:
        return [s for s in self.statements if isinstance(s, Constant)]

    @property
    def checks(self) -> list[Check]:
        return [s for s in self.statements if isinstance(s, Check)]


def children(node: Expr) -> tuple[Expr, ...]:
    """The sub-expressions of an expression, for iterative walks."""
    match node:
        case Unary(operand=x):
            return (x,)
        case Binary(left=a, right=b) | BoolOp(left=a, right=b):
            return (a, b)
        case Compare(operands=xs) | Call(args=xs) | ListLiteral(items=xs):
            return xs
        case Conditional(body=a, test=c, orelse=b):
            return (a, c, b)
        case Index(value=a, index=i):
            return (a, i)
        case Generator(element=x, clauses=cs) | ListComp(element=x, clauses=cs):
            return (*(c.iterable for c in cs), x)
    return ()


def walk(node: Expr):
    """Every expression below `node`, without recursion."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(children(n))
