"""What :func:`~trace_nb.training.loop.train` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .budget import Projection
from .checkpoint import restore_best
from .inprocess import ExampleResult
from .run_usage import RunUsage

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    history
        One dict per step (row 0: the validation before any step), ready for
        ``pandas.DataFrame(history)`` or :meth:`to_frame`.
    best_parameters, best_score, best_step
        The parameter values with the best monitored score (validation mean, or the
        minibatch mean without a validation set), that score, and after how many steps
        those values were in place (0: the initial values).
    stopped_reason
        ``"completed"``, ``"budget"``, ``"patience"``, ``"max_steps"`` or ``"interrupted"``.
    parameters
        The values at the end of the run (the optimizer's parameters hold them too,
        unless ``restore_best=True`` put the best ones back).
    usage
        Calls, tokens and cost spent by the watched LLMs (all sessions of a resumed run):
        a :class:`~trace_nb.training.run_usage.RunUsage`, the run's
        :class:`~trace_nb.llm.usage.Usage` with ``engine`` and ``workers`` (per worker, a
        :class:`~trace_nb.training.run_usage.WorkerUsage`: examples run and its usage) on
        a remote engine. ``result.usage.calls``, ``result.usage.workers["w"].examples``;
        ``usage.to_dict()`` gives plain JSON. The old item access (``usage["calls"]``)
        still works but warns (:class:`DeprecationWarning`).
    projection
        The estimate shown before the first optimizer call.
    results
        Per-example results of the last evaluation (validation, else the last minibatch).
    """

    history: list[dict]
    best_parameters: dict[str, Any]
    best_score: float | None
    best_step: int | None
    stopped_reason: str
    parameters: dict[str, Any]
    usage: RunUsage
    projection: Projection | None = None
    results: list[ExampleResult] = field(default_factory=list, repr=False)
    optimizer: Any = field(default=None, repr=False, compare=False)
    waiting: list = field(default_factory=list, repr=False)

    @property
    def steps(self) -> int:
        return self.history[-1]["step"] if self.history else 0

    def to_frame(self) -> Any:
        """The history as a pandas DataFrame indexed by step."""
        import pandas as pd

        return pd.DataFrame(self.history).set_index("step") if self.history else pd.DataFrame()

    def restore(self, optimizer: Any = None) -> None:
        """Set the best parameters back on ``optimizer`` (default: the one trained)."""
        restore_best(optimizer or self.optimizer, self)
