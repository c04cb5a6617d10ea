"""Details of the node selected in the DAG: full value, operator documentation, feedback."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from ...text import full_text

VALUE_LIMIT = 20_000  # characters of a value shown; a 10 MB string must not freeze the page

_PLACEHOLDER = "<i>Click a node in the graph to see its value, operator and feedback.</i>"


class NodeDetails(w.VBox):
    """Shows one node of the trace.

    Attributes
    ----------
    html : ipywidgets.HTML
        The rendered details (read ``.html.value`` in tests).
    node_id : str
        Id of the node shown ("" for none).
    """

    def __init__(self, **kwargs: Any):
        self.html = w.HTML(_PLACEHOLDER)
        self.node_id = ""
        super().__init__([self.html], **kwargs)
        self.add_class("trace-nb-details")

    @property
    def text(self) -> str:
        return self.html.value

    def clear(self, note: str = _PLACEHOLDER) -> None:
        """Show the placeholder (or ``note``) instead of a node."""
        self.node_id = ""
        self.html.value = note

    def show(self, record: dict | None, node: Any = None) -> None:
        """Show a node.

        Parameters
        ----------
        record : dict or None
            The node's record from ``session.graph()``; None shows the placeholder.
        node : Node, optional
            The live node, for its full value and its operator's source.
        """
        if record is None:
            self.clear()
            return
        self.node_id = record["id"]
        e = html.escape
        parts = [
            f"<div class='trace-nb-details-title'><b>{e(record['name'])}</b> "
            f"<span class='trace-nb-kind'>{e(record['kind'])}"
            f"{' · ' + e(record['type']) if record.get('type') else ''}"
            f"{' · output' if record.get('output') else ''}</span></div>"
        ]
        value = full_text(node.peek(), VALUE_LIMIT) if node is not None else record["value"]
        parts.append(
            f"<div class='trace-nb-label'>value</div><pre class='trace-nb-value'>{e(value)}</pre>"
        )
        op = getattr(node, "op", None) if node is not None else None
        if record.get("op") or record.get("description"):
            doc = e(record.get("description") or "(no documentation)")
            name = f"<code>{e(record['op'])}</code>: " if record.get("op") else ""
            parts.append(f"<div class='trace-nb-label'>operator</div><div>{name}{doc}</div>")
        source = getattr(op, "source", None)
        if source:
            parts.append(f"<details><summary>source</summary><pre>{e(source)}</pre></details>")
        if record.get("constraint"):
            parts.append(
                f"<div class='trace-nb-label'>constraint</div><div>{e(record['constraint'])}</div>"
            )
        if record.get("members"):
            parts.append(
                "<div class='trace-nb-label'>folded nodes</div><div>"
                + e(", ".join(record["members"]))
                + "</div>"
            )
        feedback = record.get("feedback") or []
        items = "".join(f"<li>{e(f)}</li>" for f in feedback) or "<li><i>none</i></li>"
        parts.append(f"<div class='trace-nb-label'>feedback received</div><ul>{items}</ul>")
        self.html.value = "".join(parts)
