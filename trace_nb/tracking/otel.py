"""OpenTelemetry spans: run → step → LLM call / preview / review decision.

Spans go to the tracer provider you configured: the global one (``trace.set_tracer_provider``,
as Phoenix's ``register()`` or an OTLP exporter setup does), or one given to :func:`enable`.
Off unless a provider is configured, and then nothing is done: with OpenTelemetry never
imported, :func:`active` is one dictionary look-up (``TRACE_NB_OTEL=off`` or
:func:`disable` switches spans off even when a provider is set).

LLM-call spans follow the GenAI semantic conventions (``chat {model}``, kind CLIENT,
``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens``...). Message texts are recorded only with
``enable(messages=True)`` (``gen_ai.input.messages``/``gen_ai.output.messages``, scrubbed of
keys). A call's parent is the current span; a call made on a worker thread (a training
minibatch, the panel's background proposal) hangs under the step of the run that watches
its client (:func:`adopt_calls`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .scrub import scrubbed

if TYPE_CHECKING:
    from .events import LLMCall

__all__ = ["active", "adopt_calls", "disable", "enable", "reset", "tracer"]

TRACER_NAME = "trace_nb"
_state: dict[str, Any] = {"provider": None, "off": False, "messages": False}
_adopters: list[tuple[Callable[[Any], bool], Callable[[], Any]]] = []
_lock = threading.Lock()


def enable(tracer_provider: Any = None, *, messages: bool = False) -> None:
    """Send spans to ``tracer_provider`` (default: the global one, once it is configured).

    ``messages=True`` also records the LLM calls' message and reply texts (scrubbed)."""
    _state.update(provider=tracer_provider, off=False, messages=messages)


def disable() -> None:
    """No spans, even with a global provider configured."""
    _state.update(provider=None, off=True)


def reset() -> None:
    """Back to the default: spans when a global provider is configured."""
    _state.update(provider=None, off=False, messages=False)


def tracer() -> Any:
    """The tracer spans go to, or None when spans are off (see the module doc)."""
    if _state["off"]:
        return None
    if _state["provider"] is not None:
        return _state["provider"].get_tracer(TRACER_NAME)
    api = sys.modules.get("opentelemetry.trace")
    if api is None:  # never imported: nobody configured a provider
        return None
    if os.environ.get("TRACE_NB_OTEL", "").lower() in ("off", "0", "false", "no"):
        return None
    provider = api.get_tracer_provider()
    if isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider):
        return None
    return provider.get_tracer(TRACER_NAME)


def active() -> bool:
    """Whether spans are on."""
    return tracer() is not None


# -- LLM calls --------------------------------------------------------------------------
def adopt_calls(match: Callable[[Any], bool], parent: Callable[[], Any]) -> Callable[[], None]:
    """LLM calls of clients for which ``match(client)`` is true, made where no span is
    current, become children of ``parent()`` (a span, or None). Returns the undo."""
    entry = (match, parent)
    with _lock:
        _adopters.append(entry)

    def undo() -> None:
        with _lock:
            if entry in _adopters:
                _adopters.remove(entry)

    return undo


def _parent_context(client: Any) -> Any:
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.get_span_context().is_valid:
        return None  # the current context already has the parent
    for match, parent in list(_adopters):
        if match(client):
            span = parent()
            if span is not None:
                return trace.set_span_in_context(span)
    return None


def start_llm_span(client: Any, kwargs: dict) -> Any:
    """A CLIENT span for a chat call about to be sent, or None when spans are off."""
    t = tracer()
    if t is None:
        return None
    from opentelemetry.trace import SpanKind

    model = str(getattr(client, "model", ""))
    url = urlsplit(str(getattr(client, "base_url", "")))
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": model,
    }
    if url.hostname:
        attrs["server.address"] = url.hostname
        if url.port:
            attrs["server.port"] = url.port
    temperature = kwargs.get("temperature")  # None: the client's own setting
    if temperature is None:
        temperature = getattr(client, "temperature", None)
    max_tokens = kwargs.get("max_tokens")
    if max_tokens is None:
        max_tokens = getattr(client, "max_tokens", None)
    if temperature is not None:
        attrs["gen_ai.request.temperature"] = float(temperature)
    if max_tokens is not None:
        attrs["gen_ai.request.max_tokens"] = int(max_tokens)
    return t.start_span(
        f"chat {model}", context=_parent_context(client), kind=SpanKind.CLIENT, attributes=attrs
    )


