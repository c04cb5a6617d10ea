"""What the history says for runs without feedback and runs that raised (issue 25, item 7)."""

from __future__ import annotations

import math
import re

import pytest
from conftest import ipython_shell

import trace_nb
from trace_nb.notebook.ui.history_view import history_html


@pytest.fixture(scope="module")
def ip():
    shell = ipython_shell()
    shell.run_cell("def hist_double(p):\n    return p * 2\n")
    yield shell
    shell.user_ns.pop("hist_double", None)  # the shell is shared by the whole test run


def test_no_feedback_is_one_thing_in_every_row(ip):
    ip.run_cell_magic("trace", "--name hist_fb --param p --no-panel", "p = 3\nhist_double(p)")
    s = trace_nb.session("hist_fb")
    s.feedback("more")  # run 0: text only
    s.run()
    s.feedback(score=0.5)  # run 1: a score only
    s.run()  # run 2: nothing
    s.run()
    s.feedback("fine", 1.0)  # run 3: both
    h = s.history
    assert h["feedback"].tolist() == ["more", "", "", "fine"]
    assert not h["feedback"].isna().any()  # text: "" when there is none, never NaN
    scores = h["score"].tolist()
    assert math.isnan(scores[0]) and scores[1] == 0.5 and math.isnan(scores[2])
    assert scores[3] == 1.0
    table = history_html(h)
    assert "nan" not in table.lower() and "None" not in table


def test_an_exception_output_keeps_its_type(ip):
    ip.run_cell_magic("trace", "--name hist_exc --param p --no-panel", "p = 0\n1 / p")
    s = trace_nb.session("hist_exc")
    assert s.history["output"].tolist() == ["ZeroDivisionError: division by zero"]
    assert "ZeroDivisionError: division by zero" in history_html(s.history)
    ip.run_cell_magic("trace", "--name hist_exc2 --param p --no-panel", "p = 0\nraise ValueError()")
    assert trace_nb.session("hist_exc2").history["output"].tolist() == ["ValueError"]  # as Python


def test_rows_saved_with_none_read_as_no_feedback(ip):
    ip.run_cell_magic("trace", "--name hist_old --param p --no-panel", "p = 1\nhist_double(p)")
    s = trace_nb.session("hist_old")
    s.rows[-1]["feedback"] = None  # as sessions saved before this change hold it
    assert s.history["feedback"].tolist() == [""]


def test_a_long_diff_line_is_one_row_with_plain_spaces():
    # difflib's column wrap cut words in two (rows marked '>'); the cells wrap at spaces now
    from trace_nb.notebook.ui.proposal_view import diff_html

    old = "Answer in full sentences " * 8
    new = "Answer in one short sentence " * 8
    table = diff_html(old, new)
    assert "&nbsp;" not in table and "Answer in one short sentence Answer" in table
    assert "&gt;</td>" not in table  # no continuation rows cut at a column
    # a line longer than the diff's 200-character chunks is cut after a word, not inside one
    cells = re.findall(r'<span class="diff_add">(.*?)</span>', table)
    assert len(cells) == 2 and cells[0].endswith(" ") and cells[1].startswith("sentence")
    assert "".join(cells) == new
