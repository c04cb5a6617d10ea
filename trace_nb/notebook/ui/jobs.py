"""Background work for the panel, independent of the thread a widget message arrives on.

An LLM call can take seconds; the kernel must stay responsive meanwhile. :class:`Jobs` runs
such a call in a daemon thread and then runs its *continuation* (the code that uses the
result: updating session state, running user code, touching widgets) on the panel's
**home loop**:

* in a kernel that is ipykernel's main asyncio loop, found when the panel is made (the
  cell runs on the main thread) or, failing that, through the running ``IPKernelApp``.
  The continuation is scheduled with ``loop.call_soon_threadsafe``, so it runs on the main
  thread between kernel messages, whether the click that started the job came on the main
  shell or on a subshell thread (JupyterLab 4.6 and Notebook 7 handle widget comms on a
  subshell thread by default);
* with no kernel (plain scripts, pytest) continuations wait in a queue until
  :meth:`Jobs.wait` runs them.

Both paths share one queue, so :meth:`Jobs.wait` also works inside a kernel cell (where the
loop is blocked by the cell itself). Every continuation runs while holding ``lock`` (the
session's), as do the panel's own actions, so no two changes of session state interleave,
whichever threads they come from. A cancelled job's result is discarded: its continuation
never runs, so nothing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Job", "Jobs", "Ticker", "home_loop"]


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
    started : float
        ``time.monotonic()`` when the job was submitted.
    """

    def __init__(
        self,
        fn: Callable[[], Any],
        then: Callable[[Any], None] | None,
        on_error: Callable[[BaseException], None] | None,
        label: str = "",
    ):
        self.fn = fn
        self.then = then
        self.on_error = on_error
        self.label = label
        self.cancelled = False
        self.finished = threading.Event()
        self.started = time.monotonic()

    def cancel(self) -> None:
        """Discard the result: the worker may still finish, but nothing will use it."""
        self.cancelled = True

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    @property
    def elapsed(self) -> float:
        """Seconds since the job was submitted."""
        return time.monotonic() - self.started

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "done" if self.done else "running"
        return f"<Job {self.label!r} {state}>"


class Jobs:
    """Runs jobs in worker threads and their continuations on the home loop.

    Parameters
    ----------
    on_error : callable, optional
        Called with any exception (from a worker or a continuation) that the job itself
        does not handle. Without it such exceptions propagate from :meth:`wait`.
    lock : threading.RLock, optional
        Held while a continuation runs (share it with whatever else changes the same state).
    loop : asyncio.AbstractEventLoop, optional
        The home loop; found with :func:`home_loop` when not given.
    """

    def __init__(
        self,
        on_error: Callable[[BaseException], None] | None = None,
        lock: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ):
        self.on_error = on_error
        self.lock = lock if lock is not None else threading.RLock()
        self.loop = loop if loop is not None else home_loop()
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue()
        self._state = threading.Lock()  # guards _pending and _jobs only
        self._pending = 0  # jobs whose continuation has not run (or been skipped) yet
        self._jobs: list[Job] = []

    # -- submitting -------------------------------------------------------------------
    def submit(
        self,
        fn: Callable[[], Any],
        then: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        label: str = "",
    ) -> Job:
        """Run ``fn()`` in a worker thread, then ``then(result)`` on the home loop.

        Parameters
        ----------
        fn : callable
            The slow part; it must not touch widgets or run user code.
        then : callable, optional
            Gets the result; runs on the home loop (or in :meth:`wait`), holding ``lock``.
        on_error : callable, optional
            Gets an exception raised by ``fn`` or ``then``; falls back to ``Jobs.on_error``.
        label : str
            What the job does.

        Returns
        -------
        Job
        """
        job = Job(fn, then, on_error, label)
        with self._state:
            self._pending += 1
            self._jobs = [j for j in self._jobs if not j.done] + [job]

        def work() -> None:
            try:
                result, error = fn(), None
            except BaseException as e:  # handed to the continuation, never lost
                result, error = None, e
            self.call_soon(lambda: self._finish(job, result, error))

        threading.Thread(target=work, name=f"trace_nb-job-{label or 'work'}", daemon=True).start()
        return job

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (holding ``lock``) on the home loop, or at the next :meth:`wait`."""
        self._queue.put(fn)
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: wait() will run it
                loop.call_soon_threadsafe(self.drain)

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
            with self._state:
                self._pending -= 1
            job.finished.set()

    # -- the home side ----------------------------------------------------------------
    def drain(self) -> int:
        """Run every continuation that is ready (holding ``lock``); return how many ran."""
        n = 0
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return n
            with self.lock:
                fn()
            n += 1

    def wait(self, timeout: float | None = None, *, cancelled: bool = False) -> bool:
        """Block until every job that was not cancelled finished and its continuation ran
        (jobs started by continuations included). Not needed in a kernel, where the home
        loop runs them. A cancelled job is not waited for: its result is discarded whenever
        its worker ends (a later :meth:`wait` or :meth:`drain`, or the home loop, skips it).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most; None waits as long as it takes.
        cancelled : bool
            Also wait for the workers of cancelled jobs to end (their results are then
            discarded), e.g. before checking that an abandoned call changed nothing.

        Returns
        -------
        bool
            True when all work is done, False when the timeout came first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.drain()
            with self._state:
                left_over = any(not j.done and (cancelled or not j.cancelled) for j in self._jobs)
            if not left_over:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                fn = self._queue.get(timeout=min(left, 0.05) if left is not None else 0.05)
            except queue.Empty:
                continue  # the home loop may have run it: re-check, then time out
            with self.lock:
                fn()

    def cancel(self) -> list[Job]:
        """Cancel every running job; return those cancelled."""
        with self._state:
            running = [j for j in self._jobs if not j.done and not j.cancelled]
        for j in running:
            j.cancel()
        return running

    @property
    def busy(self) -> bool:
        """True while a job that was not cancelled is still running."""
        with self._state:
            return any(not j.done and not j.cancelled for j in self._jobs)


class Ticker:
    """Calls ``update()`` every ``interval`` seconds (holding ``lock``, never waiting long
    for it) while ``alive()`` is true, on a daemon timer thread; :meth:`cancel` stops it."""

    def __init__(
        self,
        alive: Callable[[], bool],
        update: Callable[[], None],
        lock: Any,
        interval: float = 1.0,
    ):
        self.alive, self.update, self.lock, self.interval = alive, update, lock, interval
        self._timer: threading.Timer | None = None
        self._cancelled = False

    def start(self) -> None:
        if self._cancelled:
            return
        self._timer = threading.Timer(self.interval, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        if self._cancelled or not self.alive():
            return
        if self.lock.acquire(timeout=0.5):
            try:
                if not self._cancelled and self.alive():
                    self.update()
            finally:
                self.lock.release()
        self.start()

    def cancel(self) -> None:
        self._cancelled = True
        if self._timer is not None:
            self._timer.cancel()


def home_loop() -> asyncio.AbstractEventLoop | None:
    """The kernel's main asyncio loop, from any thread; None outside a kernel.

    On the main thread that is the running loop (ipykernel runs cells inside it). From a
    subshell thread it is found through the running ``IPKernelApp``: a subshell thread runs
    a loop of its own, which is *not* the one to use.
    """
    if threading.current_thread() is threading.main_thread():
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            pass
    try:
        from ipykernel.kernelapp import IPKernelApp
    except ImportError:
        return None
    if not IPKernelApp.initialized():
        return None
    io_loop = getattr(IPKernelApp.instance(), "io_loop", None)
    loop = getattr(io_loop, "asyncio_loop", None)
    return loop if loop is not None and not loop.is_closed() else None
