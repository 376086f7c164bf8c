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

A loop over a data axis (`for k in range(n)`) is kept rolled in the DAG: its
body is one iteration's nodes.  It is drawn as such, once, in a box (a
Graphviz cluster) labelled with the loop; a reduction over it is the oval
just outside.  With data, the numbers inside the box are one iteration's
(the sample), and the adjoints are those of the reverse pass over loops
(`loop_gradients`), recorded at every level it walks.

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
from ..compiler.loop_gradients import iteration_adjoint, node_adjoints
from ..compiler.loops import OVER_OPS, RuntimeArray, levels, loop_of
from ..compiler.ops import OPS
from ..compiler.pipeline import front_end
from ..compiler.reverse import contributions, gradients
from ..compiler.values import flatten
from .. import files
from . import render
from .evaluate import (AS_WRITTEN, UNDEFINED, AtSample, PointError, parameter_labels,
                       read_point)

DEFAULT_MAX_NODES = 300  # Graphviz nodes; layout time grows steeply beyond this
FAN_IN_COLOR = "firebrick"
LOOP_COLOR = "gray40"


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
    output: object = None  # the function's lowered result (a node, lists, runtime arrays)
    level: dict[int, frozenset] = field(default_factory=dict)  # node → the loops it is in
    parents: dict[int, int | None] = field(default_factory=dict)  # loop → the loop around it
    binding: dict[int, int] = field(default_factory=dict)  # loop → the iteration drawn
    sizes: dict[str, int] = field(default_factory=dict)  # size name → its length at --at
    # the source's names, kept before reverse mode names adjoints (an adjoint
    # may be a node of the function itself: d(a*y)/dy is a)
    names: dict[int, str] = field(default_factory=dict)

    def box_of(self, n: int) -> int | None:
        """The loop whose box holds node n: the innermost loop it is in."""
        inside = self.level.get(n)
        return max(inside, key=lambda i: (loop_of(self.g, i).depth, i)) if inside else None

    def boxes_around(self, n: int) -> frozenset:
        """The loops whose boxes hold node n: its box and the boxes around it.
        A drawn number is one iteration of each (`Y[j]` inside the box of
        `for i` is drawn at the sample's i, although it does not vary with i)."""
        found, box = set(), self.box_of(n)
        while box is not None:
            found.add(box)
            box = self.parents[box]
        return frozenset(found)


def drawn_args(g: Graph, n: int) -> list[tuple[int, int]]:
    """(position, input) of the edges drawn into n's operation: a load is
    an element of a data array (a leaf), a reduction has one edge, from its
    body (its loop is the box the body is drawn in)."""
    node = g.nodes[n]
    if node.op == "load":
        return []
    if node.op in OVER_OPS:
        return [(0, node.args[0])]
    return list(enumerate(node.args))


def drawn_node_count(g: Graph, nodes: list[int]) -> int:
    """Graphviz nodes: a record per value, an oval per operation, and a
    record per use of a constant (constants are drawn where they are used, as
    in micrograd, rather than as one node with edges all over the picture)."""
    count = 0
    used = set()
    for n in nodes:
        args = drawn_args(g, n)
        used.update(a for _, a in args)
        count += 2 + sum(1 for _, a in args if is_drawn_per_use(g, a)) if args else 1
    hidden = sum(1 for n in nodes if g.nodes[n].op == "loop_index" and n not in used)
    return count - hidden  # a loop variable that only indexes data is not drawn


def is_drawn_per_use(g: Graph, n: int) -> bool:
    """Constants (numbers and booleans) get a record at each use."""
    return g.nodes[n].op in ("const", "bool")


def function_scene(program, name: str, at: dict | None = None, backward: bool = False,
                   max_nodes: int | None = DEFAULT_MAX_NODES, sample: int | None = None) -> Scene:
    """The scene for function `name` of a lowered program; with data in
    `at`, the numbers of iteration `sample` (default 0) of every loop."""
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
    level = levels(g, nodes)
    scene = Scene(g, name, nodes, outputs, labels=parameter_labels(function),
                  output=function.output, level=level, parents=_loop_nesting(g, nodes, level),
                  names=dict(g.names))
    _check_sample_request(scene, at, sample)
    if backward and at is None:
        raise DrawError("gradients need a point: give one with --at (at={...} in Python)")
    if at is None:
        return scene
    try:
        point = read_point(function, at)
    except PointError as error:
        raise DrawError(str(error)) from None
    scene.sizes = point.sizes
    scene.binding = _iteration(scene, 0 if sample is None else sample)
    numbers = AtSample(g, point, scene.binding)
    if not backward:
        scene.data = numbers.values(outputs)
        return scene
    if len(outputs) != 1 or not function.is_scalar:
        raise DrawError(f"{name} does not return a scalar, so it has no gradient to draw; "
                        "draw it without --backward")
    wanted, adjoints, flows = _gradient_nodes(scene)
    values = numbers.values(outputs + list(adjoints.values()) + list(flows.values()))
    scene.data = values  # one pass: a loop over the data runs once for values and gradients
    scene.grad = {n: values[adjoints[n]] if n in adjoints else 0.0 for n in wanted}
    scene.flows = {edge: values[c] for edge, c in flows.items()}
    return scene


