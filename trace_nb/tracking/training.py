"""Tracking a :func:`trace_nb.train` run: live MLflow logging and OpenTelemetry spans.

``train(..., tracking="mlflow")`` (or an :class:`~.mlflow.MLflowLogger`, or a dict of its
options) adds :class:`MLflowTraining`, a progress listener: params when the run starts,
metrics after every step (live, batched), the changed values staged on local disk after every
step and uploaded in one go with the history, the final prompt and the best values at the
end, the LLM calls as traces. It never raises into the run: the first failure
warns and the run goes on. :class:`TrainSpans` wraps the run and each step in spans when
OpenTelemetry is on (``tracking="otel"`` forces it on for this run's default provider).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..training.progress import ProgressListener, RunInfo
from . import otel
from .records import history_csv, prompt_text, value_text

__all__ = ["MLflowTraining", "TrainSpans", "listeners_for", "spans_for"]

TRACKERS = ("mlflow", "otel")


def _kinds(tracking: Any) -> list[Any]:
    if tracking is None:
        return []
    items = list(tracking) if isinstance(tracking, list | tuple) else [tracking]
    for item in items:
        if isinstance(item, str) and item not in TRACKERS:
            raise ValueError(
                f"tracking={item!r} is not known: use 'mlflow', 'otel', an MLflowLogger, "
                "a dict of MLflowLogger options, or a list of these"
            )
    return items


def listeners_for(tracking: Any, optimizer: Any, options: Any) -> list[ProgressListener]:
    """The progress listeners ``tracking`` asks for (see the module doc)."""
    from .mlflow import MLflowLogger

    out: list[ProgressListener] = []
    for item in _kinds(tracking):
        if item == "mlflow":
            out.append(MLflowTraining(MLflowLogger(run_name="train"), optimizer, options))
        elif isinstance(item, Mapping):
            out.append(MLflowTraining(MLflowLogger(**dict(item)), optimizer, options))
        elif isinstance(item, MLflowLogger):
            out.append(MLflowTraining(item, optimizer, options))
        elif item != "otel":
            raise ValueError(f"tracking: cannot track with {type(item).__name__!r}")
    return out


def spans_for(tracking: Any, optimizer: Any, options: Any) -> TrainSpans | None:
    """Span helper of the run (None when OpenTelemetry is off and not asked for)."""
    if "otel" in _kinds(tracking) and not otel.active():
        otel.enable()  # the global provider, once configured
    return TrainSpans(optimizer, options) if otel.active() else None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _watched(optimizer: Any, options: Any) -> list[Any]:
    return [x for x in (getattr(optimizer, "llm", None), options.workflow_llm) if x is not None]


def run_params(optimizer: Any, options: Any) -> dict[str, Any]:
    """Optimizer, model, options and initial values of a training run, as params."""
    llm = getattr(optimizer, "llm", None)
    out: dict[str, Any] = {
        "kind": "train",
        "optimizer": type(optimizer).__name__,
        "model": getattr(llm, "model", None),
        "batch_size": options.batch_size,
        "epochs": options.epochs,
        "max_workers": options.max_workers,
        "patience": options.patience,
        "shuffle_seed": options.shuffle_seed,
        "max_steps": options.max_steps,
        "restore_best": options.restore_best,
        "approve_code": options.approve_code,
        "budget": options.budget,
        "review": options.review,
    }
    for p in optimizer.parameters:
        out[f"initial.{p.name}"] = value_text(p.data)
    return {k: v for k, v in out.items() if v is not None}


STEP_METRICS = {
    "train_score": "train_score",
    "val_score": "val_score",
    "best_score": "best_score",
    "calls": "calls",
    "tokens": "tokens",
    "cost": "cost",
    "step_calls": "step_calls",
    "step_tokens": "step_tokens",
    "step_cost": "step_cost",
    "seconds": "step_seconds",
}


def step_metrics(row: dict) -> dict[str, float]:
    """A training history row as metrics (approvals are automatic in training; refusals
    are the invalid proposals)."""
    out = {m: float(row[k]) for k, m in STEP_METRICS.items() if _is_number(row.get(k))}
    out["approved_by_auto"] = float(len(row.get("changed") or ()))
    out["approved_by_human"] = 0.0
    out["refused"] = float(row.get("invalid") or 0)
    out["improved"] = float(bool(row.get("improved")))
    out["kept_values"] = float(bool(row.get("kept")))  # best of k: every candidate was worse
    return out


class MLflowTraining(ProgressListener):
    """Logs one training run to an :class:`~.mlflow.MLflowLogger` as it goes."""

    def __init__(self, logger: Any, optimizer: Any, options: Any) -> None:
        self.logger, self.optimizer, self.options = logger, optimizer, options
        self.versions: dict[str, int] = {}
        self.notes: dict[str, list[str]] = {}
        self.diffs: dict[str, list[str]] = {}
        self.last: dict[str, str] = {}
        self.logged: set[int] = set()  # steps whose metrics are logged

    def _safely(self, what: Any) -> None:
        try:
            what()
        except Exception as e:  # noqa: BLE001 - the run goes on without its tracker
            self.logger.background.failed(e)

    def start(self, info: RunInfo, history: list[dict]) -> None:
        self._safely(lambda: self._start(info, history))

    def step(self, row: dict, results: Sequence[Any], usage: Any) -> None:
        self._safely(lambda: self._step(row))

    def end(self, result: Any) -> None:
        self._safely(lambda: self._end(result))

    def abort(self, error: BaseException) -> None:
        """The run raised: note why, end the MLflow run as failed, stop watching calls."""

        def note() -> None:
            self.logger.set_tags({"trace_nb.error": f"{type(error).__name__}: {error}"})
            self.logger.finish("FAILED", wait=False)

        self._safely(note)
        self.logger.unwatch()

    def _start(self, info: RunInfo, history: list[dict]) -> None:
        lg = self.logger
        params = run_params(self.optimizer, self.options)
        params.update(total_steps=info.total_steps, resumed=info.resumed)
        lg.log_params(params)
        lg.watch(*_watched(self.optimizer, self.options))
        lg.open_trace("train", {"trace_nb.total_steps": info.total_steps})
        lg.step = info.done_steps + 1
        for row in history:  # a resumed run: what the checkpoint holds
            self._metrics(row)
        for p in self.optimizer.parameters:
            self._version(p, "initial value" if not history else "value at resume", 0)

    def _version(self, p: Any, note: str, step: int) -> None:
        """Stage ``p``'s value as its next version file if it changed (a local file write:
        the files go up in one upload when the run ends; its diff and note are kept for
        the end too, one ``diffs.patch`` and one ``reasoning.md`` per parameter)."""
        text = value_text(p.data)
        if self.last.get(p.name) == text:
            return
        n = self.versions.get(p.name, -1) + 1
        ext = "py" if getattr(p, "is_code", False) else "txt"
        self.logger.stage_text(text, f"parameters/{p.name}/v{n}.{ext}")
        if p.name in self.last:
            import difflib

            diff = difflib.unified_diff(
                self.last[p.name].splitlines(),
                text.splitlines(),
                f"{p.name} v{n - 1}",
                f"{p.name} v{n}",
                lineterm="",
            )
            self.diffs.setdefault(p.name, []).append("\n".join(diff))
        self.notes.setdefault(p.name, []).append(f"## version {n} (step {step})\n\n{note}\n")
        self.versions[p.name], self.last[p.name] = n, text

    def _metrics(self, row: dict) -> None:
        self.logged.add(row["step"])
        self.logger.log_metrics(step_metrics(row), step=row["step"])

    def _step(self, row: dict) -> None:
        lg = self.logger
        self._metrics(row)
        lg.step = row["step"] + 1
        changed = set(row.get("changed") or ())
        if not changed:
            return
        log = getattr(self.optimizer, "log", None) or []
        reasons = {}
        if log:
            for prop in log[-1].proposals:
                reasons.setdefault(prop.name, prop.reasoning or "")
        for p in self.optimizer.parameters:
            if p.name in changed:
                self._version(p, reasons.get(p.name) or "-", row["step"])

    def _end(self, result: Any) -> None:
        lg = self.logger
        for row in result.history:  # the initial validation (step 0) has no step event
            if row["step"] not in self.logged:
                self._metrics(row)
        lg.set_tags(
            {
                "trace_nb.stopped_reason": result.stopped_reason,
                "trace_nb.best_step": result.best_step,
                "trace_nb.best_score": result.best_score,
            }
        )
        files = [("history.csv", history_csv(result.history))]
        for name, value in result.best_parameters.items():
            files.append((f"best/{name}.txt", value_text(value)))
        for name, diffs in self.diffs.items():
            files.append((f"parameters/{name}/diffs.patch", "\n".join(diffs) + "\n"))
        for name, notes in self.notes.items():
            files.append((f"parameters/{name}/reasoning.md", f"# {name}\n\n" + "\n".join(notes)))
        log = getattr(self.optimizer, "log", None) or []
        if log:
            files.append(("final_prompt.md", prompt_text(log[-1].messages)))
        for path, text in files:
            lg.stage_text(text, path)
        # train() returns now; the staged files go up in one go beside the notebook
        # (flush_all waits; a failed upload keeps them on disk and says where).
        lg.finish("KILLED" if result.stopped_reason == "interrupted" else "FINISHED", wait=False)


class TrainSpans:
    """OpenTelemetry spans of one training run: ``trace_nb.run`` → ``trace_nb.step``; the
    LLM calls of the step (worker threads included) hang under the step."""

    def __init__(self, optimizer: Any, options: Any) -> None:
        self.optimizer, self.options = optimizer, options
        self.current: Any = None  # the open step span, else the run span
        watched = _watched(optimizer, options)
        self._match = lambda client: any(client is w for w in watched)

    @contextmanager
    def run(self) -> Iterator[Any]:
        attrs = otel.attributes_of(
            {k: v for k, v in run_params(self.optimizer, self.options).items() if "." not in k}
        )
        attrs["trace_nb.parameters"] = [p.name for p in self.optimizer.parameters]
        undo = otel.adopt_calls(self._match, lambda: self.current)
        try:
            with otel.span("trace_nb.run", attrs) as s:
                self.current = s
                yield self
        finally:
            undo()
            self.current = None

    def result(self, result: Any) -> None:
        """Put the run's outcome on the run span."""
        if self.current is not None:
            self.current.set_attributes(
                otel.attributes_of(
                    {
                        "stopped_reason": result.stopped_reason,
                        "best_score": result.best_score,
                        "best_step": result.best_step,
                        "steps": result.steps,
                    }
                )
            )

    @contextmanager
    def step(self, number: int) -> Iterator[Any]:
        run_span = self.current
        with otel.span("trace_nb.step", {"trace_nb.step": number}, parent=run_span) as s:
            self.current = s
            try:
                yield _StepSpan(s)
            finally:
                self.current = run_span


class _StepSpan:
    def __init__(self, span: Any) -> None:
        self.span = span

    def done(self, row: dict) -> None:
        if self.span is not None:
            self.span.set_attributes(otel.attributes_of(step_metrics(row)))
            self.span.set_attribute("trace_nb.changed", list(row.get("changed") or ()))
