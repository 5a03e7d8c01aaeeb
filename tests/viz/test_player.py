"""The backprop player's recorded steps, checked against backward(), and the page it writes."""

import re
import xml.etree.ElementTree as ET

import pytest

from mingrad_core import Scalar, register_op, toposort
from mingrad_viz import GraphTooLargeError, backprop_player, record_steps

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


def test_forward_steps_follow_the_engine_order_then_backward_runs_it_in_reverse():
    a, b, d = seed()
    steps = record_steps(d)
    topo = toposort(d)
    computed = [n for n in topo if n.op is not None]
    assert kinds(steps) == ["forward"] * len(topo) + ["seed"] + ["backward"] * len(computed) + [
        "done"
    ]
    assert [s.node for s in steps if s.kind == "forward"] == topo
    assert [s.node for s in steps if s.kind == "backward"] == computed[::-1]
    assert steps[len(topo)].node is d and steps[len(topo)].totals == {d: 1.0}


def test_the_seed_example_records_upstream_terms_and_totals_as_backward_computes_them():
    a, b, d = seed()
    steps = record_steps(d)
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
                if parent.grad is None:
                    assert parent not in step.totals
                    continue
                passed = sum(
                    t * step.upstream for p, t in zip(node.parents, step.terms) if p is parent
                )
                assert step.totals[parent] == previous.get(parent, 0.0) + passed
        previous = step.totals
    assert steps[-1].totals == final


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
    page = backprop_player(y).html()
    assert "cube³" in page and "GELU" in page
    assert "<td>12<\\/td>" in page  # the local gradient 3x² in the step's table


def test_the_page_is_one_self_contained_file(tmp_path):
    a, b, d = seed()
    path = backprop_player(d).save(tmp_path / "backprop.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "Previous" in page and "Next" in page and "Play" in page


def test_two_players_in_one_notebook_use_distinct_element_ids():
    a, b, d = seed()
    player = backprop_player(d)
    both = player._repr_html_() + backprop_player(a * b)._repr_html_() + player._repr_html_()
    ids = re.findall(r'\bid="([^"]+)"', both)
    assert len(ids) > 40 and len(ids) == len(set(ids))


def test_gradients_not_reached_yet_are_shown_as_not_computed():
    a, b, d = seed()
    page = backprop_player(d).html()
    assert '"pending": "grad not computed yet"' in page
    assert '"grad 0"' not in page


def test_graphs_over_the_limit_are_refused_like_draw_graph():
    y = Scalar(0.5)
    for _ in range(400):
        y = y.tanh()
    with pytest.raises(GraphTooLargeError, match="more than 300 Scalars.*max_nodes="):
        backprop_player(y)
    assert len(backprop_player(y, max_nodes=401).steps) == 401 + 1 + 400 + 1
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


PLACEHOLDERS = ["__SCRIPT__", "__P__", "__STYLE__", "__SVG__", "__DATA__", "mgpPREFIXmgp"]


@pytest.mark.parametrize("name", [*PLACEHOLDERS, " ".join(PLACEHOLDERS)])
def test_names_are_never_taken_for_the_pages_placeholders(name):
    x = Scalar(2.0, name=name)
    page = backprop_player(x * 3).html()
    assert page.count("<script>") == 1 and page.count("<style>") == 1
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert f">{name}</text>" in svg  # drawn verbatim
    assert svg.count(name) == 1
    ids = re.findall(r'\bid="([^"]+)"', page)
    prefix = ids[0]
    assert all(i == prefix or i.startswith(f"{prefix}&#45;") for i in ids)
