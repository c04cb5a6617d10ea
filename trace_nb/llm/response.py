"""What a chat call returns: :class:`ChatReply` (from :meth:`LLM.chat`), and an
OpenAI-style view of it, so an ``LLM`` can be called the way the reference Trace calls its
models: ``llm(messages=[...]).choices[0].message.content``."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from .usage import CallUsage


@dataclass(frozen=True)
class ChatReply:
    """Result of :meth:`LLM.chat`.

    Attributes
    ----------
    text
        The assistant message content.
    model
        Model name the server reported (or the requested one when absent).
    usage
        Token, latency and cost accounting of this call.
    json_mode
        Output mode actually used: ``"json_schema"``, ``"json_object_schema"``,
        ``"json_object"`` or ``"none"``.
    cached
        True when the reply came from the response cache.
    finish_reason
        Why the model stopped (``"stop"``, ``"length"``: cut off by ``max_tokens``,
        ``"content_filter"``...), when the server said; None for cached replies.
    refused
        The model refused (the text is its refusal message).
    """

    text: str
    model: str
    usage: CallUsage
    json_mode: str
    cached: bool
    finish_reason: str | None = None
    refused: bool = False


def openai_style(reply: Any) -> SimpleNamespace:
    """``choices[0].message.content``, ``choices[0].finish_reason``, ``model`` and ``usage``
    (``prompt_tokens``, ``completion_tokens``, ``total_tokens``) of ``reply``."""
    u = reply.usage
    usage = SimpleNamespace(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.prompt_tokens + u.completion_tokens,
    )
    message = SimpleNamespace(role="assistant", content=reply.text)
    choice = SimpleNamespace(
        index=0, message=message, finish_reason=getattr(reply, "finish_reason", None) or "stop"
    )
    return SimpleNamespace(choices=[choice], model=reply.model, usage=usage, trace_nb_reply=reply)


def chat_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a reference-style call that :meth:`LLM.chat` understands;
    anything else is refused with the reason (never silently dropped)."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in ("max_tokens", "temperature"):
            out[key] = value
        elif key == "response_format":
            fmt = value or {}
            kind = fmt.get("type") if isinstance(fmt, dict) else None
            if kind == "json_schema":
                out["json_schema"] = (fmt.get("json_schema") or {}).get("schema")
            elif kind in ("json_object", "text"):
                out["json"] = kind == "json_object"
            else:
                raise TypeError(
                    f"response_format {value!r} is not supported; use "
                    "{'type': 'json_object'} or {'type': 'json_schema', ...}"
                )
        else:
            raise TypeError(
                f"LLM(...)(messages=...) does not take {key!r}; it takes max_tokens, "
                "temperature and response_format (or use LLM.chat)"
            )
    return out
