"""One logical chat call of an :class:`~trace_nb.llm.client.LLM`: the JSON-mode ladder and
the retries.

The client holds the settings; this module is the policy that uses them. A server that
rejects ``response_format`` is asked again one rung lower (schema, JSON object, plain), and
the rung that worked is remembered for the next call. Rate limits (429), 5xx, timeouts,
dropped connections and garbled bodies are retried with exponential backoff (honouring
``Retry-After``) until ``max_retries`` or the deadline; every way of failing ends in one
:class:`~trace_nb.llm.errors.LLMError` that never shows the key.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .errors import LLMError, LLMResponseError, LLMTimeoutError, scrub_secret
from .transport import AttemptTimeout, prompt_chars_of, send
from .wire import (
    Completion,
    MalformedBody,
    error_detail,
    mentions_response_format,
    mode_ladder,
    request_kwargs,
    retry_after,
)

__all__ = ["call_error", "request"]

log = logging.getLogger("trace_nb.llm")


def call_error(
    llm: Any, what: str, attempts: int, status: int | None, kind: type[LLMError] = LLMError
) -> LLMError:
    """The error that ends a call: what failed, how often it was tried, where; no key."""
    message = (
        f"LLM call to {llm.base_url} (model {llm.model!r}) failed after "
        f"{attempts} attempt{'s' if attempts != 1 else ''}: {what}"
    )
    message = scrub_secret(message, llm._key.value)  # this key, however short
    error = kind(
        message,
        attempts=attempts,
        status=status,  # and every registered one
        base_url=llm.base_url,
        model=llm.model,
    )
    log.debug("%s", error)
    return error


def request(
    llm: Any,
    client: Any,
    messages: list[dict[str, Any]],
    schema: dict[str, Any] | None,
    temperature: float | None,
    max_tokens: int | None,
    wants_json: bool | None = None,
) -> tuple[Completion, str]:
    """One logical call: JSON-mode fallback on rejection, retries on transient errors.

    ``wants_json``: see :func:`~trace_nb.llm.wire.mode_ladder` (None: JSON iff a schema).
    """
    import openai

    has_schema = schema is not None
    ladder = mode_ladder(llm.base_url, llm.json_mode, has_schema, wants_json)
    # What was learned about the server's JSON modes is kept per kind of call; plain-text
    # calls have nothing to learn and must not reset what JSON calls learned.
    learned_key: bool | str = has_schema if ladder != ("none",) else "text"
    rung = min(llm._learned.get(learned_key, 0), len(ladder) - 1)
    attempts = retries = 0
    call_ends = None if llm.deadline is None else time.monotonic() + llm.deadline
    prompt_chars = prompt_chars_of(messages)
    while True:
        mode = ladder[rung]
        attempts += 1
        status: int | None = None
        kind: type[LLMError] = LLMError
        delay = llm.backoff * 2**retries
        limit = llm.timeout
        if call_ends is not None:
            limit = min(limit, call_ends - time.monotonic())
            if limit <= 0:
                raise call_error(
                    llm,
                    f"the deadline of {llm.deadline:g} s passed",
                    attempts - 1,
                    None,
                    LLMTimeoutError,
                )
        try:
            kwargs = request_kwargs(
                llm.model,
                messages,
                mode=mode,
                schema=schema,
                temperature=temperature,
                seed=llm.seed,
                max_tokens=max_tokens,
            )
            done = send(client, kwargs, limit, llm.model, prompt_chars, llm._inbound_secret())
            llm._learned[learned_key] = rung
            return done, mode
        except openai.APIStatusError as exc:
            status = exc.status_code
            detail = error_detail(exc, llm._key.value)  # scrubbed, then cut
            what = f"HTTP {status}: {detail}"
            mentions = mentions_response_format(f"{detail} {exc.body}")
            rejected = status in (400, 422) or (status == 500 and mentions)
            if mode != "none" and rejected and rung + 1 < len(ladder):
                log.info(
                    "server rejected response_format %s (%s); trying %s",
                    mode,
                    what,
                    ladder[rung + 1],
                )
                rung += 1
                continue
            if status != 429 and status < 500:
                raise call_error(llm, what, attempts, status) from None
            delay = retry_after(exc.response.headers) or delay
        except (openai.APITimeoutError, AttemptTimeout):
            what, kind = f"timed out after {limit:g} s", LLMTimeoutError
        except openai.APIConnectionError as exc:
            cause = exc.__cause__
            what = f"connection error ({type(cause).__name__ if cause else 'unknown'}: {cause})"
        except MalformedBody as exc:
            what, kind = f"malformed response: {exc}", LLMResponseError
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - any other wire failure is an LLMError
            what, kind = f"unexpected {type(exc).__name__}: {exc}", LLMResponseError
        if retries >= llm.max_retries:
            raise call_error(llm, what, attempts, status, kind) from None
        if call_ends is not None:
            delay = min(delay, max(call_ends - time.monotonic(), 0.0))
        log.info("LLM attempt %d failed (%s); retrying in %.2f s", attempts, what, delay)
        time.sleep(delay)
        retries += 1
