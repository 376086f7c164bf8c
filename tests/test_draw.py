"""Drawing the op DAG: `exprgrad graph`, `exprgrad.draw`, `exprgrad.draw_dot`.

Pictures are rendered by a real Graphviz renderer, graphviz-pure (installed by
the `dev` extra); `.dot` text is parsed back and compared with the DAG that
the compiler builds and with the numbers the generated code computes.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import sys
import xml.etree.ElementTree as ET

import graphviz
import pytest
from hypothesis import given, settings, strategies as st

import exprgrad
from exprgrad.cli import main
from exprgrad.drawing.dot import DrawError, draw_program, function_scene
from exprgrad.compiler.loops import DataArray, loop_of
from exprgrad.compiler.pipeline import front_end
from exprgrad.compiler.values import flatten
from test_data_axes import PROGRAMS as DATA_PROGRAMS, _bind as bind_data, \
    _draw as draw_data, flatten_values

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LECTURE = os.path.join(ROOT, "examples", "lecture.expr")
NEURON_POINT = "x1=2,x2=0,w1=-3,w2=1,b=6.8813735870195432"
NEURON_AT = dict(x1=2.0, x2=0.0, w1=-3.0, w2=1.0, b=6.8813735870195432)


@pytest.fixture
def pure_renderer(monkeypatch):
    """Force graphviz-pure even where a system `dot` exists."""
    path = shutil.which("graphviz-pure") or os.path.join(os.path.dirname(sys.executable),
                                                         "graphviz-pure")
    assert os.path.isfile(path), "graphviz-pure is missing: pip install -e '.[dev]'"
    monkeypatch.setenv("EXPRGRAD_DOT", path)
    return path


def read(path) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def svg_texts(path) -> list[str]:
    """The text lines a rendered SVG shows."""
    tree = ET.parse(path)
    return [t.text.strip() for t in tree.iter("{http://www.w3.org/2000/svg}text") if t.text]


# --- parsing .dot text back --------------------------------------------------------
_ID = r'(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_]+)'
_EDGE = re.compile(rf"^\s*({_ID}) -> ({_ID})(?: \[(.*)\])?\s*$")
_NODE = re.compile(rf"^\s*({_ID})(?: \[(.*)\])?\s*$")
_ATTR = re.compile(rf"([A-Za-z]+)=({_ID}|-?[0-9.]+|\+?[0-9.]+)")


def _unquote(text: str) -> str:
    return text[1:-1].replace('\\"', '"') if text.startswith('"') else text


def parse_dot(text: str):
    """(nodes: name → attributes, edges: [(tail, head, attributes)])."""
    nodes, edges = {}, []
    for line in text.splitlines():
        if line.lstrip().startswith(("//", "digraph", "}", "subgraph ")) or \
                re.match(r"^\s*(graph|node|edge) \[", line):
            continue
        m = _EDGE.match(line)
        if m:
            edges.append((_unquote(m[1]), _unquote(m[2]), _attrs(m[3])))
            continue
        m = _NODE.match(line)
        assert m, f"unexpected dot line {line!r}"
        nodes[_unquote(m[1])] = _attrs(m[2])
    return nodes, edges


def _attrs(text: str | None) -> dict[str, str]:
    return {k: _unquote(v) for k, v in _ATTR.findall(text or "")}


def record_fields(attrs) -> list[str]:
    label = attrs["label"]
    assert label.startswith("{") and label.endswith("}")
    return [f.strip() for f in re.split(r"(?<!\\)\|", label[1:-1])]


def records_by_label(nodes) -> dict[str, list[str]]:
    return {record_fields(a)[0]: record_fields(a) for a in nodes.values()
            if a.get("shape") == "record"}


def number(field: str, key: str) -> float:
    assert field.startswith(key + " "), field
    return float(field.split()[1])


# --- the lecture's neuron ----------------------------------------------------------
def test_neuron_svg_rendered_by_graphviz_pure(tmp_path, pure_renderer, capsys):
    out = tmp_path / "neuron.svg"
    assert main(["graph", LECTURE, "neuron", "--at", NEURON_POINT, "--backward",
                 "-o", str(out)]) == 0
    texts = svg_texts(out)
    for label in ["x1", "x2", "w1", "w2", "b", "x1w1", "x2w2", "n", "neuron", "tanh", "*", "+"]:
        assert label in texts, label
    assert "data 0.7071" in texts  # the output
    assert "grad -1.5000" in texts  # dneuron/dx1
    assert "grad 1.0000" in texts and "grad 0.5000" in texts and "grad 0.0000" in texts
    assert "graphviz-pure" in read(out)


def test_neuron_png_rendered_by_graphviz_pure(tmp_path, pure_renderer):
    out = tmp_path / "neuron.png"
    assert main(["graph", LECTURE, "neuron", "--at", NEURON_POINT, "--backward",
                 "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 3 * height > 0  # drawn left to right


@pytest.mark.parametrize("picture", ["neuron.svg", "logistic.svg"])
def test_committed_pictures_match_the_documented_commands(tmp_path, pure_renderer, picture):
    committed = os.path.join(ROOT, "examples", picture)
    command = re.search(rf"exprgrad graph examples/\S+\.expr [^\n`]*-o examples/{picture}",
                        read(os.path.join(ROOT, "docs", "drawing.md")))
    assert command, "docs/drawing.md documents the command that regenerates the picture"
    out = tmp_path / picture
    args = shlex.split(command[0])[1:-1] + [str(out)]
    args[1] = os.path.join(ROOT, args[1])
    assert main(args) == 0
    assert svg_texts(out) == svg_texts(committed)


def test_neuron_dot_matches_the_dag_and_the_lecture(tmp_path, capsys):
    out = tmp_path / "neuron.dot"
    assert main(["graph", LECTURE, "neuron", "--at", NEURON_POINT, "--backward",
                 "-o", str(out)]) == 0
    nodes, edges = parse_dot(read(out))
    program = front_end(read(LECTURE), LECTURE)
    f = program.function("neuron")
    dag = program.graph.ancestors([f.output])
    ops = [n for n in dag if program.graph.nodes[n].args]
    assert len(nodes) == len(dag) + len(ops)  # a record per value, an oval per op
    assert len(edges) == sum(1 + len(program.graph.nodes[n].args) for n in ops)
    records = records_by_label(nodes)
    expected = {"x1": (2, -1.5), "x2": (0, 0.5), "w1": (-3, 1), "w2": (1, 0),
                "b": (6.8814, 0.5), "n": (0.8814, 0.5), "neuron": (0.7071, 1)}
    for label, (data, grad) in expected.items():
        fields = records[label]
        assert number(fields[1], "data") == pytest.approx(data, abs=1e-4)
        assert number(fields[2], "grad") == pytest.approx(grad, abs=1e-4)
    ovals = sorted(a["label"] for a in nodes.values() if a.get("shape") == "ellipse")
    assert ovals == ["*", "*", "+", "+", "tanh"]


def test_without_a_point_only_labels_are_drawn(tmp_path, capsys):
    out = tmp_path / "neuron.dot"
    assert main(["graph", LECTURE, "neuron", "-o", str(out)]) == 0
    nodes, _ = parse_dot(read(out))
    fields = [record_fields(a) for a in nodes.values() if a.get("shape") == "record"]
    assert all(len(f) == 1 for f in fields)
    assert {f[0] for f in fields} >= {"x1", "x2", "w1", "w2", "b", "n", "neuron"}


# --- fan-in ---------------------------------------------------------------------------
def test_backward_shows_how_gradients_of_a_reused_value_add_up():
    program = front_end("f(x, y) = x*x + x*y\n")
    digraph = draw_program(program, "f", at={"x": 3, "y": 5}, backward=True)
    nodes, edges = parse_dot(digraph.source)
    x_name = next(n for n, a in nodes.items() if a.get("shape") == "record"
                  and record_fields(a)[0] == "x")
    assert record_fields(nodes[x_name])[2] == "grad 11.0000 = sum of 3"  # 2x + y
    flows = sorted(float(a["label"]) for t, _, a in edges if t == x_name)
    assert flows == [3.0, 3.0, 5.0]  # x*x passes x twice, x*y passes y
    assert all(a.get("color") == "firebrick" for t, _, a in edges if t == x_name)


@settings(max_examples=25, deadline=None)
@given(a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_drawn_numbers_agree_with_the_generated_code(a, b):
    source = read(LECTURE)
    module = exprgrad.compile(source, "lecture.expr")
    program = front_end(source, "lecture.expr")
    scene = function_scene(program, "readme", {"a": a, "b": b}, backward=True)
    try:
        value, (da, db) = module.readme_grad(a, b)
    except (ArithmeticError, ValueError):
        return
    f = program.function("readme")
    assert scene.data[f.output] == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert scene.grad[f.params[0].placeholders] == pytest.approx(da, rel=1e-9, abs=1e-9)
    assert scene.grad[f.params[1].placeholders] == pytest.approx(db, rel=1e-9, abs=1e-9)
    by_arg: dict[int, float] = {}
    for (arg, _, _), flow in scene.flows.items():
        by_arg[arg] = by_arg.get(arg, 0.0) + flow
    assert by_arg  # readme uses a and b many times
    for arg, total in by_arg.items():
        assert total == pytest.approx(scene.grad[arg], rel=1e-9, abs=1e-9)


def test_micrograd_readme_numbers_appear():
    digraph = exprgrad.draw(LECTURE, "readme", at={"a": -4, "b": 2}, backward=True)
    records = records_by_label(parse_dot(digraph.source)[0])
    assert records["a"][2] == "grad 138.8338 = sum of 4"
    assert records["b"][2] == "grad 645.5773 = sum of 4"
    assert any(f[1] == "data 24.7041" for f in records.values())


def test_constants_are_drawn_where_they_are_used():
    digraph = exprgrad.draw("f(x) = 2*x + 2*exp(x)\n", "f")
    nodes, edges = parse_dot(digraph.source)
    twos = [n for n, a in nodes.items() if a.get("shape") == "record"
            and record_fields(a)[0] == "2"]
    assert len(twos) == 2
    assert all(sum(1 for t, _, _ in edges if t == n) == 1 for n in twos)


def test_a_branch_not_taken_may_be_undefined():
    source = "f(x) = log(x) if x > 0 else 1 - x\n"
    digraph = exprgrad.draw(source, "f", at={"x": -2}, backward=True)
    records = [record_fields(a) for a in parse_dot(digraph.source)[0].values()
               if a.get("shape") == "record"]
    assert ["f", "data 3.0000", "grad 1.0000"] in records
    assert any(r[1] == "data undefined" for r in records)  # log(-2)
    # x feeds log (the branch not taken passes back 0) and 1 - x (passes back -1)
    assert ["x", "data -2.0000", "grad -1.0000 = sum of 2"] in records
    edge_labels = {a.get("label") for _, _, a in parse_dot(digraph.source)[1]}
    assert {"if", "then", "else"} <= edge_labels


def test_array_parameters_and_outputs():
    source = "def f(w[2]):\n    return [w[0]*w[1], w[0] + w[1]]\n"
    digraph = exprgrad.draw(source, "f", at={"w": [2, 3]})
    records = records_by_label(parse_dot(digraph.source)[0])
    assert records["f[0]"][1] == "data 6.0000" and records["f[1]"][1] == "data 5.0000"
    assert records["w[0]"][1] == "data 2.0000" and records["w[1]"][1] == "data 3.0000"
    with pytest.raises(DrawError, match="does not return a scalar"):
        exprgrad.draw(source, "f", at={"w": [2, 3]}, backward=True)
    with pytest.raises(DrawError, match=r"w must be a list of 2 numbers"):
        exprgrad.draw(source, "f", at={"w": [2, 3, 4]})
    with pytest.raises(DrawError, match=r"w\[1\] must be a number"):
        exprgrad.draw(source, "f", at={"w": [2, "3"]})


# --- Python API -----------------------------------------------------------------------
def test_draw_takes_source_path_or_loaded_module():
    for thing in (read(LECTURE), LECTURE, exprgrad.load(LECTURE)):
        digraph = exprgrad.draw(thing, "neuron", at=NEURON_AT, backward=True)
        assert isinstance(digraph, graphviz.Digraph)
        assert "data 0.7071" in digraph.source
    with pytest.raises(DrawError, match="pass its source text"):
        exprgrad.draw(exprgrad.compile("f(x) = x\n"), "f")
    with pytest.raises(DrawError, match="it defines: f"):
        exprgrad.draw("f(x) = x\n", "g")
    with pytest.raises(exprgrad.CompileError):
        exprgrad.draw("f(x) = x +\n", "f")
    with pytest.raises(TypeError):
        exprgrad.draw(42, "f")


def test_drawings_display_in_notebooks_without_a_system_dot(pure_renderer):
    digraph = exprgrad.draw(LECTURE, "neuron", at=NEURON_AT)
    bundle = digraph._repr_mimebundle_()
    assert "data 0.7071" in bundle["image/svg+xml"] and "graphviz-pure" in bundle["image/svg+xml"]
    assert digraph.picture("png").startswith(b"\x89PNG")


def _lecture_values(Value):
    def leaf(data, label):
        v = Value(data)
        v.label = label
        return v
    a, b, c, f = leaf(2.0, "a"), leaf(-3.0, "b"), leaf(10.0, "c"), leaf(-2.0, "f")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    L = d * f
    L.label = "L"
    L.backward()
    return L, [a, b, c, f, e, d, L]


@pytest.mark.parametrize("which", ["micrograd", "exprgrad"])
def test_draw_dot_draws_value_graphs(which):
    if which == "micrograd":
        from micrograd.engine import Value
    else:
        Value = exprgrad.Value
    L, values = _lecture_values(Value)
    digraph = exprgrad.draw_dot(L)
    assert isinstance(digraph, graphviz.Digraph)
    nodes, edges = parse_dot(digraph.source)
    records = records_by_label(nodes)
    expected = {"a": (2, 6), "b": (-3, -4), "c": (10, -2), "f": (-2, 4), "e": (-6, -2),
                "d": (4, -2), "L": (-8, 1)}
    assert set(records) == set(expected)
    for label, (data, grad) in expected.items():
        assert number(records[label][1], "data") == data
        assert number(records[label][2], "grad") == grad
    assert len(nodes) == 7 + 3 and len(edges) == 3 * 3


def test_draw_dot_marks_fan_in_and_handles_long_chains():
    x = exprgrad.Value(3.0)
    x.label = "x"
    y = x * x + x
    y.backward()
    nodes, _ = parse_dot(exprgrad.draw_dot(y).source)
    assert records_by_label(nodes)["x"][2] == "grad 7.0000 = sum of 3"
    z = exprgrad.Value(0.0)
    for _ in range(3000):  # deeper than Python's recursion limit allows a recursive walk
        z = z + 1
    assert exprgrad.draw_dot(z).source.count("shape=record") == 6001
    with pytest.raises(DrawError, match="max_nodes"):
        exprgrad.draw_dot(z, max_nodes=100)


def test_labels_are_escaped_in_records():
    v = exprgrad.Value(1.0)
    v.label = "a|b {c} <d>"
    fields = record_fields(parse_dot(exprgrad.draw_dot(v).source)[0]["n0"])
    assert fields[0] == r"a\|b \{c\} \<d\>"


# --- limits and errors ----------------------------------------------------------------
BIG = "def big(w[200]):\n    return sum(w[i]*w[i] for i in range(200))\n"


def test_large_graphs_are_refused_with_a_way_out(tmp_path, capsys):
    source = tmp_path / "big.expr"
    source.write_text(BIG)
    out = tmp_path / "big.svg"
    assert main(["graph", str(source), "big", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "--max-nodes" in err and not out.exists()
    dot = tmp_path / "big.dot"
    assert main(["graph", str(source), "big", "-o", str(dot)]) == 0  # no layout, no limit
    nodes, edges = parse_dot(read(dot))
    assert len(nodes) == 200 + 2 * 200 + 2 * 199  # w, the products, the running sums
    assert len(edges) == 3 * 200 + 3 * 199
    with pytest.raises(DrawError, match="max_nodes=998"):
        exprgrad.draw(BIG, "big")
    svg = tmp_path / "big-limit.svg"
    assert main(["graph", str(source), "big", "--max-nodes", "997", "-o", str(svg)]) == 1
    assert "998 nodes" in capsys.readouterr().err and not svg.exists()
    assert len(parse_dot(exprgrad.draw(BIG, "big", max_nodes=998).source)[0]) == 998


def test_a_renderer_that_hangs_is_stopped(tmp_path, monkeypatch, capsys):
    slow = tmp_path / "slow-dot"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    slow.chmod(0o755)
    monkeypatch.setenv("EXPRGRAD_DOT", str(slow))
    out = tmp_path / "n.svg"
    assert main(["graph", LECTURE, "neuron", "--timeout", "0.5", "-o", str(out)]) == 1
    assert "took more than 0.5 s" in capsys.readouterr().err
    assert not out.exists()


def test_without_a_renderer_the_dot_text_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPRGRAD_DOT", str(tmp_path / "no-such-renderer"))
    out = tmp_path / "n.svg"
    assert main(["graph", LECTURE, "neuron", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "pip install graphviz-pure" in err and "n.dot" in err
    assert not out.exists()
    nodes, _ = parse_dot(read(tmp_path / "n.dot"))
    assert len(nodes) == 15


def test_files_that_are_not_drawings_are_not_overwritten(tmp_path, capsys):
    for name in ("notes.svg", "notes.dot", "photo.png"):
        target = tmp_path / name
        target.write_text("precious\n")
        assert main(["graph", LECTURE, "neuron", "-o", str(target)]) == 1
        assert "refusing to overwrite" in capsys.readouterr().err
        assert target.read_text() == "precious\n"
    again = tmp_path / "n.dot"
    assert main(["graph", LECTURE, "neuron", "-o", str(again)]) == 0
    assert main(["graph", LECTURE, "neuron", "--at", NEURON_POINT, "-o", str(again)]) == 0
    assert "data 0.7071" in read(again)


@pytest.mark.parametrize("args, message", [
    (["neuron", "-o", "x.pdf"], "use .svg, .png or .dot"),
    (["nope", "-o", "x.dot"], "no function 'nope'"),
    (["neuron", "--backward", "-o", "x.dot"], "gradients need a point"),
    (["neuron", "--at", "x1=2", "-o", "x.dot"], "missing x2, w1, w2, b"),
    (["neuron", "--at", "x1=2,x2=0,w1=-3,w2=1,b=1,q=3", "-o", "x.dot"], "unknown q"),
    (["neuron", "--at", "x1=[1,2],x2=0,w1=-3,w2=1,b=1", "-o", "x.dot"], "x1 must be a number"),
    (["neuron", "--max-nodes", "-1", "-o", "x.dot"], "--max-nodes must be 0"),
])
def test_bad_requests_are_one_line_errors(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", LECTURE, *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_numbers_are_formatted_like_micrograd():
    from exprgrad.drawing.dot import UNDEFINED, format_number
    assert format_number(0.70710678) == "0.7071"
    assert format_number(-1.5) == "-1.5000"
    assert format_number(0.25, signed=True) == "+0.2500"
    assert format_number(math.inf) == "inf" and format_number(math.nan) == "nan"
    assert format_number(UNDEFINED) == "undefined"


def test_a_power_is_drawn_as_written():
    """`x^2` is drawn as micrograd draws `x**2`, not as the x*x it compiles to."""
    source = exprgrad.draw("f(x) = 3*x^2 + x^3\n", "f").source
    assert 'label="**2"' in source and 'label="**3"' in source
    assert source.count('label="*"') == 1  # only 3 * ...


def test_render_pipe_and_view_work_with_graphviz_pure(tmp_path, pure_renderer):
    digraph = exprgrad.draw(LECTURE, "L", at=dict(a=2, b=-3, c=10, f=-2))
    assert digraph.pipe().startswith(b"<?xml") and "graphviz-pure" in digraph.pipe(
        encoding="utf-8")
    assert digraph.pipe(format="png").startswith(b"\x89PNG")
    written = digraph.render(tmp_path / "L", format="png", cleanup=True)
    assert written == str(tmp_path / "L.png") and os.listdir(tmp_path) == ["L.png"]
    assert digraph.render(outfile=tmp_path / "out.svg").endswith("out.svg")


def test_formats_graphviz_pure_cannot_write_leave_no_files(tmp_path, pure_renderer):
    from exprgrad.drawing.render import RenderError
    digraph = exprgrad.draw(LECTURE, "L")
    with pytest.raises(RenderError, match="install Graphviz"):
        digraph.render(tmp_path / "L", format="pdf")
    with pytest.raises(RenderError, match="neato engine"):
        digraph.pipe(engine="neato")
    assert os.listdir(tmp_path) == []


# --- loops over data axes ---------------------------------------------------------------
LOGISTIC = os.path.join(ROOT, "examples", "logistic.expr")
LOOPS = """\
def nested(a, X[n], Y[m]):
    return sum(sum(a*X[i]*Y[j] + i for j in range(m)) for i in range(n))

