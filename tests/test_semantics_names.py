"""Names the LLM sees are deterministic and local (issue 13, item 7)."""

from __future__ import annotations

import json

from trace_nb import bundle, node
from trace_nb.graph import data as graph_data_module
from trace_nb.optim import OptoPrime


def reply(suggestion: dict) -> str:
    return json.dumps({"reasoning": "r", "answer": "", "suggestion": suggestion})


class Recorder:
    """A callable LLM that records the prompts and answers from a script."""

    def __init__(self, *replies):
        self.replies, self.prompts = list(replies), []

    def __call__(self, messages):
        self.prompts.append(messages[-1]["content"])
        return self.replies.pop(0) if self.replies else reply({})


@bundle()
def ask(style, question):
    """Answers the question in the given style."""
    return f"{style}: {question}"


def build():
    style = node("terse", name="style", trainable=True)
    out = ask(style, node("why?")).upper()
    out.backward("friendlier")
    return style, out


def test_an_unrelated_node_with_the_same_name_changes_nothing():
    squatter = node(0, name="style")  # alive in the kernel, unrelated to the problem
    style, _ = build()
    llm = Recorder(reply({"style": "warm"}))
    OptoPrime([style], llm=llm).step()
    assert "(str) style='terse'" in llm.prompts[0] and "style_1" not in llm.prompts[0]
    assert style.data == "warm" and squatter.data == 0


def test_two_graphs_built_the_same_way_give_the_same_prompt():
    first_style, first_out = build()
    first = OptoPrime([first_style], llm=Recorder()).messages()
    for _ in range(50):  # kernel-wide activity in between must not shift any number
        node(1) + node(2)
    second_style, second_out = build()  # the first graph is still alive
    second = OptoPrime([second_style], llm=Recorder()).messages()
    assert first == second
    assert "ask_1 = ask(style=style, question=str_1)" in second[1]["content"]
    assert "upper_1 = str.upper(self=ask_1)" in second[1]["content"]


def test_repeated_labels_are_numbered_per_optimizer_and_replies_map_back():
    a = node(1.0, name="x", trainable=True)
    b = node(2.0, name="x", trainable=True)
    (a + b).backward("larger")
    llm = Recorder(reply({"x_1": 5.0}))
    opt = OptoPrime([a, b], llm=llm)
    assert [p.name for p in opt.parameters] == ["x", "x_1"]
    props = opt.step()
    assert "(float) x=1.0\n(float) x_1=2.0" in llm.prompts[0]
    assert [(p.name, p.parameter) for p in props] == [("x_1", b)]
    assert (a.data, b.data) == (1.0, 5.0)


def test_unnamed_parameters_get_local_numbers():
    p, q = node(1, trainable=True), node(2, trainable=True)
    OptoPrime([p, q], llm=Recorder())
    assert (p.name, q.name) == ("param", "param_1")


def test_the_dag_view_uses_the_same_names_and_maps_them_back():
    style, out = build()
    ids = [r["id"] for r in out.to_data()["nodes"]]
    assert ids == ["style", "str_1", "ask_1", "upper_1"]
    prompt = OptoPrime([style], llm=Recorder()).messages()[1]["content"]
    assert all(i in prompt for i in ids)
    found = graph_data_module.find([out], "ask_1")
    assert found is out.parents[0] and graph_data_module.find([out], "nope") is None
