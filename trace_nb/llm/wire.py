"""OpenAI chat-completions wire format: request fields, JSON modes, response parsing.

Kept apart from :mod:`trace_nb.llm.client` so that the policy there (retries,
fallback, caching, accounting) reads without the details of what goes over
the wire, and so these pure functions can be tested on their own.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .errors import scrub_secret
from .usage import estimate_tokens

__all__ = [
    "JSON_MODES",
    "Completion",
    "MalformedBody",
    "is_openai_url",
    "mode_ladder",
    "response_format",
    "request_kwargs",
    "retry_after",
    "error_detail",
    "mentions_response_format",
    "parse_completion",
]

JSON_MODES = ("json_schema", "json_object_schema", "json_object", "none")
_MAX_RETRY_AFTER_S = 10.0
_FORMAT_WORDS = re.compile(r"response_format|json|schema", re.IGNORECASE)
# Reasoning models reject temperature != 1 and the legacy max_tokens field.
_REASONING_MODEL = re.compile(r"^(o\d+|gpt-5)")


class MalformedBody(Exception):
    """The server answered 200 with a body we cannot read as a chat completion."""


def is_openai_url(base_url: str) -> bool:
    """True for the official OpenAI endpoint (the only one known to take json_schema)."""
    return (urlparse(base_url).hostname or "").lower() == "api.openai.com"


def mode_ladder(
    base_url: str, json_mode: str, has_schema: bool, wants_json: bool | None = None
) -> tuple[str, ...]:
    """JSON output modes to try for one call, best first.

    Parameters
    ----------
    base_url
        Endpoint; OpenAI supports ``json_schema``, other servers get the
        llama.cpp-style ``json_object`` + ``schema`` extension first.
    json_mode
        ``"auto"`` or a forced mode from :data:`JSON_MODES`. A forced
        schema mode without a schema degrades to ``json_object``.
    has_schema
        Whether the call passes a ``json_schema``.
    wants_json
        Whether the reply must be JSON. ``None`` (the default) means: JSON when there is
        a schema, plain text otherwise. Under ``"auto"`` a call without a schema that does
        not ask for JSON is sent as plain text (``"none"``): a server that constrains its
        output (llama.cpp) would otherwise force any reply, a story or an answer, into a
        JSON object.
    """
    if wants_json is None:
        wants_json = has_schema
    if json_mode != "auto":
        if json_mode in ("json_schema", "json_object_schema") and not has_schema:
            return ("json_object",)
        return (json_mode,)
    if not has_schema:
        return ("json_object", "none") if wants_json else ("none",)
    first = "json_schema" if is_openai_url(base_url) else "json_object_schema"
    return (first, "json_object", "none")


def response_format(mode: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``mode`` (None for ``"none"``)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def retry_after(headers: Any) -> float | None:
    """Seconds requested by ``Retry-After`` (or ``retry-after-ms``), capped at 10 s.

    None when absent or unreadable (``nan``, ``inf``, garbage, a date out of range).
    """
    seconds: float | None = None
    try:
        if headers.get("retry-after-ms"):
            seconds = float(headers["retry-after-ms"]) / 1000.0
        elif headers.get("retry-after"):
            value = headers["retry-after"]
            try:
                seconds = float(value)
            except ValueError:  # HTTP-date form
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, AttributeError, IndexError):
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def error_detail(exc: Any, secret: str | None = None) -> str:
    """Short readable reason from an SDK status error (JSON error body or HTML page).

    Keys are scrubbed (``secret`` and every registered one) *before* the text is cut to
    300 characters: a key straddling the cut would no longer be found whole afterwards.
    """
    body = exc.body
    if isinstance(body, dict):
        detail = str(body.get("message") or json.dumps(body))
    elif isinstance(body, str) and body.strip():
        detail = " ".join(re.sub(r"<[^>]+>", " ", body).split())  # strip HTML tags
    else:
        detail = str(exc.message)
    return scrub_secret(detail, secret)[:300]


@dataclass(frozen=True)
class Completion:
    """What one 200 body says.

    Attributes
    ----------
    text
        The assistant's text: ``content`` (text parts joined), else a tool call's
        arguments, else the refusal text, else "".
    model
        Model the server reported (the requested one when absent or not a string).
    prompt_tokens, completion_tokens
        Token counts; estimated from the text (4 characters a token) when the server's
        are missing, not whole non-negative numbers, or absurdly large.
    refused
        The model refused (``message.refusal``).
    finish_reason
        ``choices[0].finish_reason`` when it is a string ("stop", "length"...).
    estimated
        The token counts are estimates.
    """

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    refused: bool = False
    finish_reason: str | None = None
    estimated: bool = False

    @property
    def complete(self) -> bool:
        """A usable, finished answer: not empty, not refused, not cut off by max_tokens."""
        return (
            bool(self.text.strip())
            and not self.refused
            and self.finish_reason not in ("length", "content_filter")
        )


_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_TOKENS = 10**9  # no single call uses more; beyond it a count is garbage


def _count(value: Any) -> int | None:
    """A token count as the server gave it, or None when it is not a sane whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 12:
        value = int(value.strip())
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _MAX_TOKENS:
        return value
    return None


