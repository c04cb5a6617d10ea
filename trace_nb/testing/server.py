"""A scriptable fake of the OpenAI chat completions API, served over real HTTP.

:class:`FakeOpenAIServer` runs a local HTTP server speaking enough of the
OpenAI wire format (``POST /v1/chat/completions``, ``GET /v1/models``) for
the official ``openai`` client, and anything built on it, to talk to it
unchanged. Replies are scripted, and faults (rate limits, 5xx, slow, garbled,
truncated or dropped responses) can be queued, so client code can be tested
end to end without network access or an API key. trace_nb uses it for its
own tests; you can use it in yours::

    from trace_nb.testing import FakeOpenAIServer
    from trace_nb.llm import LLM

    with FakeOpenAIServer(replies=['{"answer": 42}']) as srv:
        llm = LLM(model="fake-model", base_url=srv.base_url, cache=False)
        assert llm.chat([{"role": "user", "content": "hi"}]).text == '{"answer": 42}'
        assert srv.requests[0]["messages"][0]["content"] == "hi"
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faults import Fault, make_fault, send_fault, trickle

__all__ = ["FakeOpenAIServer"]

Reply = Any  # str, or any JSON-serializable value (sent JSON-encoded)


def _estimate_tokens(chars: int) -> int:
    # The library's own rule of thumb; exactness is not the point.
    from ..llm.usage import estimate_tokens

    return estimate_tokens(chars)


def _content_chars(messages: Any) -> int:
    total = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):  # multi-part content: count the text parts
            total += sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return total


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay must not block close()
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks open dozens of connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-response is expected here; keep test output clean


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer  # set on a per-server subclass
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            with self.fake._lock:
                self.fake.model_list_requests += 1
            models = [
                {"id": name, "object": "model", "created": 0, "owned_by": "trace_nb"}
                for name in self.fake.models
            ]
            self.send_json(200, {"object": "list", "data": models})
        else:
            self.send_json(404, {"error": {"message": f"unknown path {self.path}"}})

    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": f"unknown path {self.path}"}})
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_json(400, {"error": {"message": "request body is not valid JSON"}})
            return
        try:
            self.fake._serve_chat(self, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired)

    def send_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(code, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def send_bytes(
        self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def client_gone(self) -> bool:
        """True when the client closed its end (readable socket with no data)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class FakeOpenAIServer:
    """Local, scriptable OpenAI-compatible HTTP server for tests.

    Binds to ``127.0.0.1`` only, on a free port, and answers requests
    concurrently (one thread each). Usable as a context manager or with
    :meth:`start` / :meth:`close`.

    Parameters
    ----------
    replies
        Either a list of replies served in order (a request arriving after
        the list is exhausted gets HTTP 500 "no scripted reply left"), or a
        callable ``f(request) -> str`` given each parsed request body.
        Non-string replies are sent JSON-encoded.
    latency
        Seconds to sleep before answering every chat request.
    reject_response_format
        ``True``: answer 400 to any request carrying ``response_format``.
        ``"schema"``: reject only formats carrying a schema (a ``"schema"``
        key or ``type: json_schema``), accepting plain ``json_object``.
    model
        Model used when a request names none, and the one ``GET /v1/models`` lists unless
        ``models`` is given.
    models
        The model ids ``GET /v1/models`` lists (default ``[model]``; ``[]`` lists none).
        The attribute of that name may be changed while the server runs.

    Attributes
    ----------
    requests : list of dict
        Parsed bodies of all chat requests received, faulted ones included.
    model_list_requests : int
        How many times ``GET /v1/models`` was asked.
    """

    def __init__(
        self,
        replies: list[Reply] | Callable[[dict[str, Any]], Reply] | None = None,
        *,
        latency: float = 0.0,
        reject_response_format: bool | str = False,
        model: str = "fake-model",
        models: list[str] | None = None,
    ) -> None:
        if reject_response_format not in (True, False, "schema"):
            raise ValueError("reject_response_format must be True, False or 'schema'")
        self._replies: deque[Reply] | Callable[[dict[str, Any]], Reply]
        self._replies = replies if callable(replies) else deque(replies or [])
        self.latency = float(latency)
        self.reject_response_format = reject_response_format
        self.model = model
        self.models = [model] if models is None else list(models)
        self.requests: list[dict[str, Any]] = []
        self.model_list_requests = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        """Bind to a free port on 127.0.0.1 and start serving (idempotent)."""
        if self._server is None:
            handler = type("FakeOpenAIHandler", (_Handler,), {"fake": self})
            self._stop.clear()
            self._server = _Server(("127.0.0.1", 0), handler)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # close() waits up to one poll interval
                name="FakeOpenAIServer",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake sleeping handlers, release the port."""
        if self._server is None:
            return
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        if self._server is None:
            raise RuntimeError("FakeOpenAIServer is not running; use start() or `with`")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, ready for ``base_url=``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ------------------------------------------------------------
    def fault(
        self,
        kind: str,
        *,
        times: int = 1,
        code: int = 500,
        retry_after: float | str | None = None,
        seconds: float = 0.0,
        body: Any = None,
    ) -> FakeOpenAIServer:
        """Queue a misbehaviour for the next ``times`` chat requests.

        Faults apply in the order queued and before scripted replies: a
        faulted request does not consume a reply (except ``"delay"``, which
        only slows the answer down).

        Parameters
        ----------
        kind
            ``"status"``: answer HTTP ``code`` with a JSON error body (and a
            ``Retry-After`` header when ``retry_after`` is given);
            ``"delay"``: sleep ``seconds`` then answer normally;
            ``"malformed"``: 200 with a body that is not JSON;
            ``"html"``: 502 with an HTML error page;
            ``"drop"``: close the connection without answering;
            ``"truncated"``: announce a longer Content-Length than sent, then close;
            ``"body"``: answer HTTP ``code`` (default here: 200) with ``body`` as is (bytes
            or str; any other value is JSON-encoded), e.g. a completion of a wrong shape;
            ``"trickle"``: send a valid completion one byte at a time over ``seconds``
            (consumes a scripted reply); ``"trickle_headers"``: the status line and
            headers one byte at a time over ``seconds``, then the body at once;
            ``"echo_auth"``: 200 with a non-JSON body that echoes the request's
            ``Authorization`` header (a server leaking the key back).
        times
            How many consecutive requests get this fault.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        fault = make_fault(kind, code=code, retry_after=retry_after, seconds=seconds, body=body)
        with self._lock:
            self._faults.extend([fault] * times)
        return self

    def add_replies(self, *replies: Reply) -> FakeOpenAIServer:
        """Queue replies after those already scripted (a list-scripted server only)."""
        with self._lock:
            if callable(self._replies):
                raise TypeError("this server answers with a callable; use set_replies()")
            self._replies.extend(replies)
        return self

    def set_replies(
        self, replies: list[Reply] | Callable[[dict[str, Any]], Reply]
    ) -> FakeOpenAIServer:
        """Replace the scripted replies (a list, or a callable given each request)."""
        with self._lock:
            self._replies = replies if callable(replies) else deque(replies)
        return self

    def clear_faults(self) -> FakeOpenAIServer:
        """Drop the faults still queued."""
        with self._lock:
            self._faults.clear()
        return self

    @property
    def pending(self) -> int:
        """Scripted replies not served yet (0 for a callable)."""
        with self._lock:
            return 0 if callable(self._replies) else len(self._replies)

    # -- request handling (runs in handler threads) ---------------------------
    def _serve_chat(self, handler: _Handler, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)
            fault = self._faults.popleft() if self._faults else None
        if self.latency > 0 and self._stop.wait(self.latency):
            return
        if fault is not None and fault.kind in ("trickle", "trickle_headers"):
            try:
                text = self._next_reply(body)
            except LookupError as exc:
                handler.send_json(500, {"error": {"message": str(exc), "type": "server_error"}})
                return
            trickle(handler, json.dumps(self._completion(body, text)).encode(), fault, self._stop)
            return
        if fault is not None and fault.kind == "echo_auth":
            echoed = f"unexpected error; request had {handler.headers.get('Authorization')}"
            handler.send_bytes(200, echoed.encode("utf-8"), "text/plain")
            return
        if fault is not None and fault.kind != "delay":
            send_fault(handler, fault)
            return
        if fault is not None and self._stop.wait(fault.seconds):
            return
        if (self.latency > 0 or fault is not None) and handler.client_gone():
            return  # a client that timed out must not eat the next scripted reply
        rejection = self._rejection(body.get("response_format"))
        if rejection:
            handler.send_json(
                400,
                {
                    "error": {
                        "message": rejection,
                        "type": "invalid_request_error",
                        "param": "response_format",
                    }
                },
            )
            return
        try:
            text = self._next_reply(body)
        except LookupError as exc:
            handler.send_json(500, {"error": {"message": str(exc), "type": "server_error"}})
            return
        handler.send_json(200, self._completion(body, text))

    def _rejection(self, fmt: Any) -> str | None:
        if fmt is None or not self.reject_response_format:
            return None
        if self.reject_response_format is True:
            return "response_format is not supported"
        has_schema = isinstance(fmt, dict) and ("schema" in fmt or fmt.get("type") == "json_schema")
        return "response_format with a schema is not supported" if has_schema else None

    def _next_reply(self, body: dict[str, Any]) -> str:
        if callable(self._replies):
            try:
                reply = self._replies(body)
            except Exception as exc:  # report the test's bug to the client, don't hang
                raise LookupError(f"reply callable raised {type(exc).__name__}: {exc}") from exc
        else:
            with self._lock:
                if not self._replies:
                    raise LookupError("no scripted reply left")
                reply = self._replies.popleft()
        return reply if isinstance(reply, str) else json.dumps(reply)

    def _completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        with self._lock:
            self._counter += 1
            number = self._counter
        prompt = _estimate_tokens(_content_chars(body.get("messages")))
        completion = _estimate_tokens(len(text))
        return {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
