"""The statement program: what the scheduler decides and a printer renders.

`schedule.schedule` turns a function of the DAG into a `Function`; a
printer per target (`printers/python.py` for plain Python) turns that into
text.  Everything here is plain data with no target syntax in it, so every
target renders the same decisions: which values get names, what is inlined
into its user, which statements sit in which branch (and, for data axes, in
which loop).

Expressions are trees:
  Const(value)         a float (or a bool, in conditions)
  Name(id)             a variable: a parameter element or an earlier Assign's target
  Call(op, args, attr) an op of the op table (`ops.OPS[op]`) applied to
                       expressions; `attr` is the node's attribute (ipow's
                       exponent).  `where` is lazy: `Call("where", (c, a, b))`
                       evaluates only the branch `c` selects.

Statements:
  Assign(target, value)  binds `target`.  A target may be assigned again
                         (`target = target + x`, an accumulation: printers may
                         write `target += x`); it is then bound before.
  If(cond, then, orelse) runs one branch.  A name bound in only one branch is
                         bound before the If (an accumulation), or is used only
                         under the same condition; `orelse` or `then` may be
                         empty.
  For(var, start, stop, body)
                         `var` runs over range(start, stop): `stop` is
                         (size name, offset): a loop over a data axis.  A
                         reduction is an accumulation into a name bound
                         before the loop (`s = 0.0`; in the body
                         `s = s + term`, or `*`, `min`, `max`).  In the body
                         `Call("load", (Name(k), ...), (param, index))` reads
                         a data parameter (index entries: an int, or
                         (position, offset) for args[position] + offset) and
                         `Call("size", attr="n")` is a length as a number.
  NewList(target), Append(target, value)
                         a map of runtime length: an empty list before the
                         loop, one element appended per iteration.
  Return(value)          the function's result: an expression, or a list or
                         tuple of results (nested like the source's arrays).

Every statement carries `loc` (the source location it comes from, or None)
and an Assign `backward` (True when it computes the reverse pass of a
gradient: the benchmarks split forward and backward time by it).

A `Function` has its parameters (`Param`: the source name, the shape, and
the variable each element is bound to), its docstring, the statements, and
what a caller needs to know without reading text: `wrt`, the source names of
the parameters its gradient is taken with respect to, and `checked`, whether
the arguments are validated and converted (generated modules) or are floats
already (the runtime's derivative rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..errors import Loc


@dataclass(slots=True, unsafe_hash=True)  # hashable, built fast (not frozen)
class Const:
    value: float | bool


@dataclass(slots=True, unsafe_hash=True)  # hashable, built fast (not frozen)
class Name:
    id: str


@dataclass(slots=True, unsafe_hash=True)  # hashable, built fast (not frozen)
class Call:
    op: str
    args: tuple = ()
    attr: object = None


Expr = Union[Const, Name, Call]


@dataclass(slots=True)
class Assign:
    target: str
    value: Expr
    loc: Loc | None = None
    backward: bool = False

    @property
    def accumulates(self) -> bool:
        """`target = target + x` (or `- x`): adds to a bound variable."""
        v = self.value
        return (isinstance(v, Call) and v.op in ("add", "sub") and v.args[0] == Name(self.target))


@dataclass(slots=True)
class If:
    cond: Expr
    then: list
    orelse: list
    loc: Loc | None = None


@dataclass(slots=True)
class For:
    var: str
    start: int
    stop: tuple[str, int]
    body: list
    loc: Loc | None = None


@dataclass(slots=True)
class NewList:
    """`target = []`: a list of runtime length, filled by the loop after it."""

    target: str
    loc: Loc | None = None


@dataclass(slots=True)
class Append:
    """`target.append(value)`: one iteration's element of a map (`[e for k in
    range(n)]`); `value` is an expression, or a list structure of them (a row)."""

    target: str
    value: object
    loc: Loc | None = None


@dataclass(slots=True)
class Return:
    value: object  # an Expr, or a list/tuple of results
    loc: Loc | None = None


Statement = Union[Assign, If, For, NewList, Append, Return]


@dataclass
class Param:
    """One parameter: `name` is the Python parameter name, `source` the
    name in the .expr source, `shape` a tuple (or a list of shapes for a
    tuple-shaped cotangent) and `elements` the variable names its elements
    are bound to, nested like the argument (a single name for a scalar)."""

    name: str
    source: str
    shape: object
    elements: object


@dataclass
class Function:
    name: str
    params: list[Param]
    doc: str
    body: list
    wrt: tuple[str, ...] = ()
    checked: bool = True
    helpers: set[str] = field(default_factory=set)  # op names whose helper the body calls


def element_names(elements) -> list[str]:
    """The variables of a Param's `elements`, row-major (none for None)."""
    if isinstance(elements, str):
        return [elements]
    out: list[str] = []
    stack = [elements] if elements is not None else []
    while stack:
        e = stack.pop()
        if isinstance(e, str):
            out.append(e)
        else:
            stack.extend(reversed(e))
    return out


def walk(statements):
    """Every statement, nested ones included, in order."""
    stack = list(reversed(statements))
    while stack:
        s = stack.pop()
        yield s
        if isinstance(s, If):
            stack.extend(reversed(s.orelse))
            stack.extend(reversed(s.then))
        elif isinstance(s, For):
            stack.extend(reversed(s.body))


def expressions(statement):
    """The expressions a statement evaluates itself (not its nested ones)."""
    if isinstance(statement, Assign):
        return [statement.value]
    if isinstance(statement, If):
        return [statement.cond]
    if isinstance(statement, (Return, Append)):
        out, stack = [], [statement.value]
        while stack:
            v = stack.pop()
            if isinstance(v, (list, tuple)):
                stack.extend(v)
            else:
                out.append(v)
        return out
    return []


def operations(fn: Function) -> int:
    """How many op applications the body evaluates as written (each Call
    except the lazy `where`, which only selects): the benchmarks' count."""
    count = 0
    for s in walk(fn.body):
        stack = list(expressions(s))
        while stack:
            e = stack.pop()
            if isinstance(e, Call):
                count += e.op != "where"
                stack.extend(e.args)
    return count
