"""`Value`: a micrograd-compatible scalar that records its graph.

Every operation comes from the op table (`compiler/ops.py`): the forward
value from `OPS[name].fn`, the local derivatives from `OPS[name].grad`.
A derivative rule is written with `Ref` operators, so it can be run two ways:

* compiled (the fast path): the rule is applied once per op to placeholder
  nodes of a small DAG and emitted by the code generator as a plain Python
  function `(d, out, a, b) -> (d_a, d_b)`; only the branch of a conditional
  that is taken runs, exactly as in generated modules;
* numerically (the fallback): when the compiled rule raises (the derivative
  of `pow(a, b)` with respect to `b` needs `log(a)`, which has no value for
  a < 0), the same rule runs on `_Num` refs whose operators evaluate the
  table's functions on floats and give nan where a function has no value,
  as PyTorch does.

`backward()` walks the graph iteratively, so a chain of any length works,
and accumulates into `.grad` like PyTorch (call `zero_grad()` between steps).
"""

from __future__ import annotations

import itertools
import linecache
import math

from ..compiler.opnames import IPOW
from ..compiler.ops import OPS
from ..compiler.passes.fold import LARGEST_INTEGER_POWER
from ..compiler.printers import python
from ..compiler.refs import Ref
from ..compiler.rules import rule_template
from ..compiler.schedule import Signature, schedule

__all__ = ["Value"]

_DOMAIN_ERRORS = (ArithmeticError, ValueError)


# --- derivative rules, compiled --------------------------------------------------
def compile_rule(name: str, attr, arity: int):
    """The derivative rule of op `name` as a Python function
    `(d, out, *inputs) -> tuple of one contribution per input`."""
    template = rule_template(name, attr, arity)
    result = tuple(template.zero if r is None else r for r in template.results)
    function = f"d_{name}" if attr is None else f"d_{name}_{attr}".replace("-", "m")
    params = [Signature(n, (), i) for n, i in zip(template.names, template.placeholders)]
    program = schedule(template.graph, function, params, result,
                       f"The op table's derivative rule of {name}.", checked=False)
    text = python.module([program], "<rule>", header=["import math"], exported=False)
    filename = f"<exprgrad rule {function}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(text, filename, "exec"), namespace)
    rule = namespace[function]
    rule.source = text
    return rule


# --- derivative rules, numerically ------------------------------------------------
class _Num(Ref):
    """A float that derivative rules compute with: each operator evaluates the
    op table's function instead of building a DAG node.  A function without a
    value at its input (log(-1), 1/0) gives nan: a rule's `where` evaluates
    both branches here, and only the branch it selects matters."""

    __slots__ = ("v", "_attr")

    def __init__(self, v, attr=None):  # noqa: D107 - no graph, no node id
        self.v = v
        self._attr = attr

    @property
    def attr(self):
        return self._attr

    def _make(self, op: str, *args) -> "_Num":
        values = [a.v if isinstance(a, _Num) else a for a in args]
        return _Num(_evaluate(OPS[op].fn, values))

    def __pow__(self, k: int) -> "_Num":
        return _Num(_evaluate(OPS[IPOW].evaluate, [[self.v], int(k)]))


def _evaluate(fn, values):
    try:
        return fn(*values)
    except _DOMAIN_ERRORS:
        return math.nan


def numeric_rule(op: "_Op", d: float, out: float, inputs) -> tuple:
    """The contributions of `op`'s rule, evaluated on floats (nan where a
    sub-expression has no value)."""
    results = OPS[op.name].grad(_Num(d), _Num(out, op.attr), *(_Num(x) for x in inputs))
    return tuple(0.0 if r is None else float(r.v if isinstance(r, _Num) else r) for r in results)


# --- ops as Value sees them -----------------------------------------------------
class _Op:
    """One op of the table with its attribute: forward function, label, and
    the derivative rule, compiled on first use."""

    __slots__ = ("name", "attr", "label", "fn", "back")

    def __init__(self, name: str | None, attr=None, label: str | None = None):
        self.name = name
        self.attr = attr
        spec = OPS[name] if name else None
        self.label = label if label is not None else spec.display(attr) if spec else ""
        if spec is not None and spec.has_attr:
            fn = spec.fn
            self.fn = lambda *xs: fn(*xs, attr)
        else:
            self.fn = spec.fn if spec else None
        self.back = self._compile_then_run if spec is not None and spec.grad else None

    def _compile_then_run(self, d, out, *inputs):
        self.back = compile_rule(self.name, self.attr, len(inputs))
        return self.back(d, out, *inputs)


_LEAF = _Op(None)
_OPS: dict[tuple, _Op] = {}


def _op(name: str, attr=None, arity: int | None = None) -> _Op:
    key = (name, attr, arity)
    found = _OPS.get(key)
    if found is None:
        found = _OPS[key] = _Op(name, attr)
    return found


_seq = itertools.count()
_new = object.__new__


def _node(data, args: tuple, op: _Op) -> "Value":
    """A computed Value (the fast constructor: no conversions, no checks)."""
    v = _new(Value)
    v.data = data
    v.grad = 0.0
    v.label = ""
    v._args = args
    v._impl = op
    v._seq = next(_seq)
    return v


def _lift(x) -> "Value":
    return x if isinstance(x, Value) else Value(x)


