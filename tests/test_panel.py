"""The review panel in-process: a real InteractiveShell runs the %%trace cells, the LLM
calls go over real HTTP to a FakeOpenAIServer, and the widgets are driven by their Python
methods and by ``button.click()`` / ``widget.value = ...`` (no browser)."""

from __future__ import annotations

import asyncio
import gc
import html
import itertools
import json
import textwrap
import threading

import pytest
from conftest import ipython_shell

from trace_nb.llm import LLM
from trace_nb.notebook import registry
from trace_nb.notebook import session as sessions
from trace_nb.notebook.transform import RUNTIME
from trace_nb.notebook.ui.jobs import Jobs
from trace_nb.notebook.ui.panel import Panel
from trace_nb.testing import FakeOpenAIServer

_names = itertools.count()


@pytest.fixture(scope="module")
def ip():
    shell = ipython_shell()  # one per process, shared with the other test modules
    shell.run_cell(
        textwrap.dedent('''
        FAIL_GRADE = False

        def grade(out):
            if FAIL_GRADE:
                raise RuntimeError("grader broke")
            return (1.0 if str(out).startswith("A") else 0.0, "it should start with A")

        def embellish(text):
            """Add an exclamation mark."""
            return text + "!"
        ''')
    )
    return shell


@pytest.fixture(autouse=True)
def isolate(ip):
    """Reset the default LLM, and free each test's sessions, panels and traced values, so
    the next test's parameters get their plain names (node names are unique while alive)."""
    known = set(registry.names())
    yield
    sessions.set_default_llm(None)
    ip.user_ns["FAIL_GRADE"] = False
    for name in set(registry.names()) - known:
        registry.session(name).close()  # closes its panel too
    for var in ("salutation", "shouting", "repeats", "divisor", "out", "i", RUNTIME):
        ip.user_ns.pop(var, None)
    gc.collect()


def serve(replies, latency=0.0, **llm_kwargs) -> FakeOpenAIServer:
    srv = FakeOpenAIServer(replies=replies, latency=latency).start()
    sessions.set_default_llm(LLM(model="fake", base_url=srv.base_url, cache=False, **llm_kwargs))
    return srv


@pytest.fixture
def servers():
    started = []
    yield lambda *a, **k: started.append(serve(*a, **k)) or started[-1]
    for srv in started:
        srv.close()


def reply(suggestion, reasoning="Start with A."):
    return json.dumps({"reasoning": reasoning, "suggestion": suggestion})


def trace(
    ip, line: str, cell: str = "salutation = 'hello'\nout = salutation.upper()\nout"
) -> Panel:
    name = f"panel{next(_names)}"
    panel = ip.run_cell_magic("trace", f"--name {name} {line}", textwrap.dedent(cell))
    assert isinstance(panel, Panel)
    return panel


GREETING = "--param salutation --feedback grade"


def test_panel_shows_trace_feedback_and_node_details(ip, servers):
    servers([])
    panel = trace(ip, GREETING)
    s = panel.session
    assert s.panel is panel
    # DAG: node names in the SVG, data from the session.
    # (op nodes are named after the op, with a suffix while an older "upper" is alive)
    param, upper = panel.dag.node_ids
    assert param == "salutation" and upper.startswith("upper")
    assert (
        "<title>salutation</title>" in panel.dag.svg and f"<title>{upper}</title>" in panel.dag.svg
    )
    # Feedback box prefilled from the --feedback function's result.
    assert panel.feedback_text.value == "it should start with A"
    assert float(panel.score_text.value) == 0.0
    # Selecting a node shows its full value, its operator documentation and its feedback.
    panel.select("salutation")
    assert panel.node_details.node_id == "salutation"
    assert (
        "hello" in panel.node_details.text and "it should start with A" in panel.node_details.text
    )
    panel.dag.selected = upper  # as a click in the browser would
    assert "HELLO" in panel.node_details.text
    assert "uppercase" in panel.node_details.text  # str.upper's documentation
    assert "HELLO" in panel.output_view.value
    assert "salutation" in panel.header.value
    with pytest.raises(KeyError):
        panel.select("nope")
    assert "nope" in panel.error_area.value
    # Re-running the cell refreshes the same panel object.
    again = ip.run_cell_magic(
        "trace",
        f"--name {s.name} {GREETING}",
        "salutation = 'hello'\nout = salutation.upper()\nout",
    )
    assert again is panel and len(s.rows) == 2
    assert panel.history_view.table.value.count("HELLO") == 2


