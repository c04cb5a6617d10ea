"""Tests of trace_nb.llm.LLM against the fake server over real HTTP."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trace_nb.llm import (
    DEFAULT_PRICES,
    LLM,
    CallUsage,
    ChatReply,
    LLMConfigError,
    LLMError,
    UsageTotals,
)
from trace_nb.llm.errors import scrub_secret
from trace_nb.llm.usage import lookup_price
from trace_nb.llm.wire import mode_ladder, request_kwargs, response_format, retry_after
from trace_nb.testing import FakeOpenAIServer

SECRET = "sk-proj-TopSecretKey1234567890abcdef"
MSG = [{"role": "user", "content": "x" * 40}]  # 40 chars -> 10 prompt tokens
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Isolate tests from the developer's env and home cache."""
    for var in (
        "TRACE_NB_MODEL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "TRACE_NB_CACHE",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRACE_NB_CACHE_DIR", str(tmp_path / "default-cache"))


def make_llm(srv: FakeOpenAIServer, **kwargs) -> LLM:
    kwargs.setdefault("model", "gpt-4o-mini")
    kwargs.setdefault("cache", False)
    kwargs.setdefault("backoff", 0.01)
    return LLM(base_url=srv.base_url, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- configuration ---------------------------------------------------------------
def assert_helpful(message: str) -> None:
    for hint in (
        "LLM(model=",
        "api_key=",
        "TRACE_NB_MODEL",
        "OPENAI_API_KEY",
        "base_url=",
        "OPENAI_BASE_URL",
        "Ollama",
        "vLLM",
        "llama.cpp",
        "LM Studio",
    ):
        assert hint in message


def test_missing_model_is_config_error():
    with pytest.raises(LLMConfigError) as info:
        LLM(api_key=SECRET)  # OpenAI serves many models: the one-model rule cannot pick
    assert "No model" in str(info.value)
    for hint in ("TRACE_NB_MODEL", "LLM(model=", "%%trace --llm"):
        assert hint in str(info.value)
    assert SECRET not in str(info.value)


def test_missing_key_and_base_url_is_config_error():
    with pytest.raises(LLMConfigError) as info:
        LLM(model="gpt-4o")
    assert "No API key or base URL" in str(info.value)
    assert_helpful(str(info.value))
    assert isinstance(info.value, LLMError) and isinstance(info.value, ValueError)


def test_bad_json_mode_rejected():
    with pytest.raises(LLMConfigError, match="json_mode"):
        LLM(model="m", base_url="http://127.0.0.1:9/v1", json_mode="yaml")


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("TRACE_NB_MODEL", "llama3.1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1/")
    info = LLM().describe()
    assert info["model"] == "llama3.1"
    assert info["base_url"] == "http://127.0.0.1:11434/v1"
    assert info["api_key_set"] is False  # a placeholder key is used for local servers
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL")
    info = LLM().describe()
    assert info["base_url"] == "https://api.openai.com/v1"
    assert info["api_key_set"] is True


def test_import_does_not_load_openai():
    code = "import sys, trace_nb.llm; assert 'openai' not in sys.modules, 'eager import'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- calls -------------------------------------------------------------------------
def test_chat_roundtrip_and_request_contents():
    with FakeOpenAIServer(replies=["hello"]) as srv:
        llm = make_llm(srv, seed=7, json_mode="none")
        reply = llm.chat(MSG, temperature=0.3, max_tokens=50)
    assert isinstance(reply, ChatReply)
    assert reply.text == "hello"
    assert reply.model == "gpt-4o-mini"
    assert reply.cached is False and reply.json_mode == "none"
    sent = srv.requests[0]
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"] == MSG
    assert sent["temperature"] == 0.3
    assert sent["max_tokens"] == 50
    assert sent["seed"] == 7
    assert "response_format" not in sent


def test_default_temperature_sent():
    with FakeOpenAIServer(replies=["a"]) as srv:
        make_llm(srv).chat(MSG)
    assert srv.requests[0]["temperature"] == 0.0


# -- usage and cost ----------------------------------------------------------------
def test_usage_known_model():
    with FakeOpenAIServer(replies=["y" * 8]) as srv:  # 8 chars -> 2 completion tokens
        usage = make_llm(srv).chat(MSG).usage
    assert isinstance(usage, CallUsage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, 2)
    assert usage.cost == pytest.approx((10 * 0.15 + 2 * 0.60) / 1e6)
    assert usage.cost_known and not usage.cached
    assert usage.latency_s > 0


@pytest.mark.parametrize(
    "model, price",
    [
        ("gpt-4o-2024-08-06", (2.50, 10.00)),
        ("gpt-4o-mini-2024-07-18", (0.15, 0.60)),
        ("gpt-4.1-mini-2025-04-14", (0.40, 1.60)),
    ],
)
def test_prefix_price_match(model, price):
    assert lookup_price(model) == price
    with FakeOpenAIServer(replies=["y" * 8]) as srv:
        usage = make_llm(srv, model=model).chat(MSG).usage
    assert usage.cost == pytest.approx((10 * price[0] + 2 * price[1]) / 1e6)


def test_unknown_model_and_override():
    with FakeOpenAIServer(replies=["y" * 8, "y" * 8]) as srv:
        unknown = make_llm(srv, model="llama-3-8b").chat(MSG).usage
        priced = make_llm(srv, model="llama-3-8b", prices={"llama-3": (1.0, 2.0)}).chat(MSG).usage
    assert (unknown.cost, unknown.cost_known) == (0.0, False)
    assert priced.cost == pytest.approx((10 * 1.0 + 2 * 2.0) / 1e6)
    assert priced.cost_known
    assert DEFAULT_PRICES["gpt-4o"] == (2.50, 10.00)
    assert "llama-3" not in DEFAULT_PRICES  # overrides never leak into the defaults


def test_override_beats_default():
    with FakeOpenAIServer(replies=["y" * 8]) as srv:
        usage = make_llm(srv, prices={"gpt-4o-mini": (1.0, 1.0)}).chat(MSG).usage
    assert usage.cost == pytest.approx(12 / 1e6)


def test_totals_over_several_calls():
    with FakeOpenAIServer(replies=["y" * 8, "y" * 4, "y" * 12]) as srv:
        llm = make_llm(srv)
        replies = [llm.chat(MSG) for _ in range(3)]
    totals = llm.usage
    assert isinstance(totals, UsageTotals)
    assert totals.calls == 3 and totals.cached_calls == 0
    assert totals.prompt_tokens == 30
    assert totals.completion_tokens == 2 + 1 + 3
    assert totals.cost == pytest.approx(sum(r.usage.cost for r in replies))
    assert totals.records == [r.usage for r in replies]
    snapshot = totals.as_dict()
    assert snapshot["calls"] == 3 and snapshot["total_tokens"] == 36
    assert len(snapshot["records"]) == 3
    json.dumps(snapshot)  # JSON-friendly


# -- cache ---------------------------------------------------------------------------
def test_cache_hit_sends_no_request(tmp_path):
    path = tmp_path / "c.sqlite"
    with FakeOpenAIServer(replies=["first", "second"]) as srv:
        llm = make_llm(srv, cache=path)
        a = llm.chat(MSG)
        b = llm.chat(MSG)
        assert len(srv.requests) == 1
        fresh = make_llm(srv, cache=str(path)).chat(MSG)  # persisted across objects
        assert len(srv.requests) == 1
        c = llm.chat(MSG, temperature=0.7)  # different settings -> different key
        assert len(srv.requests) == 2
    assert (a.cached, b.cached, fresh.cached, c.cached) == (False, True, True, False)
    assert b.text == a.text == "first" and c.text == "second"
    assert b.json_mode == a.json_mode
    assert b.usage.cached and b.usage.cost == 0.0
    assert (b.usage.prompt_tokens, b.usage.completion_tokens) == (10, 2)
    assert llm.usage.calls == 3 and llm.usage.cached_calls == 1


def test_cache_off(tmp_path):
    with FakeOpenAIServer(replies=["a", "b"]) as srv:
        llm = make_llm(srv, cache=False)
        assert [llm.chat(MSG).text, llm.chat(MSG).text] == ["a", "b"]
    assert llm.describe()["cache_path"] is None


def test_default_cache_location_is_lazy(tmp_path, monkeypatch):
    with FakeOpenAIServer(replies=["a"]) as srv:
        llm = make_llm(srv, cache=True)
        expected = tmp_path / "default-cache" / "llm-cache.sqlite"
        assert llm.describe()["cache_path"] == str(expected)
        assert not expected.parent.exists()  # nothing created before the first write
        llm.chat(MSG)
        assert expected.exists()
        monkeypatch.setenv("TRACE_NB_CACHE", "0")
        assert make_llm(srv, cache=True).cache is None


def test_cache_ignores_and_never_stores_api_key(tmp_path):
    path = tmp_path / "k" / "c.sqlite"
    with FakeOpenAIServer(replies=["stored-reply-text"]) as srv:
        make_llm(srv, api_key=SECRET, cache=path).chat(MSG)
        other = make_llm(srv, api_key="sk-another-key-000000000", cache=path).chat(MSG)
        assert len(srv.requests) == 1
    assert other.cached
    blob = b"".join(p.read_bytes() for p in path.parent.iterdir())  # includes any -wal file
    assert b"stored-reply-text" in blob
    assert SECRET.encode() not in blob


# -- retries ---------------------------------------------------------------------
def test_429_then_success():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("status", code=429)
        reply = make_llm(srv).chat(MSG)
    assert reply.text == "ok"
    assert len(srv.requests) == 2


def test_retry_after_is_honoured():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("status", code=429, retry_after=1)
        t0 = time.perf_counter()
        reply = make_llm(srv).chat(MSG)
        elapsed = time.perf_counter() - t0
    assert reply.text == "ok"
    assert elapsed >= 0.9  # backoff alone would be 0.01 s


def test_repeated_500_gives_clear_error():
    with FakeOpenAIServer(replies=["never"]) as srv:
        srv.fault("status", code=500, times=10)
        llm = make_llm(srv, max_retries=2)
        url = srv.base_url
        with pytest.raises(LLMError) as info:
            llm.chat(MSG)
    err = info.value
    assert len(srv.requests) == 3
    assert err.attempts == 3 and err.status == 500
    message = str(err)
    assert "3 attempts" in message and "HTTP 500" in message
    assert url in message and "gpt-4o-mini" in message
    assert llm.usage.calls == 0  # failed calls are not accounted


def test_timeout_then_success():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("delay", seconds=3.0)
        reply = make_llm(srv, timeout=0.5).chat(MSG)
    assert reply.text == "ok"
    assert len(srv.requests) == 2


def test_timeouts_exhausted():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("delay", seconds=3.0, times=2)
        with pytest.raises(LLMError, match="timed out") as info:
            make_llm(srv, timeout=0.3, max_retries=1).chat(MSG)
    assert info.value.attempts == 2


def test_connection_refused():
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = LLM(model="gpt-4o-mini", base_url=url, backoff=0.01, max_retries=1, cache=False)
    with pytest.raises(LLMError) as info:
        llm.chat(MSG)
    message = str(info.value)
    assert url in message and "2 attempts" in message and "connection" in message.lower()


@pytest.mark.parametrize("fault", ["truncated", "drop", "malformed", "html"])
def test_transient_body_faults_are_retried(fault):
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault(fault)
        reply = make_llm(srv).chat(MSG)
    assert reply.text == "ok"
    assert len(srv.requests) == 2


@pytest.mark.parametrize(
    "fault, words",
    [
        ("malformed", ["malformed"]),
        ("html", ["HTTP 502", "Bad Gateway"]),
        ("drop", ["connection"]),
        ("truncated", ["connection"]),
    ],
)
def test_body_faults_exhausted(fault, words):
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault(fault, times=3)
        with pytest.raises(LLMError) as info:
            make_llm(srv, max_retries=2).chat(MSG)
    assert len(srv.requests) == 3
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("code", [401, 403, 404])
def test_other_4xx_not_retried(code):
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("status", code=code)
        with pytest.raises(LLMError, match=f"HTTP {code}") as info:
            make_llm(srv).chat(MSG)
    assert len(srv.requests) == 1
    assert info.value.attempts == 1


def test_retry_after_parsing_and_cap():
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "3600"}) == 10.0  # capped
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_reasoning_models_get_compatible_fields():
    plain = request_kwargs(
        "gpt-4o", MSG, mode="none", schema=None, temperature=0.0, seed=1, max_tokens=9
    )
    assert plain["temperature"] == 0.0 and plain["max_tokens"] == 9 and plain["seed"] == 1
    reasoning = request_kwargs(
        "o4-mini", MSG, mode="json_object", schema=None, temperature=0.0, seed=None, max_tokens=9
    )
    assert "temperature" not in reasoning and "max_tokens" not in reasoning
    assert reasoning["max_completion_tokens"] == 9
    assert reasoning["extra_body"] == {"response_format": {"type": "json_object"}}


