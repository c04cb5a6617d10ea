"""Where examples run: this process (threads) or a remote engine (processes, Dask, Ray).

:func:`engine_for` turns what the user passes as ``executor=`` into an :class:`Engine` with
two operations, ``share`` (send a large payload once) and ``submit`` (run a function on
arguments, return something with ``result()``), or None for in-process threads.

Accepted:

* ``None`` or a :class:`~concurrent.futures.ThreadPoolExecutor`: in this process.
* any other :class:`~concurrent.futures.Executor` (a ``ProcessPoolExecutor``, a Dask
  ``client.get_executor()``, ...).
* a Dask ``distributed.Client``: tasks are submitted with ``pure=False`` (a workflow that
  samples must run again, not return a cached result). Dask retries a task whose worker
  died on another worker (``distributed.scheduler.allowed-failures``, 3 by default): a
  task that kills its worker costs up to four workers before its example gets the error.
* Ray: ``"ray"``, the ``ray`` module, or :class:`RayEngine` (``ray.remote`` options;
  ``max_retries`` is 0 unless you say otherwise); Ray must be initialised
  (``ray.init(...)``) or it starts a local instance itself. The payload is put in Ray's
  object store once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Protocol

__all__ = ["Engine", "RayEngine", "engine_for"]


class Engine(Protocol):
    name: str

    def share(self, payload: bytes) -> Any:
        """A handle for ``payload`` that tasks receive in its place."""

    def submit(self, fn: Callable, *args: Any) -> Any:
        """Run ``fn(*args)`` remotely; the returned object has ``result()``."""


class ExecutorEngine:
    """Any :class:`concurrent.futures.Executor`."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self.name = type(executor).__name__

    def share(self, payload: bytes) -> Any:
        return payload

    def submit(self, fn: Callable, *args: Any) -> Any:
        return self.executor.submit(fn, *args)


class DaskEngine:
    """A Dask ``distributed.Client``."""

    name = "dask"

    def __init__(self, client: Any):
        self.client = client

    def share(self, payload: bytes) -> Any:
        # Sent with each task, not scattered: scattered data lives only on workers and is
        # gone once the workers holding it die, taking every later task of the run with it.
        return payload

    def submit(self, fn: Callable, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)


class RayEngine:
    """Ray remote tasks. ``options`` go to ``ray.remote`` (``num_cpus``, ``max_retries``...)."""

    name = "ray"

    def __init__(self, **options: Any):
        # No retries by default: a task that kills its worker would kill three more, and its
        # LLM calls would be paid again without being counted. Its example gets the error.
        self.options = {"num_cpus": 1, "max_retries": 0, **options}
        self._remote: dict[Callable, Any] = {}

    def share(self, payload: bytes) -> Any:
        import ray

        return ray.put(payload)

    def submit(self, fn: Callable, *args: Any) -> Any:
        import ray

        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = ray.remote(**self.options)(fn)
        # An object ref passed as an argument is fetched on the worker.
        return _RayTask(remote.remote(*args))


class _RayTask:
    """A submitted Ray task: ``result()`` raises the task's error, ``cancel()`` stops it."""

    def __init__(self, ref: Any):
        self.ref = ref
        self.future = ref.future()

    def result(self, timeout: float | None = None) -> Any:
        return self.future.result(timeout)

    def cancel(self) -> bool:
        import ray

        ray.cancel(self.ref)
        return self.future.cancel()


def _is_dask_client(obj: Any) -> bool:
    distributed = sys.modules.get("distributed")  # imported by whoever made the client
    return distributed is not None and isinstance(obj, distributed.Client)


def engine_for(executor: Any) -> Engine | None:
    """The engine for ``executor`` (see the module docstring); None: run in this process."""
    if executor is None or isinstance(executor, ThreadPoolExecutor):
        return None
    if isinstance(executor, (ExecutorEngine, DaskEngine, RayEngine)):
        return executor
    if executor == "ray" or getattr(executor, "__name__", None) == "ray":
        return RayEngine()
    if _is_dask_client(executor):
        return DaskEngine(executor)
    if isinstance(executor, Executor):
        return ExecutorEngine(executor)
    raise TypeError(
        f"executor={executor!r} is not something trace_nb can run examples on: pass a "
        "concurrent.futures.Executor, a dask.distributed.Client, 'ray' (after ray.init()) "
        "or trace_nb.training.RayEngine(...)"
    )
