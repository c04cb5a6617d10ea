"""One rule for LLM code, on every path: applied unreviewed only with approve_code=True; and
code that does not load is refused whole (issue 14, items 4 and 5)."""

from __future__ import annotations

import json

import pytest
from conftest import ipython_shell, make_llm

import trace_nb
from trace_nb import OptoPrime, bundle, node
from trace_nb.notebook import session as sessions
from trace_nb.testing import FakeOpenAIServer

FIXED = "def halve(x):\n    return x / 2\n"
MISSING_IMPORT = "from math import no_such_name_for_trace_nb\n\ndef halve(x):\n    return x / 2\n"


def reply(suggestion):
    return json.dumps({"reasoning": "r", "suggestion": suggestion})


@pytest.fixture(scope="module")
def ip():
    shell = ipython_shell()
    shell.run_cell("def halve(x):\n    return x * 2\n")
    return shell


@pytest.fixture
def srv():
    with FakeOpenAIServer(replies=[]) as server:
        sessions.set_default_llm(make_llm(server))
        yield server
    sessions.set_default_llm(None)


def run_cell(ip, name, extra=""):
    ip.run_cell("def halve(x):\n    return x * 2\n")
    ip.run_cell_magic(
        "trace", f"--name {name} --code halve --no-panel {extra}", "x = param(8.0)\nhalve(x)\n"
    )
    return trace_nb.session(name)


@pytest.mark.parametrize("path", ["session.step", "%trace_step", "panel.auto"])
def test_auto_paths_hold_code_without_the_opt_in(ip, srv, path):
    s = run_cell(ip, f"hold_{path.replace('.', '_').strip('%')}")
    s.feedback("halve it")
    srv.add_replies(reply({"code_halve": FIXED, "x": 4.0}))
    if path == "session.step":
        s.step(auto_approve=True)
    elif path == "%trace_step":
        ip.run_line_magic("trace_step", f"--name {s.name} --auto")
    else:
        from trace_nb.notebook.ui.panel import Panel

        panel = Panel(s)  # the cell ran with --no-panel
        ip.user_ns["grade_fn"] = lambda out: (0.0, "halve it")
        s.spec.feedback = "grade_fn"
        panel.auto(1)
        assert panel.wait(30)
        assert "waits for you" in panel.status.value
    by = {p.name: p for p in s.proposals}
    assert by["x"].status == "approved"  # a value: applied
    assert by["code_halve"].status == "pending" and "x * 2" in s.parameters["halve"]  # code: held
    assert s.run() == 8.0  # x was approved (4.0), the old code doubles it


@pytest.mark.parametrize("path", ["session.step", "%trace_step"])
def test_the_opt_in_applies_code(ip, srv, path):
    s = run_cell(ip, f"optin_{path.strip('%').replace('.', '_')}")
    s.feedback("halve it")
    srv.add_replies(reply({"code_halve": FIXED}))
    if path == "session.step":
        s.step(auto_approve=True, approve_code=True)
    else:
        ip.run_line_magic("trace_step", f"--name {s.name} --auto --approve-code")
    assert s.proposals[0].status == "approved" and s.run() == 4.0


def test_optimizer_step_holds_code_and_says_how_to_apply_it():
    @bundle(trainable=True)
    def halve(x):
        return x * 2

    out = halve(node(8.0, name="hv_in"))
    out.backward("halve it")
    with FakeOpenAIServer(replies=[reply({halve.parameter.name: FIXED})] * 2) as server:
        opt = OptoPrime([halve.parameter], llm=make_llm(server))
        with pytest.warns(UserWarning, match="approve_code=True"):
            opt.step()
        assert halve(8.0).data == 16.0
        opt.step(approve_code=True)
    assert halve(8.0).data == 4.0


def test_code_that_does_not_load_changes_nothing(ip, srv):
    s = run_cell(ip, "missing_import")
    before = s.parameters["halve"]
    s.feedback("halve it")
    srv.add_replies(reply({"code_halve": MISSING_IMPORT}))
    s.propose()
    with pytest.raises(ValueError, match="no_such_name_for_trace_nb"):
        s.approve("halve")
    prop = s.proposals[0]
    assert not prop.valid and prop.status == "pending" and "does not load" in prop.reason
    assert s.parameters["halve"] == before and s.rows[-1]["approved"] == ""
    assert s.run() == 16.0  # the old code still runs; run() raises nothing


def test_a_missing_import_is_a_clear_compile_error_not_a_raw_one():
    @bundle(trainable=True)
    def halve(x):
        return x * 2

    with pytest.raises(trace_nb.graph.CodeCompileError, match="does not load: ImportError"):
        halve.load(MISSING_IMPORT)
    assert halve(3).data == 6  # load() adopted nothing


def test_approve_code_without_auto_is_an_error_that_asks_nothing(ip, srv):
    from IPython.core.error import UsageError

    s = run_cell(ip, "optin_without_auto")
    s.feedback("halve it")
    srv.add_replies(reply({"code_halve": FIXED}))
    with pytest.raises(UsageError, match=r"--approve-code only means something with --auto"):
        ip.run_line_magic("trace_step", f"--name {s.name} --approve-code")
    with pytest.raises(ValueError, match=r"only means something with auto_approve=True"):
        s.step(approve_code=True)
    assert srv.requests == [] and s.proposals == [] and "x * 2" in s.parameters["halve"]


def test_auto_with_the_opt_in_pauses_on_code_that_does_not_load(ip, srv):
    from trace_nb.notebook.ui.panel import Panel

    s = run_cell(ip, "auto_missing_import")
    s.feedback("halve it")
    before = s.parameters["halve"]
    panel = Panel(s)
    ip.user_ns["grade_fn"] = lambda out: (0.0, "halve it")
    s.spec.feedback = "grade_fn"
    panel.auto_code.value = True
    srv.add_replies(reply({"code_halve": MISSING_IMPORT}))
    panel.auto(2)
    assert panel.wait(30)
    assert "paused at step 1/2" in panel.status.value
    assert "no_such_name_for_trace_nb" in panel.status.value
    assert s.parameters["halve"] == before and len(s.rows) == 1  # nothing applied, no run
    s.reject("halve")
    assert "click Auto" in panel.status.value
    panel.close()
