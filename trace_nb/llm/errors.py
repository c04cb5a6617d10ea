"""Exception types raised by :mod:`trace_nb.llm`.

Both exceptions carry plain-text messages meant to be read in a notebook
cell's traceback, so they say what failed and how to fix it. They never
contain the API key: messages built from server responses pass through
:func:`scrub_secret` first, because some providers echo part of the key
back in their 401 error bodies.
"""

from __future__ import annotations

import re

__all__ = ["LLMError", "LLMConfigError", "scrub_secret"]

# OpenAI-style secret keys ("sk-...", "sk-proj-..."), including the
# partially masked form ("sk-abc***xyz") that OpenAI puts into 401 messages.
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")


def scrub_secret(text: str, secret: str | None = None) -> str:
    """Remove an API key (and anything that looks like one) from ``text``.

    Parameters
    ----------
    text
        Message that may have been built from a server response.
    secret
        The exact key in use, if any; every occurrence is replaced.

    Returns
    -------
    str
        ``text`` with the key replaced by ``"***"``.
    """
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return _KEY_PATTERN.sub("sk-***", text)


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
        super().__init__(message)
        self.attempts = attempts
        self.status = status
        self.base_url = base_url
        self.model = model


class LLMConfigError(LLMError, ValueError):
    """The LLM client is missing configuration (model, API key, or base URL).

    Subclasses :class:`ValueError` too, since it reports a bad argument
    rather than a failure at run time.
    """