def test_propose_approve_run_with_buttons(ip, servers):
    srv = servers([reply({"salutation": "Ahoy"})])
    panel = trace(ip, GREETING)
    s = panel.session
    panel.propose_button.click()
    assert panel.busy and panel.propose_button.disabled and not panel.cancel_button.disabled
    assert panel.wait(30)
    assert not panel.busy and not panel.propose_button.disabled
    assert "it should start with A" in srv.requests[0]["messages"][-1]["content"]
    [view] = panel.proposal_views
    assert view.name == "salutation" and not view.approve_button.disabled
    assert (
        "hello" in view.diff.value
        and "Ahoy" in view.diff.value
        and "Start with A." in view.reasoning.value
    )
    assert s.history["calls"].tolist() == [1] and s.history["tokens"][0] > 0
    assert panel.history_view.counts["calls"] == 1
    view.approve_button.click()
    assert s.parameters == {"salutation": "Ahoy"}
    assert (
        s.history["approved"].tolist() == ["salutation"] and s.history["decided_by"][0] == "human"
    )
    assert panel.history_view.counts["approved_human"] == 1
    assert panel.proposal_views[0].approve_button.disabled  # decided
    assert "trace_writeback" in panel.output_view.value  # values now differ from the cell
    panel.run_button.click()
    assert s.output == "AHOY"
    assert "AHOY" in panel.output_view.value and "AHOY" in panel.dag.svg
    assert len(s.rows) == 2 and s.history["score"].tolist() == [0.0, 1.0]
    assert (
        panel.history_view.plot.layout.display != "none"
        and panel.history_view.plot.value.startswith("<svg")
    )
    assert panel.feedback_text.value == "it should start with A" and panel.proposal_views == []
    assert panel.error_area.value == ""


def test_typed_feedback_is_sent_and_used(ip, servers):
    srv = servers([reply({"salutation": "Ahoy"})])
    panel = trace(ip, "--param salutation")  # no --feedback function: the box starts empty
    s = panel.session
    assert panel.feedback_text.value == "" and s.last_feedback is None
    with pytest.raises(ValueError, match="no feedback yet"):
        panel.propose()
    assert "no feedback yet" in panel.error_area.value
    panel.feedback_text.value = "too plain, begin with an A"
    panel.score_text.value = "0.25"
    panel.send_button.click()
    assert s.last_feedback == ("too plain, begin with an A", 0.25)
    assert s.history["score"].tolist() == [0.25]
    panel.score_text.value = "lots"
    panel.send_button.click()
    assert "score must be a number" in panel.error_area.value
    # Propose sends typed feedback that was not sent yet.
    panel.score_text.value = ""
    panel.feedback_text.value = "shorter please"
    panel.propose()
    assert panel.wait(30)
    assert s.last_feedback == ("shorter please", None)
    assert "shorter please" in srv.requests[0]["messages"][-1]["content"]
    assert panel.proposal_views[0].proposal.new == "Ahoy"
    panel.approve("salutation", value="Aloha")  # edit, then approve
    assert s.parameters == {"salutation": "Aloha"} and panel.proposal_views[0].proposal.edited


