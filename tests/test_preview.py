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


def test_a_preview_from_another_thread_waits_for_training(s):
    """A Preview click (the widget thread) during ``session.train()`` must not put the
    unapproved value into the minibatch being scored: training holds the session lock."""
    import threading

    ip = s.shell
    ip.user_ns.update(seen=[], in_preview=threading.Event(), release=threading.Event())
    ip.run_cell(
        textwrap.dedent('''
        import threading
        def look(prefix, example):
            """Record who ran the cell with which prefix."""
            main = threading.current_thread() is threading.main_thread()
            seen.append((main, prefix))
            if not main and prefix == "Hi ":  # the preview, with the proposal: stay inside
                in_preview.set()
                release.wait(10)
            return prefix + example
        ''')
    )
    suggest = [{"prefix": "Hi "}, {"prefix": "Yo "}]  # Propose's, then training's
    server = FakeOpenAIServer(
        replies=[json.dumps({"reasoning": "r", "suggestion": x}) for x in suggest]
    ).start()
    sessions.set_default_llm(make_llm(server))
    ip.run_cell_magic(
        "trace",
        "--name preview --param prefix --feedback fits --no-panel --reset",
        "example = 'Al'\nprefix = 'Hello there '\nout = look(prefix, example)\nout\n",
    )
    s = trace_nb.session("preview")
    s.feedback("too long")
    s.propose()  # pending: prefix "Hi ", not approved
    threads = []

    def feedback(example, output):
        if not threads:  # the first example scored: a Preview arrives from another thread
            t = threading.Thread(target=s.preview, args=("prefix",))
            threads.append(t)
            t.start()
            ip.user_ns["in_preview"].wait(3)  # unlocked, the preview is inside its run now
        return (1.0 if len(output) <= 12 else 0.0, "fit in 12")

    ip.user_ns["seen"].clear()
    try:
        s.train(["Al", "Bob", "Cy"], feedback, batch_size=3, epochs=1, progress=False)
    finally:
        ip.user_ns["release"].set()
        for t in threads:
            t.join(30)
        server.close()
    trained = [prefix for main, prefix in ip.user_ns["seen"] if main]
    assert trained and "Hi " not in trained  # the minibatch never saw the unapproved value
    assert (False, "Hi ") in ip.user_ns["seen"]  # the preview did run, after training


def test_previewing_a_module_parameter_measures_it_and_changes_nothing(s):
    """A cell that builds its module anew each run: the preview's "after" run uses the
    proposed value, and the session keeps its module, its optimizer and an approvable
    proposal (issue 23 item 16)."""
    ip = s.shell
    ip.run_cell(
        textwrap.dedent("""
        import trace_nb
        class Greeter(trace_nb.Module):
            def __init__(self):
                self.greeting = trace_nb.node("Hello there", trainable=True)
            def forward(self, who):
                return self.greeting + " " + who
        """)
    )
    server = FakeOpenAIServer(
        replies=[json.dumps({"reasoning": "r", "suggestion": {"g_greeting": "Hi"}})]
    ).start()
    sessions.set_default_llm(make_llm(server))
    try:
        ip.run_cell_magic(
            "trace",
            "--name modprev --feedback fits --no-panel --reset",
            "g = Greeter()\nout = g(trace_nb.node('Al'))\nout\n",
        )
        m = trace_nb.session("modprev")
        module, optimizer = m.modules["g"], m.optimizer
        m.feedback("shorter")
        m.propose()
        result = m.preview("g.greeting")
        row = result.rows[0]
        assert (row.before, row.after) == ("'Hello there Al'", "'Hi Al'")
        assert (row.before_score, row.after_score) == (0.0, 1.0)
        assert m.modules["g"] is module and m.optimizer is optimizer and ip.user_ns["g"] is module
        assert m.parameters["g.greeting"] == "Hello there" and len(m.rows) == 1
        m.approve("g.greeting")  # still approvable
        assert m.parameters["g.greeting"] == "Hi" and m.run() == "Hi Al"
    finally:
        server.close()


