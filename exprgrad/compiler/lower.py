"""Lowering: typed AST → scalar op DAG.

Everything that is known at compile time is resolved here: constants, array
shapes, indices, loop bounds and comprehensions over compile-time ranges
(unrolled), calls to user functions (inlined) and `diff`/`grad`
(differentiated with reverse mode, so the derivative is just more DAG).
Loops over data axes stay rolled: their body is one iteration's DAG.

`_Lowering` is split by concern, one mixin a module:
  lower.py          module, functions, checks, scoping, expressions, typing
  lower_calls.py    calls: built-in ops, the library, function templates
  lower_forms.py    the special forms: sum, prod, len, range, diff, grad
  lower_unroll.py   comprehensions over compile-time ranges, unrolled
  lower_loops.py    data axes: runtime ranges, maps and reductions, rolled
A lowered value (values.py) is a node id (a scalar or a condition), a nested
list of node ids (an array), a tuple of those (a function's tuple result),
or a value of runtime length (loops.py).

Expressions are lowered by an explicit stack, never by recursion on the
expression's depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import CompileError, LimitError, Loc, NameResolutionError, ShapeError
from ..grammar import ast
from . import library, limits
from .graph import Graph
from .loops import DataArray, RuntimeArray, RuntimeRange, has_data_axis, is_runtime
from .lower_calls import Calls
from .lower_forms import FORMS, SpecialForms
from .lower_checks import CheckData
from .lower_loops import DataAxes
from .lower_unroll import Comprehensions
from .options import DEFAULT, Options
from .ops import BINARY_OPERATORS, BUILTINS, COMPARISONS
from .values import build, describe, flatten, indexed_leaves, shape, shape_text, zip_map


BUILTIN_CONSTANTS = {"pi": math.pi, "e": math.e}
SPECIAL_FORMS = set(FORMS)
LANGUAGE_FUNCTIONS = set(BUILTINS) | SPECIAL_FORMS


@dataclass
class Parameter:
    name: str
    shape: tuple[int, ...]
    placeholders: object  # a node id, or nested lists of node ids shaped like `shape`
    loc: Loc


@dataclass
class LoweredFunction:
    name: str
    source: ast.Function
    params: list[Parameter]
    wrt: list[int]  # indices into params
    output: object  # a node id, nested lists, or a tuple of those

    @property
    def is_scalar(self) -> bool:
        return isinstance(self.output, int)


@dataclass
class LoweredCheck:
    source: ast.Check
    lhs: object
    rhs: object
    free: dict[str, int]  # free variable name → its input node
    where: dict[str, object]  # free variable name → its number given by `where`
    within: float | None
    # name → an array given by `where` (constants) or of free variables (`where n=3`)
    data: dict[str, object] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # a size name → its length (`n=3`)


@dataclass
class Program:
    filename: str
    source: str
    graph: Graph
    functions: list[LoweredFunction] = field(default_factory=list)
    checks: list[LoweredCheck] = field(default_factory=list)

    def function(self, name: str) -> LoweredFunction:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)


class Scope:
    """Names visible at one point: a chain of dictionaries, innermost first."""

    def __init__(self, names: dict | None = None, parent: "Scope | None" = None,
                 free: dict | None = None):
        self.names = names if names is not None else {}
        self.parent = parent
        self.free = free  # in a check: where unknown names become free variables

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def child(self, names: dict) -> "Scope":
        return Scope(names, self, self.free)

    def free_variables(self) -> dict | None:
        scope = self
        while scope is not None:
            if scope.free is not None:
                return scope.free
            scope = scope.parent
        return None


def lower(module: ast.Module, options: Options = DEFAULT) -> Program:
    """Lower a parsed module; errors are `CompileError`s located in its source."""
    try:
        return _Lowering(module, options).run()
    except CompileError as error:
        raise error.located(module.filename, module.source) from None


def lower_at_lengths(module: ast.Module, name: str, lengths: dict[str, int],
                     options: Options = DEFAULT) -> tuple[Graph, LoweredFunction]:
    """Function `name` of `module` at fixed lengths of its size names: the
    function called with arrays of those lengths, so lowering unrolls its
    loops as any loop of known length (`_inline_body`).  This unrolled copy
    is what a data-axis function's rolled loops are verified against.  The
    parameters are the function's, each size name replaced by its length;
    an array of no elements (a length 0) is an empty list, as a call site
    would pass.  Errors are `CompileError`s (`max()` of nothing at 0)."""
    lowering = _Lowering(module, options)
    lowering._collect_definitions()
    for statement in module.statements:
        if isinstance(statement, ast.Constant):
            lowering._constant(statement)
    f = lowering.functions[name]
    params = tuple(ast.Param(p.loc, p.name, tuple(lengths.get(d, d) for d in p.shape))
                   for p in f.params)
    call = ast.Call(f.loc, name, tuple(ast.Name(p.loc, p.name) for p in f.params))
    wrapper = ast.Function(f.loc, name, params, None, (), ast.Return(f.result.loc, (call,)))
    try:
        return lowering.g, lowering._lower_function(wrapper)
    except CompileError as error:
        raise error.located(module.filename, module.source) from None


class _Lowering(Calls, SpecialForms, Comprehensions, DataAxes, CheckData):
    def __init__(self, module: ast.Module, options: Options):
        self.module = module
        self.g = Graph(options)
        self.functions: dict[str, ast.Function] = {}
        self.templates: dict[str, LoweredFunction] = {}
        self.in_progress: list[str] = []
        self.constants = Scope({name: self.g.const(v) for name, v in BUILTIN_CONSTANTS.items()})
        self.globals = self.constants.child({})
        self.comprehension_depth = 0
        self.unrolled = 0  # comprehension elements unrolled so far (limits.MAX_UNROLLED)
        self.loop_sizes: list[int] = []  # lengths of the loops being unrolled, outermost first
        self.load_rows: dict[tuple, object] = {}  # a data parameter's loads, by index (_loads)

    # --- module ------------------------------------------------------------
    def run(self) -> Program:
        self._collect_definitions()
        program = Program(self.module.filename, self.module.source, self.g)
        for statement in self.module.statements:
            if isinstance(statement, ast.Constant):
                self._constant(statement)
        for function in self.module.functions:
            program.functions.append(self._template(function.name, function.loc))
        for check in self.module.checks:
            program.checks.append(self._check(check))
        return program

    def _collect_definitions(self) -> None:
        seen: dict[str, Loc] = {}
        for statement in self.module.statements:
            if isinstance(statement, ast.Check):
                continue
            name = statement.name
            if name in seen:
                first = seen[name]
                raise NameResolutionError(
                    f"'{name}' is already defined on line {first.line}; give one of them "
                    "another name", statement.loc)
            if name in LANGUAGE_FUNCTIONS or name in BUILTIN_CONSTANTS:
                raise NameResolutionError(
                    f"'{name}' is a built-in of the language; choose another name for this "
                    "definition", statement.loc)
            seen[name] = statement.loc
            if isinstance(statement, ast.Function):
                self.functions[name] = statement

    def _constant(self, statement: ast.Constant) -> None:
        self.g.loc = statement.loc
        value = self.expr(statement.value, self.globals)
        for leaf in flatten(value):
            if self.g.kind(leaf) != "number" or not self.g.is_const(leaf):
                raise CompileError(
                    f"constant '{statement.name}' is not computable at compile time; a "
                    "top-level constant must be a number or a nested list of numbers",
                    statement.value.loc)
        if isinstance(value, tuple):
            raise ShapeError(f"constant '{statement.name}' is a tuple; a constant must be a "
                             "number or a nested list of numbers", statement.value.loc)
        self.globals.names[statement.name] = value

    # --- functions -----------------------------------------------------------
    def _lower_function(self, f: ast.Function) -> LoweredFunction:
        g = self.g
        params, names = [], {}
        for p in f.params:
            if p.name in names:
                raise NameResolutionError(f"parameter '{p.name}' appears twice in '{f.name}'",
                                          p.loc)
            _check_size(p.shape, p.loc)
            g.loc = p.loc
            if has_data_axis(p.shape):
                placeholders = self._data_parameter(f, p, names)
            else:
                g.reserve(math.prod(p.shape))  # one input node per element
                placeholders = build(p.shape, lambda idx, p=p: g.input(
                    (f.name, p.name, idx), "_".join([p.name, *map(str, idx)])))
            params.append(Parameter(p.name, p.shape, placeholders, p.loc))
            names[p.name] = placeholders
        wrt = self._wrt(f, params)
        scope = self.globals.child(names)
        for statement in f.body:
            self._assign(statement, scope)
        values = [self._output(self.expr(v, scope), v.loc) for v in f.result.values]
        for v, node in zip(values, f.result.values):
            self._require_number_leaves(v, node.loc)
        output = values[0] if len(values) == 1 else tuple(values)
        return LoweredFunction(f.name, f, params, wrt, output)

    def _wrt(self, f: ast.Function, params: list[Parameter]) -> list[int]:
        if f.wrt is None:
            return list(range(len(params)))
        index = {p.name: i for i, p in enumerate(params)}
        chosen: list[int] = []
        for name in f.wrt:
            if name.id not in index:
                raise NameResolutionError(
                    f"'wrt {name.id}': '{name.id}' is not a parameter of '{f.name}'", name.loc)
            if index[name.id] in chosen:
                raise NameResolutionError(f"'{name.id}' is listed twice after 'wrt'", name.loc)
            chosen.append(index[name.id])
        return sorted(chosen)

    def _assign(self, statement: ast.Assign, scope: Scope) -> None:
        value = self.expr(statement.value, scope)
        if isinstance(value, tuple):
            raise ShapeError("a tuple cannot be assigned to one name; index it, e.g. "
                             f"{statement.target} = f(x)[0]", statement.value.loc)
        if statement.op is not None:
            current = scope.names.get(statement.target)
            if current is None:
                raise NameResolutionError(
                    f"'{statement.target} {statement.op}= ...' needs '{statement.target}' to "
                    "be assigned first in this function", statement.loc)
            self.g.loc = statement.loc
            value = self._elementwise(BINARY_OPERATORS[statement.op], current, value,
                                      statement.loc)
        self._name_nodes(value, statement.target)
        if isinstance(value, RuntimeArray):
            value = RuntimeArray(value.index, value.element, statement.target)
        scope.names[statement.target] = value

    def _name_nodes(self, value, name: str) -> None:
        while isinstance(value, RuntimeArray):
            value = value.element  # one iteration's value carries the name
        if isinstance(value, DataArray):
            return
        if isinstance(value, int):
            self.g.name(value, name)
            return
        for idx, leaf in indexed_leaves(value):
            self.g.name(leaf, "_".join([name, *map(str, idx)]))

    # --- checks ------------------------------------------------------------
    def _check(self, check: ast.Check) -> LoweredCheck:
        """`where` numbers give free variables their values; `where` arrays
        and lengths are the data of the calls (lower_checks.py)."""
        free: dict[str, int] = {}
        values = {b.name: (self._compile_time(b.value, b.loc), b) for b in check.where}
        data = {name: value for name, (value, _) in values.items() if isinstance(value, list)}
        scope = Scope(dict(data), self.globals, free)
        sizes = self._where_data(check, values, scope, free)
        lhs = self.expr(check.lhs, scope)
        rhs = self.expr(check.rhs, scope)
        where = {name: value for name, (value, _) in values.items()
                 if name not in data and (name in free or name not in sizes)}
        data = {name: value for name, value in scope.names.items() if isinstance(value, list)}
        lengths = {name: int(self.g.value(values[name][0])) for name in sizes}
        within = None
        if check.within is not None:
            within = self.g.value(self._compile_time(check.within, check.within.loc))
        return LoweredCheck(check, lhs, rhs, free, where, within, data, lengths)

    def _compile_time(self, node: ast.Expr, loc: Loc):
        value = self.expr(node, self.globals)
        for leaf in flatten(value):
            if not self.g.is_const(leaf):
                raise CompileError("this value must be computable at compile time", loc)
        return value

    # --- expressions ---------------------------------------------------------
    def expr(self, root: ast.Expr, scope: Scope):
        """Lower one expression with an explicit stack (post-order): a node is
        pushed back with its children once they are on the stack, and combined
        when it comes off again, its children's values on top of `results`."""
        results: list = []
        stack: list[tuple[ast.Expr, tuple | None]] = [(root, None)]
        while stack:
            node, kids = stack.pop()
            if kids is None:
                if isinstance(node, (ast.ListComp, ast.Generator)):
                    results.append(self._comprehension(node, scope))
                    continue
                kids = ast.children(node)
                if kids:
                    stack.append((node, kids))
                    stack.extend([(k, None) for k in reversed(kids)])
                    continue
            args = results[-len(kids):] if kids else []
            if kids:
                del results[-len(kids):]
            self.g.loc = node.loc
            results.append(self._combine(node, args, scope))
        return results[0]

    def _combine(self, node: ast.Expr, args: list, scope: Scope):
        g = self.g
        match node:
            case ast.Number(value=v):
                return g.const(v)
            case ast.Name(id=name):
                return self._name(name, node.loc, scope)
            case ast.Index():
                return self._index(node, args[0], args[1])
            case ast.Unary(op="not"):
                return g.add("not", self._condition(args[0], node.operand.loc))
            case ast.Unary(op="-"):
                return self._elementwise("neg", args[0], None, node.loc)
            case ast.Unary(op="+"):
                self._require_number_leaves(args[0], node.operand.loc)
                return args[0]
            case ast.Binary(op=op):
                for value, operand in ((args[0], node.left), (args[1], node.right)):
                    if isinstance(value, int):  # a comparison as an operand: point at it
                        self._scalar(value, operand.loc)
                return self._elementwise(BINARY_OPERATORS[op], args[0], args[1], node.loc)
            case ast.Compare(ops=ops):
                return self._compare(node, ops, args)
            case ast.BoolOp(op=op):
                return g.add(op, self._condition(args[0], node.left.loc),
                             self._condition(args[1], node.right.loc))
            case ast.Conditional():
                body, test, orelse = args
                return self._select(self._condition(test, node.test.loc), body, orelse, node)
            case ast.ListLiteral():
                return self._list(node, args)
            case ast.Call():
                return self._call(node, args, scope)
        raise CompileError(f"unsupported expression {type(node).__name__}", node.loc)

    def _name(self, name: str, loc: Loc, scope: Scope):
        value = scope.lookup(name)
        if value is not None:
            return value
        if name in self.functions or name in LANGUAGE_FUNCTIONS or name in library.FUNCTIONS:
            raise NameResolutionError(f"'{name}' is a function; call it, e.g. {name}(x)", loc)
        free = scope.free_variables()
        if free is not None:
            if name not in free:
                free[name] = self.g.input(("free", name), name)
            return free[name]
        if name in (c.name for c in self.module.constants):
            raise NameResolutionError(f"constant '{name}' is used before its definition; "
                                      "define it earlier in the file", loc)
        raise NameResolutionError(f"undefined name '{name}'", loc)

    # --- typing helpers ------------------------------------------------------
    def _scalar(self, value, loc: Loc) -> int:
        if isinstance(value, int):
            if self.g.kind(value) != "number":
                raise ShapeError("a comparison is used as a number; comparisons may only be "
                                 "conditions (write 'a if cond else b')", loc)
            return value
        if isinstance(value, RuntimeRange):
            raise ShapeError("range(...) can only be iterated over, in a comprehension", loc)
        raise ShapeError(f"expected a scalar, got {describe(value)}", loc)

    def _condition(self, value, loc: Loc) -> int:
        if isinstance(value, int) and self.g.kind(value) == "bool":
            return value
        raise ShapeError(f"expected a condition (a comparison such as x > 0), got "
                         f"{'a number' if isinstance(value, int) else describe(value)}", loc)

    def _require_number_leaves(self, value, loc: Loc) -> None:
        for leaf in flatten(value):
            self._scalar(leaf, loc)

    def _integer(self, value, loc: Loc, what: str) -> int:
        node = self._scalar(value, loc)
        v = self.g.value(node)
        if v is None:
            raise CompileError(f"{what} must be known at compile time (a number, constant, "
                               "loop variable or arithmetic on them)", loc)
        if not v.is_integer():
            raise CompileError(f"{what} must be an integer, got {v!r}", loc)
        return int(v)

    # --- operators -----------------------------------------------------------
    def _elementwise(self, op: str, a, b, loc: Loc):
        """`op` on scalars; on arrays of one shape (or an array and a scalar),
        element by element."""
        if is_runtime(a) or is_runtime(b):
            return self._map_elementwise(op, a, b, loc)
        if isinstance(a, int) and (b is None or isinstance(b, int)):
            args = (self._scalar(a, loc),) if b is None else (self._scalar(a, loc),
                                                               self._scalar(b, loc))
            return self.g.add(op, *args)
        if isinstance(a, tuple) or isinstance(b, tuple):
            raise ShapeError("a tuple result cannot be used in arithmetic; index it first", loc)
        if b is None:
            return [self._elementwise(op, x, None, loc) for x in a]
        if isinstance(a, list) and isinstance(b, list):
            if shape(a) != shape(b):
                raise ShapeError(f"{shape_text(shape(a))} and {shape_text(shape(b))} do "
                                 "not match", loc)
            return [self._elementwise(op, x, y, loc) for x, y in zip(a, b)]
        if isinstance(a, list):
            return [self._elementwise(op, x, b, loc) for x in a]
        return [self._elementwise(op, a, y, loc) for y in b]

    def _compare(self, node: ast.Compare, ops, args) -> int:
        result = None
        for i, symbol in enumerate(ops):
            left = self._scalar(args[i], node.operands[i].loc)
            right = self._scalar(args[i + 1], node.operands[i + 1].loc)
            test = self.g.add(COMPARISONS[symbol], left, right)
            result = test if result is None else self.g.add("and", result, test)
        return result

    def _select(self, cond: int, body, orelse, node: ast.Conditional):
        if isinstance(body, int) and isinstance(orelse, int):
            return self.g.add("where", cond, self._scalar(body, node.body.loc),
                              self._scalar(orelse, node.orelse.loc))
        if is_runtime(body) or is_runtime(orelse):
            raise ShapeError("a conditional cannot choose between arrays of runtime length; put "
                             "the condition inside the comprehension: [a if c else b for k in "
                             "range(n)]", node.loc)
        if isinstance(body, tuple) or isinstance(orelse, tuple):
            raise ShapeError("a conditional cannot choose a tuple result; index it first, "
                             "e.g. f(x)[0]", node.loc)
        if shape(body) != shape(orelse):
            raise ShapeError(f"the branches have different shapes: {describe(body)} and "
                             f"{describe(orelse)}", node.loc)
        return zip_map(lambda a, b: self.g.add("where", cond, a, b), body, orelse)

    def _list(self, node: ast.ListLiteral, items: list):
        if len(items) > limits.MAX_RANGE:
            raise LimitError(f"a list has more than {limits.MAX_RANGE:,} elements", node.loc)
        shapes = {shape(i) for i in items}
        if len(shapes) == 1:
            _check_rank(len(next(iter(shapes))) + 1, node.loc)
        if len(shapes) > 1:
            raise ShapeError("the elements of a list must all have the same shape, got " +
                             ", ".join(sorted(map(shape_text, shapes))), node.loc)
        for item, sub in zip(items, node.items):
            if is_runtime(item):
                raise ShapeError("a list of arrays of runtime length is not supported; use a "
                                 "comprehension", sub.loc)
            if isinstance(item, tuple):
                raise ShapeError("a tuple cannot be a list element", sub.loc)
            if isinstance(item, int):
                self._scalar(item, sub.loc)
        return list(items)

    def _index(self, node: ast.Index, value, index):
        if is_runtime(value):
            return self._index_runtime(node, value, index)
        if isinstance(value, int):
            what = f"'{node.value.id}'" if isinstance(node.value, ast.Name) else "this value"
            raise ShapeError(f"{what} is a scalar and cannot be indexed", node.loc)
        i = self._integer(index, node.index.loc, "an index")
        n = len(value)
        if not -n <= i < n:
            raise ShapeError(f"index {i} is out of range for length {n} "
                             f"(valid: 0 to {n - 1}, or -{n} to -1 from the end)",
                             node.index.loc)
        return value[i]

def _check_size(shape, loc: Loc) -> None:
    _check_rank(len(shape), loc)
    shape = [d for d in shape if isinstance(d, int)]  # a data axis has no length yet
    size = math.prod(shape) if shape else 1
    if size > limits.MAX_RANGE:
        raise LimitError(f"an array of shape {list(shape)} has {size:,} elements; the limit is "
                         f"{limits.MAX_RANGE:,}", loc)


def _check_rank(rank: int, loc: Loc) -> None:
    """Arrays are walked by rank-deep recursion, so their rank is bounded."""
    if rank > limits.MAX_ARRAY_RANK:
        raise LimitError(f"an array with {rank} dimensions; the limit is "
                         f"{limits.MAX_ARRAY_RANK}", loc)


def _arg_text(node: ast.Call, i: int) -> str:
    arg = node.args[i]
    return arg.id if isinstance(arg, ast.Name) else "..."