# -- JSON mode ----------------------------------------------------------------------
def test_mode_ladders():
    openai_url = "https://api.openai.com/v1"
    assert mode_ladder(openai_url, "auto", True) == ("json_schema", "json_object", "none")
    assert mode_ladder(openai_url, "auto", False) == ("none",)  # plain text by default
    assert mode_ladder(openai_url, "auto", False, True) == ("json_object", "none")
    assert mode_ladder("http://localhost:8080/v1", "auto", True) == (
        "json_object_schema",
        "json_object",
        "none",
    )
    assert mode_ladder("http://x/v1", "json_schema", True) == ("json_schema",)
    assert mode_ladder("http://x/v1", "json_object_schema", False) == ("json_object",)
    assert response_format("json_schema", SCHEMA) == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": SCHEMA},
    }
    assert response_format("none", SCHEMA) is None


def test_local_server_gets_schema_extension():
    with FakeOpenAIServer(replies=['{"answer": "a"}', "{}", "a story"]) as srv:
        llm = make_llm(srv)
        with_schema = llm.chat(MSG, json_schema=SCHEMA)
        any_object = llm.chat(MSG, json=True)
        text = llm.chat(MSG)
    assert with_schema.json_mode == "json_object_schema"
    assert srv.requests[0]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert any_object.json_mode == "json_object"
    assert srv.requests[1]["response_format"] == {"type": "json_object"}
    # No schema and no json=True: plain text. A llama.cpp server would otherwise force a
    # free-text answer (a benchmark's student model, a user's own call) into a JSON object.
    assert text.json_mode == "none" and text.text == "a story"
    assert "response_format" not in srv.requests[2]


