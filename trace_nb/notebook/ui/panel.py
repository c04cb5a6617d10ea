"""The review panel of a traced cell: DAG, feedback, proposals, auto-run, history.

The panel is a layout of views (each a widget in its own module that only emits events)
and one :class:`~.controller.PanelController`, which wires the views to the session and
owns the background work (LLM calls, auto runs, the status line's ticker). Every button
has a public method here (``propose``, ``approve``, ...), so everything can be scripted and
tested without a browser. LLM calls run in a worker thread and their follow-up on the
kernel's main loop (:mod:`.jobs`). Widget messages may arrive on any thread (JupyterLab 4.6
and Notebook 7 deliver them on a subshell thread by default): every action takes the
session's lock, so changes never interleave, and redraws happen right away on whichever
thread made the change. Errors from any callback are shown in the panel's error area,
never swallowed.
"""

from __future__ import annotations

import pathlib
from typing import Any

import ipywidgets as w

from .controller import PanelController
from .controls import Controls
from .dag_view import DagView
from .errors_view import ErrorsView
from .history_view import HistoryView
from .jobs import Job, Jobs
from .node_details import NodeDetails
from .node_feedback import NodeFeedbackView
from .proposal_view import ProposalList, ProposalView, close_tree
from .restore_offer import RestoreOffer
from .status_bar import StatusBar
from .versions_view import VersionsView
from .views import PanelViews

_CSS = pathlib.Path(__file__).with_name("panel.css")


