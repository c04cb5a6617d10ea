"""Three behaviours a reference Trace user meets (issue 25, item 8; docs/coming_from_trace.md)."""

from __future__ import annotations

import pytest

from trace_nb import ExecutionError, bundle, node
from trace_nb.optim import OptoPrime


@bundle()
def my_fun(x):
    """Adds one."""
    return x + 1


class Counter:
    def bump(self, x):
        return x + 1

    @bundle(trainable=True)
    def learned_bump(self, x):
        """Adds one, in code the optimizer may rewrite."""
        return x + 1


# -- an output's name and the name in the prompt --------------------------------------------


def test_prompt_name_is_the_name_the_llm_sees():
    x = node(1, name="x", trainable=True)
    y = my_fun(x)
    assert y.name == "my_fun"  # the kind, not unique
    assert y.prompt_name() == "my_fun_1"  # numbered within this graph, as in the prompt
    y.backward("larger")
    optimizer = OptoPrime([x], llm=lambda messages: None)
    prompt = optimizer.messages()[-1]["content"]
    assert f"{y.prompt_name(parameters=optimizer.parameters)} = my_fun(x=x)" in prompt
    assert f"(int) {y.prompt_name()}=2" in prompt  # under #Outputs
    assert x.prompt_name() == "x"


def test_prompt_name_depends_on_the_graph_and_a_label_keeps_its_name():
    x = node(1, name="x", trainable=True)
    a, b = my_fun(x), my_fun(x)
    assert (a.prompt_name(a, b), b.prompt_name(a, b)) == ("my_fun_1", "my_fun_2")
    assert b.prompt_name() == "my_fun_1"  # alone, b is the first my_fun of its graph
    named = node(5, name="total") + 1
    assert named.parents[0].prompt_name(named) == "total"
    with pytest.raises(ValueError, match="not in the graph"):
        x.prompt_name(node(3))


# -- node.call("method", *args) --------------------------------------------------------------


def test_call_with_a_method_name_calls_that_method_traced():
    items = node([3, 1], name="items")
    out = items.call("append", 2)
    assert items.data == [3, 1, 2]
    assert out.name == "append" and [p.name for p in out.parents] == ["items"]
    words = node("a b", name="words").call("split", " ")
    assert words.data == ["a", "b"] and words.parents[0].name == "words"
    total = node(Counter(), name="c").call("bump", node(4, name="n"))
    assert total.data == 5 and [p.name for p in total.parents] == ["c", "n"]
    assert node(2).call(lambda v, k: v * k, 3).data == 6  # a function still works
    with pytest.raises(ExecutionError, match="no attribute 'nope'"):
        node(1).call("nope")


# -- getattr(node, "method")(x): the parents -------------------------------------------------


def test_getattr_method_call_parents_plain_and_bundled():
    obj, x = node(Counter(), name="obj"), node(2, name="x")
    plain = getattr(obj, "bump")(x)  # noqa: B009 - the spelling the issue is about
    assert [p.name for p in plain.parents] == ["obj", "x"]  # two, as in the reference
    spelled = obj.getattr("bump")(x)  # the reference's spelling: getattr node, then call
    assert [p.name for p in spelled.parents] == ["getattr", "x"]
    assert [p.name for p in spelled.parents[0].parents] == ["obj"]
    learned = getattr(obj, "learned_bump")(x)  # noqa: B009
    # the third parent is the bundled method's own call: it carries the method's code
    assert [p.name for p in learned.parents] == ["obj", "x", "learned_bump"]
    (code,) = learned.parents[2].parents
    assert code.trainable and "def learned_bump" in code.data
    learned.backward("should add two")
    assert code.feedback  # the method's code learns through it
