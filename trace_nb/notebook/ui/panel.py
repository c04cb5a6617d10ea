"""The review panel of a traced cell: DAG, feedback, proposals, auto-run, history.

Every button calls a public method of :class:`Panel` (``propose``, ``approve``, ...), so
everything can be scripted and tested without a browser. LLM calls run in a worker thread and
their follow-up on the kernel's main loop (:mod:`.jobs`, :mod:`.background`). Widget messages may arrive on any
thread (JupyterLab 4.6 and Notebook 7 deliver them on a subshell thread by default): every
action takes the session's lock, so changes never interleave, and redraws happen right
away on whichever thread made the change. Errors from any callback are shown in the
panel's error area, never swallowed.
"""

from __future__ import annotations

import html
import pathlib
import traceback
from typing import Any

import ipywidgets as w

from .actions import action as _action
from .autorun import AutoRun
from .background import BackgroundMixin
from .dag_view import DagView
from .evidence import EvidenceMixin
from .header import header_html
from .history_view import HistoryView, output_html
from .jobs import Job, Jobs, Ticker
from .node_details import NodeDetails, find_node
from .proposal_view import ProposalList, ProposalView, close_tree
from .restore_offer import RestoreOfferMixin

_CSS = pathlib.Path(__file__).with_name("panel.css")
_DONE = {
    "run": "ran the cell (run {n})",
    "approve": "approved",
    "reject": "rejected",
    "edit": "edited",
}  # status after a session change