def shifted(u[n], c) wrt u, c:
    return sum(c*(u[k] - u[k-1])^2 for k in range(1, n))

def fit(w[2], b, X[n][2], y[n]) wrt w, b, X:
    return sum((tanh(w[0]*X[k][0] + w[1]*X[k][1] + b) - y[k])^2 for k in range(n)) / n

def peak(c, X[n]):
    return max(c*X[k] for k in range(n))

def scaled(X[n]):
    return [X[k]/n for k in range(n)]
"""


def boxes(text: str) -> dict[str, dict]:
    """Cluster name → its label, the cluster around it, and its nodes."""
    found, stack = {}, []
    for line in text.splitlines():
        m = re.match(r"^\s*subgraph (cluster_\w+) \{", line)
        if m:
            found[m[1]] = {"parent": stack[-1] if stack else None, "nodes": set(), "label": None}
            stack.append(m[1])
        elif line.strip() == "}" and stack:
            stack.pop()
        elif stack and line.strip().startswith("graph ["):
            found[stack[-1]]["label"] = _attrs(line)["label"]
        elif stack and _NODE.match(line) and " -> " not in line:
            found[stack[-1]]["nodes"].add(_unquote(_NODE.match(line)[1]))
    return found


def box_titles(text: str) -> list[str]:
    """The first line of each box's label: its loop."""
    return sorted(b["label"].split("\\l")[0] for b in boxes(text).values())


