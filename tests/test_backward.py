"""Backward and minimal subgraphs on hand-built graphs."""

from __future__ import annotations

import gc
import weakref

import pytest

from trace_nb import bundle, node, subgraph
from trace_nb.graph import on_paths, outputs_of, topo_ancestors


def names(nodes):
    return {n.name for n in nodes}


def test_subgraph_is_exactly_the_paths_from_parameter_to_output():
    a = node(1.0, name="bw_a", trainable=True)
    b = node(2.0, name="bw_b", trainable=True)
    c = node(10.0, name="bw_c")  # constant input
    u = a * 2  # on a's path
    v = b + c  # only on b's path
    w = u + v  # both
    side = b * 100  # not connected to the output
    w.backward("make it smaller")
    assert names(subgraph(a)) == {a.name, u.name, w.name}
    assert names(subgraph(b)) == {b.name, v.name, w.name}
    assert side.feedback == [] and c.feedback == []
    assert [f.text for f in a.feedback] == ["make it smaller"]
    assert w.feedback[0].output is w


def test_topological_order_parents_first_and_each_node_once():
    x = node(1, name="bw_x", trainable=True)
    y = x + x
    z = y * y + x
    order = topo_ancestors([z])
    assert len(order) == len({id(n) for n in order}) == 4
    pos = {id(n): i for i, n in enumerate(order)}
    for n in order:
        for p in n.parents:
            assert pos[id(p)] < pos[id(n)]


def test_multi_output_different_feedback_is_combined():
    p = node(3, name="bw_p", trainable=True)
    out1 = p + 1
    out2 = p * 5
    out1.backward("too small", score=0.2)
    out2.backward("too large", score=0.9)
    assert [(f.text, f.score) for f in p.feedback] == [("too small", 0.2), ("too large", 0.9)]
    assert outputs_of([p]) == [out1, out2]
    assert names(subgraph(p)) == {p.name, out1.name, out2.name}
    p.zero_feedback()
    assert p.feedback == []


def test_on_paths_minibatch_union():
    q = node(1, name="bw_q", trainable=True)
    r = node(2, name="bw_r", trainable=True)
    outs = [q + i for i in range(3)] + [r * 2]
    sub = on_paths([q, r], outs)
    assert len(sub) == 2 + 4


def test_backward_on_deep_chain_is_not_recursive():
    x = node(0, name="bw_deep", trainable=True)
    y = x
    for _ in range(30_000):
        y = y + 1
    y.backward("ok")
    assert y.data == 30_000
    assert len(subgraph(x)) == 30_001


def test_feedback_validation():
    with pytest.raises(TypeError, match="score="):
        node(1).backward(0.5)


def test_dropped_graph_is_freed():
    x = node(1.0, name="bw_free", trainable=True)
    y = (x * 2 + 1) ** 2
    ref = weakref.ref(y)
    mid = weakref.ref(y.parents[0])
    y.backward("fine")
    x.zero_feedback()  # feedback records hold the output; clearing them releases the graph
    del y
    gc.collect()
    assert ref() is None and mid() is None


def test_bundle_output_feeds_backward_to_code_parameter():
    @bundle(trainable=True)
    def scale(v):
        return v * 3

    x = node(2, name="bw_in", trainable=True)
    out = scale(x) + 1
    out.backward("bigger")
    assert scale.parameter.feedback[0].text == "bigger"
    assert names(subgraph(scale.parameter)) == {scale.parameter.name, out.parents[0].name, out.name}


# -- keywords (issue 23, item 21): a misspelt or reference-only option is a TypeError ----------


def test_a_misspelt_keyword_is_a_type_error_and_sends_nothing():
    x = node(1.0, name="kw_x", trainable=True)
    y = x * 2
    with pytest.raises(TypeError, match=r"'scroe'.*did you mean score="):
        y.backward("fb", scroe=0.5)
    assert x.feedback == [] and y.feedback == []  # refused before anything was sent


@pytest.mark.parametrize(
    "option, advice",
    [
        ("propagator", "one propagation"),
        ("print_limit", "value_limit="),
        ("reverse_plot", "rankdir='BT'"),
        ("simple_visualization", "leave it out"),
        ("colour", "backward takes feedback, score, visualize"),
    ],
)
def test_reference_and_unknown_options_say_what_to_use(option, advice):
    from trace_nb import OptoPrime

    x = node(1.0, name="kw_y", trainable=True)
    y = x + 1
    with pytest.raises(TypeError, match=rf"unexpected keyword argument '{option}'.*{advice}"):
        y.backward("fb", **{option: object()})
    opt = OptoPrime([x], llm=lambda messages: "{}")
    with pytest.raises(TypeError, match=rf"'{option}'"):  # the optimizer's spelling too
        opt.backward(y, "fb", **{option: object()})
    assert x.feedback == []


def test_drawing_options_reach_the_drawing():
    pytest.importorskip("graphviz")
    x = node("a rather long value for a label", name="kw_z", trainable=True)
    y = x + "!"
    short = y.backward("fb", visualize=True, value_limit=8, rankdir="LR").source
    assert "rankdir=LR" in short
    default = y.backward("fb", visualize=True).source
    assert "a rather long value" not in short and "a rather long value" in default
    assert "rankdir=TB" in default
