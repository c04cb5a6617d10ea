"""The one place for short text of values (trace_nb.text) and the views that use it."""

from __future__ import annotations

import math

import pytest

from trace_nb import node
from trace_nb.graph.data import graph_data
from trace_nb.graph.render import label
from trace_nb.text import cell_text, cut, full_text, preview, score_text, short_repr, value_text


class Broken:
    def __repr__(self):
        raise RuntimeError("no repr")

    __str__ = __repr__


def test_cut_keeps_text_up_to_the_limit_and_marks_what_it_drops():
    assert cut("abcd", 4) == "abcd"
    assert cut("abcde", 4) == "abc…" and len(cut("x" * 500, 40)) == 40
    assert cut("", 0) == "" and cut("ab", 1) == "…"


def test_short_repr_and_preview_differ_only_for_strings():
    assert short_repr("hi") == preview("hi") == "'hi'"
    assert short_repr([1, 2]) == preview([1, 2]) == "[1, 2]"
    assert short_repr(1.5) == "1.5" and preview(Exception("boom")) == "boom"  # str, not repr
    assert short_repr("x" * 100, 10) == "'xxxxxxxx…" and preview(list(range(99)), 8) == "[0, 1, …"


def test_value_text_shows_strings_as_they_are():
    assert value_text("a 'quote'") == "a 'quote'" and value_text(("a",)) == "('a',)"
    assert value_text("y" * 90, 80) == "y" * 79 + "…"


def test_a_value_that_cannot_print_itself_is_named_by_its_type():
    assert short_repr(Broken()) == "<Broken>"
    assert value_text(Broken()) == "<Broken>"
    assert preview(Broken()) == "<unprintable Broken: no repr>"
    assert full_text(Broken()).startswith("<unprintable Broken")
    assert cell_text(Broken()) == "<unprintable Broken: no repr>"
    assert "data=<Broken>" in repr(node(Broken(), name="tp_broken"))  # a node's repr too


def test_full_text_pretty_prints_and_says_how_much_is_left_out():
    assert full_text("plain\ntext") == "plain\ntext"
    assert full_text({"k": list(range(40))}).count("\n") > 1  # pprint wraps at 88 columns
    assert full_text("z" * 50, 20) == "z" * 20 + "\n… (30 more characters)"


def test_cell_text_keeps_code_as_lines():
    assert cell_text(None) == "" and cell_text(math.nan) == ""
    assert cell_text(2 / 3) == "0.6667" and cell_text(3) == "3"
    code = "def f(x):\n" + "\n".join(f"    y{i} = {'v' * 100}" for i in range(10))
    shown = cell_text(code, 20, 3).split("\n")
    assert (
        shown[0] == "def f(x):" and shown[1] == "    y0 = " + "v" * 10 + "…" and len(shown[1]) == 20
    )
    assert shown[-1] == "… (8 more lines)" and len(shown) == 4
    assert cell_text("w" * 30, 10) == "w" * 9 + "…"


@pytest.mark.parametrize(
    ("score", "missing", "text"),
    [(None, "-", "-"), (None, "", ""), (0.123456, "-", "0.123"), (2, "-", "2")],
)
def test_score_text(score, missing, text):
    assert score_text(score, missing) == text


def test_graph_views_use_the_same_preview():
    long = node("q" * 300, name="tp_long")
    out = long + "!"
    records = {r["name"]: r for r in graph_data([out], value_limit=50)["nodes"]}
    assert records["tp_long"]["value"] == preview("q" * 300, 50)
    assert label(records["tp_long"], 10).endswith("&#x27;" + "q" * 8 + "…>")  # escaped
    assert repr(long) == f"Node(name='tp_long', data={short_repr('q' * 300, 80)})"