# --- loops over data axes: boxes, the sample, adjoints inside loops -------------------
def _loop_nesting(g: Graph, nodes: list[int], level: dict[int, frozenset]) -> dict:
    """Loop index node → the loop whose box its box is drawn in (None: the
    top).  A loop is inside another when something in its body, or the
    reduction over it, varies with the other one too; a loop whose
    reduction varies with no other loop was hoisted and is drawn on its own."""
    def depth(i: int) -> int:
        return loop_of(g, i).depth

    around: dict[int, set[int]] = {}
    for n in nodes:
        inside = level.get(n, frozenset())
        for i in inside:
            around.setdefault(i, set()).update(j for j in inside if depth(j) < depth(i))
    for n in nodes:
        node = g.nodes[n]
        if node.op in OVER_OPS and node.args[1] in around:
            i = node.args[1]
            around[i].update(j for j in level.get(n, ()) if depth(j) < depth(i))
    return {i: max(outer, key=lambda j: (depth(j), j), default=None)
            for i, outer in sorted(around.items())}


def _check_sample_request(scene: Scene, at: dict | None, sample) -> None:
    """A sample is an iteration of the loops over the data: it needs the
    data, and loops."""
    if sample is None:
        return
    if isinstance(sample, bool) or not isinstance(sample, int):
        raise DrawError(f"the sample must be an iteration number (0, 1, ...), not {sample!r}")
    if not scene.parents:
        raise DrawError(f"{scene.name} has no loop over a data axis, so there is no sample to "
                        "draw; draw it without --sample")
    if at is None:
        raise DrawError("a sample is drawn with its data: give the point and the data with "
                        "--at (at={...} in Python)")
    if sample < 0:
        raise DrawError(f"the sample must be 0 or more, not {sample}")


def _iteration(scene: Scene, sample: int) -> dict[int, int]:
    """Loop index node → its value at iteration `sample` of each drawn loop
    (`k = sample` in `range(n)`, `k = 1 + sample` in `range(1, n)`)."""
    binding = {}
    for i in scene.parents:
        loop = loop_of(scene.g, i)
        length = scene.sizes[loop.size]
        count = max(0, length + loop.offset - loop.start)
        if sample >= count:
            runs = f"runs {count} iterations" if count else "runs no iteration"
            which = f" (samples 0 to {count - 1})" if count else ""
            raise DrawError(f"sample {sample} is out of range: for {loop.var} in "
                            f"{loop.range_text()} {runs} at {loop.size} = {length}{which}")
        binding[i] = loop.start + sample
    return binding


# --- gradients ----------------------------------------------------------------------
def _gradient_nodes(scene: Scene) -> tuple[list[int], dict[int, int], dict]:
    """The drawn numbers, the nodes of their adjoints, and the nodes of what
    each edge passes back where a value is used more than once or inside a
    loop it is not in (there, the edge carries the drawn iteration's share
    of a sum over the loop)."""
    g = scene.g
    wanted = [n for n in scene.nodes if g.kind(n) == "number" and not is_drawn_per_use(g, n)
              or n in scene.outputs]
    adjoints = adjoint_nodes(g, scene.outputs[0], wanted)
    flow_nodes: dict[tuple[int, int, int], int] = {}
    for (arg, consumer, position) in _summed_edges(scene):
        if consumer not in adjoints:
            continue
        if g.nodes[consumer].op in OVER_OPS:
            flow_nodes[(arg, consumer, position)] = iteration_adjoint(g, consumer, adjoints[consumer])
            continue
        per_input = contributions(g, consumer, adjoints[consumer])
        if position < len(per_input) and per_input[position] is not None:
            flow_nodes[(arg, consumer, position)] = per_input[position]
    return wanted, adjoints, flow_nodes


