import base64
import os
import re
import struct
import xml.etree.ElementTree as ET

import graphviz
import pytest

from mingrad.cli import main
from mingrad_core import Scalar, register_op
from mingrad_viz import GraphTooLargeError, GraphvizNotFoundError, draw_graph
from mingrad_viz.graph import GraphvizError

SVG = "{http://www.w3.org/2000/svg}"


def render(root, **kwargs):
    """Render with the real ``dot`` and return (node texts by id, edge count)."""
    return parse(draw_graph(root, **kwargs).pipe("svg"))


def parse(svg_text):
    svg = ET.fromstring(svg_text)
    nodes, edges = {}, 0
    for group in svg.iter(f"{SVG}g"):
        kind = group.get("class", "").split()[:1]
        if kind == ["node"]:
            title = group.find(f"{SVG}title").text
            nodes[title] = " | ".join(t.text or "" for t in group.iter(f"{SVG}text"))
        elif kind == ["edge"]:
            edges += 1
    return nodes, edges


def seed():
    a = Scalar(2, name="a")
    b = Scalar(-6.5, name="b")
    c = a * 5 / 2
    d = c + (b**6).relu()
    d.backward()
    return d


def test_the_seed_example_draws_every_node_and_edge_once_with_values_and_gradients():
    nodes, edges = render(seed())
    values = {k: v for k, v in nodes.items() if not k.endswith("op")}
    ops = sorted(v for k, v in nodes.items() if k.endswith("op"))
    # Scalars: a, b, 5, 2, 6 (constants), a*5, c, b**6, relu, d
    assert len(values) == 10
    assert ops == ["*", "**", "+", "/", "ReLU"]
    # edges: one per input of each op, plus op -> result
    assert edges == 2 + 2 + 2 + 1 + 2 + 5
    texts = list(values.values())
    assert "a | data 2 | grad 2.5" in texts
    assert "b | data -6.5 | grad -69617.4" in texts
    assert "data 75423.9 | grad 1" in texts
    assert "data 6" in texts  # a constant: no gradient


def test_a_times_a_shows_two_edges():
    a = Scalar(3.0, name="a")
    nodes, edges = render(a * a)
    assert len(nodes) == 3 and edges == 3


def test_a_plugin_op_draws_with_its_own_label_and_names_are_escaped():
    register_op(
        name="weird", arity=1, label='<&"q">', forward=lambda x: x, gradient=lambda x, out: (1.0,)
    )
    x = Scalar(1.0, name='x<y> & "z"')
    nodes, _ = render(x.weird())
    assert '<&"q">' in nodes.values()
    assert any(text.startswith('x<y> & "z"') for text in nodes.values())


def test_leaves_look_different_from_computed_nodes():
    x = Scalar(1.0, name="x")
    source = draw_graph((x * 2).tanh()).source
    leaf = next(line for line in source.splitlines() if ">x<" in line)
    computed = next(line for line in source.splitlines() if line.strip().startswith("n0 "))
    assert "fillcolor=lightblue" in leaf and "fillcolor" not in computed


def test_the_source_is_deterministic_and_follows_rankdir():
    assert draw_graph(seed()).source == draw_graph(seed()).source
    assert "rankdir=BT" in draw_graph(seed()).source
    assert "rankdir=LR" in draw_graph(seed(), rankdir="LR").source
    with pytest.raises(ValueError, match="rankdir must be one of"):
        draw_graph(seed(), rankdir="up")


def test_a_20000_deep_chain_draws_without_recursion_error():
    x = Scalar(0.5)
    y = x
    for _ in range(20_000):
        y = y.tanh()
    graph = draw_graph(y, max_nodes=20_001)
    assert graph.source.count("->") == 2 * 20_000


def test_larger_graphs_than_the_limit_are_refused_saying_how_to_raise_it():
    y = Scalar(0.5)
    for _ in range(10):
        y = y.tanh()
    with pytest.raises(GraphTooLargeError, match="more than 5 Scalars.*max_nodes="):
        draw_graph(y, max_nodes=5)
    draw_graph(y, max_nodes=11)


