"""Tests of trace_nb.testing.FakeOpenAIServer over real HTTP (stdlib client)."""

from __future__ import annotations

import http.client
import json
import pathlib
import socket
import threading
import time
import urllib.parse
from typing import Any

import pytest

from trace_nb.testing import FakeOpenAIServer

MESSAGES = [{"role": "user", "content": "abcdefghi"}]  # 9 chars -> 3 tokens


def post(srv: FakeOpenAIServer, body: Any, path: str = "/v1/chat/completions"):
    """POST ``body`` and return (status, headers, raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, data, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def chat(srv: FakeOpenAIServer, **extra: Any):
    status, headers, raw = post(srv, {"model": "m1", "messages": MESSAGES, **extra})
    return status, headers, raw


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses the kernel lists a socket listening on ``port`` at (Linux)."""
    found = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_binds_localhost_and_base_url():
    with FakeOpenAIServer(models=["m1"]) as srv:
        assert srv.port > 0
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        # The base URL serves: the model list comes back over real HTTP from it.
        url = urllib.parse.urlsplit(srv.base_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            conn.request("GET", url.path + "/models")
            assert [m["id"] for m in json.load(conn.getresponse())["data"]] == ["m1"]
        finally:
            conn.close()
        # Bound to 127.0.0.1 only: the kernel's own table says so where it has one, and
        # another loopback address (which a server bound to all interfaces would answer)
        # is refused.
        if pathlib.Path("/proc/net/tcp").exists():
            assert _listening_addresses(srv.port) == {"127.0.0.1"}
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", srv.port), timeout=5).close()


def test_not_running_has_no_base_url():
    srv = FakeOpenAIServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = srv.base_url


def test_completion_wire_format():
    with FakeOpenAIServer(replies=["hello"]) as srv:
        status, headers, raw = chat(srv)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "m1"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello"}
    assert choice["finish_reason"] == "stop"
    # ceil(9 / 4) = 3 prompt tokens, ceil(5 / 4) = 2 completion tokens
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_default_model_and_multipart_content():
    with FakeOpenAIServer(replies=["x"], model="my-model") as srv:
        msgs = [{"role": "user", "content": [{"type": "text", "text": "12345678"}]}]
        _, _, raw = post(srv, {"messages": msgs})
    body = json.loads(raw)
    assert body["model"] == "my-model"
    assert body["usage"]["prompt_tokens"] == 2


def test_replies_in_order_then_500():
    with FakeOpenAIServer(replies=["one", "two"]) as srv:
        texts = [json.loads(chat(srv)[2])["choices"][0]["message"]["content"] for _ in range(2)]
        status, headers, raw = chat(srv)
    assert texts == ["one", "two"]
    assert status == 500
    assert headers["Content-Type"] == "application/json"
    assert "no scripted reply left" in json.loads(raw)["error"]["message"]
    assert len(srv.requests) == 3


def test_callable_replies_and_json_encoding():
    seen: list[dict] = []

    def reply(request: dict) -> Any:
        seen.append(request)
        return {"echo": request["messages"][0]["content"]}

    with FakeOpenAIServer(replies=reply) as srv:
        _, _, raw = chat(srv, temperature=0.5)
    content = json.loads(raw)["choices"][0]["message"]["content"]
    assert json.loads(content) == {"echo": "abcdefghi"}
    assert seen[0]["temperature"] == 0.5
    assert srv.requests == seen


def test_callable_error_becomes_500():
    def reply(request: dict) -> str:
        raise ValueError("boom")

    with FakeOpenAIServer(replies=reply) as srv:
        status, _, raw = chat(srv)
    assert status == 500
    assert "boom" in json.loads(raw)["error"]["message"]


def test_models_endpoint_and_unknown_path():
    with FakeOpenAIServer(model="fm") as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/v1/models")
        resp = conn.getresponse()
        models = json.loads(resp.read())
        conn.close()
        status, _, _ = post(srv, {}, path="/v1/nope")
    assert resp.status == 200
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "fm"
    assert status == 404


def test_bad_json_request_is_400():
    with FakeOpenAIServer(replies=["x"]) as srv:
        status, _, _ = post(srv, b"{not json")
    assert status == 400


def test_status_fault_with_retry_after_does_not_consume_reply():
    with FakeOpenAIServer(replies=["kept"]) as srv:
        srv.fault("status", code=429, retry_after=3)
        status, headers, raw = chat(srv)
        assert status == 429
        assert headers["Retry-After"] == "3"
        assert "error" in json.loads(raw)
        status, _, raw = chat(srv)
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "kept"
    assert len(srv.requests) == 2


def test_faults_apply_in_order_and_times():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("status", code=503, times=2).fault("html")
        statuses = [chat(srv)[0] for _ in range(4)]
    assert statuses == [503, 503, 502, 200]


def test_malformed_fault():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("malformed")
        status, _, raw = chat(srv)
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(raw)


def test_html_fault():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("html")
        status, headers, raw = chat(srv)
    assert status == 502
    assert headers["Content-Type"] == "text/html"
    assert b"<html>" in raw


def test_drop_fault():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("drop")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            chat(srv)
        assert chat(srv)[0] == 200


def test_truncated_fault():
    with FakeOpenAIServer(replies=["ok"]) as srv:
        srv.fault("truncated")
        with pytest.raises(http.client.IncompleteRead):
            chat(srv)
        assert chat(srv)[0] == 200


def test_delay_fault_and_latency_lower_bounds():
    with FakeOpenAIServer(replies=["a", "b"], latency=0.1) as srv:
        srv.fault("delay", seconds=0.3)
        t0 = time.perf_counter()
        status, _, raw = chat(srv)
        delayed = time.perf_counter() - t0
        t0 = time.perf_counter()
        chat(srv)
        plain = time.perf_counter() - t0
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "a"
    assert delayed >= 0.35
    assert plain >= 0.09


def test_reject_response_format_true():
    with FakeOpenAIServer(replies=["ok"], reject_response_format=True) as srv:
        status, _, raw = chat(srv, response_format={"type": "json_object"})
        assert status == 400
        assert "response_format" in json.loads(raw)["error"]["message"]
        assert chat(srv)[0] == 200


def test_reject_response_format_schema_only():
    schema = {"type": "object"}
    with FakeOpenAIServer(replies=["ok"], reject_response_format="schema") as srv:
        assert chat(srv, response_format={"type": "json_object", "schema": schema})[0] == 400
        json_schema = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
        assert chat(srv, response_format=json_schema)[0] == 400
        assert chat(srv, response_format={"type": "json_object"})[0] == 200


def test_requests_are_served_concurrently():
    # If requests were handled one at a time, the barrier would break and the
    # callable would raise (-> HTTP 500): this proves overlap without timing.
    n = 8
    barrier = threading.Barrier(n, timeout=10)

    def reply(request: dict) -> str:
        barrier.wait()
        return "ok"

    results: list[int] = []
    with FakeOpenAIServer(replies=reply) as srv:
        threads = [threading.Thread(target=lambda: results.append(chat(srv)[0])) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [200] * n
    assert len(srv.requests) == n


def test_close_releases_port():
    srv = FakeOpenAIServer(replies=["x"]).start()
    port = srv.port
    srv.close()
    srv.close()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=5).connect()


def test_invalid_arguments():
    with pytest.raises(ValueError):
        FakeOpenAIServer(reject_response_format="maybe")
    srv = FakeOpenAIServer()
    with pytest.raises(ValueError):
        srv.fault("explode")
    with pytest.raises(ValueError):
        srv.fault("status", times=0)


def test_public_reply_scripting():
    with FakeOpenAIServer() as srv:
        srv.add_replies("one", {"two": 2})
        assert srv.pending == 2
        assert json.loads(chat(srv)[2])["choices"][0]["message"]["content"] == "one"
        srv.set_replies(lambda body: "from callable")
        assert srv.pending == 0
        assert json.loads(chat(srv)[2])["choices"][0]["message"]["content"] == "from callable"
        with pytest.raises(TypeError, match="set_replies"):
            srv.add_replies("x")
        srv.set_replies(["again"])
        srv.fault("status", code=503, times=3).clear_faults()
        assert chat(srv)[0] == 200


def test_body_fault_sends_any_body_with_any_status():
    with FakeOpenAIServer(replies=["kept"]) as srv:
        srv.fault("body", body={"choices": "odd"})
        srv.fault("body", body=b"\xff raw", code=418)
        status, _, raw = chat(srv)
        assert (status, json.loads(raw)) == (200, {"choices": "odd"})
        status, _, raw = chat(srv)
        assert (status, raw) == (418, b"\xff raw")
        assert json.loads(chat(srv)[2])["choices"][0]["message"]["content"] == "kept"


def test_trickle_faults_send_a_whole_completion_slowly():
    for kind in ("trickle", "trickle_headers"):
        with FakeOpenAIServer(replies=["slowly"]) as srv:
            srv.fault(kind, seconds=0.2)
            status, _, raw = chat(srv)
            assert status == 200
            assert json.loads(raw)["choices"][0]["message"]["content"] == "slowly"


def test_echo_auth_fault_returns_the_authorization_header():
    with FakeOpenAIServer() as srv:
        srv.fault("echo_auth")
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request(
            "POST",
            "/v1/chat/completions",
            json.dumps({"messages": []}).encode(),
            {"Authorization": "Bearer secret-value"},
        )
        resp = conn.getresponse()
        assert resp.status == 200 and b"Bearer secret-value" in resp.read()
        conn.close()
