"""The optimisation passes: each rewrite keeps values and gradients, and the
optimised output is never larger than the unoptimised one.

"Unoptimised" is the same compiler built with `options.UNOPTIMISED`
(`Graph.add` then only hash-conses), so every property compares the real
pipeline against itself minus the passes.
"""

from __future__ import annotations

import math
import re
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exprgrad
from exprgrad.compiler.graph import Graph, Node
from exprgrad.compiler.ops import OPS
from exprgrad.compiler.options import DEFAULT, UNOPTIMISED, Options
from exprgrad.compiler.passes import strength
from exprgrad.compiler.pipeline import differentiate, front_end
from exprgrad.runtime.modules import module_from_text

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# --- random expressions over x and y ----------------------------------------
LEAVES = st.sampled_from(["x", "y", "0", "1", "2", "0.5", "3", "4", "-1"])
UNARY = ["-({})", "tanh({})", "sin({})", "({})^2", "({})^3", "({})^-1", "exp(tanh({}))",
         "relu({})", "({}) * 1", "({}) + 0", "({}) - 0", "({}) / 1", "({}) * 0", "({}) / 4",
         "({}) / 2", "({}) / 3"]
BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / ({})", "max({}, {})"]


def _expressions():
    return st.recursive(
        LEAVES,
        lambda inner: st.one_of(
            st.tuples(st.sampled_from(UNARY), inner).map(lambda t: t[0].format(t[1])),
            st.tuples(st.sampled_from(BINARY), inner, inner).map(
                lambda t: t[0].format(t[1], t[2]))),
        max_leaves=8)


POINTS = st.tuples(st.floats(-3, 3), st.floats(-3, 3))


def _compile(source: str, optimised: bool):
    text = exprgrad.emit(source, "p.expr", DEFAULT if optimised else UNOPTIMISED)
    return text, module_from_text(text, "p.expr")


def _outcome(fn, *args):
    try:
        value, grads = fn(*args)
    except (ArithmeticError, ValueError):  # math.pow(0, -1) and 0.0 ** -1 differ in type only
        return "domain error"
    return (value, *grads)


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return all((math.isnan(p) and math.isnan(q)) or math.isclose(p, q, rel_tol=1e-12,
                                                                  abs_tol=1e-300)
               for p, q in zip(a, b))


def _statements(text: str, function: str) -> int:
    """Statements computing something in one generated function: the lines
    that carry a `# file:line:col` comment (the argument prologue has none)."""
    body = text.split(f"\ndef {function}(", 1)[1].split("\n\n\n", 1)[0]
    return len(re.findall(r"  # \S+:\d+:\d+$", body, re.MULTILINE))


@SETTINGS
@given(_expressions(), POINTS)
def test_passes_keep_values_and_gradients(expression, point):
    source = f"f(x, y) = {expression}\n"
    _, fast = _compile(source, optimised=True)
    _, plain = _compile(source, optimised=False)
    assert _same(_outcome(fast.f_grad, *point), _outcome(plain.f_grad, *point)), source


def _operations(program, emitted) -> list[int]:
    """Operations (non-leaf DAG nodes) each generated function evaluates."""
    g = program.graph
    counts = []
    for e in emitted:
        roots = [r for r in _flat(e.result)]
        counts.append(sum(1 for n in g.ancestors(roots)
                          if g.nodes[n].op not in ("const", "bool", "input")))
    return counts


def _flat(value):
    stack, out = [value], []
    while stack:
        v = stack.pop()
        if isinstance(v, int):
            out.append(v)
        else:
            stack.extend(v)
    return out


@SETTINGS
@given(_expressions())
def test_optimised_output_is_no_larger(expression):
    """Size is the operations evaluated per call.  (Statements are not the
    measure: `x**2 → x * x` may name `x` once more to use it twice.)"""
    source = f"f(x, y) = {expression}\n"
    plain = front_end(source, "p.expr", UNOPTIMISED)
    plain_ops = _operations(plain, differentiate(plain))
    fast = front_end(source, "p.expr")
    fast_ops = _operations(fast, differentiate(fast))
    assert all(f <= p for f, p in zip(fast_ops, plain_ops)), (fast_ops, plain_ops)