def test_invalid_proposals_show_reason_and_cannot_be_approved(ip, servers):
    servers([reply({"shouting": "maybe", "salutaton": "Ahoy"})])
    panel = trace(
        ip,
        "--param salutation --param shouting --feedback grade",
        "salutation = 'hello'\nshouting = False\nout = salutation.upper() if shouting else salutation\nout",
    )
    panel.propose()
    assert panel.wait(30)
    shouting = panel.proposal_view("shouting")
    assert "expected a bool" in shouting.reason.value and shouting.approve_button.disabled
    # A made-up name gets no card (nothing to approve or edit), only the summary line.
    assert [v.name for v in panel.proposal_views] == ["shouting"]
    reason = html.unescape(panel.proposals_box.children[0].value)
    assert "no variable named 'salutaton'" in reason and "did you mean 'salutation'" in reason
    assert panel.approve_all_button.disabled  # nothing valid to approve
    with pytest.raises(ValueError, match="cannot approve 'shouting'"):
        panel.approve("shouting")
    assert "expected a bool" in panel.error_area.value
    assert panel.session.parameters == {"salutation": "hello", "shouting": False}
    shouting.reject_button.click()
    assert panel.proposal_view("shouting").proposal.status == "rejected"
    assert panel.session.history["rejected"].tolist() == ["shouting"]


def test_edit_valid_and_invalid(ip, servers):
    servers([reply({"salutation": "Ahoy", "repeats": 3})])
    panel = trace(
        ip,
        "--param salutation --param repeats --feedback grade",
        "salutation = 'hello'\nrepeats = 1\nout = salutation * repeats\nout",
    )
    panel.propose()
    assert panel.wait(30)
    card = panel.proposal_view("repeats")
    assert "1" in card.diff.value and "→" in card.diff.value and card.edit_text.value == "3"
    card.edit_button.click()
    assert card.editing
    card.edit_text.value = "many"
    card.save_button.click()
    bad = panel.proposal_view("repeats")
    assert not bad.proposal.valid and bad.proposal.edited and "expected an int" in bad.reason.value
    assert bad.approve_button.disabled and bad.editing  # the editor stays open to fix it
    bad.edit_text.value = "2"
    bad.save_button.click()
    good = panel.proposal_view("repeats")
    assert good.proposal.valid and good.proposal.new == 2 and not good.approve_button.disabled
    greet = panel.proposal_view("salutation")
    greet.edit_button.click()
    greet.edit_text.value = "Aloha"
    greet.save_button.click()
    panel.approve_all_button.click()
    assert panel.session.parameters == {"salutation": "Aloha", "repeats": 2}
    panel.run()
    assert panel.session.output == "AlohaAloha"
    assert panel.error_area.value == ""


def test_llm_error_reaches_error_area_and_changes_nothing(ip, servers):
    srv = servers([reply({"salutation": "Ahoy"})], max_retries=0)
    srv.fault("status", code=500, times=3)
    panel = trace(ip, GREETING)
    panel.propose_button.click()
    assert panel.wait(30)
    assert "LLMError" in panel.error_area.value and "500" in panel.error_area.value
    assert "traceback" in panel.error_area.value
    assert panel.session.proposals == [] and panel.proposal_views == []
    assert panel.session.parameters == {"salutation": "hello"} and not panel.busy
    assert "failed" in panel.status.value and not panel.propose_button.disabled


def test_errors_from_user_code_in_callbacks_are_shown(ip, servers):
    servers([])
    panel = trace(ip, GREETING)
    ip.user_ns["FAIL_GRADE"] = True
    panel.run_button.click()  # the --feedback function raises inside the run
    assert "raised RuntimeError: grader broke" in panel.error_area.value
    # Named after the function, with the user's error as its cause (issue 23, item 19).
    assert panel.errors and isinstance(panel.errors[-1].__cause__, RuntimeError)


def test_session_changes_from_python_refresh_the_panel(ip, servers):
    servers([reply({"salutation": "Ahoy"})])
    panel = trace(ip, GREETING)
    s = panel.session
    s.propose()  # synchronous, from Python
    assert [v.name for v in panel.proposal_views] == ["salutation"]
    s.approve("salutation")
    assert panel.proposal_views[0].proposal.status == "approved"
    assert "Ahoy" in panel.dag.svg  # the parameter's new value
    s.feedback("friendlier", 0.5)
    assert panel.feedback_text.value == "friendlier" and panel.score_text.value == "0.5"
    # A change made on another thread (a subshell, in JupyterLab 4.6) redraws right away.
    t = threading.Thread(target=lambda: s.feedback("from a thread", 0.25))
    t.start()
    t.join()
    assert panel.feedback_text.value == "from a thread" and panel.score_text.value == "0.25"


