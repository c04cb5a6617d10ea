"""One MLflow run, logged beside the work: params, metrics per step, text artifacts, traces.

:class:`MLflowLogger` owns one run of an MLflow tracking server (or a local store). Every
call returns at once; the HTTP requests go out on a worker thread (:mod:`.background`), so a
training step never waits for the tracker and a tracker that fails warns once while the run
goes on. MLflow is imported on that thread, on first use: ``import trace_nb`` never imports it.

What reaches MLflow passes :func:`~trace_nb.tracking.events.scrubbed` (no API key), and
values are logged as text files: nothing logged is ever executed by trace_nb.
"""

from __future__ import annotations

import atexit
import re
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .background import Background
from .events import LLMCall, add_call_observer, remove_call_observer
from .mlflow_traces import RunTraces
from .reach import reachable
from .scrub import scrubbed
from .staging import Staging, file_count, orphans, remove

__all__ = ["INSTALL_HINT", "MLflowLogger", "flush_all", "reachable"]

INSTALL_HINT = 'MLflow logging needs MLflow 3: pip install "trace_nb[mlflow]"'
PARAM_CHARS = 500  # MLflow caps a param value; the full values are artifacts
_KEY_OK = re.compile(r"[^\w\-. /]")


_live: weakref.WeakSet = weakref.WeakSet()  # loggers whose logging may still be under way
_orphans_told: set[str] = set()  # left-behind staging folders already warned about
_exit_hook: list[bool] = []


def flush_all(timeout: float | None = 60.0) -> None:
    """Wait until every logger's logging so far reached MLflow (each up to ``timeout``)."""
    for logger in list(_live):
        logger.flush(timeout)


def _exit_flush() -> None:
    """At the interpreter's exit, send what is still queued (a run that just ended)."""
    if not _exit_hook:
        _exit_hook.append(True)
        atexit.register(flush_all, 30.0)


def _tell_orphans() -> None:
    """Warn (once per folder and process) about files a killed process left unuploaded."""
    try:
        found = [f for f in orphans() if str(f) not in _orphans_told]
    except OSError:
        return
    if found:
        _orphans_told.update(str(f) for f in found)
        warnings.warn(
            f"files of {len(found)} earlier MLflow run(s) were never uploaded (the process "
            f"ended first); they are kept at: {', '.join(map(str, found))} (upload one with "
            "MlflowClient().log_artifacts(run_id, folder), or delete it)",
            RuntimeWarning,
            stacklevel=3,
        )


def metric_key(name: str) -> str:
    """``name`` with the characters MLflow refuses in a key replaced by ``_``."""
    return _KEY_OK.sub("_", str(name))[:250] or "_"


