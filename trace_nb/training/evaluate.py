"""Scoring a workflow on examples: in this process (threads) or on a remote engine.

What runs where
---------------
* In this process (threads: the default, or any :class:`~concurrent.futures.ThreadPoolExecutor`
  you pass): the workflow builds its trace here (see :mod:`.inprocess`).
* On a remote engine (a :class:`~concurrent.futures.ProcessPoolExecutor`, a Dask
  ``Client`` or ``client.get_executor()``, Ray; see :mod:`.engines`): the worker runs
  ``workflow`` *and* ``feedback`` and returns the :class:`ExampleResult` (score, feedback
  text, output value, error) and the LLM usage (see :mod:`.remote`). The workflow, the
  feedback function and the parameters are pickled once (cloudpickle, so notebook
  functions work); each task carries the parameters' current values by name. Examples and
  output values must pickle (an output that does not comes back as its ``repr``).
  Training also runs its minibatches there, with the traces shipped back as data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import FeedbackError
from ..feedback import parse_feedback
from ..graph import ParameterNode
from ..llm.usage import Usage
from .engines import engine_for
from .inprocess import ExampleResult, Traced, forward, in_process, mean_score, run_one
from .remote import RemoteRunner

__all__ = [
    "EvalReport",
    "ExampleResult",
    "FeedbackError",
    "Traced",
    "evaluate",
    "forward",
    "in_process",
    "parse_feedback",
    "run_one",
]


@dataclass
class EvalReport:
    """Results of :func:`evaluate`, in the order of the examples."""

    results: list[ExampleResult]
    seconds: float
    usage: Usage = field(default_factory=Usage)  # LLM usage reported by remote workers

    @property
    def mean_score(self) -> float | None:
        """Mean score over the examples; examples without a score count as 0."""
        return mean_score(self.results)

    def to_frame(self) -> Any:
        """The results as a pandas DataFrame, one row per example."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.results])


def evaluate(
    workflow: Callable,
    examples: Iterable[Any],
    feedback: Callable,
    *,
    max_workers: int = 4,
    executor: Any = None,
    parameters: Iterable[ParameterNode] | Any = (),
) -> EvalReport:
    """Run ``workflow`` on every example and score each output with ``feedback``.

    Parameters
    ----------
    workflow
        ``workflow(example)`` returns the output (a node or a plain value) or raises.
    examples
        The examples, in order.
    feedback
        ``feedback(example, output_value)`` returns text, a score, ``(score, text)`` or
        ``{"score": ..., "feedback": ...}``.
    max_workers
        Threads used when no executor is given (1 runs everything in this thread).
    executor
        A thread pool runs in this process; any other
        :class:`concurrent.futures.Executor`, a Dask ``Client`` or ``"ray"`` runs workflow
        and feedback remotely (see the module docs).
    parameters
        The trainable parameters (or an optimizer): their current values are sent along to
        a remote executor.

    Returns
    -------
    EvalReport
        Per-example results; ``mean_score`` counts examples without a score as 0.
    """
    items = list(enumerate(examples))
    params = list(getattr(parameters, "parameters", parameters))
    start = time.perf_counter()
    engine = engine_for(executor)
    if engine is None:
        if executor is None and max_workers > 1 and len(items) > 1:
            with ThreadPoolExecutor(max_workers, thread_name_prefix="trace_nb-eval") as pool:
                traced = forward(workflow, feedback, items, pool)
        else:
            traced = forward(workflow, feedback, items, executor)
        results = [t.result for t in traced]
        return EvalReport(results, time.perf_counter() - start)
    results, usage = RemoteRunner(engine, workflow, feedback, params).evaluate(items)
    return EvalReport(results, time.perf_counter() - start, usage)
