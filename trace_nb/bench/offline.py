"""Offline mode: each run talks over real HTTP to a loopback server answering with the
task's scripted oracle (:meth:`TaskInstance.oracle`).

The oracles read the request (current values, feedback) and answer with a known good
move, so an offline run checks the whole pipeline (prompt rendering, the HTTP client, reply
parsing, applying values and code, scoring, the report) quickly and deterministically.
Offline numbers measure that plumbing, **not** a model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..llm import LLM
from ..testing import FakeOpenAIServer
from .tasks import TaskInstance

OFFLINE_MODEL = "offline-oracle"


@contextmanager
def oracle_llm(task: TaskInstance) -> Iterator[tuple[Any, FakeOpenAIServer]]:
    """An :class:`LLM` served by ``task``'s oracle on 127.0.0.1, and the server itself."""
    with FakeOpenAIServer(replies=task.oracle, model=OFFLINE_MODEL) as server:
        llm = LLM(model=OFFLINE_MODEL, base_url=server.base_url, cache=False, max_retries=0)
        try:
            yield llm, server
        finally:
            llm.close()
