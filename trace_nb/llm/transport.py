"""One bounded HTTP attempt, and what may be sent and cached.

Kept apart from :mod:`trace_nb.llm.client` (the retry and fallback policy) so that the
rules about time, text and caching read on their own:

* an attempt is bounded as a whole (headers and body), not per read;
* every body read passes :func:`~trace_nb.llm.errors.scrub_secret` before anything else
  sees it, and its text has no lone surrogates;
* only complete, usable replies are cached or replayed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import scrub_secret
from .wire import Completion, MalformedBody, parse_completion

__all__ = ["AttemptTimeout", "cacheable", "clean_messages", "prompt_chars_of", "send"]

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Largest response body read (decompressed); a chat completion is far smaller.
MAX_BODY_BYTES = 32 * 1024 * 1024
_GRACE_S = 0.5  # the helper thread gets this long past the limit to report its own timeout


class AttemptTimeout(Exception):
    """One attempt ran past its time limit."""


def send(
    client: Any,
    kwargs: dict[str, Any],
    limit: float,
    model: str,
    prompt_chars: int,
    secret: str | None,
) -> Completion:
    """One HTTP attempt of a chat completion, bounded by ``limit`` seconds in all.

    The body is streamed and the clock checked between chunks; the attempt also runs in
    a helper thread, so that even a server trickling its headers cannot hold the caller
    past the limit (that thread then ends with the server's next byte or read timeout).

    Raises
    ------
    AttemptTimeout
        Past the limit.
    openai.APIError, MalformedBody
        As the SDK and :func:`~trace_nb.llm.wire.parse_completion` raise them.
    """
    ends = time.monotonic() + limit
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            with client.chat.completions.with_streaming_response.create(
                **kwargs, timeout=limit
            ) as response:
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if time.monotonic() > ends:
                        raise AttemptTimeout
                    if size > MAX_BODY_BYTES:  # e.g. a compressed body that expands without end
                        raise MalformedBody(f"body larger than {MAX_BODY_BYTES:,} bytes")
            body = b"".join(chunks).decode("utf-8", errors="replace")
            body = scrub_secret(body, secret)  # the inbound choke point
            box["done"] = parse_completion(body, model, prompt_chars)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    worker = threading.Thread(target=work, name="trace_nb-llm-call", daemon=True)
    worker.start()
    worker.join(max(limit, 0.0) + _GRACE_S)
    if worker.is_alive() or isinstance(box.get("error"), AttemptTimeout):
        raise AttemptTimeout
    if "error" in box:
        raise box["error"]
    done = box["done"]
    # Scrubbed again once decoded: a JSON escape (\u0073k-...) hides a key from the raw scrub.
    return dataclasses.replace(done, text=scrub_secret(done.text, secret))


def _clean(value: Any) -> Any:
    return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def clean_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with lone surrogates replaced (they cannot be sent as UTF-8 JSON)."""
    out = []
    for message in messages:
        if isinstance(message, dict):
            message = {
                k: (
                    [
                        {kk: _clean(vv) for kk, vv in p.items()}
                        if isinstance(p, dict)
                        else _clean(p)
                        for p in v
                    ]
                    if isinstance(v, list)
                    else _clean(v)
                )
                for k, v in message.items()
            }
        out.append(message)
    return out


def prompt_chars_of(messages: Any) -> int:
    """Characters of the messages' text (to estimate tokens a server did not report)."""
    total = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(str(p.get("text") or "")) for p in content if isinstance(p, dict))
    return total


def cacheable(
    text: str, schema: dict[str, Any] | None, cache_if: Callable[[str], bool] | None
) -> bool:
    """Whether a reply may be stored or replayed (see :meth:`trace_nb.llm.LLM.chat`)."""
    if not isinstance(text, str) or not text.strip():
        return False
    if schema is not None:
        body = text.strip()
        if body.startswith("```"):
            body = body.strip("`").strip()
            body = body[4:] if body.startswith("json") else body
        try:
            json.loads(body)
        except (ValueError, RecursionError):
            return False
    if cache_if is not None:
        try:
            return bool(cache_if(text))
        except Exception:  # noqa: BLE001 - a failing check means "do not cache"
            return False
    return True
