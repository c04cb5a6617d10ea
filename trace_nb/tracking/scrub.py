"""The one way text leaves trace_nb for a tracker: without any API key."""

from __future__ import annotations

from typing import Any

__all__ = ["scrubbed"]


def scrubbed(text: Any) -> str:
    """``text`` as a string without any API key (the choke point of :mod:`trace_nb.llm`)."""
    from ..llm.errors import scrub_secret

    return scrub_secret(text if isinstance(text, str) else str(text))
