"""Background work for the panel: slow calls in a worker thread, the rest on the main thread.

An LLM call can take seconds; the kernel must stay responsive meanwhile. :class:`Jobs`
runs such a call in a daemon thread and hands its *continuation* (the code that uses the
result: updating session state, running user code, touching widgets) back to the thread
that submitted it:

* in a kernel (ipykernel runs an asyncio loop in the main thread) the continuation is
  scheduled with ``loop.call_soon_threadsafe``, so it runs between kernel messages;
* everywhere else (plain scripts, pytest) it waits in a queue until :meth:`Jobs.wait`
  runs it.

Both paths share one queue, so :meth:`Jobs.wait` also works inside a kernel cell (where the
loop is blocked by the cell itself). A cancelled job's result is discarded: its
continuation never runs, so nothing changes.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["AutoRun", "Job", "Jobs"]


class Job:
    """One piece of background work and what to do with its result.

    Attributes
    ----------
    label : str
        What the job does, for status lines.
    cancelled : bool
        Set by :meth:`cancel`; the continuation is then skipped.
    finished : threading.Event
        Set once the continuation ran (or was skipped).
    """

    def __init__(self, fn: Callable[[], Any], then: Callable[[Any], None] | None,
                 on_error: Callable[[BaseException], None] | None, label: str = ""):
        self.fn = fn
        self.then = then
        self.on_error = on_error
        self.label = label
        self.cancelled = False
        self.finished = threading.Event()

    def cancel(self) -> None:
        """Discard the result: the worker may still finish, but nothing will use it."""
        self.cancelled = True

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "done" if self.done else "running"
        return f"<Job {self.label!r} {state}>"


class Jobs:
    """Runs jobs in worker threads and their continuations on the submitting thread.

    Parameters
    ----------
    on_error : callable, optional
        Called with any exception (from a worker or a continuation) that the job itself
        does not handle. Without it such exceptions propagate from :meth:`wait`.
    """

    def __init__(self, on_error: Callable[[BaseException], None] | None = None):
        self.on_error = on_error
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0  # jobs whose continuation has not run (or been skipped) yet
        self._jobs: list[Job] = []

    # -- submitting -------------------------------------------------------------------
    def submit(self, fn: Callable[[], Any], then: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None,
               label: str = "") -> Job:
        """Run ``fn()`` in a worker thread, then ``then(result)`` on this thread.

        Parameters
        ----------
        fn : callable
            The slow part; it must not touch widgets or run user code.
        then : callable, optional
            Gets the result; runs on the submitting (main) thread.
        on_error : callable, optional
            Gets an exception raised by ``fn`` or ``then``; falls back to ``Jobs.on_error``.
        label : str
            What the job does.

        Returns
        -------
        Job
        """
        job = Job(fn, then, on_error, label)
        loop = _main_loop()
        with self._lock:
            self._pending += 1
            self._jobs = [j for j in self._jobs if not j.done] + [job]

        def work() -> None:
            try:
                result, error = fn(), None
            except BaseException as e:  # handed to the main thread, never lost
                result, error = None, e
            self.call_in_main(lambda: self._finish(job, result, error), loop)

        threading.Thread(target=work, name=f"trace_nb-job-{label or 'work'}", daemon=True).start()
        return job

    def call_in_main(self, fn: Callable[[], None], loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Run ``fn`` on the main thread: soon (in a kernel), or at the next :meth:`wait`."""
        self._queue.put(fn)
        loop = loop or _main_loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # the loop closed: wait() will run it
                pass

    def _finish(self, job: Job, result: Any, error: BaseException | None) -> None:
        try:
            if job.cancelled:
                return
            if error is not None:
                raise error
            if job.then is not None:
                job.then(result)
        except BaseException as e:
            handler = job.on_error or self.on_error
            if handler is None:
                raise
            handler(e)
        finally:
            job.finished.set()
            with self._lock:
                self._pending -= 1

    # -- main-thread side -------------------------------------------------------------
    def drain(self) -> int:
        """Run every continuation that is ready; return how many ran."""
        n = 0
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return n
            fn()
            n += 1

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every job finished and its continuation ran (jobs started by
        continuations included).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most; None waits as long as it takes.

        Returns
        -------
        bool
            True when all work is done, False when the timeout came first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.drain()
            with self._lock:
                if self._pending == 0:
                    return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                fn = self._queue.get(timeout=left)
            except queue.Empty:
                continue  # re-check, then time out
            fn()

    def cancel(self) -> list[Job]:
        """Cancel every running job; return those cancelled."""
        with self._lock:
            running = [j for j in self._jobs if not j.done and not j.cancelled]
        for j in running:
            j.cancel()
        return running

    @property
    def busy(self) -> bool:
        """True while a job that was not cancelled is still running."""
        with self._lock:
            return any(not j.done and not j.cancelled for j in self._jobs)


def _main_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running in the main thread (ipykernel's), if we are on it."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# -- proposing in the background -------------------------------------------------------
# ``TraceSession.propose`` split in two: the LLM round trip (worker thread, changes no
# session state, so a cancelled call leaves nothing behind) and the bookkeeping (main thread).


# -- auto run ----------------------------------------------------------------------------


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
            s.approve(decided_by="auto")
        s.run()
        self.done += 1
        self._progress(self.done)
        self._next()
