"""Auto runs: N rounds of propose → approve the valid proposals → run, from the panel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
        from ...optim.gates import resolve

        self.session, self.total, self.done = session, total, 0
        self.review, self.pause = resolve(review), pause
        self.stopping = self.paused = False
        self._start_job, self._approve_code = start_job, approve_code
        self._status, self._progress, self._ended = status, progress, ended

    def start(self) -> None:
        """Begin the first round."""
        self._next()

    def resume(self) -> None:
        """Finish the paused round (a human decided on its code proposals), then go on."""
        self.paused = False
        self._decide()

    def stop(self) -> None:
        """End after the current round."""
        self.stopping = True

    @property
    def waiting_for(self) -> list[str]:
        """Names of the code proposals a paused run waits on (still pending)."""
        return [
            p.name
            for p in self.session.proposals
            if p.is_code and p.valid and p.status == "pending"
        ]

    def _next(self) -> None:
        if self.stopping or self.done >= self.total:
            how = "stopped" if self.stopping else "finished"
            self._status(f"auto run {how} after {self.done} of {self.total} step(s)")
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
        from ...optim.gates import GateContext

        s = self.session
        self._pick_candidate()
        pending = [
            p for p in s.proposals if p.status == "pending" and p.valid and p not in s.waiting
        ]
        ctx = GateContext(self.done + 1, lambda p: s.preview(s.display_name(p.parameter)))
        human = [p for p in pending if self.review(p, ctx)]
        code = [p for p in pending if p.is_code and p not in human and not self._approve_code()]
        rest = [p for p in pending if p not in human and p not in code]
        if rest:
            s.approve(
                [s.display_name(p.parameter) for p in rest],
                decided_by="auto",
                approve_code=self._approve_code(),
            )
        if code or (human and self.pause):
            names = [s.display_name(p.parameter) for p in code + human]
            self.paused = True
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

    def _pick_candidate(self) -> None:
        """With several candidates, apply the one whose preview scores best (the history
        records which); the rest are rejected."""
        s = self.session
        pending = [
            p for p in s.proposals if p.status == "pending" and p.valid and p.candidate is not None
        ]
        numbers = sorted({p.candidate for p in pending})
        if len(numbers) < 2:
            return

        def score(k: int) -> float:
            means = [
                s.preview(s.display_name(p.parameter), candidate=k).mean_after
                for p in pending
                if p.candidate == k
            ]
            got = [m for m in means if m is not None]
            return sum(got) / len(got) if got else float("-inf")

        best = max(numbers, key=score)
        s.choose(best, decided_by="auto", approve_code=self._approve_code())
