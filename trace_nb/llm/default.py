"""The LLM that sessions use when none was given (``--llm`` or ``session.llm``).

It lives with the LLM layer, at the bottom, so that anything (a notebook, the offline
tutorial helper, a test) can set it without reaching up into the notebook layer.
"""

from __future__ import annotations

from typing import Any

_default: Any = None


def set_default_llm(llm: Any) -> None:
    """Use ``llm`` for every session that was not given one; ``None`` clears it."""
    global _default
    _default = llm


def default_llm() -> Any:
    """The LLM set with :func:`set_default_llm`, or None."""
    return _default