def end_llm_span(span: Any, r: LLMCall) -> None:
    """Record the call's outcome on ``span`` and end it."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    if r.error:
        span.set_attribute("error.type", r.error.split(":", 1)[0])
        span.set_status(Status(StatusCode.ERROR, r.error))
    else:
        span.set_attributes(
            {
                "gen_ai.response.model": r.response_model or r.model,
                "gen_ai.usage.input_tokens": r.prompt_tokens,
                "gen_ai.usage.output_tokens": r.completion_tokens,
                "gen_ai.response.finish_reasons": [r.finish_reason or "stop"],
                "trace_nb.cached": r.cached,
                "trace_nb.cost_usd": float(r.cost),
                "trace_nb.reply_chars": r.reply_chars,
            }
        )
    span.set_attributes(
        {"trace_nb.messages": r.messages, "trace_nb.message_chars": r.message_chars}
    )
    if _state["messages"] and r.bodies is not None:
        sent, reply = r.bodies
        span.set_attribute("gen_ai.input.messages", json.dumps(sent))
        span.set_attribute(
            "gen_ai.output.messages", json.dumps([{"role": "assistant", "content": reply}])
        )
    span.end()


def wants_bodies() -> bool:
    """Whether spans record message texts (then the client collects them)."""
    return bool(_state["messages"]) and active()


# -- runs and steps -----------------------------------------------------------------------
class _Null:
    """What a span helper gives when spans are off: accepts everything, does nothing."""

    span = None

    def done(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


NULL = _Null()


def attributes_of(values: dict[str, Any], prefix: str = "trace_nb.") -> dict[str, Any]:
    """The values OpenTelemetry can carry (numbers, bools, short text), prefixed."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if v is None:
            continue
        if isinstance(v, bool | int | float):
            out[prefix + k] = v
        elif isinstance(v, str):
            out[prefix + k] = scrubbed(v)[:500]
        elif isinstance(v, list | tuple) and all(isinstance(x, str) for x in v):
            out[prefix + k] = [scrubbed(x)[:200] for x in v]
    return out


@contextmanager
def span(name: str, attributes: dict[str, Any] | None = None, parent: Any = None) -> Iterator[Any]:
    """A span that is current inside the ``with`` (a child of ``parent``, a span, when
    given); records an escaping exception. Yields the span, or None when spans are off."""
    t = tracer()
    if t is None:
        yield None
        return
    from opentelemetry import trace

    context = trace.set_span_in_context(parent) if parent is not None else None
    with t.start_as_current_span(
        name,
        context=context,
        attributes=attributes or {},
        record_exception=False,  # OpenTelemetry would record the raw message: scrubbed below
        set_status_on_exception=False,
    ) as s:
        try:
            yield s
        except BaseException as e:
            _record_error(s, e)
            raise


def _record_error(span: Any, error: BaseException) -> None:
    """Mark ``span`` failed with ``error``'s type and message, scrubbed of keys."""
    from opentelemetry.trace import Status, StatusCode

    message = scrubbed(f"{type(error).__name__}: {error}")
    span.add_event(
        "exception",
        {"exception.type": type(error).__qualname__, "exception.message": scrubbed(str(error))},
    )
    span.set_attribute("error.type", type(error).__qualname__)
    span.set_status(Status(StatusCode.ERROR, message))


def instant(name: str, attributes: dict[str, Any], parent: Any) -> None:
    """A span that starts and ends now, under ``parent``."""
    t = tracer()
    if t is None:
        return
    from opentelemetry import trace

    context = trace.set_span_in_context(parent) if parent is not None else None
    t.start_span(name, context=context, attributes=attributes).end()
