"""The backprop player's recorded steps, checked against backward(), and the page it writes."""

import base64
import html
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from mingrad_core import Scalar, register_op, toposort
from mingrad_nn import MLP
from mingrad_viz import GraphTooLargeError, backprop_player, record_steps
from mingrad_viz.graph import number
from mingrad_viz.player import constants, rows

SVG = "{http://www.w3.org/2000/svg}"


def seed():
    a = Scalar(2, name="a")
    b = Scalar(-6.5, name="b")
    c = a * 5 / 2
    d = c + (b**6).relu()
    return a, b, d


def computed_gradients(root):
    """Every non-constant node's .grad after one backward() on the graph."""
    root.backward()
    return {n: n.grad for n in toposort(root) if n.grad is not None}


def kinds(steps):
    return [s.kind for s in steps]


def test_leaves_come_in_one_step_then_forward_in_engine_order_then_backward_in_reverse():
    a, b, d = seed()
    steps = record_steps(d)
    topo = toposort(d)
    fixed = constants(topo)
    computed = [n for n in topo if n.op is not None and n not in fixed]
    assert kinds(steps) == ["leaves"] + ["forward"] * len(computed) + ["seed"] + ["backward"] * len(
        computed
    ) + ["done"]
    assert set(steps[0].nodes) == {n for n in topo if n.op is None} | fixed
    assert [s.node for s in steps if s.kind == "forward"] == computed
    assert [s.node for s in steps if s.kind == "backward"] == computed[::-1]
    assert steps[len(computed) + 1].node is d and steps[len(computed) + 1].totals == {d: 1.0}


def test_nodes_built_from_constants_only_get_no_step():
    register_op(name="over", arity=2, label="÷", forward=lambda x, y: x * y**-1)
    x = Scalar(3.0, name="x")
    y = x.over(2)  # x * 2 ** -1: the 2 ** -1 is built from constants only
    steps = record_steps(y)
    (power,) = [n for n in toposort(y) if n.op is not None and n.op.operator == "**"]
    assert power in constants(toposort(y))
    assert all(s.node is not power for s in steps)
    assert power in steps[0].nodes and power not in steps[-1].totals
    assert steps[-1].totals == {y: 1.0, x: 0.5}


def test_the_seed_example_records_upstream_terms_and_totals_as_backward_computes_them():
    a, b, d = seed()
    steps = record_steps(d)
    fixed = constants(toposort(d))
    assert d.grad == 0.0 and a.grad == 0.0  # recording touches no .grad
    final = computed_gradients(d)
    assert (final[a], final[b]) == (2.5, -69617.4375)
    previous = {}
    for step in steps:
        if step.kind == "backward":
            node = step.node
            assert step.upstream == final[node]  # a node is processed once its gradient is whole
            assert len(step.terms) == len(node.parents)
            for parent in set(node.parents):
                if parent in fixed:
                    assert parent not in step.totals
                    continue
                passed = sum(
                    t * step.upstream for p, t in zip(node.parents, step.terms) if p is parent
                )
                assert step.totals[parent] == previous.get(parent, 0.0) + passed
        previous = step.totals
    assert steps[-1].totals == {n: g for n, g in final.items() if n not in fixed}


def test_the_local_terms_are_the_ops_declared_gradients():
    a, b, d = seed()
    steps = {s.node: s for s in record_steps(d) if s.kind == "backward"}
    times_five = next(n for n in steps if n.op.name == "mul" and a in n.parents)
    assert steps[times_five].terms == (5.0, 2.0)  # d(a*5)/da = 5, d(a*5)/d5 = a
    assert steps[times_five].upstream == 0.5  # dc/d(a*5) = 1/2
    power = next(n for n in steps if n.op.name == "pow" and b in n.parents)
    assert steps[power].terms[0] == 6 * (-6.5) ** 5
    assert steps[d].terms == (1.0, 1.0)


