"""Names round-trip; graph data and rendering."""

from __future__ import annotations

import shutil

import pytest

from trace_nb import node
from trace_nb.graph import names, topo_ancestors


def test_names_are_valid_identifiers_and_tables_make_them_unique():
    a = node(1, name="my-var")
    b = node(2, name="my-var")
    c = node(3, name="class")
    d = node(4, name="9lives")
    for n in (a, b, c, d):
        assert n.name.isidentifier()
    assert a.name == b.name == "my_var"  # labels, not unique by themselves
    assert c.name == "class_" and d.name == "_9lives"
    s = a + b
    assert s.name == "add" and s.label is None and a.label == "my_var"
    table = names.NameTable(topo_ancestors([s]))
    assert [table(n) for n in (a, b, s)] == ["my_var", "my_var_1", "add_1"]
    assert table.node("my_var_1") is b and table.node("nope") is None


def test_an_unrelated_live_node_never_changes_a_name():
    squatter = node(0, name="style")  # noqa: F841 - alive on purpose
    style = node("terse", name="style", trainable=True)
    out = style + "!"
    data = out.to_data()
    assert [r["id"] for r in data["nodes"]] == ["style", "add_1"]


def test_graph_data_kinds_edges_and_collapse():
    p = node(1, name="nr_p", trainable=True)
    y = p
    for _ in range(500):
        y = y + 1
    full = y.to_data()
    assert len(full["nodes"]) == 501 and len(full["edges"]) == 500
    kinds = {r["id"]: r["kind"] for r in full["nodes"]}
    assert kinds["nr_p"] == "parameter"
    assert [r for r in full["nodes"] if r["output"]][0]["id"] == "add_500"
    small = y.to_data(max_nodes=50)
    assert len(small["nodes"]) <= 50
    assert any(r["kind"] == "collapsed" for r in small["nodes"])
    ids = {r["id"] for r in small["nodes"]}
    assert "nr_p" in ids and "add_500" in ids
    assert all(a in ids and b in ids for a, b in small["edges"])
    assert small["hidden"] == 501 - len(small["nodes"])


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")
def test_render_svg_contains_nodes_and_styles():
    p = node("a long prompt " * 20, name="nr_prompt", trainable=True)
    out = p.upper().strip()
    view = out.render()
    svg = view.svg()
    assert "nr_prompt" in svg and "strip_1" in svg
    assert "#ffe5e5" in svg.lower()  # parameter fill
    assert "…" in svg  # long values are cut
    bundle = view._repr_mimebundle_()
    assert "image/svg+xml" in bundle


def test_render_reports_missing_dot(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    view = node(1, name="nr_nodot").render()
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        view.svg()
    assert "not installed" in view._repr_mimebundle_()["text/plain"]


def test_repeated_structures_collapse_into_groups():
    from trace_nb import bundle

    @bundle()
    def total(*values):
        """Sum of all inputs."""
        return sum(values)

    params = [node(float(i), name=f"nr_w{i}", trainable=True) for i in range(1000)]
    out = total(*params)
    data = out.to_data(max_nodes=300)
    assert len(data["nodes"]) <= 300
    group = next(r for r in data["nodes"] if r["kind"] == "collapsed")
    assert len(group["members"]) == 1000 and "parameter nodes" in group["description"]
    assert [group["id"], "total_1"] in data["edges"]
    assert data["hidden"] == 1001 - len(data["nodes"])


def test_loop_bodies_fold_into_blocks():
    x = node(1.0, name="nr_loop_x", trainable=True)
    acc = node(0.0)
    for i in range(400):
        acc = acc + x * i
    data = acc.to_data(max_nodes=200)
    assert 100 <= len(data["nodes"]) <= 200  # folded just enough, not into one giant block
    ids = {r["id"] for r in data["nodes"]}
    assert "nr_loop_x" in ids and "add_400" in ids
    assert all(a in ids and b in ids and a != b for a, b in data["edges"])