def logistic_point(n: int, seed: int = 0) -> dict:
    rng = __import__("random").Random(seed)
    return dict(w=[rng.uniform(-1, 1) for _ in range(5)], b=0.25,
                X=[[rng.uniform(-2, 2) for _ in range(5)] for _ in range(n)],
                y=[float(rng.random() < 0.5) for _ in range(n)])


def test_a_loop_body_is_drawn_once_in_a_box_labelled_with_its_loop():
    source = exprgrad.draw(LOGISTIC, "loss").source
    (box,) = boxes(source).values()
    assert box["label"] == "for k in range(n)\\l" and box["parent"] is None
    nodes, _ = parse_dot(source)
    labels = {record_fields(nodes[n])[0] for n in box["nodes"] if n in nodes
              and nodes[n].get("shape") == "record"}
    assert {f"X[k][{i}]" for i in range(5)} | {"y[k]", "z"} <= labels
    outside = {record_fields(a)[0] for n, a in nodes.items()
               if a.get("shape") == "record" and n not in box["nodes"]}
    assert {"w[0]", "b", "n", "loss"} <= outside  # the parameters and the mean
    sums = [n for n, a in nodes.items() if a.get("label") == "sum over k"]
    assert len(sums) == 1 and sums[0] not in box["nodes"]  # the reduction leaves the box
    assert box_titles(exprgrad.draw(LOGISTIC, "smoothness").source) == \
        ["for k in range(1, n)"]
    records = records_by_label(parse_dot(exprgrad.draw(LOGISTIC, "smoothness").source)[0])
    assert {"u[k]", "u[k-1]"} <= set(records)