def test_a_reused_node_accumulates_its_gradient_step_by_step():
    x = Scalar(3.0, name="x")
    y = x * x + x
    steps = [s for s in record_steps(y) if s.kind == "backward"]
    assert [s.node.op.name for s in steps] == ["add", "mul"]
    assert steps[0].totals[x] == 1.0  # from the + alone
    assert steps[1].terms == (3.0, 3.0)  # a*a: both edges kept
    assert steps[1].totals[x] == 1.0 + 3.0 + 3.0
    assert steps[1].totals[x] == computed_gradients(y)[x] == 7.0


def test_a_plugin_op_shows_its_label_and_declared_gradient():
    register_op(
        name="cube",
        arity=1,
        label="cube³",
        forward=lambda x: x**3,
        gradient=lambda x, o: (3 * x * x,),
    )
    x = Scalar(2.0, name="x")
    y = x.cube().gelu()
    steps = [s for s in record_steps(y) if s.kind == "backward"]
    assert [s.node.op.name for s in steps] == ["gelu", "cube"]
    assert steps[1].terms == (12.0,)
    assert steps[-1].totals[x] == computed_gradients(y)[x]
    data = payload(backprop_player(y).html())
    assert "cube³" in data["ui"] and "GELU" in data["ui"]
    # the local gradient 3x² in the step's table
    assert "<td>2</td><td>12</td>" in data["steps"][-2]["html"]


def test_a_node_used_twice_shows_each_contribution_added_to_the_running_total():
    x = Scalar(0.5, name="x")
    y = x * x + x.gelu()
    player = backprop_player(y)
    square = y.parents[0]
    (k,) = [k for k, s in enumerate(player.steps) if s.kind == "backward" and s.node is square]
    step, before = player.steps[k], player.steps[k - 1].totals
    first, second = rows(step, before, set())
    assert first.before == before[x] and first.after == before[x] + 0.5
    assert second.before == first.after and second.after == step.totals[x]
    assert number(first.before) == "0.86737" and number(second.after) == "1.86737"
    html = payload(player.html())["steps"][k]["html"]
    assert "0.86737 + 0.5 = 1.36737" in html and "1.36737 + 0.5 = 1.86737" in html
    assert html.index("0.86737 + 0.5") < html.index("1.36737 + 0.5")


def test_a_constant_input_shows_no_local_gradient_and_negative_zero_shows_as_zero():
    b = Scalar(-6.5, name="b")
    y = (b**6) * -0.0
    data = payload(backprop_player(y).html())
    power = next(s["html"] for s in data["steps"] if "= b ** 6," in s["html"])
    assert "nan" not in power and "constant: takes no gradient" in power
    assert "-0" not in json.dumps(data["steps"]).replace("-0.", "")


def test_the_linear_node_reads_as_a_weighted_sum():
    model = MLP(2, [1], seed=0)
    out = model([Scalar(0.5, name="x1"), Scalar(-1.0, name="x2")])
    data = payload(backprop_player(out).html())
    forward = next(s["html"] for s in data["steps"] if "Forward:" in s["html"] and "·" in s["html"])
    assert "= L1.N1.w1·x1 + L1.N1.w2·x2 + L1.N1.b =" in forward


