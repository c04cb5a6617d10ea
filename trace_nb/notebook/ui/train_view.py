"""The widget view of a training run: epoch/step bars, the score plot, per-example results.

Pass it as ``train(..., view=TrainView())`` (or use ``panel.train``); it follows
:class:`trace_nb.training.progress.ProgressListener`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...llm.usage import Usage
from ...text import value_text
from ...training.budget import Projection
from ...training.evaluate import ExampleResult
from ...training.progress import ProgressListener, RunInfo, fmt_score, usage_text, workers_text
from .plots import score_plot_svg

__all__ = ["TrainView", "plot_svg", "results_html"]


def plot_svg(history: Sequence[dict], width: float = 5.0, height: float = 2.6) -> str:
    """Train and validation score per step as SVG (see :mod:`.plots`)."""
    series = {
        label: [(r["step"], r[key]) for r in history if r.get(key) is not None]
        for key, label in (("train_score", "train (minibatch)"), ("val_score", "validation"))
    }
    return score_plot_svg(series, width=width, height=height)


def results_html(results: Sequence[ExampleResult], max_rows: int = 50) -> str:
    """Per-example results as an HTML table (pandas; values escaped and shortened)."""
    import pandas as pd

    frame = pd.DataFrame(
        [
            {
                "example": r.index,
                "score": r.score,
                "feedback": value_text(r.feedback, 80),
                "output": value_text(r.output, 80),
                "error": r.error or "",
            }
            for r in results
        ]
    )
    if frame.empty:
        return "<i>no results yet</i>"
    return frame.to_html(index=False, max_rows=max_rows, escape=True, border=0)


class TrainView(ProgressListener):
    """An ipywidgets view of a run: epoch/step bars, a score plot, per-example results.

    Pass it as ``train(..., view=view)`` and display ``view.widget`` (or the view itself)
    wherever you like. The table shows the latest validation results (or the minibatch's,
    without a validation set).
    """

    def __init__(self) -> None:
        import ipywidgets as w

        self.title = w.HTML("<b>training</b>")
        self.epoch_bar = w.IntProgress(value=0, min=0, max=1, description="epoch")
        self.step_bar = w.IntProgress(value=0, min=0, max=1, description="step")
        self.totals = w.HTML("")
        self.projection_text = w.HTML("")
        self.plot = w.HTML(layout=w.Layout(max_width="520px"))
        self.table = w.HTML("<i>no results yet</i>")
        self.widget = w.VBox(
            [
                self.title,
                self.projection_text,
                w.HBox([self.epoch_bar, self.step_bar]),
                self.totals,
                self.plot,
                self.table,
            ]
        )
        self.history: list[dict] = []
        self._info: RunInfo | None = None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def start(self, info: RunInfo, history: list[dict]) -> None:
        self._info = info
        self.history = list(history)
        self.epoch_bar.max = max(info.epochs, 1)
        self.step_bar.max = max(info.total_steps, 1)
        self._show_position(info.done_steps)
        self.title.value = "<b>training</b>" + (" (resumed)" if info.resumed else "")
        if self.history:
            self.plot.value = plot_svg(self.history)

    def _show_position(self, done: int) -> None:
        info = self._info
        if info is None:
            return
        self.step_bar.value = done
        self.epoch_bar.value = min(done // max(info.steps_per_epoch, 1), info.epochs)

    def projection(self, projection: Projection) -> None:
        self.projection_text.value = f"<small>{_esc(projection.describe())}</small>"

    def step(self, row: dict, results: Sequence[ExampleResult], usage: Usage) -> None:
        self.history.append(row)
        self._show_position(row["step"])
        self.totals.value = (
            f"step {row['step']} · train {fmt_score(row['train_score'])} · "
            f"validation {fmt_score(row['val_score'])} · best "
            f"{fmt_score(row['best_score'])} · {_esc(usage_text(usage))}"
        )
        self.plot.value = plot_svg(self.history)
        self.table.value = results_html(results)

    def end(self, result: Any) -> None:
        self.title.value = (
            f"<b>training finished</b>: {_esc(result.stopped_reason)}, best "
            f"score {fmt_score(result.best_score)} at step {result.best_step}"
        )
        where = workers_text(result.usage)
        if where:
            self.totals.value += f"<br><small>{_esc(where)}</small>"


def _esc(text: str) -> str:
    import html

    return html.escape(text)
