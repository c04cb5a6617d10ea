"""A static view of a session (``%%trace --no-panel``): DAG, output, feedback, proposals."""

from __future__ import annotations

import html
from typing import Any

from ..text import preview


class Summary:
    """Rich display of a session's last run; text in a terminal, HTML with the DAG in a notebook."""

    def __init__(self, session: Any):
        self.session = session

    def text(self) -> str:
        s = self.session
        lines = [f"trace session {s.name!r}: run {len(s.rows)}"]
        lines += [f"  {k} = {preview(v, 100)}" for k, v in s.parameters.items()]
        lines.append(f"output: {preview(s.output, 200)}")
        if s.exception is not None:
            lines.append("exception: " + s.exception.describe())
        if s.feedback_error is not None:
            lines.append(f"no feedback: {s.feedback_error}")
        if s.last_feedback is not None:
            text, score = s.last_feedback
            lines.append(f"feedback: {text}" + (f" (score {score:g})" if score is not None else ""))
        for name, (cell, cur) in s.differences().items():
            lines.append(
                f"note: {name} differs from the cell ({preview(cell, 40)} -> "
                f"{preview(cur, 40)}); %trace_writeback {s.name} writes it back"
            )
        for p in s.proposals:
            state = p.status if p.valid else f"invalid: {p.reason}"
            lines.append(
                f"proposal {p.name}: {preview(p.old, 60)} -> {preview(p.new, 60)} [{state}]"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from ..graph.render import svg

        try:
            picture = svg(self.session.graph())
        except RuntimeError as e:
            picture = f"<p>{html.escape(str(e))}</p>"
        return f"<div class='trace-nb-summary'>{picture}<pre>{html.escape(self.text())}</pre></div>"

    def __repr__(self) -> str:
        return self.text()
