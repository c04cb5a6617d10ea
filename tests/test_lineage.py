"""Lineage and blame (issue 17 §4): every accepted value is a version with its parent, score
and reasoning; any two can be diffed; any can be restored exactly; saved with the session."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import ipython_shell, make_llm

import trace_nb
from trace_nb.notebook import session as sessions
from trace_nb.notebook.lineage import Lineage, blame
from trace_nb.notebook.loading import load_session
from trace_nb.testing import FakeOpenAIServer

PROMPT_0 = "Answer briefly.\nBe polite."
PROMPT_1 = "Answer briefly.\nBe polite.\nUse examples."
PROMPT_2 = "Answer in one line.\nBe polite.\nUse examples."


def reply(value, reasoning):
    return json.dumps({"reasoning": reasoning, "suggestion": {"prompt": value}})


@pytest.fixture
def session():
    ip = ipython_shell()
    ip.run_cell(
        textwrap.dedent("""
        def lineage_grade(out):
            return (out.count("\\n") / 3, "more guidance please")
        """)
    )
    with FakeOpenAIServer(
        replies=[reply(PROMPT_1, "add examples"), reply(PROMPT_2, "shorter")]
    ) as srv:
        sessions.set_default_llm(make_llm(srv))
        try:
            ip.run_cell_magic(
                "trace",
                "--name lineage --param prompt --feedback lineage_grade --no-panel --reset",
                f"prompt = {PROMPT_0!r}\nprompt\n",
            )
            yield trace_nb.session("lineage")
        finally:
            sessions.set_default_llm(None)


def test_versions_scores_blame_diff_and_restore(session, tmp_path):
    s = session
    s.propose()
    s.approve("prompt")
    s.run()
    s.propose()
    s.approve("prompt", value=PROMPT_2.replace("one line", "one short line"))  # a human edit
    s.run()
    table = s.versions("prompt")
    assert list(table["version"]) == [0, 1, 2] and list(table["parent"].fillna(-1)) == [-1, 0, 1]
    assert list(table["source"]) == ["cell", "proposal", "edit"]
    assert list(table["reasoning"])[1:] == ["add examples", "shorter"]
    # Scores: the grade counts newlines / 3 for the runs that used each version.
    assert table["score"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    lines = s.blame("prompt")
    assert [(b["text"], b["version"], b["edited"]) for b in lines] == [
        ("Answer in one short line.", 2, True),
        ("Be polite.", 0, False),
        ("Use examples.", 1, False),
    ]
    assert lines[2]["reasoning"] == "add examples" and lines[2]["decided_by"] == "human"
    assert "-Be polite." not in s.diff("prompt", 0, 1) and "+Use examples." in s.diff(
        "prompt", 0, 1
    )
    # Restore gives back the exact value, as a new version.
    assert s.restore_version("prompt", 1) == PROMPT_1
    assert (
        s.parameters["prompt"] == PROMPT_1 and s.versions("prompt")["source"].iloc[-1] == "restore"
    )
    assert s.run() == PROMPT_1
    # Saved with the session and read back.
    path = tmp_path / "lineage.json"
    s.save(str(path))
    loaded = load_session(str(path))
    assert loaded.lineage.to_data() == s.lineage.to_data()
    assert blame(loaded.lineage, "prompt")[0]["text"] == "Answer briefly."


def test_restoring_a_version_the_session_does_not_have_says_so(session, tmp_path):
    """A session file without versions (the field is optional) loads with none: restoring
    one is a KeyError that says what to do, not an AttributeError, and changes nothing."""
    path = tmp_path / "old.json"
    session.save(str(path))
    data = json.loads(path.read_text())
    del data["lineage"]
    path.write_text(json.dumps(data))
    loaded = load_session(str(path))
    with pytest.raises(KeyError, match=r"no versions of 'prompt' to restore: run its cell"):
        loaded.restore_version("prompt", 0)
    assert loaded.parameters == {"prompt": PROMPT_0} and loaded.lineage.versions == {}


def test_malformed_lineage_is_refused_cleanly():
    with pytest.raises(ValueError, match=r"unknown fields \[.nonsense.\]"):
        Lineage.from_data({"versions": {"p": [{"number": 0, "nonsense": 1}]}})
    assert Lineage.from_data(None).versions == {}


def test_the_panel_shows_versions_and_restores_one(session):
    from trace_nb.notebook.ui.panel import Panel

    s = session
    s.propose()
    s.approve("prompt")
    s.run()
    panel = Panel(s)
    try:
        panel.select("prompt")
        assert panel.lineage_box.layout.display == ""
        assert (
            "v1 ◀ current" in panel.lineage_view.value
            and "add examples" in panel.lineage_view.value
        )
        assert "v1  Use examples." in panel.lineage_view.value  # blame: the line version 1 added
        panel.version_pick.value = 0
        assert "+Use examples." in panel.version_diff.value  # what changed since version 0
        panel.restore_version_button.click()
        assert panel.errors == [] and s.parameters["prompt"] == PROMPT_0
        assert "v2 ◀ current" in panel.lineage_view.value
    finally:
        panel.close()
