"""The :class:`LLM` chat client: config, retries, JSON-mode fallback, caching.

Wraps the official ``openai`` client (imported lazily on the first call so
``import trace_nb.llm`` stays cheap) against OpenAI or any OpenAI-compatible
server (Ollama, vLLM, llama.cpp, LM Studio). The SDK's own retries are
disabled: we retry ourselves so that every failure mode (rate limits, 5xx,
timeouts, dropped or garbled bodies) ends in one :class:`LLMError` that says
what happened, how often we tried, and where, without ever showing the key.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..tracking.events import observed_chat, observing
from .cache import CachedReply, ResponseCache, cache_key, resolve_cache
from .errors import (
    MIN_SECRET_CHARS,
    SCRUB_FILTER,
    LLMConfigError,
    register_secret,
)
from .models import OPENAI_BASE_URL, announce_once, discover_model
from .response import ChatReply
from .retrying import request
from .transport import cacheable, clean_messages
from .usage import CallUsage, UsageTotals, compute_cost, merge_prices, report_usage
from .wire import (
    JSON_MODES,
    Completion,
    mode_ladder,
)

__all__ = ["LLM", "ChatReply", "JSON_MODES"]

log = logging.getLogger("trace_nb.llm")
log.addFilter(SCRUB_FILTER)  # every record of this logger is scrubbed of keys

_PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key but the SDK demands one

_HOW_TO_CONFIGURE = (
    "Configure it in one of these ways:\n"
    "  * LLM(model='gpt-4o-mini', api_key='sk-...')\n"
    "  * environment variables TRACE_NB_MODEL=gpt-4o-mini and OPENAI_API_KEY=sk-...\n"
    "  * a local OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) needs no key:\n"
    "    LLM(model='llama3.1', base_url='http://localhost:11434/v1') "
    "or env OPENAI_BASE_URL=http://localhost:11434/v1\n"
    "    (with no model named, the one model the server lists is used)\n"
    "  * for one %%trace cell: llm = LLM(...), then %%trace --llm llm"
)


class _Secret:
    """Holds the API key so that ``vars(llm)`` or a debugger never shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"


