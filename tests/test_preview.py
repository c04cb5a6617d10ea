"""Preview a proposal on examples (issue 17 §1): scores equal a direct evaluation,
regressions come first, and nothing changes."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import ipython_shell, make_llm

import trace_nb
from trace_nb.notebook import session as sessions
from trace_nb.notebook.ui.panel import Panel
from trace_nb.testing import FakeOpenAIServer


@pytest.fixture
def s():
    ip = ipython_shell()
    ip.run_cell(
        textwrap.dedent('''
        def fits(out):
            """1 when the text fits in 12 characters."""
            return (1.0 if len(out) <= 12 else 0.0, f"{len(out)} characters")
        ''')
    )
    srv = FakeOpenAIServer(
        replies=[json.dumps({"reasoning": "shorter", "suggestion": {"prefix": "Hi "}})]
    )
    srv.start()
    sessions.set_default_llm(make_llm(srv))
    ip.run_cell_magic(
        "trace",
        "--name preview --param prefix --feedback fits --no-panel --reset",
        "example = 'Bob'\nprefix = 'Hello there '\nout = prefix + example\nout\n",
    )
    session = trace_nb.session("preview")
    session.examples = []
    yield session
    sessions.set_default_llm(None)
    srv.close()


def direct(prefix: str, example: str) -> float:
    return 1.0 if len(prefix + example) <= 12 else 0.0


def test_preview_matches_a_direct_evaluation_and_changes_nothing(s):
    # The cell reads `example`, but assigns it too: examples the user registers go through
    # the variable the cell reads, so this cell ignores them; use one that reads it.
    s.shell.run_cell_magic(
        "trace",
        "--name preview --param prefix --feedback fits --no-panel --reset",
        "prefix = 'Hello there '\nout = prefix + example\nout\n",
    )
    s.examples = ["Al", "Bob", "A much longer name"]
    s.feedback("too long")
    s.propose()
    rows_before, ns_out = len(s.rows), s.shell.user_ns["out"]
    result = s.preview("prefix")
    by = {r.example: r for r in result.rows}
    for ex in s.examples:
        r = by[repr(ex)]
        assert r.before_score == direct("Hello there ", ex) and r.after_score == direct("Hi ", ex)
        assert r.after == repr("Hi " + ex)
    assert result.runs == 6 and result.regressions == 0
    assert s.parameters["prefix"] == "Hello there " and len(s.rows) == rows_before
    assert s.shell.user_ns["out"] == ns_out and s.proposals[0].status == "pending"


def test_regressions_come_first_and_are_marked(s):
    s.shell.run_cell_magic(
        "trace",
        "--name preview --param prefix --feedback fits --no-panel --reset",
        "prefix = 'Hi '\nout = prefix + example\nout\n",
    )
    s.examples = ["Al", "Bo"]
    result = s.preview("prefix", value="Good morning ")  # longer: both examples get worse
    assert result.regressions == 2 and all(r.regression for r in result.rows)
    result = s.preview("prefix", value="Yo ")
    assert result.regressions == 0 and result.mean_after == 1.0


def test_the_card_previews_in_the_panel(s):
    s.feedback("too long")
    s.propose()
    panel = Panel(s)
    try:
        card = panel.proposal_view("prefix")
        card.preview_button.click()
        assert panel.errors == []
        assert "(the cell as it is)" in card.preview_view.value  # no examples: the last input
        assert (
            "0 → 1" in card.preview_view.value and "ran the cell 2 times" in card.preview_view.value
        )
        assert "mean score 0 → 1" in panel.status.value
        assert s.parameters["prefix"] == "Hello there "
    finally:
        panel.close()