class Panel(w.VBox):
    """Review panel of one :class:`~trace_nb.notebook.session.TraceSession`.

    Parameters
    ----------
    session : TraceSession
        The session shown; the panel refreshes itself on every session change.

    Attributes
    ----------
    controller : PanelController
        Wires the views to the session; owns the jobs, the auto run and the ticker.
    views : PanelViews
        The views; their widgets are also attributes of the panel (``status``,
        ``feedback_text``, ``propose_button``, ``proposals_box``, ``history_view``, ...).
    """

    def __init__(self, session: Any):
        self.session = session
        # First, on the cell's thread: finding the kernel's loop imports ipykernel, which
        # (outside a kernel) swaps the comm manager; widgets made before that could then
        # not be closed.
        jobs = Jobs(lock=session.lock)
        controls, status = Controls(), StatusBar()
        node_feedback, versions, offer = NodeFeedbackView(), VersionsView(), RestoreOffer()
        self.views = views = PanelViews(
            header=w.HTML(),
            restore_offer=offer,
            dag=DagView(),
            details=NodeDetails(),
            node_feedback=node_feedback,
            versions=versions,
            output=w.HTML(),
            controls=controls,
            status=status,
            errors=ErrorsView(),
            proposals_heading=w.HTML("<h4>Proposals</h4>"),
            proposals=ProposalList(),
            history=HistoryView(),
        )
        # The views' widgets, under the names scripts and tests use.
        self.header, self.dag, self.node_details = views.header, views.dag, views.details
        self.output_view, self.error_area = views.output, views.errors
        self.proposals_heading, self.proposals_box = views.proposals_heading, views.proposals
        self.history_view = views.history
        self.feedback_text, self.score_text = controls.feedback_text, controls.score_text
        self.send_button, self.propose_button = controls.send_button, controls.propose_button
        self.approve_all_button = controls.approve_all_button
        self.reject_all_button = controls.reject_all_button
        self.run_button, self.auto_steps = controls.run_button, controls.auto_steps
        self.auto_button, self.stop_button = controls.auto_button, controls.stop_button
        self.auto_code = controls.auto_code
        self.progress, self.status = status.progress, status.status
        self.cancel_button = status.cancel_button
        self.node_feedback_box, self.node_feedback_text = node_feedback, node_feedback.text
        self.node_feedback_button = node_feedback.button
        self.lineage_box, self.lineage_view = versions, versions.table
        self.version_pick, self.version_diff = versions.pick, versions.diff
        self.restore_version_button = versions.restore_button
        self.restore_box, self.restore_note = offer, offer.note
        self.restore_button, self.dismiss_button = offer.restore_button, offer.dismiss_button

        views.dag.add_class("trace-nb-dag")
        views.output.add_class("trace-nb-outputview")
        details = w.VBox([views.details, node_feedback, versions])
        details.add_class("trace-nb-side")
        top = w.HBox([views.dag, details])
        top.add_class("trace-nb-top")
        super().__init__(
            [
                w.HTML(f"<style>{_CSS.read_text()}</style>"),
                views.header,
                offer,
                top,
                views.output,
                controls,
                status,
                views.errors,
                views.proposals_heading,
                views.proposals,
                w.HTML("<h4>History</h4>"),
                views.history,
            ],
            layout=w.Layout(width="100%"),
        )
        self.add_class("trace-nb-panel")
        self.controller = PanelController(session, views, jobs, show_training=self._show_training)
        session.attach_view(self)
        self.controller.start()

    # -- the loop (the buttons do the same) ----------------------------------------------
    def propose(self) -> Job:
        """Ask the LLM for proposals in the background (sends changed feedback first)."""
        return self.controller.propose()

    def approve(self, name: str | None = None, value: Any = None) -> list:
        """Apply the proposal for ``name`` (with ``value``: edited first), or all valid ones."""
        return self.controller.approve(name, value)

    def edit(self, name: str, value: Any, candidate: int | None = None) -> Any:
        """Replace the proposal for ``name`` with ``value``; an invalid value shows why."""
        return self.controller.edit(name, value, candidate)

    def reject(self, name: str | None = None, candidate: int | None = None) -> list:
        """Reject the proposal for ``name``, or all pending ones."""
        return self.controller.reject(name, candidate)

    def choose(self, candidate: int) -> list:
        """Pick one of several candidates: apply its proposals, reject the others'."""
        return self.controller.choose(candidate)

    def run(self) -> Any:
        """Run the traced cell again with the current values; returns the output."""
        return self.controller.run()

    def send_feedback(self, text: str | None = None, score: float | None = None) -> None:
        """Give the feedback box's text and score (or the given ones) to the session."""
        self.controller.send_feedback(text, score)

    def train(
        self, dataset: Any, feedback: Any = None, *, input: str = "example", **kwargs: Any
    ) -> Any:
        """Optimize over ``dataset`` (see :meth:`TraceSession.train`), showing the run in the
        panel: epoch/step bars, train and validation scores, per-example results."""
        return self.controller.train(dataset, feedback, input=input, **kwargs)

    @property
    def train_view(self) -> Any:
        """The :class:`~.train_view.TrainView` of the last :meth:`train`, or None."""
        return self.controller.train_view

    def auto(
        self,
        steps: int | None = None,
        review: Any = None,
        pause: bool | None = None,
        gate: str | None = None,
    ) -> None:
        """Run ``steps`` rounds of propose → approve valid → run (feedback from --feedback).

        A code proposal pauses the run unless "auto-approve code" is ticked; decide on it,
        then call ``auto`` again to resume the paused run. ``review`` is a rule of
        :mod:`trace_nb.optim.gates` (a callable or a preset: ``"code"``, ``"regression"``,
        ``"diff>N"``, ``"every:K"``) choosing proposals that wait for a human: they queue
        (a count shows in the status) while the run goes on, or the run pauses with
        ``pause=True``. ``gate="no_regression"`` applies a value only when its preview
        shows no regression.

        On a paused run, ``steps``, ``review``, ``gate`` and ``pause`` (when given) change
        that run before it resumes: ``steps`` is then its new total, counting the steps
        already done. A rule that is not one, or too few steps, is refused with the reason
        and the run stays paused as it was.
        """
        self.controller.auto(steps, review, pause, gate)

    def stop(self) -> None:
        """End the auto run after the current step (or give up a paused one)."""
        self.controller.stop()

    def cancel(self) -> None:
        """Cancel the LLM call in progress: its result is discarded and nothing changes."""
        self.controller.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until background work is done and its follow-up ran (for tests, scripts).

        A call given up with :meth:`cancel` is not waited for: ``wait()`` returns as soon as
        nothing else runs, and the abandoned answer is discarded whenever it arrives.
        """
        return self.controller.wait(timeout)

    @property
    def busy(self) -> bool:
        """True while an LLM call runs for this panel."""
        return self.controller.busy

    @property
    def jobs(self) -> Any:
        """The panel's background work (:class:`~.jobs.Jobs`)."""
        return self.controller.jobs

    # -- review with evidence ------------------------------------------------------------
    def feedback_on(
        self, node_id: str | None = None, text: str | None = None, score: float | None = None
    ) -> None:
        """Feedback on one node of the DAG (the selected one by default): only parameters
        upstream of it receive it (see :meth:`TraceSession.feedback_on`)."""
        self.controller.feedback_on(node_id, text, score)

    def preview(self, name: str, candidate: int | None = None) -> Any:
        """Run the cell with the proposal for ``name`` on the session's examples (twice per
        example) and show outputs and scores before → after on its card; nothing changes."""
        return self.controller.preview(name, candidate)

    def restore_version(self, name: str | None = None, number: int | None = None) -> Any:
        """Make an earlier version of a parameter current again (the one picked under the
        selected parameter node by default)."""
        return self.controller.restore_version(name, number)

    def restore(self) -> list[str]:
        """Restore the values this session autosaved (after a kernel restart), then run."""
        return self.controller.restore()

    def keep_cell_values(self) -> None:
        """Dismiss the offer to restore autosaved values (a file kept aside for the offer
        stays on disk; the live work goes on being saved)."""
        self.controller.keep_cell_values()

    # -- display -------------------------------------------------------------------------
    def select(self, node_id: str) -> None:
        """Show the details of a node of the DAG, as a click on it would."""
        self.controller.select(node_id)

    def refresh(self, prefill: bool = False) -> None:
        """Redraw everything from the session (``prefill`` also resets the feedback box)."""
        self.controller.refresh(prefill)

    @property
    def proposal_views(self) -> list[ProposalView]:
        """The cards of the current proposals."""
        return self.proposals_box.views

    def proposal_view(self, name: str) -> ProposalView:
        """The card of the proposal for ``name``."""
        return self.proposals_box.view(name)

    @property
    def errors(self) -> list[BaseException]:
        """Every error the panel showed."""
        return self.error_area.errors

    def clear_errors(self) -> None:
        """Empty the error area."""
        self.controller.clear_errors()

    def close(self) -> None:
        """Close the panel and every widget in it; background work is cancelled."""
        self.controller.close()
        self.session.detach_view(self)
        for child in (*self.children, self.layout):
            close_tree(child)
        super().close()

    def _show_training(self, widget: w.Widget) -> None:
        self.children = (*self.children, widget)

    def __repr__(self) -> str:
        return f"<trace_nb Panel of {self.session!r}>"