class Value:
    """A scalar that remembers how it was computed (micrograd's `Value`)."""

    __slots__ = ("data", "grad", "label", "_args", "_impl", "_seq", "_adj")

    def __init__(self, data, _children=(), _op="", label=""):
        try:
            if isinstance(data, (str, bytes)):
                raise TypeError
            self.data = float(data)
        except (TypeError, ValueError):
            raise TypeError(f"Value data must be a number, got {type(data).__name__}") from None
        self.grad = 0.0
        self.label = label
        self._args = tuple(_children)
        # A node built by hand from children has no derivative rule, as in micrograd.
        self._impl = _LEAF if not _op else _Op(None, label=_op)
        self._seq = next(_seq)

    # --- micrograd's attributes ----------------------------------------------
    @property
    def _prev(self) -> set:
        return set(self._args)

    @property
    def _op(self) -> str:
        return self._impl.label

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"

    # --- arithmetic (hot paths written out; each calls the table's fn) -------
    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return _node(_ADD.fn(self.data, other.data), (self, other), _ADD)

    def __radd__(self, other):
        return Value(other) + self

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return _node(_MUL.fn(self.data, other.data), (self, other), _MUL)

    def __rmul__(self, other):
        return Value(other) * self

    def __sub__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return _node(_SUB.fn(self.data, other.data), (self, other), _SUB)

    def __rsub__(self, other):
        return Value(other) - self

    def __truediv__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return _node(_DIV.fn(self.data, other.data), (self, other), _DIV)

    def __rtruediv__(self, other):
        return Value(other) / self

    def __neg__(self):
        return _node(_NEG.fn(self.data), (self,), _NEG)

    def __pos__(self):
        return self

    def __pow__(self, other):
        """`x ** k` for an integer k (|k| <= 64) is `ipow`, which, like
        micrograd, allows a negative base; otherwise `pow` (as math.pow)."""
        if isinstance(other, Value):
            return self._apply("pow", other)
        if isinstance(other, (str, bytes)) or not hasattr(other, "__float__"):
            return NotImplemented  # Python raises TypeError, as for float ** "3"
        k = float(other)
        if k.is_integer() and abs(k) <= LARGEST_INTEGER_POWER:
            op = _op(IPOW, int(k))
            return _node(op.fn(self.data), (self,), op)
        return self._apply("pow", Value(k))

    def __rpow__(self, other):
        return Value(other)._apply("pow", self)

    def __abs__(self):
        return self._apply("abs")

    def _apply(self, name: str, *others) -> "Value":
        args = (self, *map(_lift, others))
        op = _op(name, None, len(args))
        return _node(op.fn(*(a.data for a in args)), args, op)

    # --- backward ----------------------------------------------------------
    def _topo(self) -> list["Value"]:
        """Every Value this one depends on, itself included, inputs first
        (creation order is a topological order)."""
        seen = {self}
        stack = [self]
        while stack:
            for a in stack.pop()._args:
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
        return sorted(seen, key=_by_seq)

    def backward(self, gradient: float = 1.0) -> None:
        """Add d(self)/d(node) * gradient to `.grad` of every node of the graph."""
        topo = self._topo()
        for v in topo:
            v._adj = 0.0
        self._adj = float(gradient)
        for v in reversed(topo):
            back = v._impl.back
            if back is None:
                continue
            args = v._args
            try:
                if len(args) == 2:  # the common cases, unrolled
                    a, b = args
                    da, db = back(v._adj, v.data, a.data, b.data)
                    a._adj += da
                    b._adj += db
                    continue
                if len(args) == 1:
                    a, = args
                    a._adj += back(v._adj, v.data, a.data)[0]
                    continue
                contributions = back(v._adj, v.data, *[a.data for a in args])
            except _DOMAIN_ERRORS:
                contributions = numeric_rule(v._impl, v._adj, v.data, [a.data for a in args])
            for a, c in zip(args, contributions):
                a._adj += c
        for v in topo:
            v.grad += v._adj

    def _backward(self) -> None:
        """micrograd's one-step backward: push this node's `.grad` into its
        inputs' `.grad`."""
        back = self._impl.back
        if back is None:
            return
        inputs = [a.data for a in self._args]
        try:
            contributions = back(self.grad, self.data, *inputs)
        except _DOMAIN_ERRORS:
            contributions = numeric_rule(self._impl, self.grad, self.data, inputs)
        for a, c in zip(self._args, contributions):
            a.grad += c


def _by_seq(v: Value) -> int:
    return v._seq


_ADD, _SUB, _MUL, _DIV = (_op(n, None, 2) for n in ("add", "sub", "mul", "div"))
_NEG = _op("neg", None, 1)


def _method(op: _Op, arity: int | None):
    if arity == 1:
        def method(self):
            return _node(op.fn(self.data), (self,), op)
    elif arity == 2:
        def method(self, other):
            other = other if isinstance(other, Value) else Value(other)
            return _node(op.fn(self.data, other.data), (self, other), op)
    else:
        def method(self, *others):
            return self._apply(op.name, *others)
    return method


def _install_builtins() -> None:
    """A method for every built-in of the language: `x.tanh()`, `y.atan2(x)`,
    `a.max(b, c)`.  A new op in the table is a new method here."""
    for spec in OPS.values():
        name = spec.builtin
        if not name or name in ("pow", "abs") or not spec.grad:
            continue
        method = _method(_op(spec.name, None, spec.arity), spec.arity)
        method.__name__ = name
        method.__doc__ = f"`{name}` of the language, with its derivative from the op table."
        setattr(Value, name, method)
    Value.pow = Value.__pow__
    Value.abs = Value.__abs__


_install_builtins()
