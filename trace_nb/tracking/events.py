"""What trace_nb tells trackers: one record per LLM call, and who is listening.

The LLM client reports every ``chat()`` call here (:func:`report_call`), its one call path.
Trackers (MLflow, OpenTelemetry, your own) subscribe with :func:`add_call_observer`. With
nobody subscribed, :func:`observing` is one truth test of a list, so an untracked call costs
nothing measurable. Nothing here imports MLflow or OpenTelemetry.

The record never holds the API key: model, base URL, sizes, tokens and latency always;
message bodies are kept only for observers that asked for them
(``add_call_observer(..., bodies=True)``), and every text passes
:func:`~trace_nb.llm.errors.scrub_secret` first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import otel
from .scrub import scrubbed

__all__ = [
    "LLMCall",
    "add_call_observer",
    "observing",
    "remove_call_observer",
    "report_call",
    "scrubbed",
]


@dataclass(frozen=True)
class LLMCall:
    """One finished (or failed) ``LLM.chat()`` call, as trackers see it.

    Attributes
    ----------
    client
        The :class:`~trace_nb.llm.LLM` that made the call (trackers compare it by
        identity to know whose call it is; never read its key).
    model, response_model, base_url
        What was asked for and what the server said it used.
    start_ns, end_ns
        Wall-clock start and end (``time.time_ns()``).
    messages, message_chars
        Number of messages and their total characters.
    reply_chars
        Characters of the reply (0 when the call failed).
    prompt_tokens, completion_tokens, cost, cached, finish_reason, json_mode
        As in :class:`~trace_nb.llm.response.ChatReply`.
    temperature, max_tokens
        The sampling settings of the request.
    error
        ``"TypeName: message"`` (scrubbed) when the call raised, else None.
    bodies
        ``(messages, reply_text)``, scrubbed, only when some observer asked for bodies.
    """

    client: Any
    model: str
    base_url: str
    start_ns: int
    end_ns: int
    messages: int
    message_chars: int
    reply_chars: int = 0
    response_model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    finish_reason: str | None = None
    json_mode: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    error: str | None = None
    bodies: tuple[list[dict], str] | None = field(default=None, repr=False)

    @property
    def latency_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


_observers: list[tuple[Callable[[LLMCall], Any], bool]] = []
_lock = threading.Lock()


def add_call_observer(callback: Callable[[LLMCall], Any], *, bodies: bool = False) -> None:
    """Call ``callback(record)`` after every LLM call in this process (any thread).

    ``bodies=True`` asks for the messages and reply text (scrubbed of keys). A callback
    that raises is reported once as a warning and the call goes on.
    """
    with _lock:
        _observers.append((callback, bodies))


def remove_call_observer(callback: Callable[[LLMCall], Any]) -> None:
    """Stop calling ``callback`` (a no-op when it was not added)."""
    with _lock:
        _observers[:] = [(cb, b) for cb, b in _observers if cb != callback]  # bound methods: ==


def observing() -> bool:
    """Whether anybody listens (an observer, or OpenTelemetry spans): the client skips all
    bookkeeping when not."""
    return bool(_observers) or otel.active()


_warned: set[int] = set()


def observed_chat(client: Any, messages: list[dict], kwargs: dict, call: Callable) -> Any:
    """Run ``call(messages, **kwargs)`` (the client's chat) and report it to the observers."""
    span = otel.start_llm_span(client, kwargs)
    start = time.time_ns()
    try:
        reply = call(messages, **kwargs)
    except BaseException as e:
        record = _record(client, messages, kwargs, start, None, e)
        otel.end_llm_span(span, record)
        report_call(record)
        raise
    record = _record(client, messages, kwargs, start, reply, None)
    otel.end_llm_span(span, record)
    report_call(record)
    return reply


def _record(
    client: Any, messages: list[dict], kwargs: dict, start: int, reply: Any, error: Any
) -> LLMCall:
    end = time.time_ns()
    chars = sum(len(str(m.get("content") or "")) for m in messages if isinstance(m, dict))
    want_bodies = any(b for _, b in list(_observers)) or otel.wants_bodies()
    bodies = None
    if want_bodies:
        safe = [
            {"role": str(m.get("role", "")), "content": scrubbed(m.get("content") or "")}
            for m in messages
            if isinstance(m, dict)
        ]
        bodies = (safe, scrubbed(reply.text) if reply is not None else "")
    temperature = kwargs.get("temperature")
    max_tokens = kwargs.get("max_tokens")
    common = {
        "client": client,
        "model": str(getattr(client, "model", "")),
        "base_url": str(getattr(client, "base_url", "")),
        "start_ns": start,
        "end_ns": end,
        "messages": len(messages),
        "message_chars": chars,
        "temperature": getattr(client, "temperature", None) if temperature is None else temperature,
        "max_tokens": getattr(client, "max_tokens", None) if max_tokens is None else max_tokens,
        "bodies": bodies,
    }
    if reply is None:
        return LLMCall(**common, error=scrubbed(f"{type(error).__name__}: {error}"))
    u = reply.usage
    return LLMCall(
        **common,
        reply_chars=len(reply.text or ""),
        response_model=reply.model,
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        cost=u.cost,
        cached=reply.cached,
        finish_reason=reply.finish_reason,
        json_mode=reply.json_mode,
    )


def report_call(record: LLMCall) -> None:
    """Give ``record`` to every observer; one that raises warns once and is skipped."""
    for callback, bodies in list(_observers):
        rec = record if bodies or record.bodies is None else _without_bodies(record)
        try:
            callback(rec)
        except Exception as e:  # noqa: BLE001 - a tracker must never break an LLM call
            if id(callback) not in _warned:
                _warned.add(id(callback))
                import warnings

                warnings.warn(
                    f"a trace_nb tracker failed on an LLM call and is skipped for it: "
                    f"{scrubbed(f'{type(e).__name__}: {e}')}",
                    RuntimeWarning,
                    stacklevel=2,
                )


def _without_bodies(record: LLMCall) -> LLMCall:
    import dataclasses

    return dataclasses.replace(record, bodies=None)
