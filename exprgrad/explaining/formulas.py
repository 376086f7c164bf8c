"""Formulas as the lecture writes them: an op applied to named inputs
(`d = e + c`) and its local derivatives (`dL/dd = f`), built from the op
table's derivative rules through their templates (`compiler/rules.py`), so
what is explained is the rule the compiler applies."""

from __future__ import annotations

import math

from ..compiler.graph import Graph
from ..compiler.ops import ATOM, OPS, UNARY
from ..compiler.rules import rule_template
from ..drawing.evaluate import UNDEFINED, evaluate

# What each derivative rule says, in words (the symbols come from the rule itself).
RULE_WORDS = {
    "add": "a sum passes its gradient to each term unchanged",
    "sub": "a difference passes its gradient to the first term and minus it to the second",
    "mul": "the derivative of a product with respect to one factor is the other factor",
    "div": "for a / b: the derivative is 1 / b for a, and -(a / b) / b for b",
    "neg": "negation flips the sign of the gradient",
    "ipow": "the power rule: x ** k has the derivative k * x ** (k - 1)",
    "pow": "the power rule for the base; for the exponent, x ** y * log(x)",
    "exp": "exp is its own derivative",
    "log": "log(x) has the derivative 1 / x",
    "sqrt": "sqrt(x) has the derivative 0.5 / sqrt(x)",
    "tanh": "tanh(n) has the derivative 1 - tanh(n) ** 2",
    "sigmoid": "sigmoid(x) has the derivative sigmoid(x) * (1 - sigmoid(x))",
    "relu": "relu passes the gradient where its input is positive, and 0 elsewhere",
    "abs": "abs passes the gradient with the sign of its input (0 at 0)",
    "where": "a conditional passes the gradient to the branch taken, and 0 to the other",
    "min": "the inputs equal to the result share the gradient; the others get 0",
    "max": "the inputs equal to the result share the gradient; the others get 0",
}


def rule_words(op: str | None, label: str = "") -> str:
    if op is None:
        return f"the Value's own _backward for {label or 'this op'}"
    return RULE_WORDS.get(op, f"the op table's derivative rule of {OPS[op].label}")


def format_number(value) -> str:
    """A number as the explanation prints it: six significant digits."""
    if value is UNDEFINED or value is None:
        return "undefined"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = f"{value:.6g}"
    return "0" if text == "-0" else text


def apply_text(op: str, attr, parts: list[tuple[str, int]]) -> tuple[str, int]:
    """The text of `op` applied to inputs given as (text, precedence), with
    parentheses only where they are needed; returns (text, precedence)."""
    spec = OPS[op]
    if op in ("const", "bool"):
        text = format_number(attr)
        return text, UNARY if text.startswith("-") else ATOM
    texts = [t if p >= spec.required_prec(i) else f"({t})" for i, (t, p) in enumerate(parts)]
    if spec.builtin and op != "pow" or op in ("sigmoid", "softplus"):
        name = spec.builtin or op
        return f"{name}({', '.join(t for t, _ in parts)})", ATOM
    if op == "pow":
        return f"{texts[0]} ** {texts[1]}", spec.prec - 1
    return spec.py.replace("math.", "").format(*texts, args=", ".join(texts), attr=attr), spec.prec


def expression(g: Graph, root: int, leaf_text, depth: int = 12) -> tuple[str, int]:
    """The text of node `root` of a small graph; `leaf_text(n)` names a node
    (or returns None to spell it out).  Deeper than `depth`: `...`."""
    named = leaf_text(root)
    if named is not None:
        return named, ATOM
    node = g.nodes[root]
    if depth == 0:
        return "...", ATOM
    parts = [expression(g, a, leaf_text, depth - 1) for a in node.args]
    return apply_text(node.op, node.attr, parts)


def local_derivatives(op: str, attr, result: tuple[str, object],
                      inputs: list[tuple[str | None, object, bool]]) -> list:
    """(formula, value) of d result / d input for each input, from the op
    table's rule: `result` is (name, value); each input is (name, value,
    wanted), with name None for a constant (written as its value).  None for
    an input that is not wanted or receives no gradient."""
    g = Graph()
    names: dict[int, str] = {}
    known: dict[int, object] = {}
    out = g.input(("out",))
    names[out], known[out] = result
    args = []
    for position, (name, value, _) in enumerate(inputs):
        if name is None:
            args.append(g.const(value))
            continue
        node = g.input(("arg", name))  # one node per name: x * x uses x twice
        names[node], known[node] = name, value
        args.append(node)
    wanted = [w for _, _, w in inputs]
    results = rule_template(op, attr, len(inputs)).apply(g, g.const(1.0), out, args, wanted)
    roots = [r for r in results if r is not None]
    values = evaluate(g, roots, known) if roots else {}
    return [None if r is None else (expression(g, r, names.get)[0], values[r]) for r in results]
