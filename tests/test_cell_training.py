"""Training a %%trace cell over a dataset (the cell reads each example from a variable)."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from conftest import ipython_shell, make_llm

import trace_nb
from trace_nb.notebook import session as sessions
from trace_nb.testing import FakeOpenAIServer


def test_session_train_improves_validation_score():
    ip = ipython_shell()
    ip.run_cell(
        textwrap.dedent("""
        example = 1
        def score_of(example, out):
            gap = example + 5 - out
            return (1.0 if gap == 0 else 0.0, "exact" if gap == 0 else f"too small by {gap}")
        """)
    )

    def answer(request):
        prompt = request["messages"][-1]["content"]
        name, cur = re.search(r"\(int\) (offset\w*)=(-?\d+)", prompt).groups()  # offset_1 if taken
        gaps = [float(g) for g in re.findall(r"too small by (-?[\d.]+)", prompt)]
        step = int(sum(gaps) / len(gaps)) if gaps else 0
        return json.dumps({"reasoning": "shift", "suggestion": {name: int(cur) + step}})

    with FakeOpenAIServer(replies=answer) as srv:
        sessions.set_default_llm(make_llm(srv))
        try:
            ip.run_cell_magic(
                "trace",
                "--name ct --param offset --no-panel",
                "offset = 0\nout = example + offset\nout\n",
            )
            s = trace_nb.session("ct")
            result = s.train(
                list(range(8)),
                ip.user_ns["score_of"],
                batch_size=4,
                validation=[10, 20],
                progress=False,
            )
        finally:
            sessions.set_default_llm(None)
    assert s.parameters["offset"] == 5
    assert result.best_score == 1.0 and result.history[0]["val_score"] == 0.0
    assert s.last_training is result and len(srv.requests) == 2
    prompt = srv.requests[0]["messages"][-1]["content"]
    assert prompt.count("too small by 5") == 4  # one feedback line per example of the batch

    # A cell lives in this kernel: a remote engine is refused with what to do instead.
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool, pytest.raises(ValueError, match="remote engine"):
        s.train(list(range(4)), ip.user_ns["score_of"], executor=pool, progress=False)
    assert s.parameters["offset"] == 5 and s.last_training is result  # nothing changed


def test_panel_train_shows_the_run():
    ip = ipython_shell()
    ip.run_cell("example = 3")  # the cell reads the example; training sets it per run
    ip.run_cell(
        "def score_of(example, out):\n    return (1.0, 'ok') if out == example * 2 else (0.0, 'double it')\n"
    )

    def answer(request):
        name = re.search(r"\(int\) (factor\w*)=", request["messages"][-1]["content"]).group(1)
        return json.dumps({"reasoning": "double", "suggestion": {name: 2}})

    with FakeOpenAIServer(replies=answer) as srv:
        sessions.set_default_llm(make_llm(srv))
        try:
            panel = ip.run_cell_magic(
                "trace", "--name ptrain --param factor", "factor = 1\nout = example * factor\nout\n"
            )
            result = panel.train(
                [1, 2, 3, 4], ip.user_ns["score_of"], batch_size=2, validation=[5], progress=False
            )
        finally:
            sessions.set_default_llm(None)
    view = panel.train_view
    assert view.widget in panel.children
    assert result.best_score == 1.0 and trace_nb.session("ptrain").parameters["factor"] == 2
    assert view.step_bar.value == view.step_bar.max == 2
    # Oracle, by hand: step 1 runs the minibatch with factor 1 (no example doubled: train 0),
    # then factor becomes 2, which doubles every example (validation 1, step 2's train 1).
    shown = [(r["step"], r["train_score"], r["val_score"]) for r in view.history]
    assert shown == [(1, 0.0, 1.0), (2, 1.0, 1.0)]
    assert shown == [(r["step"], r["train_score"], r["val_score"]) for r in result.history[1:]]
    assert view.totals.value.startswith("step 2 · train 1 · validation 1 · best 1 · ")
    assert "best score 1 at step 1" in view.title.value
    # The table holds the validation set's results: example 5 gives 5 * 2 = 10, scored by
    # score_of as (1.0, 'ok').
    cells = re.findall(r"<td>([^<]*)</td>", view.table.value)
    assert cells == ["0", "1.0", "ok", "10", ""]
    # The plot has both series on the two steps (its text is kept as text in the SVG).
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", view.plot.value)
    assert {"train (minibatch)", "validation", "1", "2"} <= set(labels)