def test_nested_loops_nest_boxes_and_a_hoisted_loop_stands_alone():
    found = boxes(exprgrad.draw(LOOPS, "nested").source)
    by_title = {b["label"].split("\\l")[0]: name for name, b in found.items()}
    assert set(by_title) == {"for i in range(n)", "for j in range(m)"}
    assert found[by_title["for j in range(m)"]]["parent"] == by_title["for i in range(n)"]
    hoisted = "def f(X[n]):\n    return sum(X[i] - sum(X[j] for j in range(n))/n for i in range(n))\n"
    assert all(b["parent"] is None for b in boxes(exprgrad.draw(hoisted, "f").source).values())


@pytest.mark.parametrize("backward", [False, True])
def test_the_drawing_does_not_grow_with_the_data(backward):
    def shape(n: int) -> list[str]:
        source = exprgrad.draw(LOGISTIC, "loss", at=logistic_point(n), backward=backward).source
        return [re.sub(r'label=("[^"]*"|[^ \]]+)', "", line) for line in source.splitlines()]
    assert shape(1) == shape(7) == shape(40)
    assert len(shape(40)) == len(exprgrad.draw(LOGISTIC, "loss").source.splitlines())


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), data=st.data())
def test_drawn_sample_matches_the_interpreter_and_the_generated_code(n, data):
    """Every drawn value inside the loop is the reference interpreter's at
    iteration K; the drawn gradients of the data are the generated code's
    d_X[K], and the per-sample shares on the edges into the loop add up,
    over the samples, to the generated gradient of the parameters."""
    from exprgrad.compiler.interpret import evaluate as interpret
    from exprgrad.compiler.loops import RuntimeArray
    numbers = st.floats(-2, 2)
    point = dict(w=data.draw(st.lists(numbers, min_size=2, max_size=2)), b=data.draw(numbers),
                 X=data.draw(st.lists(st.lists(numbers, min_size=2, max_size=2),
                                      min_size=n, max_size=n)),
                 y=data.draw(st.lists(numbers, min_size=n, max_size=n)))
    value, (d_w, d_b, d_X) = exprgrad.compile(LOOPS, "loops.expr").fit_grad(*point.values())
    program = front_end(LOOPS, "loops.expr")
    g, f = program.graph, program.function("fit")
    inputs = {node: v for node, v in zip(f.params[0].placeholders, point["w"])}
    inputs[f.params[1].placeholders] = point["b"]
    share: dict[int, float] = {}
    for sample in range(n):
        scene = function_scene(program, "fit", point, backward=True, sample=sample)
        (index,) = scene.binding
        assert scene.data[f.output] == pytest.approx(value, rel=1e-12, abs=1e-12)
        for node in scene.nodes:
            if index in scene.level.get(node, ()):
                every = interpret(g, RuntimeArray(index, node), inputs, point, {"n": n})
                assert scene.data[node] == pytest.approx(every[sample], rel=1e-12, abs=1e-12)
            if g.nodes[node].op == "load" and g.nodes[node].attr[0] == "X":
                column = g.nodes[node].attr[1][1]
                assert scene.grad[node] == pytest.approx(d_X[sample][column], rel=1e-9,
                                                         abs=1e-12)
        for (arg, _, _), flow in scene.flows.items():
            if scene.boxes_around(arg) == frozenset():
                share[arg] = share.get(arg, 0.0) + flow
    for node, expected in zip([*f.params[0].placeholders, f.params[1].placeholders],
                              [*d_w, d_b]):
        assert share[node] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert scene.grad[node] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_sample_of_a_shifted_loop_and_the_label_of_a_box_with_data():
    at = {"u": [1.0, 2.0, 4.0, 7.0], "c": 2.0}
    digraph = exprgrad.draw(LOOPS, "shifted", at=at, backward=True, sample=1)
    (box,) = boxes(digraph.source).values()
    assert box["label"] == "for k in range(1, n)\\lk = 2, n = 4\\l"  # iteration 1 is k = 2
    records = records_by_label(parse_dot(digraph.source)[0])
    assert records["u[k]"][1:] == ["data 4.0000", "grad 8.0000"]  # 2c(u[2] - u[1])
    assert records["u[k-1]"][1:] == ["data 2.0000", "grad -8.0000"]
    assert records["c"][2] == "grad 14.0000 = sum over k"  # 1 + 4 + 9


