"""What a feedback function may return, normalized in one place (cells and training share it)."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

from .graph import Node


class FeedbackError(TypeError):
    """The user's feedback function raised or returned something unusable."""


def parse_feedback(value: Any) -> tuple[float | None, str]:
    """Normalize what a feedback function returned to ``(score, text)``.

    Accepted: text; a number (a score); ``(score, text)`` or ``(text, score)``; a dict
    with ``score`` and ``feedback`` (or ``text``); None (no feedback).
    """
    if isinstance(value, Node):
        value = value._data
    if value is None:
        return None, ""
    if isinstance(value, str):
        return None, value
    if isinstance(value, Real):
        return float(value), ""
    if isinstance(value, Mapping):
        unknown = set(value) - {"score", "feedback", "text"}
        if unknown:
            raise FeedbackError(
                f"feedback dict has unknown keys {sorted(unknown)}; use 'score' and 'feedback'"
            )
        score = value.get("score")
        text = value.get("feedback", value.get("text", "")) or ""
        return (None if score is None else float(score)), str(text)
    if isinstance(value, tuple | list) and len(value) == 2:
        a, b = value
        if isinstance(a, str) and not isinstance(b, str):
            a, b = b, a
        if isinstance(b, str) and (a is None or isinstance(a, Real)):
            return (None if a is None else float(a)), b
    raise FeedbackError(
        f"feedback must return text, a score, (score, text) or {{'score', 'feedback'}}; "
        f"got {type(value).__name__}: {value!r:.80}"
    )
