"""What a feedback function may return, normalized in one place (cells and training share it)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from enum import Enum
from numbers import Real
from typing import Any

from .errors import FeedbackError
from .graph import Node

SHAPES = "text, a score, or (score, text)"  # what a feedback function returns, in words


class FeedbackProblem(str, Enum):
    """Why a feedback function gave no feedback (the reason code of :class:`FeedbackError`)."""

    MISSING = "missing"  # no such function (any more)
    SIGNATURE = "signature"  # it cannot be called with one argument, the output
    RAISED = "raised"  # it raised
    SHAPE = "shape"  # it returned something that is not feedback


def parse_feedback(value: Any) -> tuple[float | None, str]:
    """Normalize what a feedback function returned to ``(score, text)``.

    Accepted: text; a number (a score); ``(score, text)`` or ``(text, score)``; a dict
    with ``score`` and ``feedback`` (or ``text``); None (no feedback).
    """
    if isinstance(value, Node):
        value = value.peek()
    if value is None:
        return None, ""
    if isinstance(value, str):
        return None, value
    if isinstance(value, Real):
        return _score(value), ""
    if isinstance(value, Mapping):
        unknown = set(value) - {"score", "feedback", "text"}
        if unknown:
            raise FeedbackError(
                f"feedback dict has unknown keys {sorted(unknown)}; use 'score' and 'feedback'",
                FeedbackProblem.SHAPE,
            )
        score = value.get("score")
        text = value.get("feedback", value.get("text", "")) or ""
        if not (score is None or isinstance(score, Real)):
            raise FeedbackError(
                f"feedback dict's 'score' must be a number or None; got "
                f"{type(score).__name__}: {score!r:.80}; return {SHAPES} or "
                "{'score': number, 'feedback': text}",
                FeedbackProblem.SHAPE,
            )
        return (None if score is None else _score(score)), str(text)
    if isinstance(value, tuple | list) and len(value) == 2:
        a, b = value
        if isinstance(a, str) and not isinstance(b, str):
            a, b = b, a
        if isinstance(b, str) and (a is None or isinstance(a, Real)):
            return (None if a is None else _score(a)), b
    raise FeedbackError(
        f"feedback must return text, a score, (score, text) or {{'score', 'feedback'}}; "
        f"got {type(value).__name__}: {value!r:.80}",
        FeedbackProblem.SHAPE,
    )


def _score(value: Real) -> float:
    try:
        return float(value)
    except (OverflowError, ValueError, TypeError):
        raise FeedbackError(
            f"feedback's score must be a number a float can hold; got {value!r:.80}; "
            f"return {SHAPES}",
            FeedbackProblem.SHAPE,
        ) from None


def call_feedback(fn: Any, output: Any, name: str) -> tuple[float | None, str]:
    """Call the feedback function ``fn`` (called ``name`` in messages) on ``output`` and
    normalize what it returns with :func:`parse_feedback`.

    Raises :class:`FeedbackError` naming the function and the shape it must return when
    ``fn`` is not a function, cannot take the output as its one argument, raises (the
    original exception is the ``__cause__``), or returns something else.
    """
    must = f"{name}(output) must take the cell's output and return {SHAPES}"
    if not callable(fn):
        raise FeedbackError(
            f"--feedback {name}: {name!r} is a {type(fn).__name__}, not a function; {must}",
            FeedbackProblem.MISSING,
        )
    try:
        inspect.signature(fn).bind(output)
    except TypeError:
        raise FeedbackError(
            f"--feedback {name}: {name}{_signature(fn)} cannot be called with the output; "
            f"write `def {name}(output): ...`: {must}",
            FeedbackProblem.SIGNATURE,
        ) from None
    except ValueError:  # no signature to read (a builtin): calling it will tell
        pass
    try:
        value = fn(output)
    except Exception as e:
        raise FeedbackError(
            f"--feedback {name}: {name}(output) raised {type(e).__name__}: {e}. {must}",
            FeedbackProblem.RAISED,
        ) from e
    try:
        return parse_feedback(value)
    except FeedbackError as e:
        raise FeedbackError(f"--feedback {name}: {e}", FeedbackProblem.SHAPE) from None


def _signature(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"
