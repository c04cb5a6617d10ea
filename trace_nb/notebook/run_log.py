"""The history table of a session: one row per run of its cell (:class:`RunLog`, a part
of :class:`~.session.TraceSession`; ``session.history`` shows it as a DataFrame)."""

from __future__ import annotations

import time
from typing import Any

from ..files import finite_or_none
from ..llm.usage import Usage
from ..text import preview

__all__ = ["RunLog"]


class RunLog:
    """One row (a dict) per run: the values used, the output, feedback and score, the
    decisions taken after it, and the LLM calls, tokens and cost they took.

    ``rows`` is the table itself (the panel and trackers read it); the methods below are
    how the session writes it.
    """

    def __init__(self, rows: list[dict] | None = None) -> None:
        self.rows: list[dict] = list(rows or [])

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def last_step(self) -> int | None:
        """The number of the last run, or None before the first."""
        return len(self.rows) - 1 if self.rows else None

    def start_run(self, values: dict[str, Any], output: str) -> dict:
        """Add the row of a new run with the parameter ``values`` it used."""
        row: dict[str, Any] = {"step": len(self.rows), "time": time.strftime("%H:%M:%S")}
        row.update({k: _cell(v) for k, v in values.items()})
        row.update(
            {
                "output": output,
                "feedback": "",  # no feedback: "" here and NaN under score, in every row
                "score": None,
                "approved": "",
                "rejected": "",
                "decided_by": "",
                "calls": 0,
                "tokens": 0,
                "cost": 0.0,
            }
        )
        self.rows.append(row)
        return row

    def note_feedback(self, text: str | None, score: float | None) -> None:
        """The last run's feedback text and score."""
        if self.rows:
            self.rows[-1].update(feedback=text or "", score=score)

    def note_node_feedback(self, notes: str) -> None:
        """The last run's feedback on intermediate nodes, as one text."""
        if self.rows:
            self.rows[-1]["node_feedback"] = notes

    def count_usage(self, usage: Any) -> None:
        """Add LLM calls (one usage, or a list: one per candidate) to the last run."""
        if not self.rows or usage is None:
            return
        row = self.rows[-1]
        total = Usage()
        for u in usage if isinstance(usage, list) else [usage]:
            total = total + _as_usage(u)
        row["calls"] += total.calls
        row["tokens"] += total.tokens
        row["cost"] += total.cost

    def mark(self, names: list[str], column: str, who: str) -> None:
        """Add ``names`` to the last run's ``approved`` or ``rejected`` column, decided by ``who``."""
        if not self.rows or not names:
            return
        row = self.rows[-1]
        row[column] = ", ".join(filter(None, [row[column], *names]))
        row["decided_by"] = str(who)

    def note_candidate(self, candidate: int | None) -> None:
        """The candidate a step applied, on the last run."""
        if candidate is not None and self.rows:
            self.rows[-1]["candidate"] = candidate

    def replace(self, rows: list[dict]) -> None:
        """Take ``rows`` (a loaded history) in place of this table's."""
        self.rows[:] = list(rows)

    def frame(self) -> Any:
        """The table as a pandas DataFrame (``feedback`` is never NaN)."""
        import pandas as pd

        frame = pd.DataFrame(self.rows)
        if "feedback" in frame:  # rows saved before "" meant "no feedback text" held None
            frame["feedback"] = frame["feedback"].fillna("")
        return frame

    def to_state(self) -> list[dict]:
        """The rows, JSON-ready: a score that is not a finite number is no score."""
        return [
            {k: finite_or_none(v) for k, v in row.items()} if isinstance(row, dict) else row
            for row in self.rows
        ]


def _cell(value: Any) -> Any:
    """A history-table cell: scalars as they are, anything else as short text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return preview(value, 200) if not isinstance(value, str) else value


def _as_usage(u: Any) -> Usage:
    """One call's usage as a :class:`Usage` (an LLM of the reference's kind reports an
    OpenAI-style object with token counts only)."""
    if isinstance(u, Usage):
        return u
    return Usage(
        calls=1,
        prompt_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(u, "completion_tokens", 0) or 0),
        cost=float(getattr(u, "cost", 0.0) or 0.0),
    )