# --- hash-consing: no CSE or DCE pass needed ------------------------------------
def _evaluate(g: Graph, roots, inputs: dict) -> list[float]:
    """A plain interpreter over the DAG: the reference for graph passes."""
    values: dict[int, object] = {}
    for n in g.ancestors(list(roots)):
        node = g.nodes[n]
        if node.op in ("const", "bool"):
            values[n] = node.attr
        elif node.op == "input":
            values[n] = inputs[node.attr]
        else:
            spec = OPS[node.op]
            args = [values[a] for a in node.args]
            values[n] = spec.evaluate(args, node.attr)
    return [values[r] for r in roots]


def _program_graph(expression: str, options: Options = DEFAULT):
    program = front_end(f"f(x, y) = {expression}\n", "p.expr", options)
    emitted = differentiate(program)
    gradient = emitted[1].result
    roots = [gradient[0], *gradient[1]]
    inputs = {program.graph.nodes[leaf].attr: name for name, leaf in
              zip("xy", (p.placeholders for p in program.functions[0].params))}
    return program.graph, roots, inputs


def _key(node: Node):
    """What hash-consing compares: a constant by its bits (-0.0 is not 0.0)."""
    return (node.op, node.args, float(node.attr).hex() if node.op == "const" else node.attr)


@SETTINGS
@given(_expressions(), st.sampled_from([DEFAULT, UNOPTIMISED]))
def test_hash_consing_leaves_no_duplicate_for_a_cse_pass(expression, options):
    """Every node, adjoints included, enters through `Graph.add`, so no two
    nodes are equal: common-subexpression elimination has nothing to do."""
    g, _, _ = _program_graph(expression, options)
    keys = [_key(node) for node in g.nodes]
    assert len(set(keys)) == len(keys)


@SETTINGS
@given(_expressions())
def test_commuted_sums_and_products_are_one_node(expression):
    g, _, _ = _program_graph(expression)
    pairs = {(n.op, n.args) for n in g.nodes if n.op in ("add", "mul")}
    assert not any((op, args[::-1]) in pairs for op, args in pairs if args[0] != args[1])


@pytest.mark.parametrize("options, source, present, absent", [
    (Options(fold=False), "f(x) = x + 2 * 3", "2.0 * 3.0", "6.0"),
    (Options(), "f(x) = x + 2 * 3", "6.0", "2.0 * 3.0"),
    (Options(identities=False), "f(x) = x * 1", "x * 1.0", None),
    (Options(strength=False), "f(x) = x / 4", "x / 4.0", "0.25"),
    (Options(strength=False), "f(x) = x ^ 2", "x ** 2", "x * x"),
])
def test_each_option_turns_its_rewrite_off(options, source, present, absent):
    forward = exprgrad.emit(source, "p.expr", options).split("\ndef f(")[1].split("\n\n\n")[0]
    assert present in forward
    assert absent is None or absent not in forward.split('"""')[-1]


def test_the_graph_keeps_its_options_for_reverse_mode():
    """Adjoint nodes are built after lowering, by the same graph: with
    identities off, the gradient of x*y keeps the seed's product 1 * y."""
    program = front_end("f(x, y) = x * y\n", "p.expr", Options(identities=False))
    assert program.graph.options == Options(identities=False)
    before = len(program.graph)
    differentiate(program)
    assert any(n.op == "mul" for n in program.graph.nodes[before:])
    assert Graph().options == DEFAULT


def test_hash_consing_shares_equal_subexpressions_in_generated_code():
    text = exprgrad.emit("def f(x, y):\n    a = sin(x*y)\n    b = sin(y*x)\n    return a + b\n")
    forward = text.split("\ndef f(", 1)[1].split("\n\n\n", 1)[0]
    assert forward.count("math.sin(") == 1


# --- folding, strength reduction, inlining, adjoints --------------------------
def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


@given(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
       st.integers(-1074, 1023))
@settings(max_examples=200, deadline=None)
def test_division_by_a_power_of_two_is_an_exact_multiplication(x, k):
    divisor = math.ldexp(1.0, k)
    if not math.isfinite(1.0 / divisor):
        return
    assert strength._is_power_of_two(divisor)
    assert _bits(x / divisor) == _bits(x * (1.0 / divisor)) or (math.isnan(x))


