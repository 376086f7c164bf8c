"""Drawing the op DAG with Graphviz, the way micrograd's `draw_dot` does.

A function's DAG is drawn left to right: every value is a record
`{ label | data 2.0000 | grad -3.0000 }` and every operation an oval (`*`,
`+`, `tanh`, ... from the op table's `label`) between the records of its
inputs and the record of its result.  Labels come from the source's names.

Numbers are computed from the DAG itself, never from generated code: data by
running each op's `fn` in id order (ids are a topological order), gradients
by asking reverse mode (`reverse.gradients`) for the adjoint of every drawn
node and evaluating those adjoint nodes the same way.  Where a value feeds
more than one operation its gradient is a sum; the drawing shows each
contribution on its edge so the sum can be checked by eye.

`draw_dot` draws micrograd-style `Value` graphs (anything with `.data`,
`.grad`, `._prev`, `._op` and optionally `.label`).  Every walk is a loop.
"""

from __future__ import annotations

import math
import os
import types
from dataclasses import dataclass, field

import graphviz

from ..compiler.graph import Graph
from ..compiler.ops import OPS
from ..compiler.pipeline import front_end
from ..compiler.reverse import contributions, gradients
from ..compiler.values import flatten
from .. import files
from . import render
from .evaluate import AS_WRITTEN, UNDEFINED, PointError, evaluate, parameter_labels, point_inputs

DEFAULT_MAX_NODES = 300  # Graphviz nodes; layout time grows steeply beyond this
FAN_IN_COLOR = "firebrick"


class DrawError(ValueError):
    """A drawing that cannot be made as asked (unknown function, bad point,
    too many nodes); the message says what to do instead."""


# --- the drawing ------------------------------------------------------------
@dataclass
class Scene:
    """What is drawn: the nodes (ascending ids) and their numbers."""

    g: Graph
    name: str
    nodes: list[int]
    outputs: list[int]
    data: dict[int, object] | None = None
    grad: dict[int, object] | None = None
    # (input node, consumer node, argument position) → the gradient it passes back
    flows: dict[tuple[int, int, int], object] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)  # parameters: x, w[0], W[1][2]


def drawn_node_count(g: Graph, nodes: list[int]) -> int:
    """Graphviz nodes: a record per value, an oval per operation, and a
    record per use of a constant (constants are drawn where they are used, as
    in micrograd, rather than as one node with edges all over the picture)."""
    count = 0
    for n in nodes:
        args = g.nodes[n].args
        count += 2 + sum(1 for a in args if is_drawn_per_use(g, a)) if args else 1
    return count


def is_drawn_per_use(g: Graph, n: int) -> bool:
    """Constants (numbers and booleans) get a record at each use."""
    return g.nodes[n].op in ("const", "bool")


def function_scene(program, name: str, at: dict | None = None, backward: bool = False,
                   max_nodes: int | None = DEFAULT_MAX_NODES) -> Scene:
    """The scene for function `name` of a lowered program."""
    names = [f.name for f in program.functions]
    if name not in names:
        raise DrawError(f"no function '{name}' in {program.filename}; it defines: "
                        f"{', '.join(names) or 'no functions'}")
    function = program.function(name)
    g = program.graph
    outputs = flatten(function.output)
    nodes = g.ancestors(outputs)
    count = drawn_node_count(g, nodes)
    if max_nodes is not None and count > max_nodes:
        raise DrawError(f"{name} has {count} nodes to draw, more than the limit of {max_nodes} "
                        "(large drawings are unreadable and slow to lay out); raise it with "
                        f"--max-nodes {count} (max_nodes={count} in Python) or write .dot, "
                        "which has no limit")
    scene = Scene(g, name, nodes, outputs, labels=parameter_labels(function))
    if backward and at is None:
        raise DrawError("gradients need a point: give one with --at (at={...} in Python)")
    if at is None:
        return scene
    try:
        known = point_inputs(function, at)
    except PointError as error:
        raise DrawError(str(error)) from None
    scene.data = evaluate(g, outputs, known)
    if backward:
        if len(outputs) != 1 or not function.is_scalar:
            raise DrawError(f"{name} does not return a scalar, so it has no gradient to draw; "
                            "draw it without --backward")
        _add_gradients(scene, known)
    return scene


