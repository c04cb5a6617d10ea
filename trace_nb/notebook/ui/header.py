"""Text lines of the panel: the header (session, parameters grouped by module, feedback
function) and the status after a reply."""

from __future__ import annotations

import html
from typing import Any

from ...optim.refusal import Refusal
from ...text import cut, score_text


def proposal_status(proposals: list) -> str:
    """The status line after a reply: what it proposes, or why it changes nothing (after
    repair turns: "2 attempts refused: <reasons>")."""
    cards = [p for p in proposals if p.parameter is not None]
    valid = sum(p.valid for p in cards)
    if not cards:
        reasons = "; ".join(dict.fromkeys(p.reason or "no reason given" for p in proposals))
        return f"the reply changes nothing: {reasons}"
    failed = next((p for p in proposals if p.code is Refusal.REPAIR_FAILED), None)
    if failed is not None:  # the cards are the last attempt's refusals
        return f"{failed.reason}; nothing was applied"
    return f"{len(cards)} proposal(s), {valid} valid: approve, edit or reject"


def header_html(session: Any) -> str:
    """Session name, its parameters (a module's grouped under the module) and feedback."""
    e = html.escape
    groups: dict[str, list[str]] = {}
    for name in session.parameters:
        module, _, attr = name.rpartition(".")
        groups.setdefault(module, []).append(attr if module else name)
    pills = []
    for module, names in groups.items():
        inner = "".join(f"<span class='trace-nb-pill'>{e(n)}</span>" for n in names)
        pills.append(f"module <b>{e(module)}</b>: {inner}" if module else inner)
    params = " ".join(pills) or "none"
    spec = session.spec
    fb = f" · feedback: <code>{e(spec.feedback)}</code>" if spec and spec.feedback else ""
    return (
        f"<div class='trace-nb-header'>trace session <b>{e(session.name)}</b>"
        f" · parameters: {params}{fb}</div>"
    )


def lineage_html(session: Any, name: str) -> str:
    """The versions of parameter ``name``: number, source, score, who decided, and for text
    and code, which version brought each line of the current value (blame)."""
    e = html.escape
    lin = session.lineage
    current = lin.current.get(name)
    rows = []
    for v in lin.versions[name]:
        score = score_text(v.score, missing="")
        mark = " ◀ current" if v.number == current else ""
        reason = cut(v.reasoning, 80)
        rows.append(
            f"<tr><td>v{v.number}{mark}</td><td>{e(v.source)}</td><td>{score}</td>"
            f"<td>{e(v.decided_by)}</td><td>{e(reason)}</td></tr>"
        )
    table = (
        "<table class='trace-nb-history'><thead><tr><th>version</th><th>source</th>"
        "<th>score</th><th>by</th><th>reasoning</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    blame_rows = ""
    if isinstance(lin.get(name).value, str):
        lines = session.blame(name, limit=60)
        blame_rows = (
            "<div class='trace-nb-label'>where each line came from</div><pre>"
            + "\n".join(
                f"v{b['version']}{'✎' if b['edited'] else ' '} {e(b['text'])}" for b in lines
            )
            + "</pre>"
        )
    return (
        f"<div class='trace-nb-label'>versions of {e(name)}</div>"
        f"<div class='trace-nb-table'>{table}</div>{blame_rows}"
    )
