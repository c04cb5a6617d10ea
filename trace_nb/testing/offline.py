"""Pick a real model when one is configured, else scripted replies on loopback.

Tutorials call :func:`tutorial_llm` in their first cell: with ``OPENAI_API_KEY`` or
``OPENAI_BASE_URL`` set it returns a real :class:`~trace_nb.llm.LLM`; otherwise it starts a
:class:`~.server.FakeOpenAIServer` on 127.0.0.1 that answers with the tutorial's scripted
replies, so the notebook runs offline and deterministically, and says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .server import FakeOpenAIServer

_servers: list[FakeOpenAIServer] = []  # kept alive for the kernel's lifetime


def real_model_configured() -> bool:
    """True when the environment points at a real model (a key or a base URL)."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def tutorial_llm(
    replies: list | Callable[[dict], Any], *, set_default: bool = True, quiet: bool = False
) -> Any:
    """An LLM for a tutorial: real when configured, else scripted offline replies.

    Parameters
    ----------
    replies
        The offline replies: a list (used in order) or a function of the request.
    set_default
        Also make it the LLM every ``%%trace`` session uses.
    """
    from ..llm import LLM

    if real_model_configured():
        llm = LLM(model=os.environ.get("TRACE_NB_MODEL") or "gpt-4o-mini")
        message = f"Using a real model: {llm.describe()['model']} (from your environment)."
    else:
        srv = FakeOpenAIServer(replies=replies, model="scripted-offline").start()
        _servers.append(srv)
        llm = LLM(model="scripted-offline", base_url=srv.base_url, cache=False)
        message = (
            "Running OFFLINE: no OPENAI_API_KEY or OPENAI_BASE_URL is set, so the optimizer "
            "talks to a local server on 127.0.0.1 that sends replies written for this "
            "tutorial. Set those variables (and TRACE_NB_MODEL) to use a real model."
        )
    if set_default:
        from ..llm.default import set_default_llm

        set_default_llm(llm)
    if not quiet:
        print(message)
    return llm