def test_a_max_over_the_data_shares_its_gradient_among_ties():
    at = {"c": 2.0, "X": [1.0, 3.0, 3.0]}
    grads = [records_by_label(parse_dot(exprgrad.draw(LOOPS, "peak", at=at, backward=True,
                                                      sample=k).source)[0])["X[k]"][2]
             for k in range(3)]
    assert grads == ["grad 0.0000", "grad 1.0000", "grad 1.0000"]  # as peak_grad: d_X


def test_a_map_result_is_drawn_as_its_element():
    digraph = exprgrad.draw(LOOPS, "scaled", at={"X": [3.0, 6.0]}, sample=1)
    records = records_by_label(parse_dot(digraph.source)[0])
    assert records["scaled[k]"] == ["scaled[k]", "data 3.0000"]
    assert records["X[k]"] == ["X[k]", "data 6.0000"]


def test_data_from_a_csv_file_and_the_sample_on_the_command_line(tmp_path, capsys):
    (tmp_path / "X.csv").write_text("a,b,c,d,e\n" + "1,2,3,4,5\n" + "0,0,0,0,1\n")
    (tmp_path / "y.csv").write_text("1\n0\n")
    out = tmp_path / "loss.dot"
    at = f"w=[1,1,1,1,1],b=0,X=@{tmp_path / 'X.csv'},y=@{tmp_path / 'y.csv'}"
    assert main(["graph", LOGISTIC, "loss", "--at", at, "--sample", "1", "-o", str(out)]) == 0
    records = records_by_label(parse_dot(read(out))[0])
    assert records["X[k][4]"][1] == "data 1.0000" and records["z"][1] == "data 1.0000"
    assert records["y[k]"][1] == "data 0.0000"


