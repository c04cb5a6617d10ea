"""Blame on long values (issue 23, item 24): right against an oracle on random edits, one
comparison per version, kept for the panel. Its speed is measured in bench/bench_blame.py."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_lineage import session  # noqa: F401 - the fixture: a session with a prompt

from trace_nb.notebook.lineage import Lineage, Version, blame
from trace_nb.notebook.linediff import match_lines


def _edit(lines: list[str], version: int, rng: random.Random, edits: int) -> list[str]:
    """``edits`` random deletions, insertions and replacements; every new line names the
    version that wrote it (``v3.17``), and no line is ever written twice."""
    out = list(lines)
    for k in range(edits):
        kind = rng.choice(["insert", "delete", "replace"])
        at = rng.randrange(len(out) + 1)
        fresh = f"v{version}.{k}.{rng.random():.12f}"
        if kind == "insert" or not out:
            out.insert(at, fresh)
        elif kind == "delete":
            del out[min(at, len(out) - 1)]
        else:
            out[min(at, len(out) - 1)] = fresh
    return out


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(0, 400),
    versions=st.integers(1, 8),
    edits=st.integers(0, 40),
    restore=st.booleans(),
)
def test_blame_names_the_version_that_wrote_each_line(seed, size, versions, edits, restore):
    """The oracle: each line carries the number of the version that wrote it. With a
    restore, a later version starts again from an older one (its parent)."""
    rng = random.Random(seed)
    lin = Lineage()
    texts = [[f"v0.{i}.{rng.random():.12f}" for i in range(size)]]
    lin.start("p", "\n".join(texts[0]))
    for n in range(1, versions + 1):
        parent = rng.randrange(n) if restore else n - 1
        lin.current["p"] = parent  # the next version replaces this one
        texts.append(_edit(texts[parent], n, rng, edits))
        lin.accept("p", "\n".join(texts[n]), source="proposal", step=n)
    rows = blame(lin, "p")
    assert [r["text"] for r in rows] == texts[-1]
    assert [r["version"] for r in rows] == [int(t.split(".")[0][1:]) for t in texts[-1]]


@settings(max_examples=200, deadline=None)
@given(
    old=st.lists(st.sampled_from(["", "}", "x", "pass", "  return 1"]), max_size=60),
    new=st.lists(st.sampled_from(["", "}", "x", "pass", "y"]), max_size=60),
)
def test_kept_lines_are_equal_and_in_order(old, new):
    """With lines that repeat, any longest match is a right answer; what must hold is that
    kept lines are equal and in the same order on both sides, and that as many are kept as
    the longest common subsequence (these short texts are matched exactly)."""
    match = match_lines(old, new)
    pairs = [(i, j) for j, i in enumerate(match) if i is not None]
    assert all(old[i] == new[j] for i, j in pairs)
    assert all(a[0] < b[0] for a, b in zip(pairs, pairs[1:], strict=False))
    assert len(pairs) == _lcs(old, new)


def _lcs(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b):
            prev, row[j + 1] = row[j + 1], prev + 1 if x == y else max(row[j + 1], row[j])
    return row[-1]


def test_one_edit_in_24000_repeated_lines_blames_one_line():
    """A 50-line block repeated 480 times: the case difflib is quadratic on."""
    old = [f"x_{i % 50} = f({i % 50})" for i in range(24000)]
    new = list(old)
    new[12000] = "changed"
    lin = Lineage()
    lin.start("p", "\n".join(old))
    lin.accept("p", "\n".join(new), source="edit", step=0, decided_by="human")
    rows = blame(lin, "p")
    assert [r["line"] for r in rows if r["version"] == 1] == [12001]
    assert rows[12000]["edited"] and not rows[11999]["edited"]


def test_each_version_is_compared_with_its_parent_once():
    lin = Lineage()
    lin.start("p", "a\nb")
    for n, text in enumerate(["a\nb\nc", "a\nB\nc", "A\nB\nc"], 1):
        lin.accept("p", text, source="proposal", step=n)
    assert lin.blame_diffs == 0  # nothing is compared until blame is asked for
    assert [r["version"] for r in blame(lin, "p")] == [3, 2, 1]
    assert lin.blame_diffs == 3
    assert blame(lin, "p") == blame(lin, "p", limit=10) and lin.blame_diffs == 3
    assert [r["text"] for r in blame(lin, "p", limit=2)] == ["A", "B"]
    lin.accept("p", "A\nB\nc\nd", source="proposal", step=4)
    assert [r["version"] for r in blame(lin, "p")] == [3, 2, 1, 4]
    assert lin.blame_diffs == 4  # only the new version was compared
    # An old version's blame is worked out from what is kept, too.
    assert lin.origins("p", 2) == (["a", "B", "c"], [0, 2, 1]) and lin.blame_diffs == 4


def test_clicks_in_the_panel_compare_nothing_again(session):  # noqa: F811
    from trace_nb.notebook.ui.panel import Panel

    s = session
    s.propose()
    s.approve("prompt")
    s.run()
    panel = Panel(s)
    try:
        panel.select("prompt")
        assert "v1  Use examples." in panel.lineage_view.value
        compared = s.lineage.blame_diffs
        assert compared == 1
        for _ in range(3):
            panel.refresh()
            panel.select("prompt")
        assert s.lineage.blame_diffs == compared
    finally:
        panel.close()


def test_a_parent_cycle_is_an_error_not_a_hang():
    lin = Lineage()
    lin.versions["p"] = [Version(0, "a", 1, "cell"), Version(1, "b", 0, "proposal")]
    lin.current["p"] = 1
    with pytest.raises(ValueError, match="cycle"):
        blame(lin, "p")