def adjoint_nodes(g: Graph, output: int, wanted: list[int]) -> dict[int, int]:
    """Node → the node of d output / d node, for every node of `wanted` that
    the output depends on (inside a runtime loop, one iteration's adjoint)."""
    if not g.has_loops:
        return dict(zip(wanted, gradients(g, [(output, g.const(1.0))], wanted)))
    return node_adjoints(g, output, wanted)


def _summed_edges(scene: Scene) -> list[tuple[int, int, int]]:
    """(input, consumer, position) of the edges whose gradients are added up
    into their input's: the uses of a number used more than once by
    operations that pass gradients back (comparisons pass none), and every
    use inside a loop the input is not in (summed over the loop)."""
    g = scene.g
    uses: dict[int, list[tuple[int, int, int]]] = {}
    for n in scene.nodes:
        if g.kind(n) != "number":
            continue
        for position, arg in drawn_args(g, n):
            uses.setdefault(arg, []).append((arg, n, position))
    return [edge for arg, edges in uses.items()
            if g.kind(arg) == "number" and not is_drawn_per_use(g, arg)
            for edge in edges if len(edges) > 1 or _loops_entered(scene, edge)]


def _loops_entered(scene: Scene, edge: tuple[int, int, int]) -> frozenset:
    """The loops an edge goes into: the boxes its consumer is in and its
    input is not."""
    arg, consumer, _ = edge
    return scene.boxes_around(consumer) - scene.boxes_around(arg)


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
    """The Graphviz picture of a scene.  A runtime loop's body is drawn once,
    in a box (a cluster) labelled with its loop; nested loops nest boxes.
    Node statements go into their box, edges stay at the top, so an edge
    never pulls a node into a box it is not in."""
    g = scene.g
    dot = new_digraph(scene.name)
    boxes = {i: _loop_box(scene, i) for i in scene.parents}
    output_labels = _output_labels(scene)
    fan_in = _summed_uses(scene)
    used = {arg for m in scene.nodes for _, arg in drawn_args(g, m)}

    def place(n: int):
        box = scene.box_of(n)
        return dot if box is None else boxes[box]

    for n in scene.nodes:
        node = g.nodes[n]
        if is_drawn_per_use(g, n) and n not in output_labels:
            continue
        if node.op == "loop_index" and n not in used:
            continue  # used only to index data: the box's label and `X[k][0]` say it
        fields = [output_labels.get(n) or scene.labels.get(n) or _node_label(g, n, scene.names)]
        if scene.data is not None:
            fields.append(f"data {format_number(scene.data[n])}")
        if scene.grad is not None and n in scene.grad:
            fields.append(f"grad {format_number(scene.grad[n])}" + fan_in.get(n, ""))
        attrs = {"shape": "record", "label": record_label(fields)}
        if n in output_labels:
            attrs["penwidth"] = "2"
        if n in fan_in:
            attrs["color"] = FAN_IN_COLOR
        place(n).node(f"v{n}", **attrs)
        args = drawn_args(g, n)
        if not args:
            continue
        place(n).node(f"op{n}", label=_op_label(g, n), shape="ellipse")
        dot.edge(f"op{n}", f"v{n}")
        for position, arg in args:
            tail = f"v{arg}"
            if is_drawn_per_use(g, arg):
                tail = f"k{n}_{position}"
                fields = [_node_label(g, arg, scene.names)]
                if scene.data is not None:
                    fields.append(f"data {format_number(scene.data[arg])}")
                place(n).node(tail, shape="record", label=record_label(fields))
            dot.edge(tail, f"op{n}", **_edge_attrs(scene, arg, n, position))
    _nest_boxes(scene, boxes, dot)
    return dot


def _loop_box(scene: Scene, index: int) -> graphviz.Digraph:
    loop = loop_of(scene.g, index)
    label = f"for {loop.var} in {loop.range_text()}\\l"  # \\l: a left-justified line
    if index in scene.binding:
        label += f"{loop.var} = {scene.binding[index]}, {loop.size} = {scene.sizes[loop.size]}\\l"
    return graphviz.Digraph(name=f"cluster_{index}", graph_attr={
        "label": label, "labeljust": "l", "style": "rounded", "color": LOOP_COLOR,
        "fontcolor": LOOP_COLOR})


def _nest_boxes(scene: Scene, boxes: dict[int, graphviz.Digraph], dot) -> None:
    """Put each loop's box into the box of the loop around it, innermost
    first (a subgraph is copied into its parent when it is added)."""
    def nesting(i: int) -> int:
        depth = 0
        while scene.parents[i] is not None:
            i, depth = scene.parents[i], depth + 1
        return depth
    for i in sorted(boxes, key=lambda i: (-nesting(i), i)):
        parent = scene.parents[i]
        (dot if parent is None else boxes[parent]).subgraph(boxes[i])


