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

    def __init__(self, session: Any, total: int, start_job: Callable, approve_code: Callable[[], bool],
                 status: Callable[[str], None], progress: Callable[[int], None],
                 ended: Callable[[AutoRun], None]):
        self.session, self.total, self.done = session, total, 0
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
        return [p.name for p in self.session.proposals
                if p.is_code and p.valid and p.status == "pending"]

    def _next(self) -> None:
        if self.stopping or self.done >= self.total:
            how = "stopped" if self.stopping else "finished"
            self._status(f"auto run {how} after {self.done} of {self.total} step(s)")
            self._ended(self)
            return
        _ = self.session.optimizer  # made here, on the main thread: config errors show at once
        self._start_job(f"auto step {self.done + 1}/{self.total}: asking the LLM…",
                        self.session.request_proposals, self._proposed)

    def _proposed(self, result: tuple[list, Any]) -> None:
        self.session.adopt(*result)
        self._decide()

    def _decide(self) -> None:
        s = self.session
        pending = [p for p in s.proposals if p.status == "pending" and p.valid]
        code = [p.name for p in pending if p.is_code]
        if code and not self._approve_code():
            plain = [p.name for p in pending if not p.is_code]
            if plain:
                s.approve(plain, decided_by="auto")
            self.paused = True
            self._status(f"paused at step {self.done + 1}/{self.total}: the code proposal for "
                         f"{', '.join(code)} waits for you. Approve or reject it, then click Auto "
                         "to go on")
            self._ended(self)
            return
        if pending:
            s.approve(decided_by="auto", approve_code=self._approve_code())
        s.run()
        self.done += 1
        self._progress(self.done)
        self._next()