@pytest.mark.parametrize("at, sample, message", [
    ("w=[1,1,1,1,1],b=0,X=[[1,2,3,4,5]],y=[1]", "1",
     "sample 1 is out of range: for k in range(n) runs 1 iterations at n = 1 (samples 0 to 0)"),
    ("w=[1,1,1,1,1],b=0,X=[],y=[]", None, "for k in range(n) runs no iteration at n = 0"),
    ("w=[1,1,1,1,1],b=0,X=[[1,2,3,4,5]],y=[1]", "-1", "the sample must be 0 or more"),
    ("w=[1,1,1,1,1],b=0,X=[[1,2,3,4,5]],y=[1,0]", None,
     "n must be one length: y has 2 elements but X has 1"),
    ("w=[1,1,1,1,1],b=0,X=[[1,2,3,4]],y=[1]", None, "X[0] must be a list of 5 numbers, not 4"),
    ("w=[1,1,1,1,1],b=0,X=[[1,2,3,4,[5]]],y=[1]", None, "X[0][4] must be a number"),
    (None, "0", "a sample is drawn with its data: give the point and the data with --at"),
])
def test_bad_samples_and_data_are_one_line_errors(tmp_path, capsys, at, sample, message):
    args = ["graph", LOGISTIC, "loss", "-o", str(tmp_path / "x.dot")]
    args += ["--at", at] if at else []
    args += ["--sample", sample] if sample else []
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_a_sample_needs_a_loop_and_an_iteration_number():
    with pytest.raises(DrawError, match="no loop over a data axis"):
        exprgrad.draw(LECTURE, "neuron", at=NEURON_AT, sample=0)
    with pytest.raises(DrawError, match="iteration number"):
        exprgrad.draw(LOOPS, "peak", at={"c": 1.0, "X": [1.0]}, sample=1.0)


