"""OpenAI chat-completions wire format: request fields, JSON modes, response parsing.

Kept apart from :mod:`trace_nb.llm.client` so that the policy there (retries,
fallback, caching, accounting) reads without the details of what goes over
the wire, and so these pure functions can be tested on their own.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "JSON_MODES",
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


def mode_ladder(base_url: str, json_mode: str, has_schema: bool) -> tuple[str, ...]:
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
    """
    if json_mode != "auto":
        if json_mode in ("json_schema", "json_object_schema") and not has_schema:
            return ("json_object",)
        return (json_mode,)
    if not has_schema:
        return ("json_object", "none")
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
    """Seconds requested by ``Retry-After`` (or ``retry-after-ms``), capped at 10 s."""
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
    except (TypeError, ValueError, OverflowError):
        return None
    return None if seconds is None else min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def error_detail(exc: Any) -> str:
    """Short readable reason from an SDK status error (JSON error body or HTML page)."""
    body = exc.body
    if isinstance(body, dict):
        detail = str(body.get("message") or json.dumps(body))
    elif isinstance(body, str) and body.strip():
        detail = " ".join(re.sub(r"<[^>]+>", " ", body).split())  # strip HTML tags
    else:
        detail = str(exc.message)
    return detail[:300]


def parse_completion(body: str, requested_model: str) -> tuple[str, str, int, int]:
    """Read (text, model, prompt_tokens, completion_tokens) from a raw body."""
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedBody(f"body is not JSON: {body[:80]!r}") from None
    try:
        message = data["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise MalformedBody(f"no choices[0].message in body: {body[:80]!r}") from None
    text = message.get("content")
    if not isinstance(text, str):
        text = message.get("refusal") or ""
    usage = data.get("usage") or {}
    return (
        text,
        str(data.get("model") or requested_model),
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
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