def test_a_preview_from_another_thread_and_a_rerun_of_the_cell_never_overlap(s):
    """Re-running the ``%%trace`` cell while a Preview runs on the widget thread (a
    subshell): the re-run must not record the unapproved value the preview put in place,
    nor see the preview's module and namespace handling; the magic holds the session lock."""
    import threading

    ip = s.shell
    ip.user_ns.update(seen=[], in_preview=threading.Event(), rerun=threading.Event())
    ip.run_cell(
        textwrap.dedent('''
        import threading
        def look(prefix, example):
            """Record who ran the cell with which prefix."""
            main = threading.current_thread() is threading.main_thread()
            seen.append((main, prefix))
            if main:
                rerun.set()  # the re-run is inside: let the preview finish
            elif prefix == "Hi ":  # the preview's run with the proposal: stay inside
                in_preview.set()
                rerun.wait(5)  # (with the lock, the re-run waits for us instead)
            return prefix + example
        ''')
    )
    cell = "example = 'Al'\nprefix = 'Hello there '\nout = look(prefix, example)\nout\n"
    line = "--name preview --param prefix --feedback fits --no-panel"
    ip.run_cell_magic("trace", line, cell)
    s.feedback("too long")
    s.propose()  # pending: prefix "Hi ", not approved
    ip.user_ns["rerun"].clear()  # (set by the run above)
    t = threading.Thread(target=s.preview, args=("prefix",))
    t.start()
    try:
        assert ip.user_ns["in_preview"].wait(30)
        ip.user_ns["seen"].clear()
        ip.run_cell_magic("trace", line, cell)  # the user re-runs the cell meanwhile
    finally:
        ip.user_ns["rerun"].set()
        t.join(30)
    assert (True, "Hello there ") in ip.user_ns["seen"]
    assert (True, "Hi ") not in ip.user_ns["seen"]  # the unapproved value never ran here
    assert s.rows[-1]["prefix"] == "Hello there " and "Hello there Al" in s.rows[-1]["output"]
    assert s.parameters["prefix"] == "Hello there "


def test_a_cell_run_during_a_preview_keeps_its_work(s):
    """A cell the user runs while a Preview runs on the widget thread (kernel subshells
    allow it) keeps what it assigns; the preview puts back only the names its cell binds."""
    import threading

    ip = s.shell
    ip.run_cell(
        "import threading\n"
        "preview_started, preview_go = threading.Event(), threading.Event()\n"
        "def hold(x):\n"
        "    preview_started.set()\n"
        "    preview_go.wait(30)\n"
        "    return x\n"
    )
    ip.user_ns["preview_go"].set()  # the first run of the cell does not wait
    ip.run_cell_magic(
        "trace",
        "--name preview --param prefix --feedback fits --no-panel --reset",
        "prefix = 'Hello there '\nout = hold(prefix + example)\nout\n",
    )
    ip.user_ns["example"] = "Bob"
    s.examples = []
    s.feedback("too long")
    s.propose()
    out_before = ip.user_ns["out"]
    ip.user_ns["preview_go"].clear()
    ip.user_ns["preview_started"].clear()
    result = {}
    worker = threading.Thread(target=lambda: result.update(p=s.preview("prefix")))
    worker.start()
    assert ip.user_ns["preview_started"].wait(30)
    ip.run_cell("work = [1, 2, 3]")  # the user's own cell, meanwhile
    ip.user_ns["preview_go"].set()
    worker.join(60)
    assert not worker.is_alive() and result["p"].runs == 2
    assert ip.user_ns["work"] == [1, 2, 3]  # new work survives the preview
    assert ip.user_ns["out"] == out_before  # a name the traced cell binds is put back
    for name in ("work", "preview_started", "preview_go", "hold"):
        ip.user_ns.pop(name, None)