@pytest.mark.parametrize("name", sorted(DATA_PROGRAMS))
@settings(max_examples=4, deadline=None)
@given(data=st.data(), n=st.integers(2, 5))  # range(n - 1) has a sample to draw
def test_drawings_of_data_axis_programs_agree_with_the_interpreter_and_generated_code(
        name, data, n):
    """At every sample: each drawn value is the reference interpreter's at the
    drawn iteration, the result and the parameters' gradients are the
    generated f_grad's; where the samples cover every iteration, the drawn
    gradients of the data elements add up to the generated gradient of the
    data."""
    from exprgrad.compiler.interpret import evaluate as interpret
    from exprgrad.compiler.loops import RuntimeArray
    source, params = DATA_PROGRAMS[name]
    args = [draw_data(data, shape, n, positive=name == "conditional_body" and p == "u")
            for p, shape in params]
    value, grads = exprgrad.compile(source, "t.expr").f_grad(*args)
    program = front_end(source, "t.expr")
    g, f = program.graph, program.function("f")
    inputs, arrays = bind_data(f, args)
    at = {p: a for (p, _), a in zip(params, args)}
    scenes = []
    while True:
        try:
            scenes.append(function_scene(program, "f", at, backward=True, sample=len(scenes)))
        except DrawError as error:
            assert "out of range" in str(error) and scenes
            break
    whole = {}  # loop → every one of its iterations is drawn
    for i in scenes[0].parents:
        loop = loop_of(g, i)
        whole[i] = len(scenes) == n + loop.offset - loop.start
    summed: dict[tuple, float] = {}
    for sample, scene in enumerate(scenes):
        assert scene.data[f.output] == pytest.approx(value, rel=1e-9, abs=1e-12)
        for p, grad in zip(f.params, grads):
            if not isinstance(p.placeholders, DataArray):
                for node, expected in zip(flatten(p.placeholders), flatten_values(grad)):
                    assert scene.grad[node] == pytest.approx(expected, rel=1e-9, abs=1e-9)
        for node in scene.nodes:
            loops = sorted(scene.level.get(node, ()), key=lambda i: loop_of(g, i).depth)
            element = node
            for i in reversed(loops):
                element = RuntimeArray(i, element)
            every = interpret(g, element, inputs, arrays, {"n": n})
            for i in loops:
                every = every[scene.binding[i] - loop_of(g, i).start]
            assert scene.data[node] == pytest.approx(every, rel=1e-9, abs=1e-12) or \
                math.isnan(every)
            if g.nodes[node].op == "load" and (loops or sample == 0):
                param, index = g.nodes[node].attr
                where = tuple(e if isinstance(e, int) else
                              scene.binding[g.nodes[node].args[e[0]]] + e[1] for e in index)
                summed[(param, where)] = summed.get((param, where), 0.0) + scene.grad[node]
    if all(whole.values()) and all(len(scene.level.get(m, ())) <= 1 for m in scenes[0].nodes):
        for p, grad in zip(f.params, grads):
            if isinstance(p.placeholders, DataArray):
                for where, expected in indexed(grad):
                    assert summed.get((p.name, where), 0.0) == pytest.approx(
                        expected, rel=1e-9, abs=1e-9)


def indexed(value, prefix=()):
    """(index tuple, number) for every number of nested lists."""
    if not isinstance(value, list):
        return [(prefix, value)]
    return [pair for i, v in enumerate(value) for pair in indexed(v, (*prefix, i))]


def test_a_point_with_data_is_refused_where_only_scalars_are_explained():
    from exprgrad.drawing.evaluate import PointError, point_inputs
    program = front_end(read(LOGISTIC), "logistic.expr")
    at = logistic_point(2)
    with pytest.raises(PointError, match=r"loss reads data \(X\[n\]\[5\], y\[n\]\)"):
        point_inputs(program.function("loss"), at)


def test_data_may_be_numpy_arrays():
    numpy = pytest.importorskip("numpy")
    point = logistic_point(3)
    as_arrays = {**point, "X": numpy.array(point["X"]), "y": numpy.array(point["y"])}
    assert exprgrad.draw(LOGISTIC, "loss", at=as_arrays, backward=True, sample=2).source == \
        exprgrad.draw(LOGISTIC, "loss", at=point, backward=True, sample=2).source
