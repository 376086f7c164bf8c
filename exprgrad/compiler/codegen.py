"""Code generation: DAG → readable, importable Python text.

For each function the generator takes the nodes its results need, names the
ones worth naming (used more than once, or too long to inline) and inlines
the rest into their single consumer, with parentheses only where Python's
precedence needs them.  Each statement carries the `# file.expr:line:col` of
the source that produced it.

Conditionals keep Python's meaning: in `a if c else b` only the branch taken
runs.  Every node is *owned* by the innermost branch that all its uses are in;
a named node owned by a branch is emitted inside an `if`/`else` block, so a
`log(x)` in the branch not taken (or its derivative) is never evaluated.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
from dataclasses import dataclass

from .._version import __version__
from ..errors import CompileError, Loc
from .graph import Graph
from .ops import ATOM, OPS, UNARY
from .values import flatten

MAX_INLINE = 90  # characters: a longer expression gets its own statement
MAX_LINE = 100  # characters: a longer result is laid out one element per line
MAX_BLOCK_DEPTH = 40  # deeper branches are evaluated in their parent block

# Python names that generated code relies on; no generated name may shadow them.
RESERVED = (set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {"math"})

_PLACEHOLDER = re.compile(r"\{(\d+|args|attr)\}")


def _occurrences(template: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in _PLACEHOLDER.findall(template):
        counts[key] = counts.get(key, 0) + 1
    return counts


_TEMPLATE_USES = {name: _occurrences(op.py) for name, op in OPS.items()}


@dataclass
class Signature:
    """One parameter of a generated function: its name in the source, its
    shape (a tuple, or a list of shapes for a tuple-shaped cotangent) and the
    input nodes that receive its elements."""

    name: str
    shape: object
    placeholders: object


def const_text(value) -> tuple[str, int]:
    if isinstance(value, bool):
        return repr(value), ATOM
    if math.isnan(value):
        return "math.nan", ATOM
    if math.isinf(value):
        return ("math.inf", ATOM) if value > 0 else ("-math.inf", UNARY)
    text = repr(float(value))
    return text, (UNARY if text.startswith("-") else ATOM)


class Names:
    """Collision-free Python names derived from source names."""

    def __init__(self, reserved: set[str]):
        self.taken = set(reserved)
        self.next_suffix: dict[str, int] = {}  # per base: no smaller suffix is free

    def fresh(self, hint: str | None) -> str:
        """`hint`, or `hint_k` with the smallest free k.  Names are never
        released, so the search resumes where the last one for this base
        stopped: linear in the number of names, not quadratic."""
        base = hint or "t"
        if not base.isidentifier() or base in RESERVED or base.startswith("__"):
            base += "_"
        name, k = base, self.next_suffix.get(base, 1)
        if name in self.taken:
            name = f"{base}_{k}"
            while name in self.taken:
                k += 1
                name = f"{base}_{k}"
            self.next_suffix[base] = k + 1
        self.taken.add(name)
        return name


class FunctionEmitter:
    """Emits one Python function computing `result` (a structure of node ids:
    an id, a list, or a tuple) from the parameters."""

    def __init__(self, g: Graph, filename: str):
        self.g = g
        self.filename = printable_filename(filename)
        self.names = Names(RESERVED | HELPER_NAMES)
        self.helpers: set[str] = set()

    def emit(self, name: str, params: list[Signature], result, doc: str) -> list[str]:
        g = self.g
        outputs = flatten(result)
        results = set(outputs)
        needed = g.ancestors(outputs)
        uses = self._count_uses(needed, outputs)
        owner, parent = self._owners(needed, outputs)
        self.text: dict[int, tuple[str, int]] = {}
        self.var: dict[int, str] = {}
        self.statement: dict[int, str] = {}  # right-hand side of each named node
        signature = [self.names.fresh(p.name) for p in params]
        lines = [f"def {name}({', '.join(signature)}):", f'    """{doc}"""']
        lines += self._unpack(params, signature)
        blocks: dict[int, list[int]] = {}
        self._emitted: set[int] = set()
        for n in needed:
            node = g.nodes[n]
            if node.op in ("input", "const", "bool"):
                continue
            text = self._render(n)
            if uses[n] == 1 and len(text[0]) <= MAX_INLINE and not self._has_block(n, blocks):
                self.text[n] = text
            else:
                self.var[n] = self.names.fresh(g.names.get(n) or ("out" if n in results else None))
                self.text[n] = (self.var[n], ATOM)
                self.statement[n] = text[0]  # rendered once: its operands are final
                blocks.setdefault(owner[n], []).append(n)
        lines += self._emit_block(0, 1, blocks)
        loc = g.locs[outputs[0]] if outputs else None
        first, *rest = self._layout(result, len("    return "))
        lines.append(self._with_comment("    return " + first, loc))
        lines += ["    " + line for line in rest]
        return lines

    # --- analysis ----------------------------------------------------------
    def _count_uses(self, needed: list[int], outputs: list[int]) -> dict[int, int]:
        uses = dict.fromkeys(needed, 0)
        for n in needed:
            node = self.g.nodes[n]
            counts = _TEMPLATE_USES[node.op]
            for i, a in enumerate(node.args):
                uses[a] += counts.get(str(i), counts.get("args", 1))
        for out in outputs:
            uses[out] += 1
        return uses

    def _owners(self, needed: list[int], outputs: list[int]):
        """The block that owns each node: the lowest common ancestor of the
        blocks its uses are in.  Block 0 is the function body; each
        conditional node gets two child blocks, one per branch."""
        g = self.g
        parent = [0]
        depth = [0]
        self._branches: dict[tuple[int, int], int] = {}
        # Conditionals on one condition in one block share their branch blocks
        # (a value and its gradient, say), so a node that only they use stays
        # inside the branch instead of being hoisted above both.
        shared: dict[tuple[int, int, int], int] = {}

        def branch(w: int, side: int, of: int) -> int:
            key = (w, side)
            if key not in self._branches:
                if depth[of] >= MAX_BLOCK_DEPTH:
                    return of  # no block of its own: no if/else, both sides computed
                same = (g.nodes[w].args[0], side, of)
                if same not in shared:
                    parent.append(of)
                    depth.append(depth[of] + 1)
                    shared[same] = len(parent) - 1
                self._branches[key] = shared[same]
            return self._branches[key]

        def common(a: int, b: int) -> int:
            while depth[a] > depth[b]:
                a = parent[a]
            while depth[b] > depth[a]:
                b = parent[b]
            while a != b:
                a, b = parent[a], parent[b]
            return a

        owner: dict[int, int] = {out: 0 for out in outputs}
        for n in reversed(needed):
            block = owner.get(n, 0)
            node = g.nodes[n]
            for i, a in enumerate(node.args):
                use = branch(n, i, block) if node.op == "where" and i > 0 else block
                owner[a] = use if a not in owner else common(owner[a], use)
        self._owner, self._parent = owner, parent
        return owner, parent

    def _has_block(self, n: int, blocks: dict[int, list[int]]) -> bool:
        """A conditional whose branches need statements must be an if/else."""
        if self.g.nodes[n].op != "where":
            return False
        return any(self._branches.get((n, side)) in blocks for side in (1, 2))

    # --- text --------------------------------------------------------------
    def _render(self, n: int) -> tuple[str, int]:
        node = self.g.nodes[n]
        spec = OPS[node.op]
        if spec.helper:
            self.helpers.add(node.op)
        parts = [self._operand(a, spec.required_prec(i)) for i, a in enumerate(node.args)]
        text = spec.py.format(*parts, args=", ".join(parts), attr=node.attr)
        return text, spec.prec

    def _operand(self, n: int, required: int) -> str:
        text, prec = self._expr(n)
        return f"({text})" if prec < required else text

    def _expr(self, n: int) -> tuple[str, int]:
        if n in self.text:
            return self.text[n]
        node = self.g.nodes[n]
        if node.op in ("const", "bool"):
            return const_text(node.attr)
        return self.text[n]

    def _structure(self, value) -> str:
        if isinstance(value, int):
            return self._expr(value)[0]
        items = [self._structure(v) for v in value]
        if isinstance(value, tuple):
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        return "[" + ", ".join(items) + "]"

    def _layout(self, value, indent: int) -> list[str]:
        """A result structure as lines: one line if it fits, else one element
        per line, black-style (the gradient of an array is an array)."""
        text = self._structure(value)
        if isinstance(value, int) or indent + len(text) <= MAX_LINE:
            return [text]
        opening, closing = "()" if isinstance(value, tuple) else "[]"
        lines = [opening]
        for item in value:
            *head, last = self._layout(item, indent + 4)
            lines += ["    " + line for line in (*head, last + ",")]
        return lines + [closing]

    def _with_comment(self, line: str, loc: Loc | None) -> str:
        if loc is None:
            return line
        return f"{line}  # {self.filename}:{loc.line}:{loc.column}"

    def _emit_block(self, block: int, depth: int, blocks: dict[int, list[int]],
                    wanted: set[int] | None = None) -> list[str]:
        pad = "    " * depth
        lines: list[str] = []
        for n in blocks.get(block, ()):
            if wanted is not None and n not in wanted:
                continue
            self._emitted.add(n)
            loc = self.g.locs[n]
            if self._has_block(n, blocks):
                cond, then, otherwise = self.g.nodes[n].args
                lines.append(self._with_comment(f"{pad}if {self._expr(cond)[0]}:", loc))
                for side, value in ((1, then), (2, otherwise)):
                    if side == 2:
                        lines.append(f"{pad}else:")
                    inner = self._branches[(n, side)]
                    lines += self._emit_block(inner, depth + 1, blocks,
                                              self._not_yet_emitted(inner, value))
                    lines.append(self._with_comment(
                        f"{pad}    {self.var[n]} = {self._expr(value)[0]}", loc))
            else:
                lines.append(self._with_comment(f"{pad}{self.var[n]} = {self.statement[n]}",
                                                loc))
        return lines

    def _not_yet_emitted(self, block: int, value: int) -> set[int]:
        """The nodes of a branch block that `value` needs and that no earlier
        if/else on the same condition emitted (that one ran exactly when this
        one runs, so its variables are set)."""
        wanted: set[int] = set()
        seen: set[int] = set()
        stack = [value]
        while stack:
            n = stack.pop()
            if n in seen or n in self._emitted or not self._inside(self._owner.get(n), block):
                continue
            seen.add(n)  # nodes of nested blocks are passed through: inlined text uses ours
            if self._owner[n] == block:
                wanted.add(n)
            stack.extend(self.g.nodes[n].args)
        return wanted

    def _inside(self, inner: int | None, block: int) -> bool:
        while inner is not None and inner != block:
            inner = self._parent[inner] if inner else None
        return inner == block

    def _unpack(self, params: list[Signature], signature: list[str]) -> list[str]:
        """Arguments → one float variable per element.

        The checked conversion (`_float`/`_floats`, whose errors name the
        parameter) costs a Python call per element, more than the rest of a
        small gradient.  So the arguments are first unpacked with Python's
        own unpacking, which checks every length, and converted with
        `float(+x)` (unary plus rejects the strings `float` would parse); only
        if that raises does the checked conversion run and report the error.
        """
        fast, checked, scalars = [], [], []
        for p, arg in zip(params, signature):
            leaves = flatten(p.placeholders)
            targets = []
            for leaf in leaves:
                var = arg if p.shape == () else self.names.fresh(self.g.names.get(leaf))
                self.var[leaf] = var
                self.text[leaf] = (var, ATOM)
                targets.append(var)
            if p.shape == ():
                checked.append(f"{arg} = _float({arg}, {p.name!r})")
                scalars.append(arg)  # converted together: `a, b = float(+a), float(+b)`
                self.helpers.add("_float")
                continue
            fast += _float_lines(scalars, len(scalars))
            scalars = []
            unpacked = ", ".join(targets) + ("," if len(targets) == 1 else "")
            checked += _wrap(f"{unpacked} = _floats({arg}, {p.name!r}, {p.shape!r})", indent="")
            self.helpers.update(("_float", "_floats"))
            structure = _unpack_target(p.shape, targets)
            if structure is None:  # too deeply nested for one Python target
                fast += _wrap(f"{unpacked} = _floats({arg}, {p.name!r}, {p.shape!r})",
                              indent="")
                continue
            fast += _fill(structure, f" = {arg}")
            row = p.shape[-1] if isinstance(p.shape, tuple) else 1
            fast += _float_lines(targets, row)
        fast += _float_lines(scalars, len(scalars))
        if not fast:
            return []
        lines = ["    try:"] + ["        " + line for line in fast]
        lines.append("    except (TypeError, ValueError):  # report which argument is wrong")
        lines += ["        " + line for line in checked]
        return lines


def _wrap(line: str, width: int = 100, indent: str = "    ") -> list[str]:
    """Break a long unpacking line after commas, Python-style."""
    line = indent + line
    if len(line) <= width:
        return [line]
    head, _, tail = line.partition(" = ")
    names = [n.strip() for n in head.split(",") if n.strip()]
    if len(names) == 1:
        names[0] += ","
    out, current = [indent + "("], indent + "    "
    for n in names:
        piece = n + ", "
        if len(current) + len(piece) > width:
            out.append(current.rstrip())
            current = indent + "    "
        current += piece
    out.append(current.rstrip())
    out.append(indent + ") = " + tail)
    return out


MAX_TARGET_DEPTH = 20  # deeper arrays are unpacked by the checked helper alone


def _unpack_target(shape, names: list[str]) -> list[str] | None:
    """The items of a nested unpacking target shaped like `shape` (an array
    shape, or a list of them for a tuple), e.g. ['(w_0_0, w_0_1)', '(w_1_0, w_1_1)']
    for shape (2, 2); None when the nesting is too deep to write as a target."""
    if isinstance(shape, list):
        items, start = [], 0
        for part in shape:
            size = math.prod(part)
            if part == ():
                items.append(names[start])
            else:
                inner = _unpack_target(part, names[start:start + size])
                if inner is None:
                    return None
                items.append(_tuple_text(inner))
            start += size
        return items
    if len(shape) > MAX_TARGET_DEPTH:
        return None
    items = list(names)
    for size in reversed(shape[1:]):
        items = [_tuple_text(items[i:i + size]) for i in range(0, len(items), size)]
    return items


def _tuple_text(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _fill(items: list[str], tail: str, width: int = 92) -> list[str]:
    """`item, item, ... = value`, broken after commas inside parentheses when long."""
    text = ", ".join(items) + ("," if len(items) == 1 else "")
    if len(text + tail) <= width:
        return [text + tail]
    out, current = ["("], "    "
    for item in items:  # whole rows per line where they fit, else break after commas
        for piece in [item + ", "] if len(item) < width - 4 else (item + ",").split(" "):
            piece = piece if piece.endswith(" ") else piece + " "
            if len(current) + len(piece) > width and current.strip():
                out.append(current.rstrip())
                current = "    "
            current += piece
    out.append(current.rstrip())
    out.append(")" + tail)
    return out


def _float_lines(names: list[str], row: int, width: int = 92) -> list[str]:
    """`a, b = float(+a), float(+b)`: one line per row of the array, rows
    too long for a line in several."""
    lines = []
    for start in range(0, len(names), max(row, 1)):
        chunk: list[str] = []
        for name in names[start:start + max(row, 1)]:
            chunk.append(name)
            if len(_convert(chunk)) > width and len(chunk) > 1:
                chunk.pop()
                lines.append(_convert(chunk))
                chunk = [name]
        if chunk:
            lines.append(_convert(chunk))
    return lines


def _convert(names: list[str]) -> str:
    return ", ".join(names) + " = " + ", ".join(f"float(+{n})" for n in names)


# --- runtime helpers copied into every module that uses them -------------------
RUNTIME_HELPERS = {
    "_float": '''def _float(value, name):
    """A scalar argument as a float; the error names the parameter."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None''',
    "_floats": '''def _floats(value, name, shape):
    """The elements of a nested-sequence argument, row-major, as floats.
    `shape` is an array's shape, or a list of shapes for a tuple."""
    if not shape:
        return [_float(value, name)]
    if isinstance(shape, list):
        if not isinstance(value, (tuple, list)) or len(value) != len(shape):
            raise ValueError(f"{name} must be a tuple of {len(shape)} values")
        return [x for i, part in enumerate(shape) for x in _floats(value[i], f"{name}[{i}]", part)]
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        length = len(value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of shape {list(shape)}, "
                        f"got {type(value).__name__}") from None
    if length != shape[0]:
        raise ValueError(f"{name} must have shape {list(shape)}, but has length {length}")
    flat = []
    for i, item in enumerate(value):
        flat += _floats(item, f"{name}[{i}]", shape[1:])
    return flat''',
}


