"""A ``--feedback`` function that fails still shows the panel (issue 23, item 19).

It may raise, return something that is not feedback, or not take the output as its one
argument: the run is kept, the panel shows, and its error area names the function and
the shape it must return. In a real InteractiveShell, with the panel in-process and the
LLM on the loopback server.
"""

from __future__ import annotations

import json

import pytest
from conftest import ipython_shell, make_llm

import trace_nb
from trace_nb.errors import FeedbackError
from trace_nb.feedback import FeedbackProblem
from trace_nb.notebook import registry
from trace_nb.notebook import session as sessions
from trace_nb.notebook.ui.panel import Panel
from trace_nb.testing import FakeOpenAIServer

CELL = "x = 3\ny = x + 1\ny\n"


@pytest.fixture
def ip():
    shell = ipython_shell()
    with FakeOpenAIServer(replies=[]) as srv:
        sessions.set_default_llm(make_llm(srv))
        shell.user_ns["fb_server"] = srv
        try:
            yield shell
        finally:
            sessions.set_default_llm(None)
            s = registry.find("fberr")
            if s is not None:
                s.close()


@pytest.mark.parametrize(
    "definition, reason, words",
    [
        ("def grade(out):\n    return 1 / 0\n", FeedbackProblem.RAISED, "raised ZeroDivisionError"),
        ("def grade(out):\n    return [1, 2, 3]\n", FeedbackProblem.SHAPE, "got list"),
        ("def grade():\n    return 1.0\n", FeedbackProblem.SIGNATURE, "grade() cannot be called"),
        ("def grade(out, rubric):\n    return 1.0\n", FeedbackProblem.SIGNATURE, "cannot be"),
        (
            "def grade(out):\n    return {'score': 'high', 'feedback': 'ok'}\n",
            FeedbackProblem.SHAPE,
            "score&#x27; must be a number",
        ),
        ("def grade(out):\n    return 10**400\n", FeedbackProblem.SHAPE, "a float can hold"),
    ],
    ids=["raises", "wrong-shape", "no-argument", "two-arguments", "dict-score", "huge-score"],
)
def test_a_failing_feedback_function_still_shows_the_panel(ip, definition, reason, words):
    ip.run_cell("def grade(out):\n    return 1.0\n")  # callable when the magic checks it
    ip.run_cell_magic("trace", "--name fberr --param x --feedback grade --reset", CELL)
    ip.run_cell(definition)  # then it breaks: the next run's feedback fails
    panel = ip.run_cell_magic("trace", "--name fberr --param x --feedback grade", CELL)
    assert isinstance(panel, Panel)
    s = trace_nb.session("fberr")
    # The run is kept: its row, output and parameters; only the feedback is missing.
    assert len(s.rows) == 2 and s.output == 4 and s.parameters == {"x": 3}
    assert s.rows[-1]["feedback"] == "" and s.last_feedback is None  # "" is "no feedback"
    assert s.rows[0]["score"] == 1.0  # the first run's feedback stays
    error = s.feedback_error
    assert isinstance(error, FeedbackError) and error.reason is reason
    shown = panel.error_area.value
    assert "--feedback grade" in shown and words in shown
    assert "(score, text)" in shown  # the shape it must return
    assert "feedback function failed" in panel.status.value
    assert panel.feedback_text.value == ""  # empty for a human to type into


def test_the_first_run_shows_the_panel_and_fixing_the_function_clears_the_error(ip):
    ip.run_cell("def grade(out):\n    return 1.0\n")
    ip.run_cell_magic("trace", "--name fberr --param x --feedback grade --reset", CELL)
    ip.run_cell("def grade(out):\n    raise ValueError('rubric missing')\n")
    s = trace_nb.session("fberr")
    s.close()
    panel = ip.run_cell_magic("trace", "--name fberr --param x --feedback grade --reset", CELL)
    s = trace_nb.session("fberr")
    assert isinstance(panel, Panel) and len(s.rows) == 1
    assert "rubric missing" in panel.error_area.value
    # The traceback of the user's error is one click away.
    assert "raise ValueError" in panel.error_area.value
    # Run again, still failing: the run is kept, the error shows again, nothing is lost.
    panel.run_button.click()
    assert len(s.rows) == 2 and panel.error_area.value.count("class='trace-nb-error'") == 1
    ip.run_cell("def grade(out):\n    return (0.5, 'fine')\n")
    panel.run_button.click()
    assert len(s.rows) == 3 and s.last_feedback == ("fine", 0.5)
    assert s.feedback_error is None and panel.error_area.value == ""


def test_session_run_raises_after_keeping_the_run(ip):
    ip.run_cell("def grade(out):\n    return {'grade': 1}\n")
    ip.run_cell_magic("trace", "--name fberr --param x --feedback grade --reset --no-panel", CELL)
    s = trace_nb.session("fberr")
    with pytest.raises(FeedbackError, match="--feedback grade: feedback dict has unknown keys"):
        s.run()
    assert len(s.rows) == 2 and s.output == 4


def test_an_auto_run_stops_with_the_error_shown(ip):
    ip.run_cell("def grade(out):\n    return (0.0, 'make it larger')\n")
    panel = ip.run_cell_magic("trace", "--name fberr --param x --feedback grade --reset", CELL)
    s = trace_nb.session("fberr")
    ip.run_cell("def grade(out):\n    return out.missing\n")  # breaks after the first run
    ip.user_ns["fb_server"].add_replies(
        json.dumps({"reasoning": "larger", "suggestion": {"x": 5}}),
        json.dumps({"reasoning": "larger", "suggestion": {"x": 7}}),
    )
    panel.auto(steps=2)
    assert panel.wait(30)
    assert s.parameters == {"x": 5} and len(s.rows) == 2 and s.output == 6  # run 1 kept
    assert "raised AttributeError" in panel.error_area.value
    assert not panel.auto_button.disabled  # the auto run ended; the panel is not stuck


def test_a_cell_that_rebinds_the_function_name_gets_the_panel_too(ip):
    ip.run_cell("def grade(out):\n    return 1.0\n")
    panel = ip.run_cell_magic(
        "trace", "--name fberr --param x --feedback grade --reset", "grade = 42\n" + CELL
    )
    s = trace_nb.session("fberr")
    assert isinstance(panel, Panel) and len(s.rows) == 1
    assert s.feedback_error.reason is FeedbackProblem.MISSING
    assert "&#x27;grade&#x27; is a int, not a function" in panel.error_area.value