def test_plain_text_calls_keep_what_json_calls_learned():
    with FakeOpenAIServer(replies=["{}"] * 4, reject_response_format="schema") as srv:
        llm = make_llm(srv)
        llm.chat(MSG, json_schema=SCHEMA)  # schema refused, json_object learned
        llm.chat(MSG)
        llm.chat(MSG, json_schema=SCHEMA)
    sent = [r.get("response_format") for r in srv.requests]
    assert sent == [
        {"type": "json_object", "schema": SCHEMA},
        {"type": "json_object"},
        None,
        {"type": "json_object"},
    ]


def test_reference_style_call_maps_response_format():
    with FakeOpenAIServer(replies=["{}", "text"]) as srv:
        llm = make_llm(srv)
        llm(messages=MSG, response_format={"type": "json_object"})
        llm(messages=MSG, response_format={"type": "text"})
    assert srv.requests[0]["response_format"] == {"type": "json_object"}
    assert "response_format" not in srv.requests[1]


def test_fallback_when_schema_rejected_and_remembered():
    with FakeOpenAIServer(replies=["{}", "{}"], reject_response_format="schema") as srv:
        llm = make_llm(srv)
        first = llm.chat(MSG, json_schema=SCHEMA)
        assert [r["response_format"] for r in srv.requests] == [
            {"type": "json_object", "schema": SCHEMA},
            {"type": "json_object"},
        ]
        second = llm.chat(MSG, json_schema=SCHEMA)
    assert first.json_mode == second.json_mode == "json_object"
    assert len(srv.requests) == 3  # the working mode was remembered
    assert llm.describe()["json_mode_in_use"]["with_schema"] == "json_object"


