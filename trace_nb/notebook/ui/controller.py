"""The panel's controller: it wires the views to the session and owns the background work.

The views (:mod:`.controls`, :mod:`.proposal_view`, :mod:`.node_feedback`,
:mod:`.versions_view`, :mod:`.restore_offer`, :mod:`.status_bar`, ...) only say what a
human did; this controller decides what that means. It alone

* changes the session, through its public methods (its :class:`~.display.SessionDisplay`
  only reads the session to draw it, and its :class:`~.autorun.AutoRun` acts for it),
* owns the jobs (LLM calls in a worker thread, follow-up on the kernel's main loop, see
  :mod:`.jobs`), the auto run and the ticker of the status line,
* has the views redrawn when the session changes (``session.on_change``).

Every action holds the session's lock (widget messages may arrive on any thread), and its
errors are shown in the error area (:func:`.actions.action`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as w

from ...optim.gates import resolve
from ...text import score_text
from .actions import action
from .autorun import AutoRun
from .display import SessionDisplay
from .header import proposal_status
from .jobs import Job, Jobs, Ticker
from .proposal_view import close_tree
from .views import PanelViews

__all__ = ["PanelController"]

_DONE = {
    "run": "ran the cell (run {n})",
    "approve": "approved",
    "reject": "rejected",
    "edit": "edited",
}  # status after a session change


class PanelController:
    """Drives one session from the views of one panel.

    Parameters
    ----------
    session : TraceSession
    views : PanelViews
    jobs : Jobs
        Runs the background work (holding the session's lock); made on the cell's thread,
        which finds the kernel's loop.
    show_training : callable
        Gets the widget of a training run (:meth:`train`) to show it.

    Attributes
    ----------
    jobs : Jobs
        The background work.
    display : SessionDisplay
        Draws the session into the views.
    train_view : TrainView or None
        The last training run shown.
    """

    def __init__(
        self,
        session: Any,
        views: PanelViews,
        jobs: Jobs,
        show_training: Callable[[w.Widget], None],
    ):
        self.session, self.views = session, views
        self.display = SessionDisplay(session, views)
        self.jobs = jobs
        jobs.on_error = self._show_error  # errors no job handles itself show in the panel
        self.train_view: Any = None
        self._show_training = show_training
        self._depth = 0  # nesting of actions (see acting)
        self._job: Job | None = None
        self._auto: AutoRun | None = None  # while auto-running
        self._paused: AutoRun | None = None  # an auto run waiting for a human to decide on code
        self._ticker: Ticker | None = None  # refreshes the elapsed time of a job
        self._closed = False
        self._wire()
        session.on_change(self._on_change)

    def _wire(self) -> None:
        v, quiet = self.views, self._quietly
        c = v.controls
        c.on_send(lambda: quiet(self.send_feedback))
        c.on_propose(lambda: quiet(self.propose))
        c.on_approve_all(lambda: quiet(self.approve))
        c.on_reject_all(lambda: quiet(self.reject))
        c.on_run(lambda: quiet(self.run))
        c.on_auto(lambda: quiet(self.auto))
        c.on_stop(lambda: quiet(self.stop))
        v.status.on_cancel(lambda: quiet(self.cancel))
        v.proposals.on_approve(
            lambda n, candidate: quiet(
                lambda: self.approve(n) if candidate is None else self.choose(candidate)
            )
        )
        v.proposals.on_reject(lambda n, candidate: quiet(lambda: self.reject(n, candidate)))
        v.proposals.on_edit(lambda n, text, candidate: quiet(lambda: self.edit(n, text, candidate)))
        v.proposals.on_preview(lambda n, candidate: quiet(lambda: self.preview(n, candidate)))
        v.dag.on_select(lambda node_id: quiet(self.display.show_selected))
        v.dag.observe(lambda _: quiet(self.refresh), names=["max_nodes"])
        v.node_feedback.on_send(lambda text: quiet(lambda: self.feedback_on(text=text)))
        v.versions.on_pick(lambda number: quiet(self.display.show_version_diff))
        v.versions.on_restore(lambda number: quiet(lambda: self.restore_version(number=number)))
        v.restore_offer.on_restore(lambda: quiet(self.restore))
        v.restore_offer.on_keep(lambda: quiet(self.keep_cell_values))

    @contextlib.contextmanager
    def acting(self) -> Iterator[None]:
        """One action (see :func:`.actions.action`): hold the session's lock, clear old
        errors (in the outermost action only), and show an exception in the error area
        before it is re-raised."""
        with self.session.lock:
            if self._depth == 0:
                self.clear_errors()
            self._depth += 1
            try:
                yield
            except Exception as e:
                self._show_error(e)
                raise
            finally:
                self._depth -= 1

    def start(self) -> None:
        """Draw the session, and say so if the run that made the panel got no feedback."""
        self.refresh(prefill=True)
        if self.session.feedback_error is not None:
            self._feedback_failed()

    # -- the loop ------------------------------------------------------------------------
    @action
    def propose(self) -> Job:
        """Ask the LLM for proposals in the background (sends changed feedback first)."""
        self._idle()
        s = self.session
        text, score = self.views.controls.feedback()
        if (text or score is not None) and (text, score) != s.last_feedback:
            s.feedback(text or None, score)
        if s.last_feedback is None and not s.node_feedback:
            raise ValueError(
                "no feedback yet: type what you think of the output (or a score), then Propose"
            )
        llm = getattr(s.optimizer, "llm", None)  # made here, on the main thread: errors show now
        return self._start(
            f"asking the LLM{_chosen_model(llm)} for proposals…", s.request_proposals, self._adopt
        )

    @action
    def approve(self, name: str | None = None, value: Any = None) -> list:
        """Apply the proposal for ``name`` (with ``value``: edited first), or all valid ones."""
        return self.session.approve(name, value=value)

    @action
    def edit(self, name: str, value: Any, candidate: int | None = None) -> Any:
        """Replace the proposal for ``name`` with ``value``; an invalid value shows why."""
        return self.session.edit(name, value, candidate=candidate)

    @action
    def reject(self, name: str | None = None, candidate: int | None = None) -> list:
        """Reject the proposal for ``name``, or all pending ones."""
        return self.session.reject(name, candidate=candidate)

    @action
    def choose(self, candidate: int) -> list:
        """Pick one of several candidates: apply its proposals, reject the others'."""
        return self.session.choose(candidate)

    @action
    def run(self) -> Any:
        """Run the traced cell again with the current values; returns the output."""
        self._idle()
        return self.session.run()

    @action
    def send_feedback(self, text: str | None = None, score: float | None = None) -> None:
        """Give the feedback box's text and score (or the given ones) to the session."""
        self.views.controls.fill(text, score)
        text, score = self.views.controls.feedback()
        self.session.feedback(text or None, score)
        self._say("feedback sent")

    @action
    def train(self, dataset: Any, feedback: Any = None, *, input: str, **kwargs: Any) -> Any:
        """Optimize over ``dataset`` (see :meth:`TraceSession.train`), showing the run."""
        from .train_view import TrainView

        self._idle()
        view = TrainView()
        if self.train_view is not None:
            close_tree(self.train_view.widget)
        self.train_view = view
        self._show_training(view.widget)
        kwargs.setdefault("view", view)
        return self.session.train(dataset, feedback, input=input, **kwargs)

    # -- review with evidence ----------------------------------------------------------
    @action
    def feedback_on(
        self, node_id: str | None = None, text: str | None = None, score: float | None = None
    ) -> None:
        """Feedback on one node of the DAG (the selected one by default)."""
        node_id = node_id or self.views.dag.selected
        if not node_id:
            raise ValueError("click a node in the graph first, then write feedback about its value")
        box = self.views.node_feedback.text
        if text is not None:
            box.value = text
        self.session.feedback_on(node_id, box.value.strip(), score)
        self._say(f"feedback on {node_id} sent: it reaches the parameters upstream of it")

    @action
    def preview(self, name: str, candidate: int | None = None) -> Any:
        """Run the cell with the proposal for ``name`` on the session's examples and show
        outputs and scores before → after on its card; nothing changes."""
        from ..preview import projected_runs

        self._idle()
        self._say(f"previewing {name}: running the cell {projected_runs(self.session)} times…")
        result = self.session.preview(name, candidate=candidate)
        self.views.proposals.show_preview(name, candidate, result)
        self._say(
            f"preview of {name}: {result.regressions} regression(s), mean score "
            f"{score_text(result.mean_before)} → {score_text(result.mean_after)}"
        )
        return result

    @action
    def restore_version(self, name: str | None = None, number: int | None = None) -> Any:
        """Make an earlier version of a parameter current again (the one picked under the
        selected parameter node by default)."""
        name = name or self.display.selected_parameter()
        number = self.views.versions.picked if number is None else number
        if name is None or number is None:
            raise ValueError("click a parameter in the graph and pick a version first")
        value = self.session.restore_version(name, int(number))
        self._say(f"restored version {number} of {name}: Run again to see it at work")
        return value

    @action
    def restore(self) -> list[str]:
        """Restore the values this session autosaved (after a kernel restart), then run."""
        from ..autosave import restore

        self._idle()
        names = restore(self.session)
        self.session.run()
        kept = self.session.autosave_kept
        self._say(
            f"restored {', '.join(names) or 'the history'} from the autosave; "
            + (f"the work it replaced is kept in {kept}; " if kept is not None else "")
            + "%%trace --reset starts over"
        )
        return names

    @action
    def keep_cell_values(self) -> None:
        """Dismiss the offer to restore autosaved values."""
        self.session.restorable = None
        self.refresh()

    # -- auto runs and background work -------------------------------------------------
    @action
    def auto(
        self,
        steps: int | None = None,
        review: Any = None,
        pause: bool | None = None,
        gate: str | None = None,
    ) -> None:
        """Start (or resume, or change and resume) an auto run; see :meth:`Panel.auto`."""
        self._idle()
        s = self.session
        if not (s.spec is not None and s.spec.feedback):
            raise ValueError(
                "Auto needs a feedback function: add `--feedback FUNC` to the %%trace "
                "line (FUNC(output) returns text, a score, or both)"
            )
        if gate is not None:  # gate="no_regression": a preview must show no regression
            review = [r for r in (review, gate) if r is not None]
        resolve(review)  # a rule that is not one is refused before anything changes
        paused = self._paused
        if paused is not None and s.proposals:  # its proposals were not cleared by a run
            paused.change(steps, review, pause)  # refused (still paused) or changed
            self._paused, self._auto = None, paused
            self.views.status.count(total=paused.total)
            self._guard_auto(paused.resume)
            return
        self._paused = None
        steps = self.views.controls.auto_steps.value if steps is None else int(steps)
        if steps < 1:
            raise ValueError(f"the number of auto steps must be at least 1, got {steps}")
        self._auto = AutoRun(
            s,
            steps,
            self._start,
            lambda: self.views.controls.auto_code.value,
            self._say,
            self.views.status.count,
            self._auto_ended,
            review=review,
            pause=bool(pause),
        )
        self.views.status.count(0, steps)
        self._guard_auto(self._auto.start)

    def stop(self) -> None:
        """End the auto run after the current step (or give up a paused one)."""
        with self.session.lock:
            if self._auto is not None:
                self._auto.stop()
                self._say("stopping after this step…")
            elif self._paused is not None:
                self._paused = None
                self._say("auto run stopped")
            self._sync()

    def cancel(self) -> None:
        """Cancel the LLM call in progress: its result is discarded and nothing changes."""
        with self.session.lock:
            if self.jobs.cancel() or self._job is not None:
                self._say("cancelled: the LLM's answer will be ignored; nothing changed")
            self._job, self._auto = None, None
            self._sync()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until background work is done and its follow-up ran (see :meth:`Jobs.wait`)."""
        return self.jobs.wait(timeout)

    @property
    def busy(self) -> bool:
        """True while an LLM call runs."""
        return self._job is not None

    def _start(self, label: str, fn: Any, then: Any) -> Job:
        def done(result: Any) -> None:
            self._job = None
            self._stop_ticker()
            then(result)
            self._sync()

        def failed(error: BaseException) -> None:
            self._job, self._auto = None, None
            self._stop_ticker()
            self._say("failed: see the error below")
            self._show_error(error)
            self._sync()

        if self._auto is None:
            self.views.status.count(0, 1)  # an LLM call: striped, not a count
        self._job = job = self.jobs.submit(fn, done, failed, label)
        self.views.status.working(job.label, job.elapsed)
        self._sync()
        # Elapsed seconds while the LLM works: a timer thread redraws the status line.
        self._ticker = Ticker(
            lambda: self._job is job and not job.done and not self._closed,
            lambda: self.views.status.working(job.label, job.elapsed),
            self.session.lock,
        )
        self._ticker.start()
        return job

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _adopt(self, result: tuple[list, Any]) -> None:
        props = self.session.adopt(*result)
        if self._auto is None:
            self._say(proposal_status(props))

    def _guard_auto(self, fn: Any) -> None:
        # An error ends the auto run (and is shown by the caller), never leaves it hanging.
        try:
            fn()
        except BaseException:
            self._auto = None
            self._sync()
            raise

    def _auto_ended(self, run: AutoRun) -> None:
        self._auto = None
        self._paused = run if run.paused else None
        self._sync()

    def _idle(self) -> None:
        if self._job is not None or self._auto is not None:
            raise RuntimeError(
                "the panel is busy (an LLM call or an auto run is in progress): "
                "wait, Stop or Cancel first"
            )

    # -- display -------------------------------------------------------------------------
    def refresh(self, prefill: bool = False) -> None:
        """Redraw every view from the session (``prefill`` also resets the feedback box)."""
        self.display.draw(prefill)
        if self._paused is not None and not self._paused.waiting_for:
            self._say("decided: click Auto to go on with the auto run")
        self._sync()

    def select(self, node_id: str) -> None:
        """Show the details of a node of the DAG, as a click on it would."""
        try:
            self.views.dag.select(node_id)
        except Exception as e:
            self._show_error(e)
            raise
        self.display.show_selected()

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
            self._say(_DONE[event].format(n=len(self.session.rows) - 1))
        # After a run the --feedback function's text follows at once: fill the box once, then.
        spec = self.session.spec
        follows = event == "run" and spec is not None and bool(spec.feedback)
        prefill = event == "feedback" or (event == "run" and not follows)
        self._quietly(lambda: self.refresh(prefill=prefill))

    def _sync(self) -> None:
        self.display.buttons(
            busy=self._job is not None, auto=self._auto is not None, paused=self._paused is not None
        )

    def _say(self, text: str) -> None:
        self.views.status.say(text)

    # -- errors --------------------------------------------------------------------------
    def clear_errors(self) -> None:
        """Empty the error area."""
        self.views.errors.clear()

    def _feedback_failed(self) -> None:
        """The --feedback function gave no feedback on the run just recorded: say so."""
        self._show_error(self.session.feedback_error)
        self._say(
            "ran the cell, but the feedback function failed (see below); type feedback "
            "here or fix the function and click Run again"
        )

    def _show_error(self, error: BaseException) -> None:
        self.views.errors.show(error)

    def _quietly(self, fn: Any) -> Any:
        """Run a callback; its exception is shown (actions show their own) and not re-raised."""
        try:
            return fn()
        except Exception as e:
            self._show_error(e)  # no-op when the action already showed it
            return None

    def close(self) -> None:
        """Stop everything: background work is cancelled, session changes are ignored."""
        self.jobs.cancel()
        self._job = self._auto = None
        self._closed = True
        self._stop_ticker()
        self.session.off_change(self._on_change)


def _chosen_model(llm: Any) -> str:
    """`` ('m', the only model the server serves)`` when no model was named and the server's
    one was chosen (:mod:`trace_nb.llm.models`): its stderr line is not shown in the panel,
    whose clicks run outside any cell."""
    if getattr(llm, "model_source", None) != "server":
        return ""
    return f" ({llm.model!r}, the only model the server serves)"
