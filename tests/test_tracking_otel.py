"""OpenTelemetry spans through the SDK's in-memory exporter: names, parents, attributes.

LLM calls go over real HTTP to the loopback FakeOpenAIServer. The provider is given to
``trace_nb.tracking.otel.enable`` (a global provider can be set only once per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import train_helpers as th

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from trace_nb import LLM, OptoPrime, node, train  # noqa: E402
from trace_nb.testing import FakeOpenAIServer  # noqa: E402
from trace_nb.tracking import otel  # noqa: E402
from trace_nb.tracking.events import observing  # noqa: E402

KEY = "sk-h26otelspans0123456789abcdefSECRET"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.enable(provider)
    try:
        yield exporter
    finally:
        otel.reset()


def by_name(finished, name):
    return [s for s in finished if s.name == name]


def test_training_spans_run_step_and_llm_calls(spans):
    with FakeOpenAIServer(replies=th.fixer) as srv:
        llm = LLM(model="fake", api_key=KEY, base_url=srv.base_url, cache=False, backoff=0.01)
        param = node(0, name="offset", trainable=True)
        result = train(
            lambda ex: node(ex["x"], name="x") + param,
            th.make_examples(8),
            th.offset_feedback,
            OptoPrime([param], llm=llm),
            batch_size=4,
            progress=False,
        )
    assert result.stopped_reason == "completed"
    done = spans.get_finished_spans()
    (run,) = by_name(done, "trace_nb.run")
    steps = by_name(done, "trace_nb.step")
    calls = by_name(done, "chat fake")
    assert len(steps) == 2 and len(calls) == 2
    assert all(s.parent.span_id == run.context.span_id for s in steps)
    assert [c.parent.span_id for c in calls] == [s.context.span_id for s in steps]
    assert run.attributes["trace_nb.optimizer"] == "OptoPrime"
    assert run.attributes["trace_nb.stopped_reason"] == "completed"
    assert steps[0].attributes["trace_nb.step"] == 1
    assert steps[0].attributes["trace_nb.changed"] == ("offset",)
    a = calls[0].attributes
    assert calls[0].kind.name == "CLIENT"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "fake"
    assert a["gen_ai.provider.name"] == "openai" and a["server.address"] == "127.0.0.1"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert "gen_ai.input.messages" not in a  # bodies only when asked
    assert a["gen_ai.request.temperature"] == 0.0  # the client's default (chat() gave None)
    blob = json.dumps([json.loads(s.to_json()) for s in done])
    assert KEY not in blob


def test_workflow_calls_on_worker_threads_hang_under_their_step(spans):
    with (
        FakeOpenAIServer(replies=lambda req: "7") as wf_srv,
        FakeOpenAIServer(replies=th.fixer) as opt_srv,
    ):
        wf = LLM(model="wf", base_url=wf_srv.base_url, cache=False, backoff=0.01)
        opt_llm = LLM(model="opt", base_url=opt_srv.base_url, cache=False, backoff=0.01)
        param = node(0, name="offset", trainable=True)

        def workflow(ex):
            wf.chat([{"role": "user", "content": str(ex["x"])}])
            return node(ex["x"], name="x") + param

        train(
            workflow,
            th.make_examples(4),
            th.offset_feedback,
            OptoPrime([param], llm=opt_llm),
            batch_size=4,
            max_workers=4,
            progress=False,
            workflow_llm=wf,
        )
    done = spans.get_finished_spans()
    (step,) = by_name(done, "trace_nb.step")
    wf_calls = by_name(done, "chat wf")
    assert len(wf_calls) == 4
    assert {c.parent.span_id for c in wf_calls} == {step.context.span_id}


def test_messages_are_recorded_only_when_asked_and_scrubbed():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.enable(provider, messages=True)
    try:
        with FakeOpenAIServer(replies=lambda req: "fine") as srv:
            llm = LLM(model="m", api_key=KEY, base_url=srv.base_url, cache=False)
            llm.chat([{"role": "user", "content": f"my key is {KEY}"}])
    finally:
        otel.reset()
    (call,) = exporter.get_finished_spans()
    sent = json.loads(call.attributes["gen_ai.input.messages"])
    assert sent == [{"role": "user", "content": "my key is ***"}]
    assert json.loads(call.attributes["gen_ai.output.messages"])[0]["content"] == "fine"


def test_bodies_another_tracker_asked_for_stay_out_of_spans(spans):
    """An MLflow run with log_messages=True makes the client collect the texts; spans that
    were not asked for them (enable(messages=False)) still carry sizes only."""
    from trace_nb.tracking.events import add_call_observer, remove_call_observer

    seen = []
    add_call_observer(seen.append, bodies=True)
    try:
        with FakeOpenAIServer(replies=lambda req: "fine") as srv:
            llm = LLM(model="m", api_key=KEY, base_url=srv.base_url, cache=False)
            llm.chat([{"role": "user", "content": "a private question"}])
    finally:
        remove_call_observer(seen.append)
    assert seen[0].bodies is not None  # the observer got what it asked for
    (call,) = spans.get_finished_spans()
    assert call.attributes["trace_nb.message_chars"] == len("a private question")
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) for k in call.attributes)


def test_a_failed_call_is_an_error_span(spans):
    with FakeOpenAIServer(replies=[]) as srv:  # no reply left: HTTP 500
        llm = LLM(model="m", base_url=srv.base_url, cache=False, max_retries=0)
        with pytest.raises(Exception, match="500|scripted"):
            llm.chat([{"role": "user", "content": "hi"}])
    (call,) = spans.get_finished_spans()
    assert call.status.status_code.name == "ERROR" and call.attributes["error.type"]


def test_session_spans_steps_previews_and_decisions(spans, monkeypatch):
    from conftest import ipython_shell

    import trace_nb
    from trace_nb.notebook import session as sessions

    monkeypatch.setenv("TRACE_NB_STATE_DIR", "off")
    ip = ipython_shell()
    ip.run_cell(
        textwrap.dedent("""
        def h26o_grade(out):
            return (out.count("\\n") + 1) / 2, "more guidance please"
        """)
    )
    reply = json.dumps({"reasoning": "r", "suggestion": {"prompt": "a\\nb"}})
    with FakeOpenAIServer(replies=[reply]) as srv:
        sessions.set_default_llm(LLM(model="fake", base_url=srv.base_url, cache=False))
        try:
            ip.run_cell_magic(
                "trace",
                "--name h26o --param prompt --feedback h26o_grade --no-panel --reset",
                "prompt = 'a'\nprompt\n",
            )
            s = trace_nb.session("h26o")
            ip.run_line_magic("trace_log", "h26o --otel")
            s.propose()
            s.preview("prompt")
            s.approve("prompt")
            s.run()
            ip.run_line_magic("trace_log", "h26o --otel --stop")
        finally:
            sessions.set_default_llm(None)
    done = spans.get_finished_spans()
    (run,) = by_name(done, "trace_nb.run")
    steps = by_name(done, "trace_nb.step")
    assert [st.attributes["trace_nb.step"] for st in steps] == [0, 1]
    assert all(st.parent.span_id == run.context.span_id for st in steps)
    (call,) = by_name(done, "chat fake")
    (preview,) = by_name(done, "trace_nb.preview")
    (review,) = by_name(done, "trace_nb.review")
    for child in (call, preview, review):
        assert child.parent.span_id == steps[0].context.span_id
    assert review.attributes["trace_nb.decision"] == "approve"
    assert review.attributes["trace_nb.approved"] == ("prompt",)
    assert preview.attributes["trace_nb.parameter"] == "prompt"
    assert steps[0].attributes["trace_nb.score"] == 0.5


def test_off_by_default_and_nothing_heavy_is_imported():
    code = (
        "import sys, trace_nb, trace_nb.training, trace_nb.llm, trace_nb.tracking\n"
        "from trace_nb.tracking import events\n"
        "assert not events.observing()\n"
        "heavy = [m for m in sys.modules if m.startswith(('mlflow', 'opentelemetry'))]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_disable_wins_over_a_configured_provider(spans):
    otel.disable()
    assert not otel.active() and not observing()


def test_an_error_escaping_a_run_is_recorded_without_the_key(spans):
    """OpenTelemetry records an escaping exception's raw message by default: trace_nb's
    run and step spans record it scrubbed, like every other text they carry."""

    def feedback(output, example):
        raise RuntimeError(f"the judge refused the key {KEY}")

    with FakeOpenAIServer(replies=th.fixer) as srv:
        llm = LLM(model="fake", api_key=KEY, base_url=srv.base_url, cache=False, backoff=0.01)
        param = node(0, name="offset", trainable=True)
        with pytest.raises(Exception, match="the judge refused"):
            train(
                lambda ex: node(ex["x"], name="x") + param,
                th.make_examples(4),
                feedback,
                OptoPrime([param], llm=llm),
                progress=False,
            )
    done = spans.get_finished_spans()
    (run,) = by_name(done, "trace_nb.run")
    assert run.status.status_code.name == "ERROR" and "the judge refused" in run.status.description
    assert [e.name for e in run.events] == ["exception"]
    assert "the judge refused" in run.events[0].attributes["exception.message"]
    blob = json.dumps([json.loads(s.to_json()) for s in done])
    assert KEY not in blob
