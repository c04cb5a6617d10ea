"""One MLflow run, logged beside the work: params, metrics per step, text artifacts, traces.

:class:`MLflowLogger` owns one run of an MLflow tracking server (or a local store). Every
call returns at once; the HTTP requests go out on a worker thread (:mod:`.background`), so a
training step never waits for the tracker and a tracker that fails warns once while the run
goes on. MLflow is imported on that thread, on first use: ``import trace_nb`` never imports it.

What reaches MLflow passes :func:`~trace_nb.tracking.events.scrubbed` (no API key), and
values are logged as text files: nothing logged is ever executed by trace_nb.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .background import Background
from .events import LLMCall, add_call_observer, remove_call_observer
from .scrub import scrubbed

__all__ = ["MLflowLogger", "INSTALL_HINT"]

INSTALL_HINT = "MLflow logging needs MLflow 3: pip install 'trace_nb[mlflow]'"
PARAM_CHARS = 500  # MLflow caps a param value; the full values are artifacts
_KEY_OK = re.compile(r"[^\w\-. /]")


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
    ) -> None:
        self.experiment, self.run_name, self.tracking_uri = experiment, run_name, tracking_uri
        self.log_messages = log_messages
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.step = 0  # the step LLM-call traces are tagged with
        self.background = Background(f"MLflow logging ({tracking_uri or 'default URI'})")
        self._client: Any = None
        self._watched: list[Any] = []
        self._when: list[Callable[[Any], bool]] = []
        self._observing = False
        self._finished = False
        self._parent = parent
        self._tags = dict(tags or {})
        self.background.submit(self._open)

    # -- what callers log (all asynchronous) ----------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params (values shortened to :data:`PARAM_CHARS` characters, scrubbed)."""
        items = {metric_key(k): scrubbed(v)[:PARAM_CHARS] for k, v in params.items()}
        self._do(lambda c: self._batch(c, params=items))

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log the numeric values of ``metrics`` at ``step`` (None and text are skipped)."""
        values = {
            metric_key(k): float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v
        }
        values.update({metric_key(k): float(v) for k, v in metrics.items() if isinstance(v, bool)})
        stamp = int(time.time() * 1000)
        self._do(lambda c: self._batch(c, metrics=values, step=step, stamp=stamp))

    def log_text(self, text: str, path: str) -> None:
        """Write ``text`` (scrubbed) as the artifact ``path`` of the run (replaces it)."""
        safe = scrubbed(text)
        self._do(lambda c: c.log_text(self.run_id, safe, path))

    def log_texts(self, artifacts: Iterable[tuple[str, str]]) -> None:
        """:meth:`log_text` for each ``(path, text)``."""
        for path, text in artifacts:
            self.log_text(text, path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags (scrubbed)."""
        items = {metric_key(k): scrubbed(v)[:PARAM_CHARS] for k, v in tags.items()}
        self._do(lambda c: self._batch(c, tags=items))

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
            self._do(lambda c: self._trace(c, record, step))

    # -- ending ----------------------------------------------------------------------------
    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait until everything logged so far reached MLflow (False: ``timeout`` passed)."""
        return self.background.flush(timeout)

    def finish(self, status: str = "FINISHED", timeout: float | None = 60.0) -> None:
        """Stop watching LLM calls, end the run with ``status`` and wait for the logging."""
        if self._finished:
            return
        self._finished = True
        self.unwatch()
        self._do(lambda c: self._end(c, status))
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
    def _do(self, job: Any) -> None:
        def run() -> None:
            if self._client is not None and self.run_id is not None:
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
        client = MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(self.experiment)
        exp_id = found.experiment_id if found else client.create_experiment(self.experiment)
        parent = self._parent
        parent_id = parent.run_id if isinstance(parent, MLflowLogger) else parent
        tags = {"trace_nb": "1", **{k: scrubbed(v) for k, v in self._tags.items()}}
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        run = client.create_run(exp_id, tags=tags, run_name=self.run_name)
        self._client, self.experiment_id, self.run_id = client, exp_id, run.info.run_id

    def _batch(
        self,
        client: Any,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        step: int = 0,
        stamp: int = 0,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        client.log_batch(
            self.run_id,
            metrics=[Metric(k, v, stamp, step) for k, v in (metrics or {}).items()],
            params=[Param(k, v) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()],
        )

    def _trace(self, client: Any, r: LLMCall, step: int) -> None:
        inputs: dict[str, Any] = {"messages": r.messages, "message_chars": r.message_chars}
        outputs: dict[str, Any] = {"reply_chars": r.reply_chars}
        if r.bodies is not None:  # the user asked for the texts (already scrubbed)
            inputs["messages"], outputs["reply"] = r.bodies
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": r.model,
            "gen_ai.response.model": r.response_model or r.model,
            "gen_ai.usage.input_tokens": r.prompt_tokens,
            "gen_ai.usage.output_tokens": r.completion_tokens,
            "trace_nb.latency_s": round(r.latency_s, 6),
            "trace_nb.cost_usd": r.cost,
            "trace_nb.cached": r.cached,
            "trace_nb.step": step,
            "server.url": scrubbed(r.base_url),
        }
        span = client.start_trace(
            f"chat {r.model}",
            span_type="CHAT_MODEL",
            inputs=inputs,
            attributes=attributes,
            tags={"trace_nb.step": str(step)},
            experiment_id=self.experiment_id,
            start_time_ns=r.start_ns,
            run_id=self.run_id,
        )
        client.end_trace(
            span.trace_id,
            outputs=outputs,
            status="ERROR" if r.error else "OK",
            attributes={"error": r.error} if r.error else None,
            end_time_ns=r.end_ns,
        )

    def _end(self, client: Any, status: str) -> None:
        import mlflow

        try:
            mlflow.flush_trace_async_logging()
        except Exception:  # noqa: BLE001 - older MLflow: traces are sent synchronously
            pass
        client.set_terminated(self.run_id, status=status)