def _summed_uses(scene: Scene) -> dict[int, str]:
    """Node → what its grad is the sum of (` = sum of 3`, ` = sum over k`),
    for the nodes whose gradient adds up what several edges carry back."""
    uses: dict[int, int] = {}
    entered: dict[int, set[str]] = {}
    for edge in scene.flows:
        arg = edge[0]
        uses[arg] = uses.get(arg, 0) + 1
        entered.setdefault(arg, set()).update(
            loop_of(scene.g, i).var for i in _loops_entered(scene, edge))
    text = {}
    for arg, count in uses.items():
        over = ", ".join(sorted(entered[arg]))
        if over:
            text[arg] = f" = sum of {count}, over {over}" if count > 1 else f" = sum over {over}"
        else:
            text[arg] = f" = sum of {count}"
    return text


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
    """Outputs are labelled by their source name or else by the function's
    (`f`, `f[0]`, and `f[k]` for the element of a map over k)."""
    g = scene.g
    if isinstance(scene.output, RuntimeArray) or any(
            isinstance(v, RuntimeArray) for v in _parts(scene.output)):
        return {n: scene.names.get(n) or text for n, text in _element_texts(g, scene)}
    if len(scene.outputs) == 1:
        return {scene.outputs[0]: scene.names.get(scene.outputs[0]) or scene.name}
    labels: dict[int, str] = {}
    for i, n in enumerate(scene.outputs):
        labels.setdefault(n, scene.names.get(n) or f"{scene.name}[{i}]")
    return labels


def _parts(value) -> list:
    """Every list, tuple and runtime array inside a lowered value."""
    found, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, RuntimeArray):
            found.append(v)
            stack.append(v.element)
        elif isinstance(v, (list, tuple)):
            found.append(v)
            stack.extend(v)
    return found


def _element_texts(g: Graph, scene: Scene) -> list[tuple[int, str]]:
    """(node, `f[k][0]`) for every scalar of a result with runtime arrays."""
    found, stack = [], [(scene.output, scene.name)]
    while stack:
        value, text = stack.pop()
        if isinstance(value, int):
            found.append((value, text))
        elif isinstance(value, RuntimeArray):
            stack.append((value.element, f"{text}[{loop_of(g, value.index).var}]"))
        else:
            stack.extend((v, f"{text}[{i}]") for i, v in enumerate(value))
    return found


def _node_label(g: Graph, n: int, names: dict[int, str]) -> str:
    node = g.nodes[n]
    if node.op == "const":
        return format(node.attr, ".6g")
    if node.op == "bool":
        return str(node.attr)
    if node.op == "input" and n not in names:
        return str(node.attr)
    if node.op == "load":
        return _element_label(g, node)
    if node.op == "loop_index":
        return node.attr.var
    if node.op == "size":
        return node.attr
    return names.get(n, "")


def _element_label(g: Graph, node) -> str:
    """A load as the element of the runtime array it reads: `X[k][0]`, `u[k-1]`."""
    param, index = node.attr
    text = param
    for entry in index:
        if isinstance(entry, int):
            text += f"[{entry}]"
            continue
        position, offset = entry
        var = loop_of(g, node.args[position]).var
        text += f"[{var}{offset:+d}]" if offset else f"[{var}]"
    return text


def _op_label(g: Graph, n: int) -> str:
    node = g.nodes[n]
    if node.op in OVER_OPS:  # sum over k: the reduction leaves the loop's box
        return f"{OPS[node.op].display(node.attr)} over {loop_of(g, node.args[1]).var}"
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
         max_nodes: int | None = DEFAULT_MAX_NODES, sample: int | None = None
         ) -> graphviz.Digraph:
    """Draw function `name` of `.expr` source text, an `.expr` file's path, or
    a module loaded from a file; with `at`, each value's data; with
    `backward`, each value's gradient of the (scalar) result.  A loop over a
    data axis is drawn once, in a box; with its data in `at`, its values are
    those of iteration `sample` (default 0)."""
    source, filename = _source_of(module_or_source)
    return draw_program(front_end(source, filename, AS_WRITTEN), name, at, backward,
                        max_nodes, sample)


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
                 max_nodes: int | None = DEFAULT_MAX_NODES, sample: int | None = None
                 ) -> graphviz.Digraph:
    return scene_digraph(function_scene(program, name, at, backward, max_nodes, sample))


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
