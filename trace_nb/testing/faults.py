"""The misbehaviours :class:`~trace_nb.testing.server.FakeOpenAIServer` can be told to show.

A :class:`Fault` applies to exactly one chat request; :func:`send_fault` and
:func:`trickle` write it to the wire.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "Fault", "make_fault", "send_fault", "trickle"]

FAULT_KINDS = (
    "status",
    "delay",
    "malformed",
    "html",
    "drop",
    "truncated",
    "body",
    "trickle",
    "trickle_headers",
    "echo_auth",
)
_HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


@dataclass(frozen=True)
class Fault:
    """One queued misbehaviour, applied to exactly one chat request."""

    kind: str
    code: int = 500
    retry_after: float | str | None = None
    seconds: float = 0.0
    body: bytes = b""


def make_fault(
    kind: str,
    *,
    code: int = 500,
    retry_after: float | str | None = None,
    seconds: float = 0.0,
    body: Any = None,
) -> Fault:
    """A checked :class:`Fault` (see ``FakeOpenAIServer.fault`` for the kinds)."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; expected one of {FAULT_KINDS}")
    if kind == "body" and code == 500:
        code = 200
    raw = (
        body
        if isinstance(body, bytes)
        else (
            body.encode("utf-8", "surrogatepass")
            if isinstance(body, str)
            else json.dumps(body).encode("utf-8")
            if body is not None
            else b""
        )
    )
    return Fault(kind, code, retry_after, seconds, raw)


def trickle(handler: Any, data: bytes, fault: Fault, stop: threading.Event) -> None:
    """Send ``data`` (or, for ``trickle_headers``, the head) one byte at a time over ``fault.seconds``."""
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    handler.close_connection = True
    if fault.kind == "trickle_headers":  # the head slowly, then the body at once
        data, rest = head, data
    else:
        handler.wfile.write(head)
        handler.wfile.flush()
        rest = b""
    pause = fault.seconds / max(len(data), 1)
    for i in range(len(data)):
        handler.wfile.write(data[i : i + 1])
        handler.wfile.flush()
        if stop.wait(pause):
            return
    handler.wfile.write(rest)
    handler.wfile.flush()


def send_fault(handler: Any, fault: Fault) -> None:
    """Answer one request with ``fault`` (every kind but delay, trickle and echo_auth)."""
    if fault.kind == "status":
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        error = {
            "message": f"fake server fault: HTTP {fault.code}",
            "type": "fake_fault",
            "code": fault.code,
        }
        handler.send_json(fault.code, {"error": error}, headers)
    elif fault.kind == "malformed":
        handler.send_bytes(200, b'{"id": "chatcmpl-broken", "choices": [', "application/json")
    elif fault.kind == "body":
        handler.send_bytes(fault.code, fault.body, "application/json")
    elif fault.kind == "html":
        handler.send_bytes(502, _HTML_PAGE, "text/html")
    elif fault.kind == "drop":
        handler.close_connection = True  # handler returns without writing a byte
    elif fault.kind == "truncated":
        data = json.dumps({"id": "chatcmpl-cut", "object": "chat.completion"}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data) + 100))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        handler.close_connection = True
