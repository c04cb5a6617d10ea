"""The panel's review-with-evidence parts: feedback on a node, preview on a card, several
candidates, and the versions (lineage, blame, restore) of the selected parameter."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ...text import score_text
from .actions import action as _action
from .header import lineage_html
from .node_details import find_node
from .proposal_view import preview_html


class EvidenceMixin:
    """Mixed into :class:`~.panel.Panel` (uses its session, dag, status and error area)."""

    session: Any
    dag: Any

    def _evidence_widgets(self, B: Callable[..., w.Button]) -> list[w.Widget]:
        """The node-feedback box and the versions box, for the details column."""
        self.node_feedback_text = w.Textarea(
            placeholder="Feedback about this value (e.g. 'the wrong document was retrieved')",
            continuous_update=False,
            layout=w.Layout(height="auto"),
        )
        self.node_feedback_button = B(description="Feedback on this node", icon="comment")
        self.node_feedback_button.on_click(lambda _: self._quietly(self.feedback_on))
        self.node_feedback_box = w.VBox(
            [self.node_feedback_text, self.node_feedback_button], layout=w.Layout(display="none")
        )
        self.node_feedback_box.add_class("trace-nb-node-feedback")
        self.lineage_view = w.HTML()
        self.version_pick = w.Dropdown(
            options=[], description="version", layout=w.Layout(width="auto")
        )
        self.version_diff = w.HTML()
        self.restore_version_button = B(description="Restore this version", icon="undo")
        self.restore_version_button.on_click(lambda _: self._quietly(self.restore_version))
        self.version_pick.observe(lambda _: self._quietly(self._show_version_diff), names=["value"])
        picker = w.HBox([self.version_pick, self.restore_version_button])
        picker.add_class("trace-nb-row")
        self.lineage_box = w.VBox(
            [self.lineage_view, picker, self.version_diff], layout=w.Layout(display="none")
        )
        return [self.node_feedback_box, self.lineage_box]

    @_action
    def feedback_on(
        self, node_id: str | None = None, text: str | None = None, score: float | None = None
    ) -> None:
        """Feedback on one node of the DAG (the selected one by default): only parameters
        upstream of it receive it (see :meth:`TraceSession.feedback_on`)."""
        node_id = node_id or self.dag.selected
        if not node_id:
            raise ValueError("click a node in the graph first, then write feedback about its value")
        if text is not None:
            self.node_feedback_text.value = text
        self.session.feedback_on(node_id, self.node_feedback_text.value.strip(), score)
        self._set_status(f"feedback on {node_id} sent: it reaches the parameters upstream of it")

    @_action
    def preview(self, name: str, candidate: int | None = None) -> Any:
        """Run the cell with the proposal for ``name`` on the session's examples (twice per
        example) and show outputs and scores before → after on its card; nothing changes."""
        from ..preview import projected_runs

        self._idle()
        self._set_status(
            f"previewing {name}: running the cell {projected_runs(self.session)} times…"
        )
        result = self.session.preview(name, candidate=candidate)
        for view in self.proposal_views:
            if name in (view.name, view.label) and view.proposal.candidate == candidate:
                view.preview_view.value = preview_html(result)
        self._set_status(
            f"preview of {name}: {result.regressions} regression(s), mean score "
            f"{score_text(result.mean_before)} → {score_text(result.mean_after)}"
        )
        return result

    @_action
    def restore_version(self, name: str | None = None, number: int | None = None) -> Any:
        """Make an earlier version of a parameter current again (the one picked under the
        selected parameter node by default)."""
        name = name or self._selected_parameter()
        number = self.version_pick.value if number is None else number
        if name is None or number is None:
            raise ValueError("click a parameter in the graph and pick a version first")
        value = self.session.restore_version(name, int(number))
        self._set_status(f"restored version {number} of {name}: Run again to see it at work")
        return value

    def _selected_parameter(self) -> str | None:
        record = self.dag.record(self.dag.selected) if self.dag.selected else None
        if record is None or record["kind"] != "parameter":
            return None
        node = find_node(self.session, record["id"])
        return self.session.display_name(node) if node is not None else None

    def _show_lineage(self) -> None:
        name = self._selected_parameter()
        chain = self.session.lineage.versions.get(name) if name else None
        self.lineage_box.layout.display = "" if chain else "none"
        if not chain:
            return
        self.lineage_view.value = lineage_html(self.session, name)
        options = [(f"v{v.number} ({v.source})", v.number) for v in chain]
        if self.version_pick.options != tuple(options):
            self.version_pick.options = options
            self.version_pick.value = self.session.lineage.current.get(name, len(chain) - 1)
        self._show_version_diff()

    def _show_version_diff(self) -> None:
        name = self._selected_parameter()
        if not name or self.version_pick.value is None:
            self.version_diff.value = ""
            return
        text = self.session.diff(name, int(self.version_pick.value))
        self.version_diff.value = (
            f"<pre class='trace-nb-version-diff'>{html.escape(text)}</pre>"
            if text
            else "<i>the same as the current value</i>"
        )

    @_action
    def choose(self, candidate: int) -> list:
        """Pick one of several candidates: apply its proposals, reject the others'."""
        return self.session.choose(candidate)
