"""The session's history: a table of runs, a score-over-steps plot, and counters
(LLM calls, tokens, cost, and who approved the changes)."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from ...text import cell_text, full_text
from .plots import score_plot_svg

MAX_ROWS = 30  # most recent runs shown in the table
CELL_LIMIT = 80  # characters per table cell


CODE_LINES = 8  # lines of a multi-line value (code) shown in a cell


def history_html(df: Any) -> str:
    """The history DataFrame as an HTML table: newest run first (the latest ``MAX_ROWS``),
    empty cells blank, code kept as lines."""
    if df is None or len(df) == 0:
        return "<i>No runs yet.</i>"
    rows = df.tail(MAX_ROWS).iloc[::-1]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows.columns)
    body = []
    for record in rows.itertuples(index=False):
        cells = []
        for value in record:
            text = cell_text(value, CELL_LIMIT, CODE_LINES)
            cls = " class='trace-nb-code'" if "\n" in text else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = (
        f"<table class='trace-nb-history'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    more = (
        f"<div><i>showing the last {MAX_ROWS} of {len(df)} runs</i></div>"
        if len(df) > MAX_ROWS
        else ""
    )
    return f"<div class='trace-nb-table'>{table}</div>{more}"


class HistoryView(w.VBox):
    """History table, score plot and counters of one session.

    Attributes
    ----------
    table : ipywidgets.HTML
    plot : ipywidgets.HTML
        The score plot as SVG in the theme's colours (hidden while no run has a score).
    counters : ipywidgets.HTML
    counts : dict
        ``calls``, ``tokens``, ``cost`` (summed over the history) and ``approved_human``,
        ``approved_auto`` (proposals approved while this view watched).
    """

    def __init__(self, **kwargs: Any):
        self.counters = w.HTML()
        self.table = w.HTML()
        self.plot = w.HTML(layout=w.Layout(display="none", width="400px", max_width="100%"))
        self.plot_note = w.HTML("<i>No scores yet.</i>")
        self.counts: dict[str, Any] = {
            "calls": 0,
            "tokens": 0,
            "cost": 0.0,
            "approved_human": 0,
            "approved_auto": 0,
        }
        self._approved: dict[int, Any] = {}  # id -> proposal (kept alive so ids stay unique)
        self._plotted: tuple | None = None
        super().__init__([self.counters, w.HBox([self.plot, self.plot_note]), self.table], **kwargs)
        self.add_class("trace-nb-historyview")

    def update(self, session: Any) -> None:
        """Redraw from ``session``: :meth:`show` of its rows, history and proposals."""
        self.show(session.rows, session.history if session.rows else None, session.proposals)

    def show(self, rows: list[dict], history: Any, proposals: list) -> None:
        """Redraw from a session's ``rows``, its ``history`` table (a DataFrame, or None
        when there are no rows) and its current ``proposals``."""
        self._count(proposals, rows)
        self.table.value = history_html(history)
        points = [(r["step"], float(r["score"])) for r in rows if r.get("score") is not None]
        key = tuple(points)
        if key != self._plotted:
            self._plotted = key
            if points:
                self.plot.value = score_plot_svg({"score": points}, title="score over steps")
                self.plot.layout.display = ""
                self.plot_note.value = ""
            else:
                self.plot.layout.display = "none"
                self.plot_note.value = "<i>No scores yet.</i>"

    def _count(self, proposals: list, rows: list[dict]) -> None:
        for p in proposals:
            if p.status == "approved" and id(p) not in self._approved:
                self._approved[id(p)] = p
        c = self.counts
        c["calls"] = sum(int(r.get("calls") or 0) for r in rows)
        c["tokens"] = sum(int(r.get("tokens") or 0) for r in rows)
        c["cost"] = sum(float(r.get("cost") or 0.0) for r in rows)
        c["approved_human"] = sum(p.decided_by == "human" for p in self._approved.values())
        c["approved_auto"] = sum(p.decided_by == "auto" for p in self._approved.values())
        items = [
            ("LLM calls", c["calls"]),
            ("tokens", f"{c['tokens']:,}"),
            ("cost", f"${c['cost']:.4f}"),
            ("approved by human", c["approved_human"]),
            ("approved by auto", c["approved_auto"]),
        ]
        self.counters.value = (
            "<div class='trace-nb-counters'>"
            + "".join(
                f"<span><b>{html.escape(str(v))}</b> {html.escape(k)}</span>" for k, v in items
            )
            + "</div>"
        )


def output_html(session: Any) -> str:
    """The last run's output (or exception), and a note when the values differ from the cell."""

    s = session
    if not s.rows:
        return "<i>not run yet</i>"
    bad = s.exception is not None
    text = s.default_feedback() if bad else full_text(s.output, 4000)
    parts = [
        f"<div class='trace-nb-output{' trace-nb-exception' if bad else ''}'><h4>"
        f"{'exception' if bad else 'output'} (run {len(s.rows) - 1})</h4>"
        f"<pre>{html.escape(text or '')}</pre></div>"
    ]
    if getattr(s, "autosave_error", None):
        parts.append(f"<div class='trace-nb-note'>{html.escape(s.autosave_error)}</div>")
    diffs = s.differences()
    if diffs:
        parts.append(
            f"<div class='trace-nb-note'>The values of {html.escape(', '.join(diffs))} differ "
            f"from the cell's source. Run <code>%trace_writeback {html.escape(s.name)}</code> "
            "to get a copy of the cell with the current values.</div>"
        )
    return "".join(parts)
