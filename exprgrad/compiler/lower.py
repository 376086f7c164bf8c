"""Lowering: typed AST → scalar op DAG.

Everything that is known at compile time is resolved here: constants, array
shapes, indices, loop bounds and comprehensions (unrolled), calls to user
functions (inlined) and `diff`/`grad` (differentiated with reverse mode, so
the derivative is just more DAG).  What remains is a DAG of scalar ops.

A lowered value is a node id (a scalar or a condition), a nested list of
node ids (an array), or a tuple of those (a function's tuple result).

Each user function is lowered once, into a *template* whose parameters are
`input` placeholder nodes; a call substitutes the arguments for the
placeholders.  So `diff(expr, x)` differentiates with respect to x's own
placeholder, whatever argument a caller later passes (even the same node for
two parameters), and a top-level function's template is exactly the DAG its
generated code computes.

Expressions are lowered by an explicit stack, never by recursion on the
expression's depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import CallError, CompileError, LimitError, Loc, NameResolutionError, ShapeError
from ..grammar import ast
from . import library, limits
from .graph import Graph
from .loops import DataArray, RuntimeArray, RuntimeRange, has_data_axis, is_runtime, linear
from .lower_loops import DataAxes
from .options import DEFAULT, Options
from .ops import BINARY_OPERATORS, BUILTINS, COMPARISONS, OPS
from .reverse import gradients
from .values import flatten


BUILTIN_CONSTANTS = {"pi": math.pi, "e": math.e}
SPECIAL_FORMS = {"sum", "prod", "len", "range", "diff", "grad"}
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
    where: dict[str, object]  # name → lowered value given by `where`
    within: float | None


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


class _Lowering(DataAxes):
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
    def _template(self, name: str, call_loc: Loc) -> LoweredFunction:
        """The function lowered once with placeholder parameters."""
        if name in self.templates:
            return self.templates[name]
        if name in self.in_progress:
            chain = " → ".join(self.in_progress[self.in_progress.index(name):] + [name])
            raise CallError(f"recursive call ({chain}); exprgrad inlines every call, so "
                            "functions cannot call themselves", call_loc)
        if len(self.in_progress) >= limits.MAX_CALL_DEPTH:
            raise LimitError(f"calls are nested more than {limits.MAX_CALL_DEPTH} functions "
                             "deep", call_loc)
        self.in_progress.append(name)
        outer_loops, self.loop_sizes = self.loop_sizes, []  # a template is lowered once
        try:
            lowered = self._lower_function(self.functions[name])
        finally:
            self.in_progress.pop()
            self.loop_sizes = outer_loops
        self.templates[name] = lowered
        return lowered

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
                placeholders = _build(p.shape, lambda idx, p=p: g.input(
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
        scope.names[statement.target] = value

    def _name_nodes(self, value, name: str) -> None:
        if isinstance(value, RuntimeArray):
            value = value.element  # one iteration's value carries the name
        if isinstance(value, DataArray):
            return
        if isinstance(value, int):
            self.g.name(value, name)
            return
        for idx, leaf in _indexed_leaves(value):
            self.g.name(leaf, "_".join([name, *map(str, idx)]))

    # --- checks ------------------------------------------------------------
    def _check(self, check: ast.Check) -> LoweredCheck:
        free: dict[str, int] = {}
        scope = Scope({}, self.globals, free)
        lhs = self.expr(check.lhs, scope)
        rhs = self.expr(check.rhs, scope)
        where = {}
        for binding in check.where:
            where[binding.name] = self._compile_time(binding.value, binding.loc)
        within = None
        if check.within is not None:
            within = self.g.value(self._compile_time(check.within, check.within.loc))
        return LoweredCheck(check, lhs, rhs, free, where, within)

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
        raise ShapeError(f"expected a scalar, got {_describe(value)}", loc)

    def _condition(self, value, loc: Loc) -> int:
        if isinstance(value, int) and self.g.kind(value) == "bool":
            return value
        raise ShapeError(f"expected a condition (a comparison such as x > 0), got "
                         f"{'a number' if isinstance(value, int) else _describe(value)}", loc)

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
            if _shape(a) != _shape(b):
                raise ShapeError(f"{_shape_text(_shape(a))} and {_shape_text(_shape(b))} do "
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
        if _shape(body) != _shape(orelse) or isinstance(body, tuple):
            raise ShapeError(f"the branches have different shapes: {_describe(body)} and "
                             f"{_describe(orelse)}", node.loc)
        return _zip_map(lambda a, b: self.g.add("where", cond, a, b), body, orelse)

    def _list(self, node: ast.ListLiteral, items: list):
        if len(items) > limits.MAX_RANGE:
            raise LimitError(f"a list has more than {limits.MAX_RANGE:,} elements", node.loc)
        shapes = {_shape(i) for i in items}
        if len(shapes) == 1:
            _check_rank(len(next(iter(shapes))) + 1, node.loc)
        if len(shapes) > 1:
            raise ShapeError("the elements of a list must all have the same shape, got " +
                             ", ".join(sorted(map(_shape_text, shapes))), node.loc)
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

    # --- comprehensions ------------------------------------------------------
    def _comprehension(self, node, scope: Scope) -> list:
        """Unroll `[e for i in ...]` / `e for i in ...`: one element per binding.
        Nested clauses iterate like nested loops, the last one innermost."""
        if self.comprehension_depth + len(node.clauses) > limits.MAX_COMPREHENSION_DEPTH:
            raise LimitError("comprehensions are nested more than "
                             f"{limits.MAX_COMPREHENSION_DEPTH} 'for' clauses deep", node.loc)
        self.comprehension_depth += len(node.clauses)
        try:
            results: list = []
            self._unroll(node, 0, scope, results)
        finally:
            self.comprehension_depth -= len(node.clauses)
        if isinstance(node, ast.ListComp):
            if results and isinstance(results[0], RuntimeArray):
                return results[0]
            return self._list(ast.ListLiteral(node.loc, ()), results) if results else results
        return results

    def _unroll(self, node, clause_index: int, scope: Scope, results: list) -> None:
        clause = node.clauses[clause_index]
        iterable = self.expr(clause.iterable, scope)
        if is_runtime(iterable) or isinstance(iterable, RuntimeRange):
            self._runtime_clause(node, clause_index, clause, iterable, scope, results)
            return
        items = self._iterable(iterable, clause.iterable.loc)
        total = math.prod(self.loop_sizes) * len(items)
        if total > limits.MAX_UNROLLED:
            raise LimitError(f"these nested loops would unroll to {total:,} elements (the "
                             f"product of their lengths); the limit is "
                             f"{limits.MAX_UNROLLED:,}", clause.loc)
        self.loop_sizes.append(len(items))
        try:
            self._unroll_items(node, clause_index, clause, items, scope, results)
        finally:
            self.loop_sizes.pop()

    def _unroll_items(self, node, clause_index, clause, items, scope, results) -> None:
        for item in items:
            self.unrolled += 1
            if self.unrolled > limits.MAX_UNROLLED:
                raise LimitError(f"the program's loops unroll to more than "
                                 f"{limits.MAX_UNROLLED:,} elements in all", clause.loc)
            inner = scope.child({clause.var: item})
            if clause_index + 1 < len(node.clauses):
                self._unroll(node, clause_index + 1, inner, results)
            else:
                results.append(self.expr(node.element, inner))
                if len(results) > limits.MAX_RANGE:
                    raise LimitError(f"a comprehension makes more than {limits.MAX_RANGE:,} "
                                     "elements", node.loc)

    def _iterable(self, value, loc: Loc) -> list:
        if isinstance(value, list):
            return value
        raise ShapeError(f"can only iterate over range(...) or an array, got "
                         f"{_describe(value)}", loc)

    # --- calls ---------------------------------------------------------------
    def _call(self, node: ast.Call, args: list, scope: Scope):
        name = node.func
        if scope.lookup(name) is not None and name not in self.functions:
            raise NameResolutionError(f"'{name}' is a variable here, not a function", node.loc)
        if name in self.functions:
            return self._inline(node, args)
        if name in SPECIAL_FORMS:
            return getattr(self, "_call_" + name)(node, args)
        if name in BUILTINS:
            return self._builtin(node, BUILTINS[name], args)
        if name in library.FUNCTIONS:
            return library.call(self.g, node, args)
        raise NameResolutionError(library.unknown_function(name, self.functions), node.loc)

    def _builtin(self, node: ast.Call, op: str, args: list):
        spec = OPS[op]
        if spec.arity is None:  # min/max: several scalars, or one array
            if len(args) == 1 and (is_runtime(args[0]) or _has_runtime_part(args[0])):
                return self._reduce_runtime(args[0], op, None, node.loc)
            if len(args) == 1 and isinstance(args[0], list):
                args = flatten(args[0])
            if not args:
                raise CallError(f"{node.func}() needs at least one argument", node.loc)
            return self.g.add(op, *(self._scalar(a, node.loc) for a in args))
        if len(args) != spec.arity:
            raise CallError(f"{node.func}() takes {spec.arity} argument"
                            f"{'s' if spec.arity != 1 else ''}, got {len(args)}", node.loc)
        if spec.arity == 1 and (isinstance(args[0], list) or is_runtime(args[0])):
            return self._elementwise(op, args[0], None, node.loc)
        scalars = [self._scalar(a, arg.loc) for a, arg in zip(args, node.args)]
        return self.g.add(op, *scalars)

    def _call_sum(self, node, args):
        return self._reduce(node, args, "add", 0.0)

    def _call_prod(self, node, args):
        return self._reduce(node, args, "mul", 1.0)

    def _reduce(self, node: ast.Call, args, op: str, empty: float) -> int:
        if len(args) != 1 or isinstance(args[0], (int, tuple, RuntimeRange)):
            raise CallError(f"{node.func}() takes one array or generator, e.g. "
                            f"{node.func}(x[i] for i in range(3))", node.loc)
        if is_runtime(args[0]) or _has_runtime_part(args[0]):
            return self._reduce_runtime(args[0], op, empty, node.loc)
        leaves = [self._scalar(x, node.loc) for x in flatten(args[0])]
        if not leaves:
            return self.g.const(empty)
        total = leaves[0]
        for x in leaves[1:]:
            total = self.g.add(op, total, x)
        return total

    def _call_len(self, node, args):
        if len(args) == 1 and is_runtime(args[0]):
            return self._runtime_len(args[0])
        if len(args) != 1 or not isinstance(args[0], list):
            raise CallError("len() takes one array", node.loc)
        return self.g.const(len(args[0]))

    def _call_range(self, node, args):
        if not 1 <= len(args) <= 2:
            raise CallError(f"range() takes 1 or 2 arguments, got {len(args)}", node.loc)
        forms = [linear(self.g, self._scalar(a, arg.loc)) for a, arg in zip(args, node.args)]
        if any(f is not None and f[0] is not None and self.g.nodes[f[0]].op == "size"
               for f in forms):
            return self._runtime_range(node, forms)
        for form, arg in zip(forms, node.args):
            if form is None and self.g.has_loops:
                raise CompileError("a range bound must be a compile-time integer, or a size "
                                   "name plus or minus an integer, e.g. range(n - 1)", arg.loc)
        bounds = [self._integer(a, arg.loc, "a range bound") for a, arg in zip(args, node.args)]
        start, stop = (0, bounds[0]) if len(bounds) == 1 else bounds
        if stop - start > limits.MAX_RANGE:
            raise LimitError(f"range({start}, {stop}) has {stop - start:,} elements; the "
                             f"limit is {limits.MAX_RANGE:,}", node.loc)
        return [self.g.const(i) for i in range(start, stop)]

    def _call_diff(self, node, args):
        expr, var = self._derivative_args(node, args)
        if not isinstance(var, int):
            raise ShapeError(f"diff() differentiates with respect to a scalar; for an array "
                             f"use grad({_arg_text(node, 0)}, {_arg_text(node, 1)})",
                             node.args[1].loc)
        self._require_input(var, node.args[1].loc)
        return gradients(self.g, [(expr, self.g.const(1.0))], [var])[0]

    def _call_grad(self, node, args):
        expr, var = self._derivative_args(node, args)
        if isinstance(var, tuple) or is_runtime(var) and not _whole_parameter(var):
            raise ShapeError("grad() differentiates with respect to a parameter", node.loc)
        if isinstance(var, DataArray):  # the gradient has the parameter's data axes
            return gradients(self.g, [(expr, self.g.const(1.0))], [var])[0]
        leaves = flatten(var)
        for leaf in leaves:
            self._require_input(leaf, node.args[1].loc)
        partials = iter(gradients(self.g, [(expr, self.g.const(1.0))], leaves))
        return _build(_shape(var), lambda idx: next(partials)) if leaves else var

    def _derivative_args(self, node, args):
        if len(args) != 2:
            raise CallError(f"{node.func}() takes 2 arguments (expression, variable), got "
                            f"{len(args)}", node.loc)
        return self._scalar(args[0], node.args[0].loc), args[1]

    def _require_input(self, node_id: int, loc: Loc) -> None:
        if not isinstance(node_id, int) or self.g.nodes[node_id].op != "input":
            raise CallError("can only differentiate with respect to a parameter of the "
                            "enclosing function (or a free variable of a check)", loc)

    def _inline(self, node: ast.Call, args: list):
        callee = self.functions[node.func]
        if any(has_data_axis(p.shape) for p in callee.params) or any(map(is_runtime, args)):
            return self._inline_body(node, args)
        template = self._template(node.func, node.loc)
        params = template.params
        if len(args) != len(params):
            raise CallError(f"{node.func}() takes {len(params)} argument"
                            f"{'s' if len(params) != 1 else ''}, got {len(args)}", node.loc)
        mapping: dict[int, int] = {}
        for param, arg, arg_node in zip(params, args, node.args):
            if isinstance(arg, tuple) or _shape(arg) != param.shape:
                expected = "a scalar" if not param.shape else f"shape {list(param.shape)}"
                raise ShapeError(f"argument '{param.name}' of {node.func}() must be {expected}, "
                                 f"got {_describe(arg)}", arg_node.loc)
            for placeholder, value in zip(flatten(param.placeholders), flatten(arg)):
                mapping[placeholder] = self._scalar(value, arg_node.loc)
        return _substitute_value(self.g, template.output, mapping)


# --- values: scalars, nested lists, tuples ------------------------------------
def _indexed_leaves(value, prefix=()):
    for i, v in enumerate(value):
        if isinstance(v, int):
            yield (*prefix, i), v
        else:
            yield from _indexed_leaves(v, (*prefix, i))


def _shape(value) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "a scalar" if not shape else "shape " + str(list(shape))


def _whole_parameter(value) -> bool:
    return isinstance(value, DataArray) and not value.prefix


def _has_runtime_part(value) -> bool:
    """Whether a (compile-time) list holds arrays of runtime length, as the
    items of a generator whose inner clause runs over a data axis do."""
    return isinstance(value, list) and any(is_runtime(v) or _has_runtime_part(v)
                                           for v in value)


def _describe(value) -> str:
    if is_runtime(value):
        return "an array of runtime length"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} values"
    if isinstance(value, int):
        return "a scalar"
    return f"an array of shape {list(_shape(value))}"


def _build(shape: tuple[int, ...], make, prefix=()):
    if not shape:
        return make(prefix)
    return [_build(shape[1:], make, (*prefix, i)) for i in range(shape[0])]


def _zip_map(fn, a, b):
    if isinstance(a, int):
        return fn(a, b)
    return [_zip_map(fn, x, y) for x, y in zip(a, b)]


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


def substitute(g: Graph, roots: list[int], mapping: dict[int, int]) -> list[int]:
    """Rebuild `roots` with the nodes of `mapping` replaced (a call's arguments
    for a template's placeholders); nodes that do not depend on them are kept."""
    if not mapping:
        return list(roots)
    new = dict(mapping)
    saved = g.loc
    for n in g.ancestors(roots, stop_below=min(mapping)):
        if n in new:
            continue
        node = g.nodes[n]
        args = tuple(new.get(a, a) for a in node.args)
        if args != node.args:
            g.loc = g.locs[n]
            rebuilt = g.add(node.op, *args, attr=node.attr)
            new[n] = rebuilt
            if n in g.names:
                g.name(rebuilt, g.names[n])
    g.loc = saved
    return [new.get(r, r) for r in roots]


def _substitute_value(g: Graph, value, mapping: dict[int, int]):
    replaced = iter(substitute(g, flatten(value), mapping))
    return _rebuild(value, replaced)


def _rebuild(value, replaced):
    if isinstance(value, int):
        return next(replaced)
    if isinstance(value, tuple):
        return tuple(_rebuild(v, replaced) for v in value)
    return [_rebuild(v, replaced) for v in value]
