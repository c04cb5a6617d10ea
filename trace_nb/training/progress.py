"""Progress output of a training run: the listener protocol and a tqdm bar.

Listeners follow one small protocol (:class:`ProgressListener`) that the loop calls:
``start`` once, ``projection`` when the cost estimate is known (before the first optimizer
call), ``step`` after every step, ``end`` with the result. The widget view of a run
(epoch/step bars, plot, results) is :class:`trace_nb.notebook.ui.train_view.TrainView`:
nothing here imports ipywidgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..llm.usage import Usage
from ..text import score_text
from .budget import Projection
from .evaluate import ExampleResult
from .run_usage import RunUsage

__all__ = ["ProgressListener", "RunInfo", "TqdmProgress", "fmt_score", "usage_text"]


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


def fmt_score(score: float | None) -> str:
    """A score for a status line: 3 significant digits, "-" for none."""
    return score_text(score)


def workers_text(usage: RunUsage) -> str:
    """Where a remote run's examples ran: the engine, and examples and LLM calls per worker."""
    if not usage.workers:
        return ""
    parts = [f"{w}: {v.examples} examples, {v.calls} LLM calls" for w, v in usage.workers.items()]
    return f"on {usage.engine or 'a remote engine'}: " + "; ".join(parts)


def usage_text(u: Usage) -> str:
    """Calls, tokens and cost in one short line."""
    return _usage_text(u)


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
        self.bar = tqdm(
            total=info.total_steps,
            initial=info.done_steps,
            unit="step",
            desc="training",
            **self.kwargs,
        )

    def projection(self, projection: Projection) -> None:
        if self.bar is not None:
            self.bar.write(projection.describe())

    def step(self, row: dict, results: Sequence[ExampleResult], usage: Usage) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix_str(
            f"epoch={row['epoch']} train={score_text(row['train_score'])} "
            f"val={score_text(row['val_score'])} {_usage_text(usage)}",
            refresh=False,
        )
        self.bar.update(1)

    def end(self, result: Any) -> None:
        if self.bar is not None:
            self.bar.write(
                f"stopped: {result.stopped_reason}; best score "
                f"{score_text(result.best_score)} at step {result.best_step}"
            )
            where = workers_text(result.usage)
            if where:
                self.bar.write(where)
            self.bar.close()
