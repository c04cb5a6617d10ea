"""Running the workflow on examples in this process, keeping each output's trace.

:func:`run_one` runs one example and scores it; :func:`forward` runs several on a thread
pool. The outputs are live nodes, so feedback can flow back through them. Remote engines
use :mod:`.remote`, which runs :func:`run_one` on the worker and ships the trace back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import FeedbackError
from ..feedback import parse_feedback
from ..graph import ExecutionError, Node, ParameterNode, bundle

__all__ = [
    "ExampleResult",
    "Traced",
    "forward",
    "in_process",
    "mean_score",
    "run_one",
    "workflow_error",
]


@dataclass
class ExampleResult:
    """The outcome of the workflow on one example.

    ``score`` is None when the feedback gave none or the workflow raised (``error`` then
    holds the description, which is also the feedback text).
    """

    index: int
    output: Any
    score: float | None
    feedback: str
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Traced:
    """A local run: the result plus the node that receives the feedback (None if nothing does)."""

    node: Node | None
    result: ExampleResult


def mean_score(results: Iterable[ExampleResult]) -> float | None:
    """Mean score; an example without a score (error, text-only feedback) counts as 0, and
    so does a score that is not a finite number (NaN would make every comparison false
    and could not be saved)."""
    scores = [
        r.score if isinstance(r.score, int | float) and math.isfinite(r.score) else 0.0
        for r in results
    ]
    return sum(scores) / len(scores) if scores else None


@bundle(
    description="The workflow raised this error outside any traced operation; it "
    "depends on every variable."
)
def workflow_error(error: str, *variables: Any) -> str:
    return error


def run_one(
    workflow: Callable,
    feedback: Callable,
    example: Any,
    index: int,
    parameters: Sequence[ParameterNode] = (),
) -> Traced:
    """Run ``workflow`` on one example and score the output with ``feedback``.

    An :class:`~trace_nb.graph.ExecutionError` makes its exception node the feedback
    target, with the error as text. Any other exception is described, and (when
    ``parameters`` are given) recorded as a ``workflow_error`` node that depends on all of
    them, so the optimizer still sees what went wrong. Errors raised by ``feedback``
    itself propagate as :class:`FeedbackError`: they are bugs in the scoring, not in the
    trained program.
    """
    start = time.perf_counter()
    try:
        out = workflow(example)
    except ExecutionError as e:
        target = e.exception_node
        text = target.describe()
        return Traced(
            target, ExampleResult(index, None, None, text, text, time.perf_counter() - start)
        )
    except Exception as e:  # noqa: BLE001 - the error is the feedback
        text = f"{type(e).__name__}: {e}"
        target = workflow_error(text, *parameters) if parameters else None
        return Traced(
            target, ExampleResult(index, None, None, text, text, time.perf_counter() - start)
        )
    value = out.peek() if isinstance(out, Node) else out
    try:
        score, text = parse_feedback(feedback(example, value))
    except FeedbackError:
        raise
    except Exception as e:
        raise FeedbackError(
            f"the feedback function raised on example {index}: {type(e).__name__}: {e}"
        ) from e
    node = out if isinstance(out, Node) else None
    return Traced(node, ExampleResult(index, value, score, text, None, time.perf_counter() - start))


def in_process(executor: Executor | None) -> bool:
    """Whether ``executor`` runs tasks in this process (threads), so traces survive."""
    return executor is None or isinstance(executor, ThreadPoolExecutor)


def forward(
    workflow: Callable,
    feedback: Callable,
    items: Sequence[tuple[int, Any]],
    pool: Executor | None,
    parameters: Sequence[ParameterNode] = (),
) -> list[Traced]:
    """Run the workflow on ``(index, example)`` items in this process, keeping the traces.

    ``pool`` must run tasks in this process (threads); None runs them one after another.
    """
    if pool is None or len(items) <= 1:
        return [run_one(workflow, feedback, ex, i, parameters) for i, ex in items]
    futures = [pool.submit(run_one, workflow, feedback, ex, i, parameters) for i, ex in items]
    return [f.result() for f in futures]
