"""Exceptions that cross package boundaries, defined once.

Each is raised in one package and caught in others (a suggestion that cannot be used is
raised in :mod:`trace_nb.optim` and caught by training and the notebook; a feedback function
that fails is raised by :mod:`trace_nb.feedback` and caught by training and the session).
Defining them here, a module that imports nothing of ours, lets every package import them
without import circles. The packages that made them public re-export them:
``trace_nb.optim.CoercionError``, ``trace_nb.training.CheckpointError`` and so on.

Exceptions that belong to one package's own machinery stay there:
:class:`trace_nb.graph.ExecutionError` (built together with the exception node it holds) and
the :mod:`trace_nb.llm` errors (their messages pass through the key scrubber).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: this module imports nothing of ours at run time
    from .feedback import FeedbackProblem
    from .optim.refusal import Refusal

__all__ = [
    "CheckpointError",
    "CodeCompileError",
    "CoercionError",
    "ExternalDependencyError",
    "ExtractionError",
    "FeedbackError",
]


class CoercionError(ValueError):
    """A suggested value cannot be used for a parameter; ``reason`` says why.

    Parameters
    ----------
    reason : str
        Human-readable: what was expected and what was received.
    code : Refusal, optional
        The reason as a code (:class:`~trace_nb.optim.refusal.Refusal`); None lets the
        caller choose (wrong type, or invalid code).
    """

    def __init__(self, reason: str, code: Refusal | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ExtractionError(ValueError):
    """The LLM's reply held no usable suggestion (raised when ``ignore_extraction_error=False``)."""


class FeedbackError(TypeError):
    """The user's feedback function raised or returned something unusable.

    ``reason`` is a :class:`~trace_nb.feedback.FeedbackProblem` (None where a caller did
    not say)."""

    def __init__(self, message: str, reason: FeedbackProblem | None = None):
        super().__init__(message)
        self.reason = reason


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that belongs to a different run."""


class CodeCompileError(SyntaxError):
    """The source of a trainable function does not compile."""


class ExternalDependencyError(RuntimeError):
    """A bundled function read a node that was not passed to it as an argument."""