def test_fallback_to_plain_text():
    with FakeOpenAIServer(replies=["{}", "{}"], reject_response_format=True) as srv:
        llm = make_llm(srv)
        first = llm.chat(MSG, json_schema=SCHEMA)
        assert len(srv.requests) == 3
        assert "response_format" not in srv.requests[2]
        second = llm.chat(MSG, json_schema=SCHEMA)
    assert first.json_mode == second.json_mode == "none"
    assert len(srv.requests) == 4 and "response_format" not in srv.requests[3]


def test_fallback_on_500_mentioning_response_format():
    def reply(request: dict) -> str:
        if "response_format" in request:
            raise ValueError("response_format unsupported by this backend")
        return "plain"

    with FakeOpenAIServer(replies=reply) as srv:
        result = make_llm(srv).chat(MSG, json_schema=SCHEMA)
    assert result.json_mode == "none" and result.text == "plain"
    assert len(srv.requests) == 3


def test_forced_modes():
    with FakeOpenAIServer(replies=["{}", "{}", "{}"]) as srv:
        assert make_llm(srv, json_mode="none").chat(MSG, json_schema=SCHEMA).json_mode == "none"
        assert "response_format" not in srv.requests[-1]
        forced = make_llm(srv, json_mode="json_schema").chat(MSG, json_schema=SCHEMA)
        assert forced.json_mode == "json_schema"
        assert srv.requests[-1]["response_format"]["type"] == "json_schema"
        degraded = make_llm(srv, json_mode="json_object_schema").chat(MSG)
        assert degraded.json_mode == "json_object"  # a forced mode applies to every call