def test_auto_needs_feedback_function(ip, servers):
    servers([])
    panel = trace(ip, "--param salutation")
    panel.auto_button.click()
    assert "--feedback" in panel.error_area.value
    assert len(panel.session.rows) == 1 and not panel.busy
    # The button says so before anyone clicks it: disabled, with the reason as its tooltip.
    assert panel.auto_button.disabled and "--feedback FUNC" in panel.auto_button.tooltip


def _counting_replies(request, counter=itertools.count(1)):
    return reply({"salutation": f"A{next(counter)}"})


def test_auto_runs_n_steps(ip, servers):
    servers(_counting_replies)
    panel = trace(ip, GREETING)
    panel.auto_steps.value = 3
    panel.auto_button.click()
    assert panel.stop_button.disabled is False and panel.propose_button.disabled
    assert panel.wait(60)
    s = panel.session
    assert len(s.rows) == 4 and panel.progress.value == 3 == panel.progress.max
    assert s.history["decided_by"].tolist()[:3] == ["auto"] * 3
    assert (
        s.parameters["salutation"].startswith("A") and s.history["score"].tolist()[1:] == [1.0] * 3
    )
    assert (
        panel.history_view.counts["approved_auto"] == 3 and panel.history_view.counts["calls"] == 3
    )
    assert "finished after 3 of 3" in panel.status.value and panel.stop_button.disabled


def test_stop_ends_auto_after_current_step(ip, servers):
    # The first LLM call is held at the server until the test lets it go, so Stop is
    # clicked while a step is surely in flight (no timing involved).
    in_flight, release = threading.Event(), threading.Event()

    def held_reply(request):
        in_flight.set()
        release.wait(60)
        return reply({"salutation": "A1"})

    srv = servers(held_reply)
    panel = trace(ip, GREETING)
    panel.auto(5)
    assert in_flight.wait(60)
    panel.stop_button.click()
    assert "stopping" in panel.status.value
    release.set()
    assert panel.wait(60)
    # Oracle: exactly the step in flight finished (its proposal applied, its run recorded)
    # and no other LLM call was made.
    assert len(srv.requests) == 1
    assert panel.session.parameters["salutation"] == "A1"
    assert len(panel.session.rows) == 2 and panel.session.output == "A1"
    assert "stopped after 1 of 5" in panel.status.value
    assert not panel.auto_button.disabled


CODE_CELL = "salutation = 'hello'\nout = embellish(salutation)\nout"
NEW_CODE = 'def embellish(text):\n    """Add an A in front."""\n    return \'A\' + text\n'


def define_embellish(ip):
    ip.run_cell('def embellish(text):\n    """Add an exclamation mark."""\n    return text + "!"')


