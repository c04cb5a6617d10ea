"""A tracker's worker thread: logging happens beside the run, and a failure warns once.

A training step must not wait for an HTTP round trip to a tracking server, and a tracker
that is down must not stop a run. :class:`Background` runs the jobs it is given in order on
one daemon thread; the first job that raises is reported as one ``RuntimeWarning`` (the key
scrubbed from its text) and later failures are counted in :attr:`failures`, silently.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Callable
from typing import Any

from .scrub import scrubbed

__all__ = ["Background"]

_STOP = object()


class Background:
    """Runs jobs on one thread, in the order given.

    Parameters
    ----------
    what
        How warnings name this tracker ("MLflow logging to http://...").
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.failures = 0
        self.first_error: str | None = None
        self._jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], Any]) -> None:
        """Run ``job()`` later on the worker thread (started on first use)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="trace_nb-tracking", daemon=True
                )
                self._thread.start()
        self._jobs.put(job)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job given so far has run; False if ``timeout`` passed first."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._jobs.put(done.set)
        return done.wait(timeout)

    def failed(self, error: BaseException) -> None:
        """Count a failure; warn about the first one."""
        self.failures += 1
        if self.first_error is None:
            self.first_error = scrubbed(f"{type(error).__name__}: {error}")
            warnings.warn(
                f"{self.what} failed, the run goes on without it: {self.first_error}",
                RuntimeWarning,
                stacklevel=2,
            )

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            try:
                job()
            except Exception as e:  # noqa: BLE001 - a tracker never breaks the run
                self.failed(e)