@pytest.mark.parametrize("source, present, absent", [
    ("f(x) = x^2", "x ** 2", "x * x"),  # x * x would be inf where x ** 2 raises
    ("f(x) = x / 4", "x * 0.25", "/"),
    ("f(x) = x / 3", "x / 3.0", "* 0.3"),
    ("f(x) = x^3", "x ** 3", "x * x * x"),
    ("f(x, y) = exp(x + y)", "math.exp(x + y)", "math.exp(x) *"),
])
def test_strength_reduction(source, present, absent):
    forward = exprgrad.emit(source + "\n").split("\ndef f(", 1)[1].split("\n\n\n", 1)[0]
    assert present in forward
    assert absent not in forward.split('"""')[-1]


def test_x_times_zero_is_not_folded_because_inf_times_zero_is_nan():
    module = exprgrad.compile("f(x) = x * 0\n")
    assert math.isnan(module.f(math.inf))
    assert module.f(2.0) == 0.0


def test_single_use_temporaries_are_inlined_and_shared_values_named():
    text = exprgrad.emit("def f(x):\n    n = x*2 + 1\n    return tanh(n)\n")
    forward = text.split("\ndef f(", 1)[1].split("\n\n\n", 1)[0]
    assert _statements(text, "f") == 1  # `n` is used once: inlined into the return
    gradient = text.split("\ndef f_grad(", 1)[1].split("\n\n\n", 1)[0]
    assert "\n    n = " in gradient or "math.tanh(x * 2.0 + 1.0)" in forward


def test_adjoints_accumulate_without_zero_initialised_sums():
    text = exprgrad.emit("def f(x, y):\n    a = x*y\n    return a*x + sin(a) + a\n")
    gradient = text.split("\ndef f_grad(", 1)[1]
    assert "0.0 +" not in gradient and "+ 0.0" not in gradient
    assert " = 0.0" not in gradient


def test_tanh_derivative_reuses_the_forward_value():
    text = exprgrad.emit("f(x, w) = tanh(w * x + 1)\n")
    gradient = text.split("\ndef f_grad(", 1)[1]
    assert gradient.count("math.tanh(") == 1
    module = exprgrad.compile("f(x, w) = tanh(w * x + 1)\n")
    value, (dx, dw) = module.f_grad(0.3, -1.2)
    assert dx == pytest.approx(-1.2 * (1 - math.tanh(-0.36 + 1) ** 2), rel=1e-14)


SPECIAL = [0.0, -0.0, 1.5, -2.25, math.inf, -math.inf, math.nan, 5e-324]


def test_a_negation_added_becomes_a_subtraction_bit_for_bit():
    """-a + b → b - a and a + -b → a - b: one operation fewer, the same float
    for every input, signed zeros and nan included."""
    source = "f(a, b) = -a + b\ng(a, b) = a + -b\n"
    forward = exprgrad.emit(source).split("\ndef f(", 1)[1].split("\n\n\n")[0]
    assert "return b - a" in forward
    module = exprgrad.compile(source)
    for a in SPECIAL:
        for b in SPECIAL:
            for got, want in ((module.f(a, b), -a + b), (module.g(a, b), a + -b)):
                assert _bits(got) == _bits(want) or (math.isnan(got) and math.isnan(want)), (a, b)


def test_a_contribution_is_built_only_for_an_input_that_needs_one():
    """w / 7 with only w differentiated: the divisor's contribution
    -(d * out / 7) is never built, for any op, not pruned afterwards."""
    from exprgrad.compiler import reverse
    g = Graph()
    w, seven, d = g.input("w"), g.const(7.0), g.input("d")
    quotient = g.add("div", w, seven)
    before = len(g)
    only_w = reverse.contributions(g, quotient, d, active={w, quotient})
    assert only_w[1] is None and g.nodes[only_w[0]] == Node("div", (d, seven))
    assert len(g) == before + 1
    both = reverse.contributions(g, quotient, d)
    assert both[0] == only_w[0] and g.nodes[both[1]].op == "neg" and len(g) == before + 4
