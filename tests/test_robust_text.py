"""Bounded diffs for proposal cards and Proposal.diff (issue 14, item 9)."""

from __future__ import annotations

from trace_nb.text import MAX_LINE_CHARS, bounded_diff, bounded_html_diff, bounded_lines


def test_long_lines_are_chunked_and_many_lines_capped():
    lines = bounded_lines("x" * 1000 + "\nshort\n" + "y\n" * 50, max_line_chars=300, max_lines=10)
    assert lines[:4] == ["x" * 300] * 3 + ["x" * 100]
    assert lines[4] == "short" and len(lines) == 11
    assert lines[-1].startswith("… (") and "more characters not shown" in lines[-1]
    assert bounded_lines("") == [""]


def test_a_change_inside_a_70000_character_line_is_shown():
    line = "x" * 70_000
    new = line[:35_000] + "CHANGED" + line[35_007:]
    text = bounded_diff(line, new)
    changed = [row for row in text.splitlines() if row.startswith("+") and "CHANGED" in row]
    assert len(changed) == 1 and len(changed[0]) <= MAX_LINE_CHARS + 1
    html = bounded_html_diff(line, new)  # HtmlDiff alone recurses and takes seconds here
    assert "CHANGED" in html


def test_small_code_diffs_are_side_by_side_and_big_blocks_plain():
    old, new = "def f(x):\n    return x\n", "def f(x):\n    return x + 1\n"
    assert bounded_html_diff(old, new).lstrip().startswith("<table")
    plain = bounded_html_diff("a\n" * 1000, "b\n" * 1000)
    assert plain.startswith("<pre") and "+b" in plain
    assert "<script>" not in bounded_html_diff("<script>", "</script>x")


def test_proposal_diff_uses_the_bounded_diff():
    from trace_nb.graph import ParameterNode
    from trace_nb.optim.proposal import check

    p = ParameterNode("x" * 70_000, name="long_text")
    prop = check(p, "x" * 69_999 + "y")
    assert prop.valid and "+" + "x" * 199 + "y" in prop.diff()