def _add_gradients(scene: Scene, known: dict[int, float]) -> None:
    """Adjoints of every drawn node, and what each edge passes back where a
    value is used more than once."""
    g = scene.g
    numbers = [n for n in scene.nodes if g.kind(n) == "number" and not is_drawn_per_use(g, n)
               or n in scene.outputs]
    adjoints = dict(zip(numbers, gradients(g, [(scene.outputs[0], g.const(1.0))], numbers)))
    flow_nodes: dict[tuple[int, int, int], int] = {}
    for (arg, consumer, position) in _fan_in_edges(g, scene.nodes):
        per_input = contributions(g, consumer, adjoints[consumer])
        if position < len(per_input) and per_input[position] is not None:
            flow_nodes[(arg, consumer, position)] = per_input[position]
    roots = list(adjoints.values()) + list(flow_nodes.values())
    values = evaluate(g, roots, {**known, **scene.data})
    scene.grad = {n: values[a] for n, a in adjoints.items()}
    scene.flows = {edge: values[c] for edge, c in flow_nodes.items()}


def _fan_in_edges(g: Graph, nodes: list[int]) -> list[tuple[int, int, int]]:
    """(input, consumer, position) for every use of a number used more than
    once by operations that pass gradients back (comparisons pass none)."""
    uses: dict[int, list[tuple[int, int, int]]] = {}
    for n in nodes:
        if g.kind(n) != "number":
            continue
        for position, arg in enumerate(g.nodes[n].args):
            uses.setdefault(arg, []).append((arg, n, position))
    return [edge for arg, edges in uses.items() if len(edges) > 1 and g.kind(arg) == "number"
            and not is_drawn_per_use(g, arg) for edge in edges]


class Drawing(graphviz.Digraph):
    """A `graphviz.Digraph` rendered by the renderer exprgrad finds (the
    system `dot`, else graphviz-pure), so a machine with only pip-installed
    packages shows pictures inline and can `render()`, `pipe()` and `view()`.

    With a system `dot` on PATH (and no $EXPRGRAD_DOT), these are graphviz's
    own methods, with every format and engine Graphviz has; otherwise SVG and
    PNG with the `dot` engine, which is what graphviz-pure draws."""

    def _repr_image_svg_xml(self) -> str:
        return self.picture("svg").decode("utf-8")

    def _repr_image_png(self) -> bytes:
        return self.picture("png")

    def picture(self, fmt: str = "svg") -> bytes:
        """The rendered picture, as bytes of an SVG or PNG file."""
        renderer = render.find_renderer()
        if renderer is None:
            raise render.RenderError(f"no Graphviz renderer: {render.GET_A_RENDERER}")
        return render.run_renderer(renderer, self.source, fmt, render.DEFAULT_TIMEOUT)

    def pipe(self, format=None, renderer=None, formatter=None, neato_no_op=None, quiet=False,
             *, engine=None, encoding=None):
        if render.system_dot_in_charge():
            return super().pipe(format, renderer, formatter, neato_no_op, quiet, engine=engine,
                                encoding=encoding)
        data = self.picture(self._bundled_format(format, renderer, formatter, engine))
        return data.decode(encoding) if encoding else data

    def render(self, filename=None, directory=None, view=False, cleanup=False, format=None,
               renderer=None, formatter=None, neato_no_op=None, quiet=False, quiet_view=False,
               *, outfile=None, engine=None, raise_if_result_exists=False,
               overwrite_source=False):
        if render.system_dot_in_charge():
            return super().render(filename, directory, view, cleanup, format, renderer,
                                  formatter, neato_no_op, quiet, quiet_view, outfile=outfile,
                                  engine=engine, raise_if_result_exists=raise_if_result_exists,
                                  overwrite_source=overwrite_source)
        if format is None and outfile is not None:
            format = os.path.splitext(os.fspath(outfile))[1].lstrip(".") or None
        picture = self.picture(self._bundled_format(format, renderer, formatter, engine))
        source_path = self.save(filename, directory=directory)  # once the picture exists
        target = os.fspath(outfile) if outfile is not None else \
            f"{source_path}.{format or self.format}"
        if raise_if_result_exists and os.path.exists(target):
            raise graphviz.FileExistsError(f"output file exists: {target!r}")
        files.write_file(target, picture)
        if cleanup:
            os.remove(source_path)
        if view or quiet_view:
            graphviz.view(target, quiet=quiet_view)
        return target

    def _bundled_format(self, format, renderer, formatter, engine) -> str:
        """The format to draw with graphviz-pure, or a RenderError saying
        what it cannot do."""
        fmt = format or self.format
        engine = engine or self.engine
        if fmt in render.PICTURE_FORMATS and engine == "dot" and not renderer and not formatter:
            return fmt
        asked = f"{fmt!r}" + (f" with the {engine} engine" if engine != "dot" else "")
        raise render.RenderError(
            f"without a system Graphviz, exprgrad draws with graphviz-pure, which writes "
            f"{' and '.join(render.PICTURE_FORMATS)} with the dot engine; for {asked} "
            f"install Graphviz ({render.GRAPHVIZ_DOWNLOAD})")