def test_it_displays_inline_in_jupyter_as_svg_with_a_png_for_untrusted_notebooks():
    bundle = draw_graph(seed())._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert width > 200 and height > 200


def test_a_missing_dot_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        draw_graph(seed()).pipe("svg")
    with pytest.raises(GraphvizNotFoundError, match="brew install graphviz"):
        draw_graph(seed()).render(tmp_path / "g", format="svg")
    assert issubclass(type(draw_graph(seed())), graphviz.Digraph)


def test_mingrad_graph_draws_the_seed_example(tmp_path, capsys):
    out = tmp_path / "seed.svg"
    assert main(["graph", "-o", str(out)]) == 0
    nodes, edges = parse(out.read_bytes())
    assert (len(nodes), edges) == (15, 14)
    assert "d | data 75423.9 | grad 1" in nodes.values()
    assert "b | data -6.5 | grad -69617.4" in nodes.values()
    assert not any(p.suffix != ".svg" for p in tmp_path.iterdir())  # no stray source file


def test_mingrad_graph_draws_an_expression(tmp_path):
    out = tmp_path / "expr.png"
    assert main(["graph", "tanh(x*w + b) + x.exp()", "x=1", "w=0.5", "b=0.1", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["graph", "x + y", "x=1"], "'y' has no value"),
        (["graph", "x + 1", "x=abc"], "expected NAME=NUMBER"),
        (["graph", "__import__('os')"], "unknown op '__import__'"),
        (["graph", "x[0]", "x=1"], "unsupported in an expression"),
        (["graph", "x +", "x=1"], "cannot parse"),
    ],
)
def test_mingrad_graph_rejects_bad_expressions_clearly(argv, message, capsys, tmp_path):
    assert main([*argv, "-o", os.fspath(tmp_path / "x.svg")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("limit", [0, -1, 2.5, True, "10", None])
def test_a_limit_that_is_not_a_positive_int_is_refused(limit):
    with pytest.raises(ValueError, match=rf"positive int.*got {re.escape(repr(limit))}"):
        draw_graph(seed(), max_nodes=limit)


def clusters(source):
    """Each cluster's label and the node ids declared inside it, nested ones included."""
    found, open_ = {}, []
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("subgraph cluster_"):
            open_.append(line.split()[1])
            found[open_[-1]] = {"nodes": set()}
        elif line == "}" and open_:
            open_.pop()
        elif open_ and line.startswith(("class=", "color=")) and "label=<" in line:
            found[open_[-1]]["label"] = line.split("label=<")[1].split(">")[0]
        elif open_ and line.startswith("n") and " [label=" in line:
            for name in open_:
                found[name]["nodes"].add(line.split()[0])
    return found


def register_over():
    """A composite op: division written as x * y ** -1 (the 2 ** -1 is built from constants)."""
    register_op(name="over", arity=2, label="÷", forward=lambda x, y: x * y**-1)


def test_a_composite_is_drawn_inside_a_box_labeled_with_its_own_label():
    register_over()
    a = Scalar(2, name="a")
    c = (a * 5).over(2)
    c.backward()
    boxes = clusters(draw_graph(c).source)
    assert [box["label"] for box in boxes.values()] == ["÷ (composite)"]
    (box,) = boxes.values()
    # c = (a*5) * 2**-1: the box holds c, its *, the ** and the constant -1; not a*5 nor 2
    assert len(box["nodes"]) == 5
    nodes, _ = render(c)
    inside = {nodes[nid] for nid in box["nodes"]}
    assert inside == {"data 5 | grad 1", "*", "data 0.5 | grad 10", "**", "data -1"}


def test_nested_composites_draw_nested_boxes():
    register_over()
    register_op(name="halfdiff", arity=2, label="½Δ", forward=lambda x, y: x.over(2) - y)
    x, y = Scalar(3.0, name="x"), Scalar(1.0, name="y")
    boxes = clusters(draw_graph(x.halfdiff(y)).source)
    labels = {box["label"]: box["nodes"] for box in boxes.values()}
    assert set(labels) == {"½Δ (composite)", "÷ (composite)"}
    assert labels["÷ (composite)"] < labels["½Δ (composite)"]


def test_composites_collapse_to_one_op_on_request():
    nodes, edges = render(seed(), composites="collapse")
    ops = sorted(v for k, v in nodes.items() if k.endswith("op"))
    assert ops == ["*", "**", "+", "/", "ReLU"]
    assert "data -1" not in nodes.values() and "data 0.5 | grad 10" not in nodes.values()
    assert clusters(draw_graph(seed(), composites="collapse").source) == {}
    assert edges == 2 + 2 + 2 + 1 + 2 + 5
    with pytest.raises(ValueError, match="composites must be 'box' or 'collapse'; got 'flat'"):
        draw_graph(seed(), composites="flat")


def test_before_backward_gradients_show_as_not_computed_yet_not_zero():
    a = Scalar(2, name="a")
    y = a * 3
    before = set(render(y)[0].values())
    assert "a | data 2 | grad not computed yet" in before
    assert not any("grad 0" in text for text in before)
    assert "a | data 2 | grad 0" in render(y, grads=True)[0].values()
    assert "a | data 2" in render(y, grads=False)[0].values()
    y.backward()
    assert "a | data 2 | grad 3" in render(y)[0].values()
    y.zero_grad()
    assert "a | data 2 | grad not computed yet" in render(y)[0].values()
    with pytest.raises(ValueError, match="grads must be 'auto', True or False; got 1"):
        draw_graph(y, grads=1)


ODD_NAMES = ["", "\x00", "\x01", "\n", "\t", "a\x1fb", "]", "]]>", "\ud800", "\ufffe", "\x7f"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_every_str_name_draws(name):
    x = Scalar(1.0, name=name)
    nodes, _ = render(x * 2)
    (leaf,) = (text for text in nodes.values() if "data 1 |" in text)
    shown = name.encode("unicode_escape").decode()  # what Graphviz cannot hold, as escapes
    assert leaf == (f"{shown} | " if name else "") + "data 1 | grad not computed yet"


def test_an_empty_name_draws_as_no_name():
    source = draw_graph(Scalar(1.0, name="") * 2).source
    assert "<B>" not in source
    assert render(Scalar(1.0, name="") * 2)[0] == render(Scalar(1.0) * 2)[0]


def test_op_labels_graphviz_cannot_hold_are_shown_escaped():
    register_op(name="odd", arity=1, label="]\x01", forward=lambda x: 2 * x)  # a composite
    nodes, _ = render(Scalar(1.0, name="x").odd())
    assert "]\\x01 (composite)" in draw_graph(Scalar(1.0).odd()).source.replace("&#93;", "]")
    assert "*" in nodes.values()
    collapsed, _ = render(Scalar(1.0).odd(), composites="collapse")
    assert "]\\x01" in collapsed.values()


def fake_dot(tmp_path, script):
    """A ``dot`` on PATH that runs ``script`` (sh) instead of Graphviz."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    dot = folder / "dot"
    dot.write_text(f"#!/bin/sh\n{script}\n")
    dot.chmod(0o755)
    return str(folder)


@pytest.mark.parametrize(
    "script, message",
    [
        (
            "echo 'Error: something went wrong' >&2; echo 'in label of node n1' >&2; exit 1",
            "Graphviz's dot exited with status 1 while drawing the graph: Error: something "
            "went wrong in label of node n1",
        ),
        ("kill -SEGV $$", "Graphviz's dot was killed by SIGSEGV while drawing the graph"),
    ],
)
def test_a_failing_dot_raises_one_clear_error(monkeypatch, tmp_path, script, message):
    monkeypatch.setenv("PATH", fake_dot(tmp_path, script))
    for attempt in (
        lambda: draw_graph(seed()).pipe("svg"),
        lambda: draw_graph(seed()).render(tmp_path / "g", format="svg"),
    ):
        with pytest.raises(GraphvizError) as caught:
            attempt()
        assert str(caught.value) == message
        assert isinstance(caught.value, RuntimeError)
        assert isinstance(caught.value, graphviz.CalledProcessError)  # as graphviz raised it


@pytest.mark.parametrize("animate", [[], ["--animate"]])
def test_mingrad_graph_reports_a_failing_dot_in_one_line(monkeypatch, tmp_path, capsys, animate):
    monkeypatch.setenv("PATH", fake_dot(tmp_path, "echo 'Error: boom' >&2; exit 3"))
    out = tmp_path / ("out.html" if animate else "out.svg")
    assert main(["graph", *animate, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "mingrad graph: error: Graphviz's dot exited with status 3 while drawing the graph: "
        "Error: boom\n"
    )
    assert not out.exists()


def test_a_long_sum_draws_as_one_sigma_node_over_its_terms():
    w = Scalar(2.0, name="w")
    loss = sum(Scalar(i) * w for i in range(600))
    nodes, edges = parse(draw_graph(loss).pipe("svg"))
    ops = [text for title, text in nodes.items() if title.endswith("op")]
    assert ops.count("Σ") == 1 and "+" not in ops and ops.count("*") == 600
    # 600 products and the 0 that sum() starts from, into Σ; w and i into each product; Σ out
    assert edges == 601 + 2 * 600 + 1 + 600
    assert draw_graph(loss, sums=False).source.count("label=<+>") == 600


def test_a_sum_keeps_named_partial_sums_and_ones_used_twice():
    a, b, c, d = (Scalar(v, name=n) for v, n in zip([1, 2, 3, 4], "abcd"))
    ab = a + b
    abc = ab + c
    abc.name = "abc"
    total = abc + d + ab  # ab is used twice: drawn, not folded
    nodes, _ = parse(draw_graph(total).pipe("svg"))
    ops = sorted(text for title, text in nodes.items() if title.endswith("op"))
    assert ops == ["+", "+", "Σ"]  # a + b; abc = ab + c; Σ(abc, d, ab)
    assert any(text.startswith("abc") for text in nodes.values())


def test_a_node_summed_400_times_draws_as_one_edge_marked_with_the_count():
    x = Scalar(1.0, name="x")
    total = x
    for _ in range(399):
        total = total + x
    source = draw_graph(total).source
    assert source.count('label="×400"') == 1
    nodes, edges = parse(draw_graph(total).pipe("svg"))
    assert edges == 2 and any(text.startswith("x") for text in nodes.values())
    assert "data 400" in " ".join(nodes.values())


def test_an_mlp_2_16_16_1_draws_with_default_arguments():
    from mingrad_nn import MLP

    model = MLP(2, [16, 16, 1], seed=0)
    out = model([Scalar(0.5, name="x1"), Scalar(-1.0, name="x2")])
    out.backward()
    nodes, _ = parse(draw_graph(out).pipe("svg"))
    assert any(text.startswith("L3.N1.b") for text in nodes.values())
    assert any(text.startswith("L2.N16.w16") for text in nodes.values())


def test_negative_zero_draws_as_zero():
    x = Scalar(-0.0, name="x")
    nodes, _ = parse(draw_graph(x * 2).pipe("svg"))
    assert "data -0" not in " ".join(nodes.values())


def test_a_node_feeding_very_many_ops_is_drawn_once_plus_a_copy_beside_each_user():
    x = Scalar(1.0, name="x")
    total = x
    for _ in range(99):
        total = total + x
    source = draw_graph(total, sums=False).source
    assert source.count("class=copy") == 100  # x feeds 100 + ops: one edge each is a copy
    nodes, edges = parse(draw_graph(total, sums=False).pipe("svg"))
    assert sum(text == "x ↗" for text in nodes.values()) == 100
    assert edges == 99 + 98 + 100  # + to result, partial sum to the next +, copy to its +
    few = Scalar(2.0, name="y")
    assert "class=copy" not in draw_graph(few * few + few).source


def test_the_png_of_a_deep_graph_is_scaled_to_fit_2304_pixels():
    y = Scalar(0.5, name="y")
    for _ in range(300):
        y = y.tanh()
    png = base64.b64decode(draw_graph(y)._repr_mimebundle_()["image/png"])
    width, height = struct.unpack(">II", png[16:24])
    assert height <= 2304 and width >= 10