def test_auto_pauses_on_code_until_a_human_decides(ip, servers):
    define_embellish(ip)
    servers(lambda req: reply({"code_embellish": NEW_CODE, "salutation": "hey"}))
    panel = trace(ip, "--param salutation --code embellish --feedback grade", CODE_CELL)
    s = panel.session
    panel.auto(3)
    assert panel.wait(60)
    assert "paused" in panel.status.value and "for embellish waits" in panel.status.value
    assert len(s.rows) == 1  # the step did not run
    assert s.parameters["salutation"] == "hey"  # the non-code proposal was auto-approved
    code_card = panel.proposal_view("code_embellish")
    assert code_card.proposal.status == "pending" and not code_card.approve_button.disabled
    # Previewing code runs it: the button says so (a value card's does not need to).
    assert code_card.preview_button.description == "Preview — runs this code"
    assert "runs the LLM's code" in code_card.preview_button.tooltip
    assert panel.proposal_view("salutation").preview_button.description == "Preview"
    assert not panel.stop_button.disabled and not panel.auto_button.disabled
    panel.auto_button.click()  # undecided: it pauses again
    assert panel.wait(60) and "paused at step 1/3" in panel.status.value and len(s.rows) == 1
    code_card.approve_button.click()
    assert "click Auto" in panel.status.value
    assert ip.user_ns["embellish"]("x") == "Ax"
    panel.auto_button.click()  # resumes: finishes the paused step, then the other two
    assert panel.wait(60)
    assert len(s.rows) == 4 and s.output == "Ahey" and "finished after 3 of 3" in panel.status.value
    assert (
        s.history["approved"][0].split(", ")[0] == "salutation"
        and "embellish" in s.history["approved"][0]
    )
    assert (
        panel.history_view.counts["approved_human"] == 1
        and panel.history_view.counts["approved_auto"] == 1
    )


def test_auto_approves_code_when_ticked(ip, servers):
    define_embellish(ip)
    servers(lambda req: reply({"code_embellish": NEW_CODE}))
    panel = trace(ip, "--param salutation --code embellish --feedback grade", CODE_CELL)
    panel.auto_code.value = True
    panel.auto(1)
    assert panel.wait(60)
    assert panel.session.output == "Ahello" and panel.session.history["decided_by"][0] == "auto"


def test_cancel_slow_propose_discards_the_result(ip, servers):
    srv = servers([reply({"salutation": "Ahoy"})], latency=1.0)
    panel = trace(ip, GREETING)
    panel.propose()
    assert panel.busy
    panel.cancel_button.click()
    assert (
        not panel.busy and "cancelled" in panel.status.value and not panel.propose_button.disabled
    )
    assert panel.wait(60)  # returns without waiting for the abandoned call
    assert panel.jobs.wait(60, cancelled=True)  # its worker ends; the result is thrown away
    assert len(srv.requests) == 1
    assert panel.session.proposals == [] and panel.proposal_views == []
    assert panel.session.history["calls"].tolist() == [0]


def test_wait_after_cancel_does_not_wait_for_the_abandoned_call(ip, servers):
    arrived, release = threading.Event(), threading.Event()

    def answer(request):
        arrived.set()
        release.wait(120)
        return reply({"salutation": "Ahoy"})

    srv = servers(answer)
    panel = trace(ip, GREETING)
    panel.propose()
    assert panel.busy and arrived.wait(60)
    panel.cancel()
    try:
        # the server is still holding the request: waiting for it would block until release
        assert panel.wait(60) is True and not release.is_set()
        assert len(srv.requests) == 1 and panel.session.proposals == []
    finally:
        release.set()
    panel.propose()  # the panel is usable again; the abandoned answer changes nothing
    assert panel.wait(60)
    assert [p.new for p in panel.session.proposals] == ["Ahoy"]


def test_expand_collapsed_graph(ip, servers):
    servers([])
    cell = "salutation = 'hello'\nout = salutation.upper()\nfor i in range(30):\n    out = out + 'x'\nout"
    panel = trace(ip, GREETING, cell)
    panel.dag.max_nodes = 10
    assert panel.dag.hidden > 0 and len(panel.dag.node_ids) <= 12
    assert any(i.startswith("collapsed") for i in panel.dag.node_ids)
    collapsed = next(i for i in panel.dag.node_ids if i.startswith("collapsed"))
    panel.select(collapsed)
    assert "folded nodes" in panel.node_details.text
    panel.dag.expand()
    assert panel.dag.hidden == 0 and len(panel.dag.node_ids) == 32


def test_exception_is_prefilled_as_feedback(ip, servers):
    servers([])
    panel = trace(ip, "--param divisor", "divisor = 0\nout = 10 / divisor\nout")
    assert "ZeroDivisionError" in panel.feedback_text.value
    assert (
        "ZeroDivisionError" in panel.output_view.value
        and "trace-nb-exception" in panel.output_view.value
    )


