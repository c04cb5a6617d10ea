"""Exception types raised by :mod:`trace_nb.llm`.

Both exceptions carry plain-text messages meant to be read in a notebook
cell's traceback, so they say what failed and how to fix it. They never
contain the API key: messages built from server responses pass through
:func:`scrub_secret` first, because some providers echo part of the key
back in their 401 error bodies.
"""

from __future__ import annotations

import logging
import os
import pickletools
import re
import threading
from collections.abc import Iterator

__all__ = [
    "MIN_SECRET_CHARS",
    "LLMError",
    "LLMConfigError",
    "LLMResponseError",
    "LLMTimeoutError",
    "SCRUB_FILTER",
    "register_secret",
    "scrub_secret",
    "secrets_in",
    "secrets_in_pickle",
]

# OpenAI-style secret keys ("sk-...", "sk-proj-..."), including the
# partially masked form ("sk-abc***xyz") that OpenAI puts into 401 messages.
# Only at the start of a word: "task-oriented" or "risk-averse" in a reply are not keys.
_KEY_PATTERN = re.compile(r"(?<![\w-])sk-[A-Za-z0-9_\-*]{12,}")
#: Shorter "keys" ("ollama", "EMPTY", "lm-studio": what local servers take) are not
#: secrets, and scrubbing them from every text would mangle ordinary words in replies.
MIN_SECRET_CHARS = 12
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember a key in use, so that :func:`scrub_secret` removes it from any text.

    Every :class:`~trace_nb.llm.LLM` registers its key: a message built anywhere (a log
    line, an error, a reply that echoes the request) is scrubbed of every key this process
    has used, not only of the one the caller happens to know about.
    """
    if secret and len(secret) >= MIN_SECRET_CHARS:
        with _SECRETS_LOCK:
            _SECRETS.add(secret)


_SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.I)
_KEY_BYTES = re.compile(rb"(?<![\w-])sk-[A-Za-z0-9_\-]{12,}")


def secrets_in(data: bytes) -> list[str]:
    """What in ``data`` looks like a secret, described without the secret itself: keys
    registered with :func:`register_secret`, anything shaped like an OpenAI key (``sk-…``),
    and the value of any environment variable whose name says key, token, secret,
    password or credential (values of at least :data:`MIN_SECRET_CHARS` characters).

    ``data`` is read as raw bytes; for a pickle use :func:`secrets_in_pickle`."""
    return _secrets(data, _KEY_BYTES.search(data) is not None)


def _secrets(data: bytes, shaped: bool) -> list[str]:
    def held(value: str) -> bool:  # as UTF-8, or as the UTF-32 numpy pickles text in
        return value.encode() in data or value.encode("utf-32-le") in data

    found = []
    with _SECRETS_LOCK:
        registered = list(_SECRETS)
    if any(held(value) for value in registered):
        found.append("an API key an LLM client uses")
    if shaped:
        found.append("text shaped like an OpenAI key (sk-...)")
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= MIN_SECRET_CHARS and held(value):
            found.append(f"the value of ${name}")
    return found


def _pickled_texts(data: bytes, depth: int = 0) -> Iterator[str]:
    """Every string and bytes value pickled in ``data`` (bytes read as Latin-1), and those of
    pickles nested in bytes values, a few levels deep. Raises ValueError when ``data`` is
    not a pickle."""
    for _op, arg, _pos in pickletools.genops(data):
        if isinstance(arg, str):
            yield arg
        elif isinstance(arg, bytes | bytearray):
            yield bytes(arg).decode("latin-1")
            if depth < 4 and arg[:1] == b"\x80":  # a pickle inside (a payload, a task)
                try:
                    yield from _pickled_texts(bytes(arg), depth + 1)
                except ValueError:
                    pass  # bytes that only start like a pickle


#: An OpenAI key in UTF-32-LE, the form numpy pickles its text in (``np.str_``, ``<U``
#: arrays), where no byte-wise reading of the pickle finds it.
_KEY_UTF32 = re.compile(
    rb"(?<![A-Za-z0-9_\-]\x00\x00\x00)s\x00\x00\x00k\x00\x00\x00-\x00\x00\x00"
    rb"(?:[A-Za-z0-9_\-*]\x00\x00\x00){12,}"
)
#: Without word boundaries: only for bytes that are not a pickle (see :func:`secrets_in_pickle`).
_ANY_KEY_BYTES = re.compile(rb"sk-[A-Za-z0-9_\-]{12,}")


def secrets_in_pickle(data: bytes) -> list[str]:
    """:func:`secrets_in` for a pickle, read through its strings rather than its bytes.

    Pickle frames each string with its length, and that byte can be a letter or a digit
    (a 51-character key follows ``"3"``), so a pattern that wants a word boundary before
    ``sk-`` misses it in the raw bytes. Here every string (and bytes value, and nested
    pickle) is decoded first and checked as text; bytes that are not a pickle are checked
    with no boundary at all (a false alarm there is better than a key sent away). Text
    that numpy pickles (``np.str_``, ``<U`` arrays) is UTF-32: it is searched in that form.
    """
    try:
        shaped = any(_KEY_PATTERN.search(text) for text in _pickled_texts(data))
    except ValueError:  # not a pickle after all
        shaped = _ANY_KEY_BYTES.search(data) is not None
    return _secrets(data, shaped or _KEY_UTF32.search(data) is not None)


def scrub_secret(text: str, secret: str | None = None) -> str:
    """Remove API keys (and anything that looks like one) from ``text``.

    This is the one choke point: error messages (:class:`LLMError` scrubs its own),
    log records of ``trace_nb`` loggers (:data:`SCRUB_FILTER`) and every response body
    read from the wire pass through it.

    Parameters
    ----------
    text
        Message that may have been built from a server response.
    secret
        A key to remove besides the registered ones.

    Returns
    -------
    str
        ``text`` with each key replaced by ``"***"``.
    """
    if not isinstance(text, str):
        text = str(text)
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    if secret and len(secret) >= 4:
        secrets.insert(0, secret)
    for value in secrets:
        if value in text:
            text = text.replace(value, "***")
    return _KEY_PATTERN.sub("sk-***", text)


class _ScrubFilter(logging.Filter):
    """Scrubs keys from a log record's message and traceback before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: log it as it is
            message = str(record.msg)
        record.msg, record.args = scrub_secret(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_secret(record.exc_text)
        return True


#: Attached to every trace_nb logger that may see server text (``trace_nb.llm`` and below).
SCRUB_FILTER = _ScrubFilter()


class LLMError(RuntimeError):
    """A chat call failed (after retries, where retrying made sense).

    Parameters
    ----------
    message
        Human-readable description: what failed, how many attempts were
        made, and which base URL and model were used.
    attempts
        Number of HTTP attempts made before giving up.
    status
        Last HTTP status code seen, or ``None`` for network-level failures.
    base_url, model
        Endpoint and model of the failed call (never the API key).
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: int = 0,
        status: int | None = None,
        base_url: str | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(scrub_secret(message))
        self.attempts = attempts
        self.status = status
        self.base_url = base_url
        self.model = model


class LLMConfigError(LLMError, ValueError):
    """The LLM client is missing configuration (model, API key, or base URL).

    Subclasses :class:`ValueError` too, since it reports a bad argument
    rather than a failure at run time.
    """


class LLMResponseError(LLMError):
    """The server kept answering with a body that is not a readable chat completion."""


class LLMTimeoutError(LLMError):
    """The call did not finish within its time limit (per attempt, or the overall deadline)."""
