"""The panel's background work: LLM calls in a worker thread with a ticking status line,
auto runs (propose → approve → run, N times), and Stop / Cancel."""

from __future__ import annotations

import html
from typing import Any

from ...optim.gates import resolve
from .actions import action as _action
from .autorun import AutoRun
from .header import proposal_status
from .jobs import Job, Ticker


class BackgroundMixin:
    """Mixed into :class:`~.panel.Panel` (uses its session, jobs, progress bar, status line,
    auto-run widgets, ``_sync``, ``_set_status`` and ``_show_error``)."""

    session: Any
    jobs: Any
    _job: Job | None
    _auto: AutoRun | None
    _paused: AutoRun | None
    _closed: bool
    _ticker: Ticker | None

    @_action
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
            self.progress.max = paused.total
            self._guard_auto(paused.resume)
            return
        self._paused = None
        steps = self.auto_steps.value if steps is None else int(steps)
        if steps < 1:
            raise ValueError(f"the number of auto steps must be at least 1, got {steps}")
        self._auto = AutoRun(
            s,
            steps,
            self._start,
            lambda: self.auto_code.value,
            self._set_status,
            lambda done: setattr(self.progress, "value", done),
            self._auto_ended,
            review=review,
            pause=bool(pause),
        )
        self.progress.max, self.progress.value = steps, 0
        self._guard_auto(self._auto.start)

    def stop(self) -> None:
        """End the auto run after the current step (or give up a paused one)."""
        with self.session.lock:
            if self._auto is not None:
                self._auto.stop()
                self._set_status("stopping after this step…")
            elif self._paused is not None:
                self._paused = None
                self._set_status("auto run stopped")
            self._sync()

    def cancel(self) -> None:
        """Cancel the LLM call in progress: its result is discarded and nothing changes."""
        with self.session.lock:
            if self.jobs.cancel() or self._job is not None:
                self._set_status("cancelled: the LLM's answer will be ignored; nothing changed")
            self._job, self._auto = None, None
            self._sync()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until background work is done and its follow-up ran (for tests, scripts).

        A call given up with :meth:`cancel` is not waited for: ``wait()`` returns as soon as
        nothing else runs, and the abandoned answer is discarded whenever it arrives.
        """
        return self.jobs.wait(timeout)

    @property
    def busy(self) -> bool:
        """True while an LLM call runs for this panel."""
        return self._job is not None

    # -- background work ---------------------------------------------------------------
    def _start(self, label: str, fn: Any, then: Any) -> Job:
        def done(result: Any) -> None:
            self._job = None
            self._stop_ticker()
            then(result)
            self._sync()

        def failed(error: BaseException) -> None:
            self._job, self._auto = None, None
            self._stop_ticker()
            self._set_status("failed: see the error below")
            self._show_error(error)
            self._sync()

        if self._auto is None:
            self.progress.max, self.progress.value = 1, 0  # an LLM call: striped, not a count
        self._job = job = self.jobs.submit(fn, done, failed, label)
        self._busy_status(job)
        self._sync()
        self._tick(job)
        return job

    def _busy_status(self, job: Job) -> None:
        self.status.value = (
            f"<span class='trace-nb-spinner'></span>working… {html.escape(job.label)} "
            f"<span class='trace-nb-elapsed'>{job.elapsed:.0f} s</span>"
        )

    def _tick(self, job: Job) -> None:
        # Elapsed seconds while the LLM works: a timer thread redraws the status line.
        self._ticker = Ticker(
            lambda: self._job is job and not job.done and not self._closed,
            lambda: self._busy_status(job),
            self.session.lock,
        )
        self._ticker.start()

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _adopt(self, result: tuple[list, Any]) -> None:
        props = self.session.adopt(*result)
        if self._auto is None:
            self._set_status(proposal_status(props))

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