class Panel(BackgroundMixin, EvidenceMixin, RestoreOfferMixin, w.VBox):
    """Review panel of one :class:`~trace_nb.notebook.session.TraceSession`.

    Parameters
    ----------
    session : TraceSession
        The session shown; the panel refreshes itself on every session change.
    """

    def __init__(self, session: Any):
        self.session = session
        self.errors: list[BaseException] = []
        self.jobs = Jobs(on_error=self._show_error, lock=session.lock)  # made on the cell's thread
        self._depth = 0
        self._train_view: Any = None  # the last training run shown (see train())
        self._job: Job | None = None
        self._auto: AutoRun | None = None  # while auto-running
        self._paused: AutoRun | None = None  # an auto run waiting for a human to decide on code
        self._closed = False
        self._ticker: Ticker | None = None  # refreshes the elapsed time of a job

        def B(**kw: Any) -> w.Button:  # full labels: a button is as wide as its text
            return w.Button(layout=w.Layout(width="auto", min_width="max-content"), **kw)

        self.header = w.HTML()
        self.dag = DagView()
        self.node_details = NodeDetails()
        self.output_view = w.HTML()
        # continuous_update=False: the text syncs once, when the box loses focus (before the
        # click that follows), so no echo of an older value can overwrite what was typed.
        self.feedback_text = w.Textarea(
            placeholder="What do you think of the output?",
            continuous_update=False,
            layout=w.Layout(height="auto"),
        )
        self.score_text = w.Text(
            placeholder="optional", description="score", layout=w.Layout(width="200px")
        )
        self.send_button = B(description="Send feedback", icon="comment")
        self.propose_button = B(description="Propose", button_style="primary", icon="lightbulb-o")
        self.approve_all_button = B(description="Approve all", button_style="success")
        self.reject_all_button = B(description="Reject all", button_style="danger")
        self.run_button = B(description="Run again", icon="play")
        self.auto_steps = w.IntText(
            value=5,
            description="Auto N steps",
            layout=w.Layout(width="150px"),
            style={"description_width": "initial"},
        )
        self.auto_button = B(description="Auto", icon="forward")
        self.stop_button = B(description="Stop", icon="stop")
        self.auto_code = w.Checkbox(value=False, description="auto-approve code", indent=False)
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="160px"))
        self.status = w.HTML("ready")
        self.cancel_button = B(description="Cancel", icon="times")
        self.error_area = w.HTML()
        self.proposals_box = ProposalList(
            on_approve=lambda n, candidate=None: self._quietly(
                lambda: self.approve(n) if candidate is None else self.choose(candidate)
            ),
            on_reject=lambda n, candidate=None: self._quietly(
                lambda: self.reject(n, candidate=candidate)
            ),
            on_edit=lambda n, v, candidate=None: self._quietly(
                lambda: self.edit(n, v, candidate=candidate)
            ),
            on_preview=lambda n, candidate=None: self._quietly(
                lambda: self.preview(n, candidate=candidate)
            ),
            label=lambda p: session.display_name(p.parameter),
        )
        self.history_view = HistoryView()
        self.status.add_class("trace-nb-status-line")
        self.dag.add_class("trace-nb-dag")
        self.feedback_text.add_class("trace-nb-feedback")
        self.output_view.add_class("trace-nb-outputview")
        self.error_area.add_class("trace-nb-errors")
        for button, method in [
            (self.send_button, self.send_feedback),
            (self.propose_button, self.propose),
            (self.approve_all_button, self.approve),
            (self.reject_all_button, self.reject),
            (self.run_button, self.run),
            (self.auto_button, self.auto),
            (self.stop_button, self.stop),
            (self.cancel_button, self.cancel),
        ]:
            button.on_click(lambda _, m=method: self._quietly(m))
        self.dag.on_select(lambda node_id: self._quietly(self._show_selected))
        self.dag.observe(lambda _: self._quietly(self.refresh), names=["max_nodes"])
        h4 = lambda t: w.HTML(f"<h4>{t}</h4>")  # noqa: E731
        self.proposals_heading = h4("Proposals")
        details = w.VBox([self.node_details, *self._evidence_widgets(B)])
        details.add_class("trace-nb-side")
        top = w.HBox([self.dag, details])
        top.add_class("trace-nb-top")
        rows = [
            w.HBox([self.score_text, self.send_button]),
            w.HBox(
                [
                    self.propose_button,
                    self.approve_all_button,
                    self.reject_all_button,
                    self.run_button,
                ]
            ),
            w.HBox([self.auto_steps, self.auto_button, self.stop_button, self.auto_code]),
            w.HBox([self.progress, self.status, self.cancel_button]),
        ]
        for row in rows:
            row.add_class("trace-nb-row")
        super().__init__(
            [
                w.HTML(f"<style>{_CSS.read_text()}</style>"),
                self.header,
                self._restore_offer(B),
                top,
                self.output_view,
                h4("Feedback"),
                self.feedback_text,
                *rows[:3],
                rows[3],
                self.error_area,
                self.proposals_heading,
                self.proposals_box,
                h4("History"),
                self.history_view,
            ],
            layout=w.Layout(width="100%"),
        )
        self.add_class("trace-nb-panel")
        session.on_change(self._on_change)
        session.attach_view(self)
        self.refresh(prefill=True)
        if session.feedback_error is not None:  # the run that made this panel
            self._feedback_failed()

    # -- actions (the buttons call these) ------------------------------------------------
    @_action
    def propose(self) -> Job:
        """Ask the LLM for proposals in the background (sends changed feedback first)."""
        self._idle()
        s = self.session
        text, score = self.feedback_text.value.strip(), self._score()
        if (text or score is not None) and (text, score) != s.last_feedback:
            s.feedback(text or None, score)
        if s.last_feedback is None and not s.node_feedback:
            raise ValueError(
                "no feedback yet: type what you think of the output (or a score), then Propose"
            )
        llm = getattr(s.optimizer, "llm", None)  # made here, on the main thread: errors show now
        return self._start(
            f"asking the LLM{_chosen_model(llm)} for proposals…",
            self.session.request_proposals,
            self._adopt,
        )

    @_action
    def approve(self, name: str | None = None, value: Any = None) -> list:
        """Apply the proposal for ``name`` (with ``value``: edited first), or all valid ones."""
        return self.session.approve(name, value=value)

    @_action
    def edit(self, name: str, value: Any, candidate: int | None = None) -> Any:
        """Replace the proposal for ``name`` with ``value``; an invalid value shows why."""
        return self.session.edit(name, value, candidate=candidate)

    @_action
    def reject(self, name: str | None = None, candidate: int | None = None) -> list:
        """Reject the proposal for ``name``, or all pending ones."""
        return self.session.reject(name, candidate=candidate)

    @_action
    def run(self) -> Any:
        """Run the traced cell again with the current values; returns the output."""
        self._idle()
        return self.session.run()

    @_action
    def send_feedback(self, text: str | None = None, score: float | None = None) -> None:
        """Give the feedback box's text and score (or the given ones) to the session."""
        if text is not None:
            self.feedback_text.value = text
        if score is not None:
            self.score_text.value = str(score)
        text, score = self.feedback_text.value.strip(), self._score()
        self.session.feedback(text or None, score)
        self._set_status("feedback sent")

    @_action
    def train(
        self, dataset: Any, feedback: Any = None, *, input: str = "example", **kwargs: Any
    ) -> Any:
        """Optimize over ``dataset`` (see :meth:`TraceSession.train`), showing the run in the
        panel: epoch/step bars, train and validation scores, per-example results."""
        from .train_view import TrainView

        self._idle()
        view = TrainView()
        if self._train_view is not None:
            close_tree(self._train_view.widget)
        self._train_view = view
        self.children = (*self.children, view.widget)
        kwargs.setdefault("view", view)
        return self.session.train(dataset, feedback, input=input, **kwargs)

    def select(self, node_id: str) -> None:
        """Show the details of a node of the DAG, as a click on it would."""
        try:
            self.dag.select(node_id)
        except Exception as e:
            self._show_error(e)
            raise
        self._show_selected()

    def clear_errors(self) -> None:
        """Empty the error area."""
        self.error_area.value = ""

    def close(self) -> None:
        """Close the panel and every widget in it; background work is cancelled."""
        self.jobs.cancel()
        self._job = self._auto = None
        self._closed = True
        self._stop_ticker()
        self.session.off_change(self._on_change)
        self.session.detach_view(self)
        for child in (
            *self.children,
            self.proposals_box._empty,
            self.proposals_box._unknown,
            self.layout,
        ):
            close_tree(child)
        super().close()

    # -- display ------------------------------------------------------------------------
    def refresh(self, prefill: bool = False) -> None:
        """Redraw everything from the session (``prefill`` also resets the feedback box)."""
        s = self.session
        self.header.value = header_html(s)
        saved = getattr(s, "restorable", None)
        if saved is not None:
            from ..autosave import status

            self.restore_note.value = (
                f"<div class='trace-nb-note'>Saved values from an earlier kernel: "
                f"{html.escape(saved.summary())}. {html.escape(status(s) or '')}</div>"
            )
        self.restore_box.layout.display = "" if saved is not None else "none"
        self.dag.show(s.graph(max_nodes=self.dag.max_nodes or None))
        self._show_selected()
        if prefill:  # before the output: once the new output shows, the box is settled
            last = s.last_feedback
            self.feedback_text.value = (last[0] if last else None) or s.default_feedback() or ""
            self.score_text.value = "" if not last or last[1] is None else str(last[1])
        self.output_view.value = output_html(self.session)
        self.proposals_box.update(self.session.proposals)
        waiting = sum(p.status == "pending" for p in s.waiting)
        badge = (
            f" <span class='trace-nb-status trace-nb-waiting'>{waiting} waiting for review</span>"
            if waiting
            else ""
        )
        self.proposals_heading.value = f"<h4>Proposals{badge}</h4>"
        self.history_view.update(s)
        if self._paused is not None and not self._paused.waiting_for:
            self._set_status("decided: click Auto to go on with the auto run")
        self._sync()

    def _on_change(self, event: str) -> None:
        # Runs on the thread that changed the session (main, subshell or the home loop),
        # inside the session's lock: widgets may be updated from any thread.
        if self._closed:
            return
        if event == "feedback_error":  # no feedback follows the run: empty the box for a human
            self._quietly(lambda: self.refresh(prefill=True))
            self._feedback_failed()
            return
        idle = self._job is None and self._auto is None
        if event == "run" and idle and self._depth == 0:
            self.clear_errors()  # the cell ran again (not from a button): old errors are stale
        if idle and self._paused is None and event in _DONE:
            self._set_status(_DONE[event].format(n=len(self.session.rows) - 1))
        # After a run the --feedback function's text follows at once: fill the box once, then.
        spec = self.session.spec
        follows = event == "run" and spec is not None and bool(spec.feedback)
        prefill = event == "feedback" or (event == "run" and not follows)
        self._quietly(lambda: self.refresh(prefill=prefill))

    def _show_selected(self) -> None:
        node_id = self.dag.selected
        record = self.dag.record(node_id) if node_id else None
        # Feedback on an intermediate value: any drawn node but a parameter or a folded box.
        can_comment = record is not None and record["kind"] in ("message", "exception", "value")
        self.node_feedback_box.layout.display = "" if can_comment else "none"
        self._show_lineage()
        if record is None:
            self.node_details.clear()
            return
        self.node_details.show(record, find_node(self.session, node_id))

    @property
    def proposal_views(self) -> list[ProposalView]:
        """The cards of the current proposals."""
        return self.proposals_box.views

    def proposal_view(self, name: str) -> ProposalView:
        """The card of the proposal for ``name``."""
        return self.proposals_box.view(name)

    def _sync(self) -> None:
        busy, auto = self._job is not None, self._auto is not None
        pending = any(p.status == "pending" and p.valid for p in self.session.proposals)
        for b in (self.propose_button, self.run_button, self.send_button, self.auto_button):
            b.disabled = busy or auto
        self.approve_all_button.disabled = busy or auto or not pending
        self.reject_all_button.disabled = busy or auto or not self.session.proposals
        self.stop_button.disabled = not auto and self._paused is None
        self.cancel_button.disabled = not busy
        spec = self.session.spec
        if not (spec is not None and spec.feedback):
            self.auto_button.disabled = True
            self.auto_button.tooltip = (
                "Auto needs a feedback function: add --feedback FUNC to the "
                "%%trace line (FUNC(output) returns text, a score, or both)"
            )
        else:
            self.auto_button.tooltip = "propose, approve the valid proposals and run, N times"
        if busy:
            self.progress.add_class("trace-nb-indeterminate")
        else:
            self.progress.remove_class("trace-nb-indeterminate")

    def _set_status(self, text: str) -> None:
        self.status.value = html.escape(text)

    # -- errors -------------------------------------------------------------------------
    def _feedback_failed(self) -> None:
        """The --feedback function gave no feedback on the run just recorded: say so."""
        self._show_error(self.session.feedback_error)
        self._set_status(
            "ran the cell, but the feedback function failed (see below); type feedback "
            "here or fix the function and click Run again"
        )

    def _show_error(self, error: BaseException) -> None:
        if self.errors and self.errors[-1] is error:
            return  # already shown by an inner call
        self.errors.append(error)
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=-6))
        head = f"{type(error).__name__}: {error}"
        self.error_area.value += (
            f"<div class='trace-nb-error'><b>{html.escape(head)}</b><details>"
            f"<summary>traceback</summary><pre>{html.escape(tb)}</pre></details></div>"
        )

    def _quietly(self, fn: Any) -> Any:
        """Run a callback; its exception is shown (actions show their own) and not re-raised."""
        try:
            return fn()
        except Exception as e:
            self._show_error(e)  # no-op when the action already showed it
            return None

    def _score(self) -> float | None:
        text = self.score_text.value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"the score must be a number (or empty), got {text!r}") from None

    def __repr__(self) -> str:
        return f"<trace_nb Panel of {self.session!r}>"


def _chosen_model(llm: Any) -> str:
    """`` ('m', the only model the server serves)`` when no model was named and the server's
    one was chosen (:mod:`trace_nb.llm.models`): its stderr line is not shown in the panel,
    whose clicks run outside any cell."""
    if getattr(llm, "model_source", None) != "server":
        return ""
    return f" ({llm.model!r}, the only model the server serves)"
