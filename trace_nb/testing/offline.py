"""Pick a real model when one is configured, else scripted replies on loopback.

Tutorials call :func:`tutorial_llm` in their first cell: with ``OPENAI_API_KEY`` or
``OPENAI_BASE_URL`` set it returns a real :class:`~trace_nb.llm.LLM` (the model from
``TRACE_NB_MODEL``, else the only one the server lists, by the rule of
:mod:`trace_nb.llm.models`); otherwise it starts a :class:`~.server.FakeOpenAIServer` on
127.0.0.1 that answers with the tutorial's scripted replies, so the notebook runs offline and
deterministically. Either way one printed line says which model answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .server import FakeOpenAIServer

OFFLINE_MODEL = "scripted-offline"
_servers: list[FakeOpenAIServer] = []  # kept alive for the kernel's lifetime


def real_model_configured() -> bool:
    """True when the environment points at a real model (a key or a base URL)."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def _model_from_environment() -> tuple[str, str]:
    """The model the rule of :mod:`trace_nb.llm.models` picks, and where it came from."""
    from ..llm.models import OPENAI_BASE_URL, discover_model, remember_announced

    named = os.environ.get("TRACE_NB_MODEL")
    if named:
        return named, "from TRACE_NB_MODEL"
    server = (os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")
    model = discover_model(server, os.environ.get("OPENAI_API_KEY"))
    remember_announced(model, server)  # the tutorial's own line says it
    return model, f"the only model {server} serves"


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
        model, source = _model_from_environment()
        llm = LLM(model=model)
        message = f"Using a real model: {llm.model} ({source})."
    else:
        srv = FakeOpenAIServer(replies=replies, model=OFFLINE_MODEL).start()
        _servers.append(srv)
        llm = LLM(model=OFFLINE_MODEL, base_url=srv.base_url, cache=False)
        message = (
            f"Running OFFLINE: model {OFFLINE_MODEL!r} is a server on 127.0.0.1 sending replies "
            "written for this notebook (set OPENAI_API_KEY or OPENAI_BASE_URL for a real model)."
        )
    if set_default:
        from ..llm.default import set_default_llm

        set_default_llm(llm)
    if not quiet:
        print(message)
    return llm