# -- jobs ----------------------------------------------------------------------------


def test_jobs_queue_continuations_until_wait():
    jobs, seen = Jobs(), []
    jobs.submit(lambda: threading.current_thread().name, seen.append)
    assert jobs.wait(10)
    assert seen and seen[0].startswith("trace_nb-job")
    errors = []
    jobs.submit(lambda: 1 / 0, seen.append, on_error=errors.append)
    jobs.wait(10)
    assert isinstance(errors[0], ZeroDivisionError)
    gate = threading.Event()
    job = jobs.submit(gate.wait, seen.append)
    job.cancel()
    assert jobs.wait(10) and not job.done  # a cancelled job is not waited for
    gate.set()
    assert jobs.wait(10, cancelled=True)  # unless asked: its continuation is skipped
    assert job.done and len(seen) == 1


def test_jobs_use_the_running_loop_of_the_main_thread():
    ran_on = []

    async def main():
        jobs = Jobs()
        job = jobs.submit(lambda: 42, lambda r: ran_on.append((r, threading.current_thread().name)))
        while not job.done:  # the loop runs the continuation; no wait() needed
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert ran_on == [(42, threading.main_thread().name)]


def test_jobs_find_the_main_loop_from_another_thread_via_the_one_captured():
    # A Jobs made on the main thread (as the panel is, when its cell runs) keeps that loop;
    # work submitted later from another thread still continues there.
    ran_on = []

    async def main():
        jobs = Jobs()
        assert jobs.loop is asyncio.get_running_loop()
        done = threading.Event()
        threading.Thread(
            target=lambda: jobs.submit(
                lambda: 7,
                lambda r: (ran_on.append((r, threading.current_thread().name)), done.set()),
            )
        ).start()
        while not done.is_set():
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert ran_on == [(7, threading.main_thread().name)]


def test_clicks_on_a_subshell_thread_work_without_wait(ip, servers):
    """JupyterLab 4.6 / Notebook 7 defaults: widget messages arrive on a subshell thread
    while the kernel's main loop idles. The loop of Propose, Approve, Run again, clicked
    three times, must redraw the panel each time with no call to wait()."""
    servers([reply({"salutation": f"Ahoy{i}"}) for i in range(3)], latency=0.05)
    seen: list[tuple] = []

    async def kernel():
        panel = trace(ip, GREETING)  # made while the main loop runs, as in a kernel
        loop = asyncio.get_running_loop()
        assert panel.jobs.loop is loop

        def on_subshell(fn):
            t = threading.Thread(target=fn, name="subshell-1")
            t.start()
            while t.is_alive():
                await_ = asyncio.sleep(0.005)
                yield await_

        async def click(button):
            for pause in on_subshell(button.click):
                await pause

        async def until(cond, what):
            for _ in range(2000):
                if cond():
                    return
                await asyncio.sleep(0.005)
            raise AssertionError(f"the panel never showed {what}: status={panel.status.value!r}")

        for i in range(3):
            panel.feedback_text.value = f"start with A, round {i}"
            await click(panel.propose_button)
            await until(
                lambda i=i: (
                    panel.proposal_views and panel.proposal_views[0].proposal.new == f"Ahoy{i}"
                ),
                f"the card for Ahoy{i}",
            )
            assert (
                "1 proposal(s), 1 valid" in panel.status.value and not panel.propose_button.disabled
            )
            await click(panel.proposal_view("salutation").approve_button)
            await until(
                lambda: "approved by human" in panel.proposal_views[0].header.value, "approved"
            )
            await click(panel.run_button)
            await until(lambda i=i: f"AHOY{i}" in panel.output_view.value, f"the output AHOY{i}")
            seen.append((i, panel.session.parameters["salutation"], len(panel.session.rows)))
        assert panel.errors == []

    asyncio.run(kernel())
    assert seen == [(0, "Ahoy0", 2), (1, "Ahoy1", 3), (2, "Ahoy2", 4)]