def _content_text(content: Any) -> str | None:
    """``content`` as text: a str, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts) if parts else None
    return None


def _tool_text(message: dict[str, Any]) -> str | None:
    """The arguments of the first tool (or legacy function) call, which hold the JSON."""
    calls = message.get("tool_calls")
    first = calls[0] if isinstance(calls, list) and calls else message.get("function_call")
    if isinstance(first, dict):
        function = first.get("function", first)
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            return function["arguments"]
    return None


def parse_completion(body: str, requested_model: str, prompt_chars: int = 0) -> Completion:
    """Read a raw 200 body as a chat completion.

    Raises
    ------
    MalformedBody
        When the body is not JSON or has no readable ``choices[0].message`` (the
        message says which part was wrong).
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedBody(f"body is not JSON: {body[:80]!r}") from None
    if not isinstance(data, dict):
        raise MalformedBody(f"body is a JSON {type(data).__name__}, not an object: {body[:80]!r}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedBody(f"no choices[0] object in body: {body[:80]!r}")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        kind = "null" if message is None else type(message).__name__
        raise MalformedBody(f"choices[0].message is {kind}, not an object: {body[:80]!r}")
    refusal = message.get("refusal")
    text = _content_text(message.get("content"))
    if not text:
        text = _tool_text(message) or text
    refused = isinstance(refusal, str) and bool(refusal.strip()) and not text
    if refused:
        text = refusal
    text = _SURROGATE.sub("\ufffd", text or "")  # lone surrogates cannot be re-encoded
    reported = data.get("usage")
    usage = reported if isinstance(reported, dict) else {}
    p_tok, c_tok = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    estimated = p_tok is None or c_tok is None
    if p_tok is None:
        p_tok = estimate_tokens(prompt_chars)
    if c_tok is None:
        c_tok = estimate_tokens(len(text))
    model = data.get("model")
    finish = choices[0].get("finish_reason")
    return Completion(
        text,
        model if isinstance(model, str) and model else requested_model,
        p_tok,
        c_tok,
        refused,
        finish if isinstance(finish, str) else None,
        estimated,
    )


def mentions_response_format(text: str) -> bool:
    """True when an error text is about response_format / JSON / schema."""
    return bool(_FORMAT_WORDS.search(text))


def request_kwargs(
    model: str,
    messages: list[dict[str, Any]],
    *,
    mode: str,
    schema: dict[str, Any] | None,
    temperature: float | None,
    seed: int | None,
    max_tokens: int | None,
) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create``.

    Reasoning models (``o1``/``o3``/``o4``..., ``gpt-5``) get no temperature
    and ``max_completion_tokens`` instead of ``max_tokens``, since they
    reject both with a 400 that would otherwise look like a JSON-mode refusal.
    """
    kwargs: dict[str, Any] = {"model": model, "messages": messages}
    reasoning = bool(_REASONING_MODEL.match(model))
    if temperature is not None and not reasoning:
        kwargs["temperature"] = temperature
    if seed is not None:
        kwargs["seed"] = seed
    if max_tokens is not None:
        kwargs["max_completion_tokens" if reasoning else "max_tokens"] = max_tokens
    fmt = response_format(mode, schema)
    if fmt is not None:
        # extra_body: the SDK would strip the non-standard "schema" key.
        kwargs["extra_body"] = {"response_format": fmt}
    return kwargs