class MLflowLogger:
    """One MLflow run that trace_nb logs to.

    Parameters
    ----------
    experiment
        Experiment name (made when missing), ``"trace_nb"`` by default.
    run_name
        The run's name in the UI.
    tracking_uri
        ``http://host:port`` of a tracking server, ``sqlite:///...`` or a folder
        (``file:...``). When given it also becomes MLflow's tracking URI in this process, so
        that the LLM-call traces (which MLflow exports itself) land in the same place. None:
        MLflow's own setting (``MLFLOW_TRACKING_URI``, or ``mlflow.set_tracking_uri``).
    parent
        Another logger (or a run id) whose nested child this run is.
    tags
        Extra run tags.
    log_messages
        Put the LLM calls' message and reply texts (scrubbed of keys) into their traces;
        by default a trace has sizes, tokens, latency and cost only.
    send_every
        Seconds between two requests carrying metrics, params and tags: what is logged
        meanwhile goes in one batch (0: a request as soon as the worker is free). Metrics
        still appear step by step while the run goes; a fast run just sends fewer requests.

    Raises
    ------
    ImportError
        When MLflow is not installed (``pip install 'trace_nb[mlflow]'``). Everything
        else (a server that is down, a refused request) is one warning, and the work goes on.
    """

    def __init__(
        self,
        experiment: str = "trace_nb",
        run_name: str | None = None,
        *,
        tracking_uri: str | None = None,
        parent: MLflowLogger | str | None = None,
        tags: Mapping[str, str] | None = None,
        log_messages: bool = False,
        send_every: float = 1.0,
    ) -> None:
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:  # say so now, not in a warning later
            raise ImportError(INSTALL_HINT)
        self.experiment, self.run_name, self.tracking_uri = experiment, run_name, tracking_uri
        self.log_messages = log_messages
        self.send_every = float(send_every)
        self.staging = Staging(run_name or experiment)  # files uploaded at the end
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.step = 0  # the step LLM-call traces are tagged with
        self.background = Background(f"MLflow logging ({tracking_uri or 'default URI'})")
        self._client: Any = None
        self._uri = ""  # the tracking URI in use (known once the run is opened)
        self._watched: list[Any] = []
        self._pending: dict[str, list] = {"params": [], "metrics": [], "tags": []}
        self._pending_lock = threading.Lock()
        self._batch_queued = False
        self._last_sent = 0.0  # time.monotonic() of the last batch request
        self._kept: list[Any] = []  # staged folders whose upload failed
        self._slow_warned = False
        self._traces: Any = None  # the run's RunTraces (made with the run)
        self._in_group = False  # the caller's view: a trace is open (open_trace)
        self._group_calls: list[tuple[LLMCall, int]] = []  # its calls, made spans at its end
        self._when: list[Callable[[Any], bool]] = []
        self._observing = False
        self._finished = False
        self._parent = parent
        self._tags = dict(tags or {})
        _live.add(self)
        _exit_flush()
        _tell_orphans()
        self.background.submit(self._open)

    # -- what callers log (all asynchronous) ----------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params (values shortened to :data:`PARAM_CHARS` characters, scrubbed)."""
        items = {metric_key(k): scrubbed(v)[:PARAM_CHARS] for k, v in params.items()}
        self._queue("params", list(items.items()))

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log the numeric values of ``metrics`` at ``step`` (None and text are skipped)."""
        stamp = int(time.time() * 1000)
        values = [
            (metric_key(k), float(v), stamp, int(step))
            for k, v in metrics.items()
            if isinstance(v, int | float) and v == v  # bools count as 0/1; NaN is no value
        ]
        self._queue("metrics", values)

    def log_text(self, text: str, path: str) -> None:
        """Write ``text`` (scrubbed) as the artifact ``path`` of the run (replaces it)."""
        safe = scrubbed(text)
        self._do(lambda c: c.log_text(self.run_id, safe, path))

    def log_texts(self, artifacts: Iterable[tuple[str, str]]) -> None:
        """:meth:`log_text` for each ``(path, text)``, uploaded four at a time."""
        files = [(path, scrubbed(text)) for path, text in artifacts]
        if files:
            self._do(lambda c: self._upload(c, files))

    def stage_text(self, text: str, path: str) -> None:
        """Write ``text`` (scrubbed) to a local folder as the artifact ``path``, uploaded with
        every other staged file in one go when the run finishes (a file write now instead of
        two HTTP requests). If that upload cannot happen, the folder is kept and the warning
        says where. A local disk that refuses the file: it is uploaded now instead."""
        safe = scrubbed(text)
        try:
            self.staging.write(path, safe)
        except OSError:
            self._do(lambda c: c.log_text(self.run_id, safe, path))

    def _upload(self, client: Any, files: list[tuple[str, str]]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(4, len(files)), thread_name_prefix="trace_nb-upload") as pool:
            for done in [pool.submit(client.log_text, self.run_id, t, p) for p, t in files]:
                done.result()  # the first failure is raised (and warned about once)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags (scrubbed)."""
        items = {metric_key(k): scrubbed(v)[:PARAM_CHARS] for k, v in tags.items()}
        self._queue("tags", list(items.items()))

    def _queue(self, kind: str, items: list) -> None:
        """Add to the next batch; one request carries whatever piled up meanwhile, and two
        requests are at least :attr:`send_every` seconds apart."""
        with self._pending_lock:
            self._pending[kind].extend(items)
            if self._batch_queued:
                return
            self._batch_queued = True
            wait = self._last_sent + self.send_every - time.monotonic()
        if wait <= 0:
            self._do(self._send_batch, check=False)
            return
        timer = threading.Timer(wait, self._send_pending)
        timer.daemon = True
        timer.start()

    def _send_pending(self) -> None:
        """Queue a batch request now if anything waits for one."""
        with self._pending_lock:
            if not any(self._pending.values()):
                return
        self._do(self._send_batch, check=False)

    # -- LLM calls as traces ---------------------------------------------------------------
    def watch(self, *llms: Any, when: Callable[[Any], bool] | None = None) -> None:
        """Log every call of these LLM clients (compared by identity), or of any client for
        which ``when(client)`` is true at the time of the call, as an MLflow trace."""
        self._watched.extend(x for x in llms if x is not None and x not in self._watched)
        if when is not None:
            self._when.append(when)
        if (self._watched or self._when) and not self._observing:
            add_call_observer(self._on_call, bodies=self.log_messages)
            self._observing = True

    def open_trace(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """From now on, watched LLM calls are spans of one trace named ``name`` (ending the
        trace open before): one trace per training run or per run of a cell, sent to MLflow
        when it ends, instead of one trace (and its requests) per call."""
        start, attrs = time.time_ns(), dict(attributes or {})
        calls = self._take_calls(in_group=True)
        self._do(lambda c: self._open_group(c, name, attrs, start, calls))

    def close_trace(self) -> None:
        """End the trace of :meth:`open_trace` (MLflow sends it then)."""
        end = time.time_ns()
        calls = self._take_calls(in_group=False)
        self._do(lambda c: self._close_group(c, end, calls))

    def _take_calls(self, in_group: bool) -> list[tuple[LLMCall, int]]:
        """The calls of the trace open so far (their spans are made when it ends: a span
        costs the worker's time, and MLflow sends a trace only when it ends anyway)."""
        with self._pending_lock:
            calls, self._group_calls = self._group_calls, []
            self._in_group = in_group
        return calls

    def unwatch(self) -> None:
        """Stop logging LLM calls."""
        if self._observing:
            remove_call_observer(self._on_call)
            self._observing = False
        self._watched, self._when = [], []

    def _on_call(self, record: LLMCall) -> None:
        client = record.client
        if any(client is w for w in self._watched) or any(f(client) for f in self._when):
            step = self.step
            with self._pending_lock:
                if self._in_group:
                    self._group_calls.append((record, step))
                    return
            self._do(lambda c: self._trace(c, record, step))

    # -- ending ----------------------------------------------------------------------------
    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait until everything logged so far reached MLflow (False: ``timeout`` passed,
        said once as a warning; the logging goes on in the background)."""
        self._send_pending()  # what waits for send_every goes now
        done = self.background.flush(timeout)
        if not done and not self._slow_warned:
            self._slow_warned = True
            kept = self.staging.folder or (self._kept[0] if self._kept else None)
            where = f"; the run's files wait at {kept}" if kept is not None else ""
            warnings.warn(
                f"{self.background.what} has not finished after {timeout:g} s (the server "
                f"does not answer in time); the work goes on and the logging goes on in "
                f"the background{where}",
                RuntimeWarning,
                stacklevel=2,
            )
        return done

    def finish(
        self, status: str = "FINISHED", timeout: float | None = 60.0, *, wait: bool = True
    ) -> None:
        """Stop watching LLM calls and end the run with ``status``; wait up to ``timeout``
        seconds for the logging to reach MLflow, or with ``wait=False`` let it finish in
        the background (:func:`flush_all` waits for it; so does the interpreter's exit)."""
        if self._finished:
            return
        self._finished = True
        self.unwatch()
        self._send_pending()
        if self.staging.folder is not None:
            self._do(self._upload_staged)
        calls = self._take_calls(in_group=False)
        self._do(lambda c: self._end(c, status, calls))
        self.background.submit(self._report_kept)
        if wait:
            self.flush(timeout)

    @property
    def failed(self) -> bool:
        """Whether some logging failed (the first error was shown as a warning)."""
        return self.background.failures > 0

    def url(self) -> str | None:
        """The run's page on an HTTP tracking server (after :meth:`flush`), else None."""
        uri = self.tracking_uri or ""
        if self.run_id is None or not uri.startswith("http"):
            return None
        return f"{uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def __repr__(self) -> str:
        return f"<MLflowLogger run {self.run_id or '(opening)'} at {self.tracking_uri or 'default URI'}>"

    # -- the worker thread's side ----------------------------------------------------------
    def _do(self, job: Any, *, check: bool = True) -> None:
        def run() -> None:
            if self._client is not None and self.run_id is not None:
                if check:  # a server gone down mid-run fails fast, not in minutes
                    reachable(self._uri)
                job(self._client)

        self.background.submit(run)

    def _open(self) -> None:
        try:
            import mlflow
            from mlflow import MlflowClient
        except ImportError as e:
            raise ImportError(INSTALL_HINT) from e
        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        self._uri = str(self.tracking_uri or mlflow.get_tracking_uri())
        reachable(self._uri, answer=True)  # a server that hangs: said in seconds
        client = MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(self.experiment)
        exp_id = found.experiment_id if found else client.create_experiment(self.experiment)
        parent = self._parent
        parent_id = parent.run_id if isinstance(parent, MLflowLogger) else parent
        tags = {"trace_nb": "1", **{k: scrubbed(v) for k, v in self._tags.items()}}
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        run = client.create_run(exp_id, tags=tags, run_name=self.run_name)
        self._traces = RunTraces(client, exp_id, run.info.run_id)
        self._client, self.experiment_id, self.run_id = client, exp_id, run.info.run_id

    def _upload_staged(self, client: Any) -> None:
        folder = self.staging.take()
        if folder is None:
            return
        try:
            self._upload_folder(client, folder)
        except BaseException:
            self._kept.append(folder)
            raise
        remove(folder)

    def _upload_folder(self, client: Any, folder: Any) -> None:
        """Every file of ``folder`` as the artifact of the same relative path, four at a time."""
        from concurrent.futures import ThreadPoolExecutor

        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            return
        with ThreadPoolExecutor(min(4, len(files)), thread_name_prefix="trace_nb-upload") as pool:
            jobs = []
            for path in files:
                where = path.parent.relative_to(folder).as_posix()
                args = (self.run_id, str(path), None if where == "." else where)
                jobs.append(pool.submit(client.log_artifact, *args))
            for job in jobs:
                job.result()  # the first failure is raised (and the folder kept)

    def _report_kept(self) -> None:
        """After the end: say where staged files wait that never reached MLflow."""
        left = self.staging.take()
        folders = self._kept + ([left] if left is not None else [])
        self._kept = []
        for folder in folders:
            run = self.run_name or self.run_id
            which = f"run {run!r}" if run else f"the run in experiment {self.experiment!r}"
            warnings.warn(
                f"{self.background.what}: {file_count(folder)} file(s) of {which} were not "
                f"uploaded; they are kept at {folder}",
                RuntimeWarning,
                stacklevel=2,
            )

    def _send_batch(self, client: Any) -> None:
        from mlflow.entities import Metric, Param, RunTag

        with self._pending_lock:
            pending = self._pending
            self._pending = {"params": [], "metrics": [], "tags": []}
            self._batch_queued = False
            if not any(pending.values()):
                return
            self._last_sent = time.monotonic()
        reachable(self._uri)  # after taking them: what failed is not sent twice
        metrics = [Metric(k, v, stamp, step) for k, v, stamp, step in pending["metrics"]]
        params = [Param(k, v) for k, v in dict(pending["params"]).items()]
        tags = [RunTag(k, v) for k, v in dict(pending["tags"]).items()]
        for i in range(0, max(len(metrics), 1), 1000):  # MLflow takes 1000 metrics a request
            client.log_batch(
                self.run_id,
                metrics=metrics[i : i + 1000],
                params=params if i == 0 else [],
                tags=tags if i == 0 else [],
            )

    def _open_group(self, client: Any, name: str, attrs: dict, start: int, calls: list) -> None:
        self._close_group(client, start, calls)
        self._traces.open(name, attrs, start)

    def _close_group(self, client: Any, end: int, calls: list) -> None:
        for record, step in calls:
            self._traces.call(record, step)
        self._traces.close(end)

    def _trace(self, client: Any, r: LLMCall, step: int) -> None:
        self._traces.call(r, step)

    def _end(self, client: Any, status: str, calls: list[tuple[LLMCall, int]]) -> None:
        import mlflow

        self._close_group(client, time.time_ns(), calls)
        try:
            mlflow.flush_trace_async_logging()
        except Exception:  # noqa: BLE001 - older MLflow: traces are sent synchronously
            pass
        client.set_terminated(self.run_id, status=status)