def test_a_module_used_in_the_cell_joins_the_session_without_param(ip, servers):
    """An agent made in an earlier cell and called in a %%trace cell: its parameters show in
    the panel's header (under the module) and receive the panel's feedback."""
    srv = servers([reply({"style": "loud"}, "louder")])
    ip.run_cell(
        textwrap.dedent('''
        import trace_nb
        from trace_nb import bundle

        @trace_nb.model
        class Crier:
            def __init__(self):
                self.style = trace_nb.node("polite", name="style", trainable=True)

            @bundle(trainable=True)
            def cry(self, style, who):
                """Greet someone in a style."""
                return style + " hello " + who

        crier = Crier()
        ''')
    )
    panel = trace(ip, "--feedback grade", "out = crier.cry(crier.style, 'Ann')\nout")
    s = panel.session
    assert set(s.modules) == {"crier"} and set(s.parameters) == {"crier.style", "crier.cry"}
    header = html.unescape(panel.header.value)
    assert "module <b>crier</b>" in header and ">style<" in header and ">cry<" in header
    panel.feedback_text.value = "be louder"
    panel.propose()
    assert panel.wait(30)
    prompt = srv.requests[-1]["messages"][-1]["content"]
    assert "be louder" in prompt and "(str) style='polite'" in prompt, prompt
    assert [v.label for v in panel.proposal_views] == ["crier.style"]
    [heading] = [
        c for c in panel.proposals_box.children if "module <b>crier</b>" in getattr(c, "value", "")
    ]
    panel.approve("crier.style")
    assert heading.comm is None and heading.layout.comm is None  # redrawn: the old one closed
    assert ip.user_ns["crier"].style.data == "loud"


def test_a_reply_that_changes_nothing_is_a_status_line_not_a_card(ip, servers):
    unknown = {f"made_up_{i}": i for i in range(500)}
    # Each Propose makes two calls: the reply, then one repair turn given the same kind.
    servers(
        [
            "Sorry, I cannot help with that.",
            "Sorry, I still cannot.",
            reply(unknown),
            reply(unknown),
            reply({"greet": 1, "salut": 2}),
            reply({"greet": 1, "salut": 2}),
            reply({"salutation": "hello"}),
            reply({"salutation": "hello"}),
        ]
    )
    panel = trace(ip, GREETING)
    panel.propose()
    assert panel.wait(30)
    assert panel.proposal_views == [] and "No proposals." in panel.proposals_box.children[0].value
    assert panel.status.value.startswith("the reply changes nothing: ")
    assert "JSON" in panel.status.value
    # 500 made-up names: one status line, no cards.
    panel.propose()
    assert panel.wait(30)
    assert (
        panel.proposal_views == [] and "names 500 variables that do not exist" in panel.status.value
    )
    # A few made-up names: one summary line in the proposals box, no cards.
    panel.propose()
    assert panel.wait(30)
    assert panel.proposal_views == []
    summary = panel.proposals_box.children[0].value
    assert "2 name(s) that are not parameters (greet, salut)" in summary
    # The same value again: a card (it names a parameter) that says why it cannot be approved.
    panel.propose()
    assert panel.wait(30)
    card = panel.proposal_view("salutation")
    assert "same as the current one" in card.reason.value and card.approve_button.disabled
    assert panel.errors == []


def test_a_repaired_card_says_so_and_a_failed_repair_shows_every_reason(ip, servers):
    srv = servers(
        [
            reply({"salutation": "hello"}),  # the current value: refused, then repaired
            reply({"salutation": "Ahoy"}),
            "No JSON from me.",  # the next Propose: refused twice
            reply({"salutation": "hello"}),
        ]
    )
    panel = trace(ip, GREETING)
    panel.propose()
    assert panel.wait(30)
    card = panel.proposal_view("salutation")
    assert "repaired after 1 refusal" in card.header.value
    assert not card.approve_button.disabled
    panel.propose()
    assert panel.wait(30)
    assert "2 attempts refused: " in panel.status.value
    assert "the same as the current one" in panel.status.value
    assert panel.session.parameters["salutation"] == "hello"  # nothing applied
    assert len(srv.requests) == 4 and panel.errors == []


