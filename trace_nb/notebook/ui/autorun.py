"""Auto runs: N rounds of propose → approve the valid proposals → run, from the panel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...optim.gates import resolve
from ...optim.policy import HoldReason, decide

__all__ = ["AutoRun"]


class AutoRun:
    """``total`` rounds of: ask the LLM (worker thread) → approve the valid proposals
    (``decided_by="auto"``) → run the cell, whose ``--feedback`` function gives the
    feedback (main thread).

    A valid code proposal pauses the run unless ``approve_code()`` is true: the other
    proposals are approved, the step waits for a human, and :meth:`resume` finishes it.
    ``review`` (a rule of :mod:`trace_nb.optim.gates`) picks more proposals to wait for
    a human: with ``pause=True`` the run pauses for them; otherwise they queue in the
    session (``session.waiting``) and the run goes on with the rest.

    Parameters
    ----------
    session : TraceSession
    total : int
        Number of rounds.
    start_job : callable
        ``start_job(label, fn, then)`` runs ``fn`` in the background, then ``then(result)``
        (the panel's, so busy state and errors show there).
    approve_code : callable
        Returns whether code proposals may be approved without a human.
    status : callable
        Gets a status line.
    progress : callable
        Gets ``done`` after each round.
    ended : callable
        Gets this run when it finished, stopped or paused.
    """

    def __init__(
        self,
        session: Any,
        total: int,
        start_job: Callable,
        approve_code: Callable[[], bool],
        status: Callable[[str], None],
        progress: Callable[[int], None],
        ended: Callable[[AutoRun], None],
        review: Any = None,
        pause: bool = False,
    ):
        self.session, self.total, self.done = session, total, 0
        self.review, self.pause = resolve(review), pause
        self.stopping = self.paused = False
        self._held: list = []  # what a paused run waits on
        self._before: float | None = None  # the current values' preview mean, this round
        self.kept = 0  # rounds in which every candidate previewed below the current values
        self._start_job, self._approve_code = start_job, approve_code
        self._status, self._progress, self._ended = status, progress, ended

    def start(self) -> None:
        """Begin the first round."""
        self._next()

    def resume(self) -> None:
        """Finish the paused round (a human decided on its code proposals), then go on."""
        self.paused = False
        self._decide()

    def change(
        self, total: int | None = None, review: Any = None, pause: bool | None = None
    ) -> None:
        """Change a paused run before it resumes: its total number of rounds (counting
        those done), its review rule, whether the rule pauses. Arguments left None stay.
        Raises ValueError, changing nothing, when ``total`` would end the run before the
        round it is paused in."""
        if total is not None:
            total = int(total)
            if total <= self.done:
                raise ValueError(
                    f"this auto run is paused in step {self.done + 1} of {self.total}: "
                    f"steps={total} would end it before that step. Give at least "
                    f"{self.done + 1} (the steps already done count), or click Stop "
                    "(panel.stop()) and start a new run"
                )
        rule = None if review is None else resolve(review)
        if total is not None:
            self.total = total
        if rule is not None:
            self.review = rule
        if pause is not None:
            self.pause = bool(pause)

    def stop(self) -> None:
        """End after the current round."""
        self.stopping = True

    @property
    def waiting_for(self) -> list[str]:
        """Names of the proposals a paused run waits on (still pending)."""
        return list(dict.fromkeys(p.name for p in self._held if p.status == "pending"))

    def _next(self) -> None:
        if self.stopping or self.done >= self.total:
            how = "stopped" if self.stopping else "finished"
            kept = (
                f"; in {self.kept} of them every candidate previewed below the current "
                "values, which were kept"
                if self.kept
                else ""
            )
            self._status(f"auto run {how} after {self.done} of {self.total} step(s){kept}")
            self._ended(self)
            return
        _ = self.session.optimizer  # made here, on the main thread: config errors show at once
        self._start_job(
            f"auto step {self.done + 1}/{self.total}: asking the LLM…",
            self.session.request_proposals,
            self._proposed,
        )

    def _proposed(self, result: tuple[list, Any]) -> None:
        self.session.adopt(*result)
        self._decide()

    def _decide(self) -> None:
        """One round's choice, by :func:`trace_nb.optim.policy.decide`: the code held
        (never previewed) unless ``approve_code()``, one candidate (the best by preview),
        and the proposals the review rule keeps for a human."""
        s = self.session
        approve_code = self._approve_code()
        self._before = None  # the current values' mean, as the candidates' previews saw it
        decision = decide(
            [p for p in s.proposals if p not in s.waiting],
            self.review,
            approve_code,
            self._score_candidate,
            round=self.done + 1,
            previewer=lambda p: s.preview(s.display_name(p.parameter), candidate=p.candidate),
            current_score=lambda: self._before,
        )
        s.apply_decision(decision, "auto", approve_code)
        self.kept += decision.kept
        code = decision.held(HoldReason.CODE)
        human = decision.held(HoldReason.REVIEW)
        broken = [p for p in decision.apply if not p.valid]  # code that did not load
        if broken:
            self.paused, self._held = True, broken
            self._status(
                f"paused at step {self.done + 1}/{self.total}: the code for "
                f"{s.display_name(broken[0].parameter)} was not applied ({broken[0].reason}). "
                "Reject it (or edit it), then click Auto to go on"
            )
            self._ended(self)
            return
        if code or (human and self.pause):
            names = list(dict.fromkeys(s.display_name(p.parameter) for p in code + human))
            self.paused, self._held = True, code + human
            why = "the code proposal" if code and not human else "the proposals"
            self._status(
                f"paused at step {self.done + 1}/{self.total}: {why} for "
                f"{', '.join(names)} waits for you. Approve or reject it, then click "
                "Auto to go on"
            )
            self._ended(self)
            return
        if human:
            s.queue_for_review(human)
        s.run()
        self.done += 1
        self._progress(self.done)
        self._next()

    def _score_candidate(self, proposals: list) -> float | None:
        """A candidate's score: the mean over its proposals of the preview's mean after
        (the policy calls this only for candidates that may run); None when it breaks the
        cell on an example the current values run (its mean would leave that one out)."""
        s = self.session
        previews = [
            s.preview(s.display_name(p.parameter), candidate=p.candidate) for p in proposals
        ]
        for preview in previews:
            if preview.mean_before is not None:
                self._before = preview.mean_before
        if any(row.error for preview in previews for row in preview.rows):
            return None
        got = [m for m in (pv.mean_after for pv in previews) if m is not None]
        return sum(got) / len(got) if got else None
