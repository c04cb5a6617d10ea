"""What a reply reader returns (:class:`ParsedReply`), and the names it knows."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ...text import short_repr as _show

__all__ = ["FORMATS", "META_KEYS", "TERMINATE_ERROR", "Names", "ParsedReply", "as_text", "norm_key"]

FORMATS = (
    "json",
    "json-fenced",
    "json-embedded",
    "python-literal",
    "json-lenient",
    "xml",
    "key-value",
    "none",
)

TERMINATE_ERROR = "the model answered TERMINATE (no changes suggested)"


@dataclass
class ParsedReply:
    """What could be read from one LLM reply.

    Attributes
    ----------
    reasoning : str
        The reply's ``reasoning`` ("" when absent), always a str.
    answer : str
        The reply's ``answer`` ("" when absent), always a str.
    suggestion : dict[str, Any]
        New values for known parameter names only, as the reply gave them (not coerced).
    unknown : dict[str, Any]
        Suggested keys that are not known parameter names (hallucinated or misspelled).
    error : str or None
        Why no suggestion could be read, in words for the user; None when reading worked
        (``suggestion`` may still be empty: the model suggested no changes).
    format : str
        Which reader succeeded, one of :data:`FORMATS` ("none" when nothing was read).
    """

    reasoning: str = ""
    answer: str = ""
    suggestion: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    format: str = "none"

    @property
    def ok(self) -> bool:
        """True when the reply was read without error."""
        return self.error is None


# --------------------------------------------------------------------------- helpers


class Names:
    """The known parameter names, in order (for messages) and as a set (for lookup)."""

    def __init__(self, names: Collection[str]) -> None:
        if isinstance(names, str):  # a single name passed by mistake
            names = [names]
        self.order = list(dict.fromkeys(str(n) for n in (names or ())))
        self.set = set(self.order)

    def example(self) -> str:
        shown = self.order[:3] or ["<variable>"]
        inner = ", ".join(f'"{n}": <new value>' for n in shown)
        if len(self.order) > 3:
            inner += ", ..."
        return '{"reasoning": "...", "answer": "...", "suggestion": {' + inner + "}}"

    def listing(self) -> str:
        if not self.order:
            return "there are no trainable variables"
        shown = ", ".join(repr(n) for n in self.order[:10])
        more = f" and {len(self.order) - 10} more" if len(self.order) > 10 else ""
        return f"the trainable variables are {shown}{more}"


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            return _show(value, 2000)
    return str(value)


def norm_key(key: str) -> str:
    """Strip whitespace and stray quoting (``"'x'"``, ``"`x`"``, ``" x "``) from a key."""
    return key.strip().strip("\"'`").strip()


# Canonical meta keys, matched after norm_key and lower().
META_KEYS = {
    "reasoning": "reasoning",
    "reason": "reasoning",
    "answer": "answer",
    "suggestion": "suggestion",
    "suggestions": "suggestion",
}
PAIR_NAME_KEYS = ("name", "variable", "var", "key", "parameter", "param")
PAIR_VALUE_KEYS = ("value", "new_value", "new value", "suggestion", "suggested_value")