def test_forced_mode_rejected_is_error_without_fallback():
    with FakeOpenAIServer(replies=["{}"], reject_response_format=True) as srv:
        with pytest.raises(LLMError, match="HTTP 400"):
            make_llm(srv, json_mode="json_object").chat(MSG)
    assert len(srv.requests) == 1


# -- API key hygiene -----------------------------------------------------------------
def test_key_never_shown(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(replies=["ok"]) as srv:
        llm = make_llm(srv, api_key=SECRET, cache=tmp_path / "h.sqlite", max_retries=1)
        srv.fault("status", code=500, times=2)
        with pytest.raises(LLMError) as info:
            llm.chat(MSG)
        llm.chat(MSG)  # success path, logged too
    shown = [
        repr(llm),
        str(llm.describe()),
        json.dumps(llm.describe()),
        repr(vars(llm)),
        str(info.value),
        repr(info.value),
        caplog.text,
    ]
    for text in shown:
        assert SECRET not in text
    assert "sk-proj" not in str(info.value)


def test_scrub_secret_masks_echoed_keys():
    echoed = "Incorrect API key provided: sk-proj-abc***************wxyz."
    assert "abc" not in scrub_secret(echoed)
    assert scrub_secret(f"bad {SECRET}", SECRET) == "bad ***"


# -- threads --------------------------------------------------------------------------
def test_usage_totals_thread_safe_over_http():
    def reply(request: dict) -> str:
        return "r" * (4 * len(request["messages"][0]["content"]))

    with FakeOpenAIServer(replies=reply) as srv:
        llm = make_llm(srv, json_mode="none")

        def work(i: int) -> None:
            for j in range(5):
                llm.chat([{"role": "user", "content": "q" * (4 * (i + j + 1))}])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    totals = llm.usage
    assert totals.calls == 40 == len(totals.records) == len(srv.requests)
    assert totals.prompt_tokens == sum(r.prompt_tokens for r in totals.records)
    assert totals.prompt_tokens == sum(i + j + 1 for i in range(8) for j in range(5))
    assert totals.completion_tokens == 4 * totals.prompt_tokens
    assert totals.cost == pytest.approx(sum(r.cost for r in totals.records))


def test_usage_totals_add_is_atomic():
    totals = UsageTotals()
    record = CallUsage(
        prompt_tokens=1, completion_tokens=2, latency_s=0.0, cost=0.5, cost_known=True, model="m"
    )

    def work() -> None:
        for _ in range(2000):
            totals.add(record)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert totals.calls == 16000 and totals.prompt_tokens == 16000
    assert totals.completion_tokens == 32000 and totals.cost == pytest.approx(8000)


def test_cache_file_path_type(tmp_path):
    llm = LLM(model="m", base_url="http://127.0.0.1:9/v1", cache=Path(tmp_path) / "x.sqlite")
    assert llm.describe()["cache_path"] == str(tmp_path / "x.sqlite")