def new_digraph(name: str, rankdir: str = "LR") -> Drawing:
    return Drawing(
        name, comment="drawn by exprgrad", format="svg",
        graph_attr={"rankdir": rankdir, "fontname": "Helvetica"},
        node_attr={"fontname": "Helvetica", "fontsize": "12"},
        edge_attr={"fontname": "Helvetica", "fontsize": "10"})


def scene_digraph(scene: Scene) -> graphviz.Digraph:
    """The Graphviz picture of a scene."""
    g = scene.g
    dot = new_digraph(scene.name)
    output_labels = _output_labels(scene)
    fan_in: dict[int, int] = {}
    for arg, _, _ in scene.flows:
        fan_in[arg] = fan_in.get(arg, 0) + 1
    for n in scene.nodes:
        node = g.nodes[n]
        if is_drawn_per_use(g, n) and n not in output_labels:
            continue
        fields = [output_labels.get(n) or scene.labels.get(n) or _node_label(g, n)]
        if scene.data is not None:
            fields.append(f"data {format_number(scene.data[n])}")
        if scene.grad is not None and n in scene.grad:
            uses = fan_in.get(n)
            fields.append(f"grad {format_number(scene.grad[n])}" + (f" = sum of {uses}"
                                                                     if uses else ""))
        attrs = {"shape": "record", "label": record_label(fields)}
        if n in output_labels:
            attrs["penwidth"] = "2"
        if n in fan_in:
            attrs["color"] = FAN_IN_COLOR
        dot.node(f"v{n}", **attrs)
        if not node.args:
            continue
        dot.node(f"op{n}", label=_op_label(node), shape="ellipse")
        dot.edge(f"op{n}", f"v{n}")
        for position, arg in enumerate(node.args):
            tail = f"v{arg}"
            if is_drawn_per_use(g, arg):
                tail = f"k{n}_{position}"
                fields = [_node_label(g, arg)]
                if scene.data is not None:
                    fields.append(f"data {format_number(scene.data[arg])}")
                dot.node(tail, shape="record", label=record_label(fields))
            dot.edge(tail, f"op{n}", **_edge_attrs(scene, arg, n, position))
    return dot


def _edge_attrs(scene: Scene, arg: int, consumer: int, position: int) -> dict[str, str]:
    attrs = {}
    arg_labels = OPS[scene.g.nodes[consumer].op].arg_labels
    if arg_labels:
        attrs["label"] = arg_labels[position]
    flow = scene.flows.get((arg, consumer, position))
    if flow is not None:
        text = format_number(flow, signed=True)
        attrs.update(color=FAN_IN_COLOR, fontcolor=FAN_IN_COLOR,
                     label=f"{attrs['label']} {text}" if "label" in attrs else text)
    return attrs


def _output_labels(scene: Scene) -> dict[int, str]:
    """Outputs are labelled by their source name or else by the function's."""
    g = scene.g
    if len(scene.outputs) == 1:
        return {scene.outputs[0]: g.names.get(scene.outputs[0]) or scene.name}
    labels: dict[int, str] = {}
    for i, n in enumerate(scene.outputs):
        labels.setdefault(n, g.names.get(n) or f"{scene.name}[{i}]")
    return labels


def _node_label(g: Graph, n: int) -> str:
    node = g.nodes[n]
    if node.op == "const":
        return format(node.attr, ".6g")
    if node.op == "bool":
        return str(node.attr)
    if node.op == "input" and n not in g.names:
        return str(node.attr)
    return g.names.get(n, "")


