"""Mutation test of the verifier: a small change inside one branch of an
emitted gradient must be reported FAILED whenever it changes the function
somewhere reachable.

Mutants are made from the emitted module's Python syntax tree: inside one
branch (an `x if c else y` or an `if` block) of a `_grad` function, a sign is
flipped, a term dropped or a constant changed.  Whether a mutant changes the
function is decided independently of the verifier, by brute force: the
original and the mutant are run in plain floats on a grid of points that
includes ties (x = y, x = 0, x = each constant of the source).
"""

import ast
import itertools
import math

import pytest

import exprgrad
from exprgrad.verify import FAILED, Settings, check

SOURCES = {
    "log-sum-exp": "lse(x, y) = max(x, y) + log(exp(x - max(x, y)) + exp(y - max(x, y)))\n",
    "min/max": "mm(x, y) = min(x, 2*y) + max(x, y, 1)\n",
    "relu": "r(x) = relu(x - 1) * x\n",
    "abs": "ab(x, y) = abs(x - 0.5) * y\n",
    "piecewise": "pw(x) = x^2 if x > 1 else (3*x - 2 if x > 0 else -x)\n",
}
FAST = Settings(timeout=1.0, prove=False)


def _branches(tree):
    """The statements and expressions inside one branch of a conditional of a
    `_grad` function, and the temporaries only such branches use (the tie
    share of a max): (node, field) pairs whose content can be mutated."""
    for function in tree.body:
        if not (isinstance(function, ast.FunctionDef) and function.name.endswith("_grad")):
            continue
        in_branches: set[str] = set()
        for node in ast.walk(function):
            if isinstance(node, ast.IfExp):
                yield from ((node, "body"), (node, "orelse"))
                in_branches |= _names(node.body) | _names(node.orelse)
            elif isinstance(node, ast.If):
                for field in ("body", "orelse"):
                    for statement in getattr(node, field):
                        if isinstance(statement, ast.Assign):
                            yield statement, "value"
        used_elsewhere = _names_outside_branches(function)
        for statement in function.body:
            if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name)
                    and statement.targets[0].id in in_branches - used_elsewhere):
                yield statement, "value"


def _names(expr) -> set:
    return {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}


def _names_outside_branches(function) -> set:
    """Names read by statements outside every conditional's branches."""
    inside = {id(n) for node in ast.walk(function) if isinstance(node, ast.IfExp)
              for part in (node.body, node.orelse) for n in ast.walk(part)}
    return {n.id for n in ast.walk(function) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load) and id(n) not in inside}


def _sites(expr):
    """Every sub-expression of a branch, with the mutations that apply."""
    for node in ast.walk(expr):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            yield node, "swap"
            yield node, "drop-right"
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            yield node, "constant"
        if isinstance(node, (ast.BinOp, ast.Name, ast.Call)):
            yield node, "negate"


def _mutate(node, how):
    if how == "swap":
        node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        return node
    if how == "drop-right":
        return node.left
    if how == "constant":
        node.value = node.value + 1.0 if node.value != 1.0 else 3.0
        return node
    return ast.UnaryOp(ast.USub(), node)


def mutants(text, places=None, most=None):
    """(description, mutated module text) for every site in the statement
    lists `places(tree)` names (every branch by default), or for `most` of
    them spread evenly."""
    places = places or _branches
    tree = ast.parse(text)
    count = sum(1 for parent, field in places(tree)
                for _ in _sites(getattr(parent, field)))
    step = max(1, count // most) if most else 1
    for k in range(0, count, step):
        tree = ast.parse(text)
        sites = [(parent, field, node, how) for parent, field in places(tree)
                 for node, how in _sites(getattr(parent, field))]
        parent, field, node, how = sites[k]
        replacement = _mutate(node, how)
        if replacement is not node:
            _replace(getattr(parent, field), node, replacement, parent, field)
        yield f"{how} at {ast.unparse(node)[:40]}", ast.unparse(tree)


def _replace(root, old, new, parent, field):
    if root is old:
        setattr(parent, field, new)
        return
    for node in ast.walk(root):
        for name, value in ast.iter_fields(node):
            if value is old:
                setattr(node, name, new)
                return


def _grid(arity, constants):
    values = sorted({-2.5, -1.0, -0.3, 0.0, 0.2, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, *constants})
    return list(itertools.product(values, repeat=arity))


def _changes(source, original, mutant) -> bool:
    """Does the mutant's gradient differ from the original's at a grid point
    where the original is defined?  (Independent of the verifier.)"""
    ns_a, ns_b = {}, {}
    exec(compile(original, "<original>", "exec"), ns_a)
    try:
        exec(compile(mutant, "<mutant>", "exec"), ns_b)
    except SyntaxError:
        return True
    name = next(n for n in ns_a["__all__"] if n.endswith("_grad"))
    arity = ns_a[name].__code__.co_argcount
    constants = {float(c) for c in ("1", "0.5", "2")}
    for point in _grid(arity, constants):
        try:
            want = ns_a[name](*point)
        except (ArithmeticError, ValueError):
            continue
        try:
            got = ns_b[name](*point)
        except (ArithmeticError, ValueError, TypeError):
            return True
        if not all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
                   for a, b in zip(_flat(want), _flat(got))):
            return True
    return False


def _flat(value):
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


@pytest.mark.parametrize("kind", SOURCES)
def test_every_mutant_that_changes_a_branch_is_caught(kind, capsys):
    source = SOURCES[kind]
    text = exprgrad.emit(source)
    assert check(source, settings=FAST, module_text=text), "the original must hold"
    tried = caught = changing = 0
    missed = []
    for what, mutant in mutants(text):
        tried += 1
        if not _changes(source, text, mutant):
            continue  # an equivalent mutant: nothing to catch
        changing += 1
        report = check(source, settings=FAST, module_text=mutant)
        if any(item.status == FAILED for item in report.items):
            caught += 1
        else:
            missed.append(what)
    with capsys.disabled():
        print(f"\n{kind}: caught {caught} of {changing} changing mutants ({tried} tried)")
    assert tried >= 3 and changing >= 2
    assert not missed, missed