GENERATED_MARK = "# @generated by exprgrad"


HELPER_NAMES = set(RUNTIME_HELPERS) | {op.py.split("(")[0] for op in OPS.values() if op.helper}


def printable_filename(filename: str) -> str:
    """The file name as generated comments and docstrings show it: printable
    ASCII without quotes or backslashes, so that no file name (one with a
    newline and Python code in it, say) can end a comment or a docstring."""
    return "".join(c if " " <= c <= "~" and c not in "\"\\" else "?" for c in filename)


def module_header(filename: str, output: str | None = None) -> list[str]:
    """The module's first lines; `output` is the -o the module is written to
    (by default the source's name with .py), for the "Regenerate with" line."""
    filename = printable_filename(filename)
    stem = filename[:-5] if filename.endswith(".expr") else filename
    output = f"{stem}.py" if output is None else printable_filename(output)
    return [
        f"{GENERATED_MARK} {__version__} from {filename}; do not edit.",
        f"# Regenerate with: exprgrad compile {filename} -o {output}",
        f'"""Forward and gradient functions compiled by exprgrad from {filename}."""',
        "",
        "import math",
    ]


def helper_source(names: set[str]) -> list[str]:
    """The helper functions, in a fixed order (deterministic output)."""
    sources = []
    for name in sorted(names):
        if name in RUNTIME_HELPERS:
            sources.append(RUNTIME_HELPERS[name])
        elif OPS[name].helper:
            sources.append(OPS[name].helper.rstrip())
    return sources


def check_function_name(name: str, loc: Loc) -> None:
    if name in RESERVED or name.startswith("_"):
        raise CompileError(f"'{name}' is reserved in the generated Python module (a Python "
                           "keyword or built-in, or a leading underscore); rename the "
                           "function", loc)