def _op_label(node) -> str:
    return OPS[node.op].display(node.attr)


def format_number(value, signed: bool = False) -> str:
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def record_label(fields: list[str]) -> str:
    """A left-to-right record label `{ a | b | c }` with the text escaped."""
    return "{ " + " | ".join(_escape(f) for f in fields) + " }"


def _escape(text: str) -> str:
    text = "".join("\\" + ch if ch in "\\{}|<>" else ch for ch in text)
    return text or " "


# --- public entry points ---------------------------------------------------------
def draw(module_or_source, name: str, at: dict | None = None, backward: bool = False,
         max_nodes: int | None = DEFAULT_MAX_NODES) -> graphviz.Digraph:
    """Draw function `name` of `.expr` source text, an `.expr` file's path, or
    a module loaded from a file; with `at`, each value's data; with
    `backward`, each value's gradient of the (scalar) result."""
    source, filename = _source_of(module_or_source)
    return draw_program(front_end(source, filename, AS_WRITTEN), name, at, backward,
                        max_nodes)


def _source_of(thing) -> tuple[str, str]:
    if isinstance(thing, types.ModuleType):
        path = getattr(thing, "__exprgrad_source__", None)
        if path is None or not os.path.isfile(path):
            raise DrawError(f"module {thing.__name__} was not loaded from an .expr file; pass "
                            "its source text to draw instead")
        thing = path
    if files.is_source_path(thing) or isinstance(thing, str):
        return files.source_and_name(thing)
    raise TypeError(f"draw takes .expr source text, a path or a module from exprgrad.load, "
                    f"not {type(thing).__name__}")


def draw_program(program, name: str, at: dict | None = None, backward: bool = False,
                 max_nodes: int | None = DEFAULT_MAX_NODES) -> graphviz.Digraph:
    return scene_digraph(function_scene(program, name, at, backward, max_nodes))


def draw_dot(root, format: str = "svg", rankdir: str = "LR",
             max_nodes: int | None = None) -> graphviz.Digraph:
    """micrograd's `draw_dot` for any Value-like graph (`.data`, `.grad`,
    `._prev`, `._op`, optional `.label`), with values used more than once
    marked: their gradient is the sum over their uses."""
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', not {rankdir!r}")
    values, names, uses = _walk_values(root, max_nodes)
    dot = new_digraph("value", rankdir)
    dot.format = format
    for v in values:
        name = names[id(v)]
        fan_in = uses.get(id(v), 0) > 1
        grad = f"grad {format_number(v.grad)}" + (f" = sum of {uses[id(v)]}" if fan_in else "")
        label = getattr(v, "label", "") or ""
        attrs = {"shape": "record",
                 "label": record_label([str(label), f"data {format_number(v.data)}", grad])}
        if fan_in:
            attrs["color"] = FAN_IN_COLOR
        if v is root:
            attrs["penwidth"] = "2"
        dot.node(name, **attrs)
        if v._op:
            dot.node(name + "op", label=str(v._op), shape="ellipse")
            dot.edge(name + "op", name)
            for child in _children(v):
                dot.edge(names[id(child)], name + "op",
                         **({"color": FAN_IN_COLOR} if uses[id(child)] > 1 else {}))
    return dot


def _children(v) -> tuple:
    """A value's inputs in order, repeats included, where the value keeps
    them (exprgrad.Value's `_args`); otherwise micrograd's `_prev` set."""
    args = getattr(v, "_args", None)
    return args if isinstance(args, tuple) else tuple(v._prev)


def _walk_values(root, max_nodes: int | None):
    """Every value reachable from `root` (root first), a Graphviz name for
    each, and how many times each is used as an input."""
    values, names, stack = [], {id(root): "n0"}, [root]
    uses: dict[int, int] = {}
    while stack:
        v = stack.pop()
        values.append(v)
        if max_nodes is not None and len(values) > max_nodes:
            raise DrawError(f"the graph has more than {max_nodes} values; "
                            "pass a larger max_nodes to draw it anyway")
        for child in _children(v):
            uses[id(child)] = uses.get(id(child), 0) + 1
            if id(child) not in names:
                names[id(child)] = f"n{len(names)}"
                stack.append(child)
    return values, names, uses
