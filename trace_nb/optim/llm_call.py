"""How an optimizer talks to its LLM: trace_nb's ``LLM``, or any callable.

An optimizer accepts

* a :class:`trace_nb.llm.LLM` (or anything with the same ``chat(messages, json_schema=...,
  max_tokens=...)`` method returning an object with ``.text``), or
* any callable taking ``messages=[...]`` and returning an OpenAI-style response
  (``response.choices[0].message.content``), a dict of that shape, or plain text. This is
  the calling convention of the reference Trace's ``AbstractModel``, so an LLM object
  written for it works here unchanged.

:func:`prewarm_openai` starts importing ``openai`` in a background thread when an
optimizer is created, so that the first Propose does not pay the ~2 s import.
"""

from __future__ import annotations

import inspect
import sys
import threading
from dataclasses import dataclass
from typing import Any

_prewarm_lock = threading.Lock()
_prewarm_thread: threading.Thread | None = None


def prewarm_openai() -> threading.Thread | None:
    """Import ``openai`` in a daemon thread, once per process; None when already imported.

    Harmless when openai is missing or its import fails: the error surfaces, with advice,
    on the first real call instead.
    """
    global _prewarm_thread
    if "openai" in sys.modules:
        return None
    with _prewarm_lock:
        if _prewarm_thread is None:

            def run() -> None:
                try:
                    import openai  # noqa: F401
                except Exception:  # pragma: no cover - reported on first use instead
                    pass

            _prewarm_thread = threading.Thread(
                target=run, name="trace_nb-openai-import", daemon=True
            )
            _prewarm_thread.start()
        return _prewarm_thread


@dataclass
class Answer:
    """What an optimizer needs back from one call."""

    text: str
    usage: Any = None
    json_mode: str | None = None


def is_llm(obj: Any) -> bool:
    """Whether an optimizer can talk to ``obj`` (see the module docstring): it has a
    ``chat()`` method or is itself callable."""
    return callable(getattr(obj, "chat", None)) or callable(obj)


def uses_openai(llm: Any) -> bool:
    """Whether calling ``llm`` will need the openai package (trace_nb's own client)."""
    if llm is None:
        return True
    return type(llm).__module__.startswith("trace_nb.llm")


def ask(
    llm: Any,
    messages: list[dict],
    schema: dict | None = None,
    max_tokens: int | None = None,
    cache_if: Any = None,
    temperature: float | None = None,
) -> Answer:
    """Send ``messages`` to ``llm`` (either kind, see the module docstring) and read the text.

    ``cache_if(text)`` decides whether a trace_nb ``LLM`` may cache the reply.
    ``temperature`` is passed only to an LLM that takes one (:func:`takes_temperature`).
    """
    chat = getattr(llm, "chat", None)
    if callable(chat):
        kwargs: dict[str, Any] = {"json_schema": schema}
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if cache_if is not None and _accepts(chat, "cache_if"):
            kwargs["cache_if"] = cache_if
        if temperature is not None and _accepts(chat, "temperature"):
            kwargs["temperature"] = temperature
        reply: Any = chat(messages, **kwargs)  # a ChatReply, or what a look-alike returns
        return Answer(reply.text, getattr(reply, "usage", None), getattr(reply, "json_mode", None))
    if not callable(llm):
        raise TypeError(
            f"the optimizer's llm must be a trace_nb.llm.LLM, an object with a chat() method, "
            f"or a callable taking messages=[...]; got {type(llm).__name__}"
        )
    kwargs = {"messages": messages}
    if max_tokens is not None and _accepts(llm, "max_tokens"):
        kwargs["max_tokens"] = max_tokens
    if temperature is not None and _accepts(llm, "temperature"):
        kwargs["temperature"] = temperature
    response = llm(**kwargs)
    return Answer(response_text(response), getattr(response, "usage", None), None)


def takes_temperature(llm: Any) -> bool:
    """Whether ``ask`` can pass ``llm`` a temperature (its ``chat``, or the callable, takes one)."""
    chat = getattr(llm, "chat", None)
    return _accepts(chat if callable(chat) else llm, "temperature")


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def response_text(response: Any) -> str:
    """The assistant's text in an OpenAI-style response object or dict, or a plain string."""
    if isinstance(response, str):
        return response
    text = getattr(response, "text", None)
    if isinstance(text, str):
        return text
    try:
        if isinstance(response, dict):
            content = response["choices"][0]["message"]["content"]
        else:
            content = response.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError) as e:
        raise TypeError(
            "the LLM returned an object without choices[0].message.content "
            f"({type(response).__name__}); return an OpenAI-style response or a string"
        ) from e
    return content or ""
