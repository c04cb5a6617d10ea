"""The benchmark's results in MLflow: a parent run, a nested run per task × method × seed.

``python -m trace_nb.bench --mlflow [URI]`` calls :func:`log_bench` after the runs: the
parent holds the benchmark's settings and ``report.md``; each child its task, method, seed
and model as params, the score curve as the metric ``score`` per step, and the run's
outcome (success, steps to success, tokens, calls, refusals, wall time) as metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..bench.runner import OUTCOME
from .mlflow import MLflowLogger

__all__ = ["log_bench"]


def log_bench(
    records: Iterable[Mapping[str, Any]],
    meta: Mapping[str, Any],
    *,
    experiment: str = "trace_nb-bench",
    tracking_uri: str | None = None,
    out: str | Path | None = None,
) -> MLflowLogger:
    """Log benchmark ``records`` (rows of :func:`trace_nb.bench.runner.run`'s frame, or
    ``results.json``'s runs) under one parent run; returns the parent's logger."""
    parent = MLflowLogger(
        experiment, "bench", tracking_uri=tracking_uri, tags={"trace_nb.kind": "bench"}
    )
    parent.log_params({k: v for k, v in meta.items() if v is not None})
    report = Path(out) / "report.md" if out else None
    if report is not None and report.is_file():
        parent.log_text(report.read_text(encoding="utf-8"), "report.md")
    parent.flush()  # the children need the parent's run id
    children = []
    for r in records:
        name = f"{r['task']}/{r['method']}/seed{r['seed']}"
        child = MLflowLogger(
            experiment,
            name,
            tracking_uri=tracking_uri,
            parent=parent.run_id,
            tags={"trace_nb.kind": "bench run", "trace_nb.status": str(r.get("status"))},
        )
        child.log_params(
            {
                k: r.get(k)
                for k in ("task", "method", "seed", "steps", "model")
                if r.get(k) is not None
            }
        )
        for step, score in enumerate(r.get("curve") or []):
            child.log_metrics({"score": score}, step=step)
        outcome = {k: r.get(k) for k in OUTCOME}
        outcome["success"] = bool(outcome["success"])
        child.log_metrics(outcome, step=len(r.get("curve") or []))
        ok = str(r.get("status")) == "ok"
        child.finish("FINISHED" if ok else "FAILED", timeout=None)
        children.append(child)
    parent.finish()
    return parent
