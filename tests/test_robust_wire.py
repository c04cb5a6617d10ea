"""Reliability: every wire problem becomes an LLMError, keys never leak, the cache keeps
only usable replies, and an LLM can be copied and pickled (issue 14, items 12-16)."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest
from conftest import make_llm
from hypothesis import given, settings
from hypothesis import strategies as st

from trace_nb.llm import LLM, LLMConfigError, LLMError
from trace_nb.llm.errors import LLMResponseError, LLMTimeoutError, scrub_secret
from trace_nb.llm.wire import MalformedBody, parse_completion, retry_after

CANARY = "canary-key-5f1e2d3c4b5a69788796a5b4"
MSG = [{"role": "user", "content": "x" * 40}]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("TRACE_NB_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "TRACE_NB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRACE_NB_CACHE_DIR", str(tmp_path / "default-cache"))


def completion(message, usage=None, **extra):
    body = {
        "id": "c",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if usage is not None:
        body["usage"] = usage
    body.update(extra)
    return body


OK_MESSAGE = {"role": "assistant", "content": "hello"}

# Bodies that are no chat completion at all: the call fails with LLMResponseError.
BROKEN_BODIES = {
    "message-string": completion("hello"),
    "message-null": completion(None),
    "message-list": completion([1, 2]),
    "choices-empty": {"choices": []},
    "choices-string": {"choices": "hello"},
    "choice-string": {"choices": ["hello"]},
    "body-list": [1, 2, 3],
    "body-string": "just a string",
    "body-number": 42,
    "body-null": None,
    "not-json": b'{"choices": [',
    "binary": b"\xff\xfe\x00garbage",
    "deep": b"[" * 100_000,
}

# Bodies with a usable reply but broken usage: the reply comes back, tokens are sane.
ODD_USAGE = {
    "usage-string": "lots",
    "usage-list": [1, 2],
    "tokens-text": {"prompt_tokens": "ten", "completion_tokens": "five"},
    "tokens-digits": {"prompt_tokens": "10", "completion_tokens": "3"},
    "tokens-huge-float": b'{"prompt_tokens": 1e400, "completion_tokens": 1e400}',
    "tokens-negative": {"prompt_tokens": -50_000_000_000, "completion_tokens": -1},
    "tokens-nan": b'{"prompt_tokens": NaN, "completion_tokens": Infinity}',
    "tokens-bool": {"prompt_tokens": True, "completion_tokens": False},
    "tokens-giant-int": {"prompt_tokens": 10**30, "completion_tokens": 10**30},
    "tokens-float": {"prompt_tokens": 10.5, "completion_tokens": 2.0},
    "usage-null": None,
}


@pytest.mark.parametrize("name", list(BROKEN_BODIES))
def test_broken_bodies_raise_llm_response_error(fake_server, name):
    body = BROKEN_BODIES[name]
    fake_server.fault("body", body=body, times=2)
    llm = make_llm(fake_server, max_retries=1)
    with pytest.raises(LLMResponseError) as info:
        llm.chat(MSG)
    assert info.value.attempts == 2  # retried once: a garbled body may be transient
    assert "malformed response" in str(info.value)


def test_broken_body_then_good_one_is_retried(fake_server):
    fake_server.fault("body", body=completion(None))
    fake_server.add_replies("fine")
    assert make_llm(fake_server, max_retries=1).chat(MSG).text == "fine"


@pytest.mark.parametrize("name", list(ODD_USAGE))
def test_odd_usage_gives_sane_non_negative_counts(fake_server, name):
    usage = ODD_USAGE[name]
    if isinstance(usage, bytes):
        body = json.dumps(completion(OK_MESSAGE, usage="@@")).encode().replace(b'"@@"', usage)
    else:
        body = completion(OK_MESSAGE, usage=usage)
    fake_server.fault("body", body=body)
    llm = make_llm(fake_server, prices={"fake-model": (2.5, 10.0)}, max_retries=0)
    reply = llm.chat(MSG)
    assert reply.text == "hello"
    u = reply.usage
    for count in (u.prompt_tokens, u.completion_tokens):
        assert isinstance(count, int) and 0 <= count <= 10**9
    assert u.cost >= 0 and u.cost < 1.0
    if name == "tokens-digits":
        assert (u.prompt_tokens, u.completion_tokens) == (10, 3)
    else:  # estimated from the text: 40 prompt chars, 5 reply chars
        assert (u.prompt_tokens, u.completion_tokens) == (10, 2)
    assert llm.usage.cost >= 0


def test_negative_prices_are_refused():
    with pytest.raises(ValueError, match="finite and not negative"):
        LLM(model="m", base_url="http://127.0.0.1:9/v1", prices={"m": (-1.0, 0.0)})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            [{"type": "text", "text": "part one, "}, {"type": "text", "text": "part two"}],
            "part one, part two",
        ),
        (["a", "b"], "ab"),
    ],
)
def test_content_parts_are_joined(fake_server, content, expected):
    fake_server.fault("body", body=completion({"role": "assistant", "content": content}))
    assert make_llm(fake_server, max_retries=0).chat(MSG).text == expected


def test_tool_call_arguments_are_the_reply(fake_server):
    args = '{"suggestion": {"x": 2}}'
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t", "type": "function", "function": {"name": "reply", "arguments": args}}
        ],
    }
    fake_server.fault("body", body=completion(message))
    assert make_llm(fake_server, max_retries=0).chat(MSG).text == args


def test_refusal_is_returned_but_never_cached(fake_server, tmp_path):
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    fake_server.fault("body", body=completion(message))
    fake_server.add_replies("second")
    llm = make_llm(fake_server, cache=tmp_path / "c.sqlite", max_retries=0)
    refusal = llm.chat(MSG)
    assert refusal.text == "I can't help with that." and refusal.refused
    assert llm.chat(MSG).text == "second"  # asked again: the refusal was not stored
    assert len(fake_server.requests) == 2


@pytest.mark.parametrize(
    "value", ["nan", "inf", "-inf", "NaN", "soon", "1e400", "", "Wed, 99 Foo 2024 25:61:61 GMT"]
)
def test_retry_after_garbage_is_ignored(fake_server, value):
    assert retry_after({"retry-after": value}) is None
    fake_server.fault("status", code=429, retry_after=value)
    fake_server.add_replies("ok")
    assert make_llm(fake_server, max_retries=1).chat(MSG).text == "ok"


def test_a_trickling_server_cannot_hold_a_call_past_its_timeout(fake_server):
    # The whole body would take 30 s; timeout bounds the attempt, not each read.
    fake_server.add_replies("slow")
    fake_server.fault("trickle", seconds=30)
    llm = make_llm(fake_server, timeout=0.5, max_retries=0)
    with pytest.raises(LLMTimeoutError, match="timed out"):
        llm.chat(MSG)


def test_deadline_bounds_the_call_with_retries(fake_server):
    fake_server.fault("status", code=503, times=50)
    llm = make_llm(fake_server, max_retries=40, backoff=0.2, deadline=0.5)
    with pytest.raises(LLMError) as info:
        llm.chat(MSG)
    assert info.value.attempts < 10  # the deadline, not the 41 attempts, ended it


def test_bad_timeouts_are_config_errors():
    for bad in (0, -1, float("nan"), float("inf"), "3"):
        with pytest.raises(LLMConfigError, match="positive number of seconds"):
            LLM(model="m", base_url="http://127.0.0.1:9/v1", timeout=bad)


# ------------------------------------------------------------------------- the cache


@pytest.mark.parametrize(
    "body",
    [
        completion({"role": "assistant", "content": ""}),
        completion({"role": "assistant", "content": "   \n"}),
        completion({"role": "assistant", "content": None}),
        {
            **completion({"role": "assistant", "content": '{"suggestion": {"x": 1'}),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "length",
                    "message": {"role": "assistant", "content": '{"suggestion": {"x": 1'},
                }
            ],
        },
        completion({"role": "assistant", "content": "Sure! Here you go: x = 5"}),
    ],
    ids=["empty", "blank", "null-content", "cut-off", "not-json-under-schema"],
)
def test_unusable_replies_are_not_cached(fake_server, tmp_path, body):
    fake_server.fault("body", body=body)
    fake_server.add_replies('{"suggestion": {}}')
    llm = make_llm(fake_server, cache=tmp_path / "c.sqlite", max_retries=0)
    llm.chat(MSG, json_schema={"type": "object"})
    assert len(llm.cache) == 0  # not stored (and, were it stored, not replayed)
    second = llm.chat(MSG, json_schema={"type": "object"})
    assert not second.cached and second.text == '{"suggestion": {}}'
    third = llm.chat(MSG, json_schema={"type": "object"})
    assert third.cached  # a usable reply is cached as before


def test_cache_if_decides_what_is_stored(fake_server, tmp_path):
    fake_server.add_replies("bad", "good")
    llm = make_llm(fake_server, cache=tmp_path / "c.sqlite")
    check = lambda text: text == "good"  # noqa: E731
    assert llm.chat(MSG, cache_if=check).text == "bad"
    assert llm.chat(MSG, cache_if=check).text == "good"
    assert llm.chat(MSG, cache_if=check).cached


def test_a_bad_reply_cached_earlier_is_not_replayed(fake_server, tmp_path):
    from trace_nb.llm.cache import CachedReply, cache_key

    llm = make_llm(fake_server, cache=tmp_path / "c.sqlite")
    key = cache_key(
        base_url=llm.base_url,
        model=llm.model,
        messages=MSG,
        temperature=0.0,
        seed=None,
        max_tokens=None,
        json_schema=None,
    )
    llm.cache.put(key, CachedReply("", "fake-model", 1, 1, "none"))
    fake_server.add_replies("fresh")
    assert llm.chat(MSG).text == "fresh"


def test_lone_surrogates_do_not_break_the_cache(fake_server, tmp_path):
    fake_server.add_replies("bad \ud800 char", "next")
    llm = make_llm(fake_server, cache=tmp_path / "c.sqlite")
    text = llm.chat(MSG).text
    assert text == "bad \ufffd char"
    text.encode("utf-8")
    # A message holding a lone surrogate can still be sent and cached.
    reply = llm.chat([{"role": "user", "content": "odd \udc00"}])
    assert reply.text == "next"


# ------------------------------------------------------------------------ the key


def test_key_echoed_by_the_server_never_reaches_logs_or_errors(fake_server, caplog):
    fake_server.fault("echo_auth", times=3)
    llm = make_llm(fake_server, max_retries=2)
    llm.set_api_key(CANARY)
    with caplog.at_level(logging.DEBUG, logger="trace_nb"):
        with pytest.raises(LLMError) as info:
            llm.chat(MSG)
    assert "Bearer" in caplog.text  # the echo was logged...
    assert CANARY not in caplog.text  # ...without the key
    assert CANARY not in str(info.value) and "***" in str(info.value)


def test_key_in_a_reply_is_scrubbed_before_caching(fake_server, tmp_path):
    fake_server.add_replies(f'{{"suggestion": {{"x": "{CANARY}"}}}}')
    llm = make_llm(fake_server, cache=tmp_path / "c.sqlite")
    llm.set_api_key(CANARY)
    reply = llm.chat(MSG)
    assert CANARY not in reply.text
    llm.close()
    assert CANARY.encode() not in (tmp_path / "c.sqlite").read_bytes()


def test_scrub_removes_every_registered_key():
    LLM(model="m", api_key=CANARY + "-two")
    assert scrub_secret(f"a {CANARY}-two b") == "a *** b"


# ---------------------------------------------------------------- copy and pickle


def test_deepcopy_keeps_working_and_is_independent(fake_server):
    fake_server.add_replies("one", "two")
    llm = make_llm(fake_server)
    llm.chat(MSG)
    twin = copy.deepcopy(llm)
    assert twin.chat(MSG).text == "two"
    assert (llm.usage.calls, twin.usage.calls) == (1, 2)
    assert twin._client is not llm._client


def test_pickle_never_holds_the_key_and_rereads_the_environment(fake_server, monkeypatch):
    llm = make_llm(fake_server)
    llm.set_api_key(CANARY)
    data = pickle.dumps(llm)
    assert CANARY.encode() not in data
    back = pickle.loads(data)
    with pytest.raises(LLMConfigError, match="never pickled"):
        back.chat(MSG)
    fake_server.add_replies("after set", "from env")
    back.set_api_key("another-key")
    assert back.chat(MSG).text == "after set"
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-123")
    again = pickle.loads(data)
    assert again.chat(MSG).text == "from env"
    assert fake_server.pending == 0


def test_pickle_keeps_cache_and_usage(fake_server, tmp_path):
    fake_server.add_replies("cached text")
    llm = make_llm(fake_server, cache=tmp_path / "c.sqlite")
    llm.chat(MSG)
    back = pickle.loads(pickle.dumps(llm))
    assert back.usage.calls == 1
    assert back.chat(MSG).cached  # same cache file, new connection


def test_parse_completion_never_raises_other_errors():
    for body in [
        '{"choices": [{"message": {"content": 5}}]}',
        '{"choices": [{"message": {}}]}',
        '{"choices": [{"message": {"content": "x"}}], "model": 7}',
    ]:
        done = parse_completion(body, "m", 8)
        assert isinstance(done.text, str) and done.model in ("m",)


def test_shallow_copy_keeps_the_key_and_shares_no_client(fake_server):
    fake_server.add_replies("a", "b")
    llm = make_llm(fake_server)
    llm.chat(MSG)
    twin = copy.copy(llm)
    assert twin.chat(MSG).text == "b" and twin.usage is not llm.usage


def test_an_endless_body_is_cut_off(fake_server, monkeypatch):
    from trace_nb.llm import transport

    monkeypatch.setattr(transport, "MAX_BODY_BYTES", 1000)
    fake_server.add_replies("x" * 5000)
    with pytest.raises(LLMResponseError, match="body larger than 1,000 bytes"):
        make_llm(fake_server, max_retries=0).chat(MSG)


def test_every_trace_nb_llm_log_record_is_scrubbed(caplog):
    LLM(model="m", api_key=CANARY + "-log")
    with caplog.at_level(logging.DEBUG, logger="trace_nb.llm"):
        logging.getLogger("trace_nb.llm").warning("the key is %s", CANARY + "-log")
    assert "the key is ***" in caplog.text and CANARY not in caplog.text


def test_llm_errors_scrub_their_own_message():
    LLM(model="m", api_key=CANARY + "-err")
    error = LLMError(f"server said: bad key {CANARY}-err")
    assert CANARY not in str(error) and "***" in str(error)


def test_a_key_hidden_by_json_escapes_is_scrubbed_once_decoded(fake_server):
    escaped = "".join(f"\\u{ord(c):04x}" for c in CANARY)  # the raw body never shows it
    body = '{"choices": [{"message": {"role": "assistant", "content": "key: ' + escaped + '"}}]}'
    fake_server.fault("body", body=body)
    llm = make_llm(fake_server, max_retries=0)
    llm.set_api_key(CANARY)
    assert llm.chat(MSG).text == "key: ***"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    message=json_values,
    usage=json_values,
    choice=json_values,
    model=json_values,
    where=st.sampled_from(["message", "usage", "choice", "content", "model", "body"]),
)
def test_parse_completion_reads_or_refuses_any_shape(message, usage, choice, model, where):
    body: object = {
        "choices": [{"message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        "model": "m",
    }
    if where == "message":
        body["choices"][0]["message"] = message
    elif where == "usage":
        body["usage"] = usage
    elif where == "choice":
        body["choices"] = [choice]
    elif where == "content":
        body["choices"][0]["message"]["content"] = message
    elif where == "model":
        body["model"] = model
    else:
        body = message
    try:
        done = parse_completion(json.dumps(body), "requested", 12)
    except MalformedBody:
        return
    assert isinstance(done.text, str) and isinstance(done.model, str) and done.model
    assert 0 <= done.prompt_tokens <= 10**9 and 0 <= done.completion_tokens <= 10**9


def test_a_server_trickling_its_headers_cannot_hold_a_call_either(fake_server):
    fake_server.add_replies("slow")
    fake_server.fault("trickle_headers", seconds=4)
    with pytest.raises(LLMTimeoutError, match="timed out"):
        make_llm(fake_server, timeout=0.5, max_retries=0).chat(MSG)


def test_words_containing_sk_dash_are_not_taken_for_keys(fake_server):
    text = '{"suggestion": {"prompt": "Use a task-oriented, risk-averse, desk-bound-ish tone"}}'
    assert scrub_secret(text) == text
    fake_server.add_replies(text)
    assert make_llm(fake_server).chat(MSG).text == text
    assert scrub_secret("key sk-proj-abc***************wxyz.") == "key sk-***."


def test_a_short_local_placeholder_key_is_not_scrubbed_from_replies(fake_server):
    fake_server.add_replies("run it with ollama")
    llm = make_llm(fake_server)
    llm.set_api_key("ollama")
    assert llm.chat(MSG).text == "run it with ollama"
    assert scrub_secret("ollama is fine") == "ollama is fine"


def test_finish_reason_is_reported(fake_server):
    body = completion({"role": "assistant", "content": '{"suggestion": {"x": 1'})
    body["choices"][0]["finish_reason"] = "length"
    fake_server.fault("body", body=body)
    reply = make_llm(fake_server, max_retries=0).chat(MSG)
    assert reply.finish_reason == "length" and not reply.refused


def test_a_corrupt_cache_file_never_breaks_a_call(fake_server, tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    fake_server.add_replies("works", "again")
    llm = make_llm(fake_server, cache=path)
    with pytest.warns(UserWarning, match="cache"):
        assert llm.chat(MSG).text == "works"
    with pytest.warns(UserWarning, match="unreadable"):
        assert len(llm.cache) == 0
    with pytest.raises(OSError, match="delete the file"):
        llm.cache.clear()


@pytest.mark.parametrize("code", [401, 503])
def test_a_key_straddling_the_300_character_cut_is_scrubbed_first(fake_server, caplog, code):
    # The body is cut to 300 characters for the message: scrubbing after the cut left 44 of
    # the key's 45 characters in the error (401: at once) and the retry log (503: retried;
    # not 500, which the fake server's "body" fault reads as its default, a 200).
    key = "canary-" + "k9" * 19  # 45 characters, not shaped like sk-... (only known by value)
    body = {"error": {"message": "x" * (300 - 44) + key + " tail", "type": "auth"}}
    fake_server.fault("body", code=code, body=body, times=3)
    llm = make_llm(fake_server, max_retries=2)
    llm.set_api_key(key)
    with caplog.at_level(logging.DEBUG, logger="trace_nb"):
        with pytest.raises(LLMError) as info:
            llm.chat(MSG)
    for text in (str(info.value), caplog.text):
        assert key[:12] not in text and key[-20:-1] not in text
    assert "xxxx" in str(info.value)  # the body itself is shown
    if code == 503:
        assert "retrying" in caplog.text
