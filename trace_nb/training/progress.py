"""Progress output of a training run: a tqdm bar, and an ipywidgets view to mount in a panel.

Both follow one small listener protocol (:class:`ProgressListener`) that the loop calls:
``start`` once, ``projection`` when the cost estimate is known (before the first optimizer
call), ``step`` after every step, ``end`` with the result. Heavy imports (tqdm, ipywidgets,
matplotlib, pandas) happen only when a listener is made.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .budget import Projection, Usage
from .evaluate import ExampleResult

__all__ = ["ProgressListener", "RunInfo", "TqdmProgress", "TrainView", "plot_png",
           "results_html"]


@dataclass
class RunInfo:
    """What a listener is told when a run starts."""

    total_steps: int
    done_steps: int
    steps_per_epoch: int
    epochs: int
    resumed: bool


class ProgressListener:
    """Does nothing; subclass and override what you need."""

    def start(self, info: RunInfo, history: list[dict]) -> None:
        pass

    def projection(self, projection: Projection) -> None:
        pass

    def step(self, row: dict, results: Sequence[ExampleResult], usage: Usage) -> None:
        pass

    def end(self, result: Any) -> None:
        pass


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.3g}"


def _usage_text(u: Usage) -> str:
    tokens = f"{u.tokens / 1000:.1f}k" if u.tokens >= 1000 else str(u.tokens)
    return f"calls={u.calls} tokens={tokens} cost=${u.cost:.4f}"


def _tqdm_class() -> Any:
    """The widget bar inside a Jupyter kernel, the text bar everywhere else.

    ``tqdm.auto`` decides once, when first imported, from whatever IPython shell exists at
    that moment (a terminal IPython started earlier made it pick the widget bar, printed as
    text to stdout); asking for the kernel each time gives the same bar in the same place.
    """
    try:
        from ipykernel.kernelapp import IPKernelApp

        in_kernel = IPKernelApp.initialized()
    except ImportError:
        in_kernel = False
    if in_kernel:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


class TqdmProgress(ProgressListener):
    """A ``tqdm.auto`` bar over the steps (a widget in Jupyter, text elsewhere)."""

    def __init__(self, **tqdm_kwargs: Any):
        self.kwargs = tqdm_kwargs
        self.bar: Any = None

    def start(self, info: RunInfo, history: list[dict]) -> None:
        tqdm = _tqdm_class()
        self.bar = tqdm(total=info.total_steps, initial=info.done_steps, unit="step",
                        desc="training", **self.kwargs)

    def projection(self, projection: Projection) -> None:
        if self.bar is not None:
            self.bar.write(projection.describe())

    def step(self, row: dict, results: Sequence[ExampleResult], usage: Usage) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix_str(f"epoch={row['epoch']} train={_fmt(row['train_score'])} "
                                 f"val={_fmt(row['val_score'])} {_usage_text(usage)}",
                                 refresh=False)
        self.bar.update(1)

    def end(self, result: Any) -> None:
        if self.bar is not None:
            self.bar.write(f"stopped: {result.stopped_reason}; best score "
                           f"{_fmt(result.best_score)} at step {result.best_step}")
            self.bar.close()


def plot_png(history: Sequence[dict], width: float = 5.0, height: float = 2.6) -> bytes:
    """Train and validation score per step as a PNG (matplotlib's Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, label, style in (("train_score", "train (minibatch)", "o-"),
                              ("val_score", "validation", "s-")):
        pts = [(r["step"], r[key]) for r in history if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("score")
    if ax.has_data():
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def results_html(results: Sequence[ExampleResult], max_rows: int = 50) -> str:
    """Per-example results as an HTML table (pandas; values escaped and shortened)."""
    import pandas as pd

    def short(v: Any) -> str:
        s = v if isinstance(v, str) else repr(v)
        return s if len(s) <= 80 else s[:79] + "…"

    frame = pd.DataFrame([{"example": r.index, "score": r.score, "feedback": short(r.feedback),
                           "output": short(r.output), "error": r.error or ""}
                          for r in results])
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
        self.plot = w.Image(format="png", layout=w.Layout(max_width="520px"))
        self.table = w.HTML("<i>no results yet</i>")
        self.widget = w.VBox([self.title, self.projection_text,
                              w.HBox([self.epoch_bar, self.step_bar]), self.totals,
                              self.plot, self.table])
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
            self.plot.value = plot_png(self.history)

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
        self.totals.value = (f"step {row['step']} · train {_fmt(row['train_score'])} · "
                             f"validation {_fmt(row['val_score'])} · best "
                             f"{_fmt(row['best_score'])} · {_esc(_usage_text(usage))}")
        self.plot.value = plot_png(self.history)
        self.table.value = results_html(results)

    def end(self, result: Any) -> None:
        self.title.value = (f"<b>training finished</b>: {_esc(result.stopped_reason)}, best "
                            f"score {_fmt(result.best_score)} at step {result.best_step}")


def _esc(text: str) -> str:
    import html

    return html.escape(text)
