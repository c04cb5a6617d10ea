"""A notebook session logged to MLflow: everything so far, then live as the review goes on.

:func:`log_session` (``session.log_to_mlflow()``, ``%trace_log NAME``) opens a run, logs the
session's params, one step of metrics per run of the cell, the accepted versions (text or
code files), their diffs and reasoning, the history table, the final prompt and the DAG.
With ``live=True`` it follows the session (its public ``on_change`` events): a score is
logged when the feedback comes, the other metrics of a run when the next run starts, new
versions when they are approved, edited or restored, and the optimizer's LLM calls as
traces. :meth:`SessionLog.stop` logs the last state and ends the run.
:func:`log_saved` logs an autosave file the same way, without running anything in it.
"""

from __future__ import annotations

from typing import Any

from . import records
from .mlflow import MLflowLogger

__all__ = ["SessionLog", "log_saved", "log_session"]

_DECISIONS = {"approve", "reject", "edit", "restore", "train"}


class SessionLog:
    """The MLflow run of one session (returned by :func:`log_session`)."""

    def __init__(self, session: Any, logger: MLflowLogger, live: bool) -> None:
        self.session, self.logger, self.live = session, logger, live
        self._closed_rows = 0  # rows whose metrics are logged
        self._versions: dict[str, int] = {}  # parameter -> versions logged
        self._following = False

    def start(self) -> SessionLog:
        snap = records.session_snapshot(self.session)
        self.logger.log_params(records.params_of(snap))
        self.logger.set_tags({"trace_nb.session": snap.name})
        rows = self.session.rows
        self._log_rows(len(rows) - 1, with_score=True)
        if rows and records.row_metrics(rows[-1]).get("score") is not None:
            self.logger.log_metrics({"score": rows[-1]["score"]}, step=rows[-1].get("step", 0))
        self.logger.log_texts(records.artifacts_of(snap))
        self._versions = {k: len(v) for k, v in snap.lineage.versions.items()}
        if self.live:
            self.logger.watch(when=self._is_session_llm)
            if rows:
                self._open_trace()
            self.session.on_change(self._on_change)
            self._following = True
        return self

    @property
    def run_id(self) -> str | None:
        return self.logger.run_id

    def stop(self, status: str = "FINISHED") -> None:
        """Log the final state (last metrics, every file) and end the run."""
        if self._following:
            self.session.off_change(self._on_change)
            self._following = False
        self._log_rows(len(self.session.rows), with_score=False)
        self.logger.log_texts(records.artifacts_of(records.session_snapshot(self.session)))
        self.logger.finish(status)

    def __repr__(self) -> str:
        state = "following" if self._following else "stopped"
        return f"<SessionLog of {self.session.name!r} ({state}): {self.logger!r}>"

    # -- following the session -------------------------------------------------------------
    def _is_session_llm(self, client: Any) -> bool:
        from ..llm.default import default_llm

        s = self.session
        if client is s.llm or (s.llm is None and client is default_llm()):
            return True
        spec, shell = s.spec, s.shell
        return bool(spec and spec.llm_var and shell and shell.user_ns.get(spec.llm_var) is client)

    def _open_trace(self) -> None:
        step = self.session.rows[-1].get("step", 0)
        self.logger.open_trace(f"{self.session.name} run {step}", {"trace_nb.step": step})

    def _on_change(self, event: str) -> None:
        """The session's hook: a tracker that fails here warns once (as every failure of
        this run's logging) and never breaks the run, feedback or decision that called it."""
        try:
            self._follow(event)
        except Exception as e:  # noqa: BLE001 - the session goes on without its tracker
            self.logger.background.failed(e)

    def _follow(self, event: str) -> None:
        rows = self.session.rows
        self.logger.step = max(len(rows) - 1, 0)
        if event == "run":
            self._log_rows(len(rows) - 1, with_score=False)
            self._open_trace()
        elif event == "feedback" and rows:
            score = rows[-1].get("score")
            if isinstance(score, int | float) and not isinstance(score, bool):
                self.logger.log_metrics({"score": score}, step=rows[-1]["step"])
        elif event in _DECISIONS:
            self._log_new_versions()

    def _log_rows(self, upto: int, with_score: bool) -> None:
        """Metrics of rows up to ``upto`` not logged yet (their scores too, ``with_score``:
        while following, a score is logged when its feedback comes)."""
        for row in self.session.rows[self._closed_rows : max(upto, 0)]:
            metrics = records.row_metrics(row)
            if not with_score:
                metrics.pop("score", None)
            self.logger.log_metrics(metrics, step=row.get("step", 0))
        self._closed_rows = max(self._closed_rows, upto)

    def _log_new_versions(self) -> None:
        snap = records.session_snapshot(self.session, dag=False)
        for name, chain in snap.lineage.versions.items():
            if len(chain) != self._versions.get(name, 0):
                self._versions[name] = len(chain)
                self.logger.log_texts(records.version_files(snap, name))
        self.logger.log_text(records.history_csv(snap.rows), "history.csv")


def log_session(
    session: Any,
    experiment: str = "trace_nb",
    run_name: str | None = None,
    *,
    tracking_uri: str | None = None,
    live: bool = True,
    log_messages: bool = False,
) -> SessionLog:
    """Log ``session`` to MLflow (see the module doc); returns its :class:`SessionLog`.

    Parameters
    ----------
    experiment, run_name, tracking_uri, log_messages
        As in :class:`~trace_nb.tracking.mlflow.MLflowLogger` (the run is named after the
        session by default).
    live
        Keep logging as the session goes on until :meth:`SessionLog.stop`; False logs the
        state now and ends the run.
    """
    logger = MLflowLogger(
        experiment,
        run_name or session.name,
        tracking_uri=tracking_uri,
        log_messages=log_messages,
        tags={"trace_nb.kind": "session"},
    )
    log = SessionLog(session, logger, live).start()
    if not live:
        log.stop()
    return log


def log_saved(
    path: str,
    experiment: str = "trace_nb",
    run_name: str | None = None,
    *,
    tracking_uri: str | None = None,
) -> MLflowLogger:
    """Log an autosave file (``.trace_nb/NAME.json``) or a ``session.save`` file as a
    finished run: params, per-run metrics, versions, diffs, reasoning, history.

    The file is read as untrusted input (:func:`trace_nb.notebook.persist.read_state`:
    shape checked, a damaged file raises ``SessionFileError`` and logs nothing); its code is
    written out as text and never compiled or run.
    """
    snap = records.saved_snapshot(path)
    logger = MLflowLogger(
        experiment,
        run_name or snap.name,
        tracking_uri=tracking_uri,
        tags={"trace_nb.kind": "autosave file", "trace_nb.file": str(path)},
    )
    logger.log_params(records.params_of(snap))
    for row in snap.rows:
        logger.log_metrics(records.row_metrics(row), step=row.get("step", 0))
    logger.log_texts(records.artifacts_of(snap))
    logger.finish()
    return logger