def test_the_page_is_one_self_contained_file(tmp_path):
    a, b, d = seed()
    path = backprop_player(d).save(tmp_path / "backprop.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in payload(page)["ui"]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "Previous" in payload(page)["ui"] and "Jump to backward" in payload(page)["ui"]


def test_without_its_script_the_player_is_a_picture_and_a_line_saying_to_run_the_cell():
    a, b, d = seed()
    page = backprop_player(d).html()
    static = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert re.search(r'<img alt="[^"]+" src="data:image/png;base64,', static)
    png = base64.b64decode(re.search(r"base64,([^\"]+)", static).group(1))
    assert png.startswith(b"\x89PNG")
    assert "Run this cell to step through" in static
    assert "<button" not in static and "<svg" not in static


def test_two_players_in_one_notebook_use_distinct_element_ids():
    a, b, d = seed()
    player = backprop_player(d)
    both = player._repr_html_() + backprop_player(a * b)._repr_html_() + player._repr_html_()
    ids = re.findall(r'\bid="([^"]+)"', both)
    assert len(ids) == 3 and len(set(ids)) == 3  # the drawing has none: it finds by class
    assert ' id="' not in payload(both)["ui"]


def test_gradients_not_reached_yet_are_shown_as_not_computed():
    a, b, d = seed()
    data = payload(backprop_player(d).html())
    assert {node["pending"] for node in data["nodes"]} == {"grad not computed yet"}
    assert not any("grad 0" in step["set"].values() for step in data["steps"])


def test_graphs_over_the_limit_are_refused_like_draw_graph():
    y = Scalar(0.5)
    for _ in range(600):
        y = y.tanh()
    with pytest.raises(GraphTooLargeError, match="more than 500 Scalars.*max_nodes="):
        backprop_player(y)
    assert len(backprop_player(y, max_nodes=601).steps) == 1 + 600 + 1 + 600 + 1
    with pytest.raises(ValueError, match="positive int.*got 0"):
        backprop_player(y, max_nodes=0)
    with pytest.raises(TypeError, match="draws a Scalar; got float"):
        backprop_player(1.5)


@pytest.mark.parametrize("name", ["", "\x01", "\x00", "\n", "]", "]]>", "\ud800", "\ufffe"])
def test_every_str_name_plays(name, tmp_path):
    x = Scalar(1.0, name=name)
    player = backprop_player(x * x)
    player.save(tmp_path / "p.html")
    svg = ET.fromstring(player._svg)
    bold = [t.text for t in svg.iter(f"{SVG}text") if t.get("font-weight") == "bold"]
    # what Graphviz cannot hold shows as escapes; an empty name draws as no name
    assert bold == ([name.encode("unicode_escape").decode()] if name else [])
    if not name:  # the leaf is numbered, as an unnamed one is
        assert "#1" in [t.text for t in svg.iter(f"{SVG}text")]


PLACEHOLDERS = ["${prefix}", "$data", "${svg}", "$style", "$$", "${script}", "$png"]
MARKUP = ["</script>", "<!--<script>", "</div>"]


class Tags(HTMLParser):
    """The start tags of a page, as an HTML parser reads them (script content is text)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


@pytest.mark.parametrize("name", [*PLACEHOLDERS, *MARKUP, " ".join(PLACEHOLDERS + MARKUP)])
def test_names_are_never_taken_for_the_pages_placeholders_or_markup(name):
    x = Scalar(2.0, name=name)
    page = backprop_player(x * 3).html()
    tags = Tags(page).tags
    assert tags.count("script") == 1 and tags.count("div") == 2 and "svg" not in tags
    svg = payload(page)["ui"]
    assert f">{html.escape(name, quote=False)}</text>" in svg  # drawn verbatim
    assert svg.count(html.escape(name, quote=False)) == 1
    assert "<!--" not in page


def payload(page):
    """The data the player's script carries: the drawing and controls, nodes, steps."""
    return json.loads(re.search(r"const D = (.*);\n", page).group(1))


def test_a_node_used_hundreds_of_times_plays():
    x = Scalar(1.0, name="x")
    total = x
    for _ in range(290):
        total = total + x
    player = backprop_player(total)
    assert player._svg.count('class="node copy"') == 291
    done = player.steps[-1].totals
    assert done[x] == 291.0


def test_a_masked_input_shows_0_where_the_upstream_is_nan_as_the_engine_passes():
    x = Scalar(-1.0, name="x")
    y = x.relu() * Scalar(float("nan"), name="k")  # relu's upstream is nan
    player = backprop_player(y)
    relu = y.parents[0]
    (k,) = [k for k, s in enumerate(player.steps) if s.kind == "backward" and s.node is relu]
    step = player.steps[k]
    (row,) = rows(step, player.steps[k - 1].totals, set())
    assert row.term == 0.0 and row.part == 0.0 and row.after == 0.0 == step.totals[x]
    assert player.steps[-1].totals[x] == 0.0