def test_fold_counts_agree_with_the_labels_of_the_grey_boxes(ip, servers):
    servers([])
    panel = trace(
        ip,
        "--param salutation",
        "salutation = 'a'\nout = salutation\nfor i in range(400):\n    out = out + 'b'\nout",
    )
    data = panel.dag.data
    boxes = [n for n in data["nodes"] if n["kind"] == "collapsed"]
    assert boxes, "a 400-step chain is folded"
    in_labels = sum(int(n["value"].split()[0]) for n in boxes)
    assert panel.dag.hidden == in_labels == sum(len(n["members"]) for n in boxes)
    panel.dag.expand()
    assert panel.dag.hidden == 0 and len(panel.dag.data["nodes"]) > 400
    panel.dag.fold()
    assert panel.dag.hidden == in_labels


def test_feedback_on_a_node_reaches_only_the_parameters_upstream(ip, servers):
    srv = servers([reply({"query": "doc B"}, "retrieve the right document")])
    ip.run_cell(
        textwrap.dedent('''
        def retrieve(q):
            """Find a document for the query."""
            return "retrieved:" + q

        def answer(doc, k):
            """Answer from the document."""
            return doc + "!" * k
        ''')
    )
    panel = trace(
        ip,
        "--param query --param k",
        "query = 'doc A'\nk = 2\nout = answer(retrieve(query), k)\nout",
    )
    s = panel.session
    graph_names = {n["name"]: n["kind"] for n in s.graph()["nodes"]}
    assert graph_names["retrieve_1"] == "message"
    panel.select("retrieve_1")
    assert panel.node_feedback_box.layout.display == ""
    panel.node_feedback_text.value = "this retrieval step returned the wrong document"
    panel.node_feedback_button.click()
    assert panel.errors == [] and "feedback on retrieve_1 sent" in panel.status.value
    fed = {
        name: [str(f) for f in (p._feedback or {})] for name, p in s.named_parameter_nodes().items()
    }
    assert fed["query"] and not fed["k"]  # k is not upstream of retrieve_1
    panel.feedback_text.value = "the answer is too loud"
    panel.propose()
    assert panel.wait(30)
    prompt = srv.requests[-1]["messages"][-1]["content"]
    feedback = prompt.split("#Feedback", 1)[1]
    assert "retrieve_1: this retrieval step returned the wrong document" in feedback
    assert "the answer is too loud" in feedback  # the output's feedback, beside it
    assert s.proposals[0].new == "doc B"
    with pytest.raises(KeyError, match="no node named 'nope'"):
        s.feedback_on("nope", "x")
    # The next run starts clean.
    panel.approve("query")
    panel.run()
    assert s.node_feedback == {}


def test_propose_names_the_model_the_server_chose(ip, monkeypatch):
    # No model named and only OPENAI_BASE_URL set: the server's one model answers, and the
    # panel says which (the stderr line of trace_nb.llm.models does not reach a click's view).
    arrived, release = threading.Event(), threading.Event()

    def answer(request):
        arrived.set()
        release.wait(120)
        return reply({"salutation": "Ahoy"})

    with FakeOpenAIServer(replies=answer, models=["solo-model"]) as srv:
        for var in ("OPENAI_API_KEY", "TRACE_NB_MODEL"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        panel = trace(ip, GREETING)
        try:
            panel.propose()
            assert arrived.wait(60)
            assert (
                "asking the LLM ('solo-model', the only model the server serves)"
                in html.unescape(panel.status.value)
            )
        finally:
            release.set()
        assert panel.wait(60) and srv.requests[-1]["model"] == "solo-model"
    servers_named = serve([reply({"salutation": "Ahoy"})])  # a named model: nothing added
    try:
        panel = trace(ip, GREETING)
        job = panel.propose()
        assert job.label == "asking the LLM for proposals…" and panel.wait(60)
    finally:
        servers_named.close()
