"""Drawing a session into the panel's views: what the controller calls after every change.

:class:`SessionDisplay` only reads the session (public attributes and methods that change
nothing) and writes the views; deciding what a click means is the controller's.
"""

from __future__ import annotations

from typing import Any

from .header import header_html, lineage_html
from .history_view import output_html
from .views import PanelViews

__all__ = ["SessionDisplay"]


class SessionDisplay:
    """Redraws the views of one panel from one session.

    Parameters
    ----------
    session : TraceSession
    views : PanelViews
    """

    def __init__(self, session: Any, views: PanelViews):
        self.session, self.views = session, views

    def draw(self, prefill: bool = False) -> None:
        """Redraw every view but the buttons' state (``prefill`` also resets the feedback
        box to the last feedback, or the exception's text)."""
        s, v = self.session, self.views
        v.header.value = header_html(s)
        saved = getattr(s, "restorable", None)
        if saved is not None:
            from ..autosave import status

            v.restore_offer.show(saved.summary(), status(s) or "")
        else:
            v.restore_offer.show(None)
        v.dag.show(s.graph(max_nodes=v.dag.max_nodes or None))
        self.show_selected()
        if prefill:  # before the output: once the new output shows, the box is settled
            last = s.last_feedback
            text = (last[0] if last else None) or s.default_feedback() or ""
            v.controls.reset(text, None if not last else last[1])
        v.output.value = output_html(s)
        v.proposals.update(s.proposals, label=lambda p: s.display_name(p.parameter))
        waiting = sum(p.status == "pending" for p in s.waiting)
        badge = (
            f" <span class='trace-nb-status trace-nb-waiting'>{waiting} waiting for review</span>"
            if waiting
            else ""
        )
        v.proposals_heading.value = f"<h4>Proposals{badge}</h4>"
        v.history.show(s.rows, s.history if s.rows else None, s.proposals)

    def buttons(self, *, busy: bool, auto: bool, paused: bool) -> None:
        """Enable what can be clicked while an LLM call runs (``busy``), an auto run goes
        on (``auto``) or waits for a human (``paused``)."""
        proposals = self.session.proposals
        spec = self.session.spec
        self.views.controls.sync(
            busy=busy,
            auto=auto,
            paused=paused,
            approvable=any(p.status == "pending" and p.valid for p in proposals),
            rejectable=bool(proposals),
            can_auto=spec is not None and bool(spec.feedback),
        )
        self.views.status.busy(busy)

    def show_selected(self) -> None:
        """Show the selected node's details, its feedback box and its versions."""
        v = self.views
        node_id = v.dag.selected
        record = v.dag.record(node_id) if node_id else None
        # Feedback on an intermediate value: any drawn node but a parameter or a folded box.
        v.node_feedback.show(
            record is not None and record["kind"] in ("message", "exception", "value")
        )
        self.show_lineage()
        if record is None:
            v.details.clear()
            return
        v.details.show(record, find_node(self.session, node_id))

    def selected_parameter(self) -> str | None:
        """The name of the parameter selected in the DAG, or None."""
        dag = self.views.dag
        record = dag.record(dag.selected) if dag.selected else None
        if record is None or record["kind"] != "parameter":
            return None
        node = find_node(self.session, record["id"])
        return self.session.display_name(node) if node is not None else None

    def show_lineage(self) -> None:
        """The versions of the selected parameter (hidden for anything else)."""
        name = self.selected_parameter()
        lineage = self.session.lineage
        chain = lineage.versions.get(name) if name else None
        if name is None or not chain:
            self.views.versions.hide()
            return
        self.views.versions.show(
            lineage_html(self.session, name),
            [(f"v{v.number} ({v.source})", v.number) for v in chain],
            lineage.current.get(name, len(chain) - 1),
        )
        self.show_version_diff()

    def show_version_diff(self) -> None:
        """The picked version of the selected parameter against its current value."""
        name, number = self.selected_parameter(), self.views.versions.picked
        if not name or number is None:
            self.views.versions.show_diff(None)
            return
        self.views.versions.show_diff(self.session.diff(name, number))


def find_node(session: Any, node_id: str) -> Any:
    """The live node named ``node_id`` in the session's last trace, or None."""
    from ...graph.data import find

    target = session.exception if session.exception is not None else session.output_node
    if target is None:
        return None
    return find([target], node_id)  # ids come from the graph's name table, as in graph_data
