"""The options of one training run, typed (see :func:`trace_nb.training.loop.train`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..optim.gates import resolve


@dataclass(frozen=True)
class TrainConfig:
    """What :func:`~trace_nb.training.loop.train` was asked to do; the loop reads only this."""

    batch_size: int = 4
    epochs: int = 1
    max_workers: int = 4
    executor: Any = None  # see trace_nb.training.engines
    budget: Any = None  # a Budget or a mapping of its limits
    checkpoint: str | Path | None = None
    resume: bool = False
    patience: int | None = None
    shuffle_seed: int | None = 0
    progress: bool = True
    view: Any = None  # a ProgressListener
    max_steps: int | None = None
    calls_per_example: int | None = None
    workflow_llm: Any = None
    tokens_per_call: int | None = None
    restore_best: bool = False
    callback: Callable[[dict], Any] | None = None
    approve_code: bool = False
    review: Any = None  # a rule of trace_nb.optim.gates: which proposals wait for a human
    tracking: Any = None  # "mlflow", "otel", an MLflowLogger...: see trace_nb.tracking.training

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 1 or self.max_workers < 1:
            raise ValueError("batch_size, epochs and max_workers must be at least 1")
        resolve(self.review)  # a rule that is not one is refused before anything runs

    @classmethod
    def of(cls, options: Mapping[str, Any], gate: str | None = None) -> TrainConfig:
        """The config of :func:`~trace_nb.training.loop.train`'s keyword arguments.

        ``gate`` (a preset such as ``"no_regression"``) joins ``options["review"]``: both
        are rules of :mod:`trace_nb.optim.gates` and the run holds what either holds.
        """
        review = [r for r in (options.get("review"), gate) if r is not None] or None
        return cls(**{**options, "review": review})