class LLM:
    """Chat client for OpenAI and OpenAI-compatible servers.

    Parameters
    ----------
    model, api_key, base_url
        Fall back to env ``TRACE_NB_MODEL``, ``OPENAI_API_KEY`` and
        ``OPENAI_BASE_URL``. With a ``base_url`` no key is required. With no model named
        either way, the server is asked (``GET {base_url}/models``): when it serves exactly
        one model, that one is used and a line on stderr says so (once per server and
        model); otherwise :class:`LLMConfigError` says how to name one. OpenAI's own
        endpoint serves many, so it is not asked.
    timeout
        Seconds per HTTP attempt, the whole attempt: connecting, headers and body (a
        server that trickles bytes cannot hold an attempt longer).
    deadline
        Seconds for the whole ``chat()`` call, retries and back-off included (None: no
        limit beyond ``timeout`` per attempt).
    max_retries
        Retries after the first attempt on 429, 5xx, timeouts, connection
        errors and malformed bodies; other 4xx fail at once.
    backoff
        Base delay: retry ``n`` (from 0) sleeps ``backoff * 2**n`` seconds,
        or the server's ``Retry-After`` (capped at 10 s) when given.
    cache
        ``True`` (default location), ``False``, or a path to an SQLite file.
    prices
        ``{model: (usd_in_per_1M, usd_out_per_1M)}`` merged over
        :data:`~trace_nb.llm.usage.DEFAULT_PRICES`.
    temperature, seed, max_tokens
        Sampling defaults; ``chat`` may override temperature and max_tokens.
    json_mode
        ``"auto"`` finds the best mode the server accepts and remembers it;
        or force one of ``"json_schema"``, ``"json_object_schema"``,
        ``"json_object"``, ``"none"`` (plain text).

    Raises
    ------
    LLMConfigError
        When neither a key nor a base URL is given, or no model is named and the server
        does not serve exactly one.

    Notes
    -----
    The key never reaches a log record, an error message, a reply or the cache: every
    text read from the server and every message of ``trace_nb.llm`` passes
    :func:`~trace_nb.llm.errors.scrub_secret`.

    ``copy.copy``/``copy.deepcopy`` give an independent client (own usage totals,
    connection and locks) that keeps the key: it stays in this process. ``pickle`` never
    stores the key: an unpickled LLM reads ``OPENAI_API_KEY`` again, and if the original
    had a key and the variable is unset, its first ``chat()`` raises
    :class:`LLMConfigError` until :meth:`set_api_key` is called. The cache file path,
    settings and usage totals travel with it.
    """

    model_source = "argument"  # what an LLM pickled before model_source existed reads

    def __init__(
        self,
        model: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        cache: bool | str | os.PathLike[str] = True,
        prices: dict[str, tuple[float, float]] | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        max_tokens: int | None = None,
        json_mode: str = "auto",
        deadline: float | None = None,
    ) -> None:
        named = model or os.environ.get("TRACE_NB_MODEL")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not api_key and not base_url:
            what = f"model {named!r}" if named else "and no model"
            raise LLMConfigError(
                f"No API key or base URL set for trace_nb.llm.LLM ({what}).\n" + _HOW_TO_CONFIGURE
            )
        #: Where the model name came from: "argument", "TRACE_NB_MODEL" or "server" (the
        #: only model ``GET /models`` listed; see :mod:`trace_nb.llm.models`).
        self.model_source = "argument" if model else "TRACE_NB_MODEL" if named else "server"
        if not named:
            server = str(base_url or OPENAI_BASE_URL).rstrip("/")
            named = discover_model(server, api_key, timeout=min(float(timeout), 10.0))
            announce_once(named, server)
        model = named
        if json_mode != "auto" and json_mode not in JSON_MODES:
            raise LLMConfigError(
                f"json_mode must be 'auto' or one of {JSON_MODES}, got {json_mode!r}"
            )
        if max_retries < 0:
            raise LLMConfigError(f"max_retries must be >= 0, got {max_retries}")
        for label, value in (("timeout", timeout), ("deadline", deadline)):
            if value is not None and not (
                isinstance(value, (int, float)) and value > 0 and math.isfinite(value)
            ):
                raise LLMConfigError(f"{label} must be a positive number of seconds, got {value!r}")
        register_secret(api_key)
        self.model = str(model)
        self.base_url = str(base_url or OPENAI_BASE_URL).rstrip("/")
        self._key = _Secret(api_key or _PLACEHOLDER_KEY)
        self.timeout = float(timeout)
        self.deadline = None if deadline is None else float(deadline)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.json_mode = json_mode
        self.prices = merge_prices(prices)
        self._cache: ResponseCache | None = resolve_cache(cache)
        self._usage = UsageTotals()
        self._learned: dict[bool, int] = {}  # has_schema -> index into the mode ladder
        self._client: Any = None
        self._client_lock = threading.Lock()

    # -- introspection (never shows the key) ---------------------------------
    def __repr__(self) -> str:
        path = str(self._cache.path) if self._cache is not None else None
        return f"LLM(model={self.model!r}, base_url={self.base_url!r}, cache={path!r})"

    @property
    def usage(self) -> UsageTotals:
        """Running, thread-safe usage totals of this client."""
        return self._usage

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache, or ``None`` when caching is off."""
        return self._cache

    def describe(self) -> dict[str, Any]:
        """Configuration summary safe to print or log (no API key)."""
        in_use = {
            name: (
                mode_ladder(self.base_url, self.json_mode, has)[self._learned[has]]
                if has in self._learned
                else None
            )
            for name, has in (("with_schema", True), ("without_schema", False))
        }
        return {
            "model": self.model,
            "base_url": self.base_url,
            "cache_path": str(self._cache.path) if self._cache is not None else None,
            "json_mode": self.json_mode,
            "json_mode_in_use": in_use,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "api_key_set": self._key.value != _PLACEHOLDER_KEY,
        }

    # -- public call ---------------------------------------------------------
    def __call__(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        """Call it as the reference Trace calls its models: ``llm(messages=[...])`` returns an
        OpenAI-style response (``.choices[0].message.content``, ``.usage``); see
        :mod:`.response`. Takes ``max_tokens``, ``temperature`` and ``response_format``."""
        from .response import chat_kwargs, openai_style

        return openai_style(self.chat(messages, **chat_kwargs(kwargs)))

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        json: bool | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        cache_if: Callable[[str], bool] | None = None,
    ) -> ChatReply:
        """Send ``messages`` and return the assistant's reply.

        Parameters
        ----------
        messages
            OpenAI chat messages (``{"role": ..., "content": ...}``).
        json_schema
            JSON Schema the reply should follow; selects the JSON mode ladder.
        json
            Whether the reply must be a JSON object. The default (None) means: JSON when
            ``json_schema`` is given, plain text otherwise. ``json=True`` without a schema
            asks for any JSON object (``response_format={"type": "json_object"}`` where the
            server takes it). With the default ``json_mode="auto"``, a call without a schema
            and without ``json=True`` is sent with no ``response_format``, so a server that
            constrains its output (llama.cpp) answers in free text.
        max_tokens, temperature
            Per-call overrides of the constructor defaults.
        cache_if
            Only replies for which ``cache_if(text)`` is true are stored (and only stored
            ones are replayed), e.g. "the reply parsed". Whatever it says, empty,
            refused and cut-off (``finish_reason="length"``) replies are never cached,
            nor, when ``json_schema`` is given, replies that are not JSON.

        Raises
        ------
        LLMError
            When the server keeps failing or rejects the request
            (:class:`~trace_nb.llm.errors.LLMResponseError` for unreadable bodies,
            :class:`~trace_nb.llm.errors.LLMTimeoutError` past ``timeout``/``deadline``).
        """
        kwargs = {
            "json_schema": json_schema,
            "json": json,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "cache_if": cache_if,
        }
        if observing():  # a tracker (MLflow, OpenTelemetry) follows the calls
            return observed_chat(self, messages, kwargs, self._chat)
        return self._chat(messages, **kwargs)

    def _chat(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        json: bool | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        cache_if: Callable[[str], bool] | None = None,
    ) -> ChatReply:
        start = time.perf_counter()
        messages = clean_messages(messages)
        temperature = self.temperature if temperature is None else temperature
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        key = None
        if self._cache is not None:
            key = cache_key(
                base_url=self.base_url,
                model=self.model,
                messages=messages,
                temperature=temperature,
                seed=self.seed,
                max_tokens=max_tokens,
                json_schema=json_schema,
                wants_json=json,
            )
            hit = self._cache.get(key)
            if hit is not None and cacheable(hit.text, json_schema, cache_if):
                return self._finish(hit, start, cached=True)
        client = self._openai()
        start = time.perf_counter()  # latency excludes the one-off SDK import
        done, mode = request(
            self, client, messages, json_schema, temperature, max_tokens, wants_json=json
        )
        stored = CachedReply(
            done.text, done.model, done.prompt_tokens, done.completion_tokens, mode
        )
        if (
            self._cache is not None
            and key is not None
            and done.complete
            and cacheable(done.text, json_schema, cache_if)
        ):
            self._cache.put(key, stored)
        return self._finish(stored, start, cached=False, done=done)

    def set_api_key(self, api_key: str | None) -> None:
        """Use another key from now on (e.g. after unpickling, which drops the key)."""
        register_secret(api_key)
        with self._client_lock:
            self._key = _Secret(api_key or _PLACEHOLDER_KEY)
            self._needs_key = False
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- copying and pickling --------------------------------------------------
    # Decision: a deep copy stays in this process and keeps the key; a pickle may travel
    # (a file, a Dask worker) and never holds it. An unpickled LLM reads OPENAI_API_KEY
    # again; if the original had a key and the variable is unset, its first chat() raises
    # LLMConfigError until set_api_key() is called. Client, locks and the cache connection
    # are re-created on the other side.
    def __getstate__(self) -> dict[str, Any]:
        state = {
            k: v for k, v in self.__dict__.items() if k not in ("_key", "_client", "_client_lock")
        }
        state["_had_key"] = self._key.value != _PLACEHOLDER_KEY
        state["_cache"] = str(self._cache.path) if self._cache is not None else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        had_key = state.pop("_had_key", False)
        cache_path = state.pop("_cache", None)
        self.__dict__.update(state)
        env_key = os.environ.get("OPENAI_API_KEY")
        register_secret(env_key)
        self._key = _Secret(env_key or _PLACEHOLDER_KEY)
        self._needs_key = bool(had_key and not env_key)
        self._cache = resolve_cache(cache_path) if cache_path else None
        self._client = None
        self._client_lock = threading.Lock()

    def __copy__(self) -> LLM:
        return self.__deepcopy__({})  # shares nothing mutable (usage, client, locks)

    def __deepcopy__(self, memo: dict[int, Any]) -> LLM:
        new = LLM.__new__(LLM)
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        new._key, new._needs_key = self._key, getattr(self, "_needs_key", False)
        return new

    def close(self) -> None:
        """Close HTTP connections and the cache file."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------
    def _finish(
        self, reply: CachedReply, start: float, *, cached: bool, done: Completion | None = None
    ) -> ChatReply:
        cost, known = compute_cost(
            [self.model, reply.model], reply.prompt_tokens, reply.completion_tokens, self.prices
        )
        usage = CallUsage(
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            latency_s=time.perf_counter() - start,
            cost=0.0 if cached else cost,
            cost_known=known,
            cached=cached,
            model=reply.model,
        )
        self._usage.add(usage)
        report_usage(usage)  # to collect_usage() blocks around this call (remote workers)
        return ChatReply(
            reply.text,
            reply.model,
            usage,
            reply.json_mode,
            cached,
            done.finish_reason if done is not None else None,
            bool(done is not None and done.refused),
        )

    def _openai(self) -> Any:
        with self._client_lock:
            if getattr(self, "_needs_key", False):
                raise LLMConfigError(
                    f"this LLM (model {self.model!r}) was unpickled, and API keys are never "
                    "pickled; set OPENAI_API_KEY before unpickling, or call "
                    "llm.set_api_key('sk-...')"
                )
            if self._client is None:
                try:
                    import openai
                except ImportError as exc:
                    raise LLMConfigError(
                        "trace_nb.llm needs the openai package: pip install 'openai>=1.30'"
                    ) from exc
                self._client = openai.OpenAI(
                    api_key=self._key.value,
                    base_url=self.base_url,
                    timeout=self.timeout,
                    max_retries=0,
                )
            return self._client

    def _inbound_secret(self) -> str | None:
        """The key to scrub from replies: only a real one (short local placeholders are
        ordinary words a reply may contain)."""
        key = self._key.value
        return key if key != _PLACEHOLDER_KEY and len(key) >= MIN_SECRET_CHARS else None
