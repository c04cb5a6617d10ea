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


def label_writes_outside_graph(files):
    """``(file, line)`` of every ``x._base`` (a node's label field) outside ``trace_nb/graph``."""
    import ast

    found = []
    for path, source in files:
        for n in ast.walk(ast.parse(source)):
            if isinstance(n, ast.Attribute) and n.attr == "_base":
                found.append((path, n.lineno))
    return found


def test_labels_are_written_only_by_the_graph():
    """A label is set where the node is made or by ``graph.names.relabel``: nothing outside
    ``trace_nb/graph`` reads or writes the label field itself."""
    import pathlib

    import trace_nb

    root = pathlib.Path(trace_nb.__file__).parent
    files = [
        (str(p.relative_to(root)), p.read_text(encoding="utf-8"))
        for p in sorted(root.rglob("*.py"))
        if p.relative_to(root).parts[0] != "graph"
    ]
    assert len(files) > 50 and any(name == "optim/base.py" for name, _ in files)
    assert label_writes_outside_graph(files) == []
    # the check sees a write when there is one
    assert label_writes_outside_graph([("m.py", "def f(p):\n    p._base = 'x'\n")]) == [("m.py", 2)]


def test_a_module_walk_and_an_optimizer_relabel_through_one_writer():
    from trace_nb import Module
    from trace_nb.graph import names

    class Tool(Module):
        def __init__(self):
            self.prompt = node("p", trainable=True)

    class Team(Module):
        def __init__(self):
            self.tools = [Tool(), Tool()]

    team = Team()
    assert [p.name for p in team.tools[0].parameters()] == ["tool_prompt"]  # its own path
    # once labelled by a walk, the label stays: another walk does not rename it
    assert [p.name for p in team.parameters()] == ["tool_prompt", "team_tools_1_prompt"]
    assert names.relabel(team.tools[0].prompt, "my prompt") == "my_prompt"
    a, b = node(1.0, name="x", trainable=True), node(2.0, name="x", trainable=True)
    OptoPrime([a, b], llm=Recorder())
    assert (a.label, b.label) == ("x", "x_1")
