"""Running a workflow on examples, concurrently, and scoring its outputs with feedback.

What runs where
---------------
* In this process (threads: the default, or any :class:`~concurrent.futures.ThreadPoolExecutor`
  you pass): the workflow builds its trace here, so the outputs are real nodes that
  feedback can flow back through. Training always runs its minibatch this way.
* On another executor (a :class:`~concurrent.futures.ProcessPoolExecutor`, a Dask
  ``client.get_executor()``, ...): nodes cannot travel back, so the remote side runs
  ``workflow`` *and* ``feedback`` and returns only an :class:`ExampleResult` (score,
  feedback text, output value, error). The workflow, the feedback function and the
  parameters are pickled once (with cloudpickle when installed, so notebook functions
  work); each task carries the parameters' current values, which the remote side sets on
  the unpickled parameters and on the parameters of the same name it can find (those of
  an importable module the workflow lives in). Examples and output values must pickle.
  Dask submits tasks as *pure* by default, so an evaluation identical to one still held
  (same values, same example) may return the earlier result; ``client.get_executor(pure=False)``
  reruns them (it matters for workflows that sample).
"""

from __future__ import annotations

import hashlib
import math
import pickle
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ..feedback import FeedbackError, parse_feedback
from ..graph import ExecutionError, Node, ParameterNode, bundle
from ..graph import names as _names

__all__ = ["EvalReport", "ExampleResult", "FeedbackError", "Traced", "evaluate", "forward",
           "in_process", "parse_feedback"]


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
    scores = [r.score if isinstance(r.score, int | float) and math.isfinite(r.score) else 0.0
              for r in results]
    return sum(scores) / len(scores) if scores else None


@dataclass
class EvalReport:
    """Results of :func:`evaluate`, in the order of the examples."""

    results: list[ExampleResult]
    seconds: float

    @property
    def mean_score(self) -> float | None:
        """Mean score over the examples; examples without a score count as 0."""
        return mean_score(self.results)

    def to_frame(self) -> Any:
        """The results as a pandas DataFrame, one row per example."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.results])


@bundle(description="[workflow_error] The workflow raised this error outside any traced "
                    "operation; it depends on every variable.")
def workflow_error(error: str, *variables: Any) -> str:
    return error


def run_one(workflow: Callable, feedback: Callable, example: Any, index: int,
            parameters: Sequence[ParameterNode] = ()) -> Traced:
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
        return Traced(target, ExampleResult(index, None, None, text, text,
                                            time.perf_counter() - start))
    except Exception as e:  # noqa: BLE001 - the error is the feedback
        text = f"{type(e).__name__}: {e}"
        target = workflow_error(text, *parameters) if parameters else None
        return Traced(target, ExampleResult(index, None, None, text, text,
                                            time.perf_counter() - start))
    value = out._data if isinstance(out, Node) else out
    try:
        score, text = parse_feedback(feedback(example, value))
    except FeedbackError:
        raise
    except Exception as e:
        raise FeedbackError(f"the feedback function raised on example {index}: "
                            f"{type(e).__name__}: {e}") from e
    node = out if isinstance(out, Node) else None
    return Traced(node, ExampleResult(index, value, score, text, None,
                                      time.perf_counter() - start))


def in_process(executor: Executor | None) -> bool:
    """Whether ``executor`` runs tasks in this process (threads), so traces survive."""
    return executor is None or isinstance(executor, ThreadPoolExecutor)


def forward(workflow: Callable, feedback: Callable, items: Sequence[tuple[int, Any]],
            pool: Executor | None, parameters: Sequence[ParameterNode] = ()) -> list[Traced]:
    """Run the workflow on ``(index, example)`` items in this process, keeping the traces.

    ``pool`` must run tasks in this process (threads); None runs them one after another.
    """
    if pool is None or len(items) <= 1:
        return [run_one(workflow, feedback, ex, i, parameters) for i, ex in items]
    futures = [pool.submit(run_one, workflow, feedback, ex, i, parameters) for i, ex in items]
    return [f.result() for f in futures]


# -- the remote path --------------------------------------------------------------------
_LOADED: OrderedDict[str, tuple] = OrderedDict()  # per worker process: payload hash -> objects


def _dumps(obj: Any) -> bytes:
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle comes with dask
        return pickle.dumps(obj)
    return cloudpickle.dumps(obj)


def _remote_run(payload: bytes, key: str, values: dict[str, Any], example: Any,
                index: int) -> ExampleResult:
    """Runs on the executor's worker: unpickle once, set the parameter values, run, score."""
    loaded = _LOADED.get(key)
    if loaded is None:
        loaded = _LOADED[key] = pickle.loads(payload)
        while len(_LOADED) > 8:
            _LOADED.popitem(last=False)
    workflow, feedback, params = loaded
    for p in params:
        if p.name in values:
            p._set(values[p.name])
    for name, value in values.items():
        # A workflow pickled by reference uses its module's own parameters: find them by name.
        other = _names.lookup(name)
        if isinstance(other, ParameterNode):
            other._set(value)
    result = run_one(workflow, feedback, example, index).result
    try:
        pickle.dumps(result.output)
    except Exception:  # noqa: BLE001 - an output that cannot travel comes back as text
        result.output = repr(result.output)
    return result


def evaluate(workflow: Callable, examples: Iterable[Any], feedback: Callable, *,
             max_workers: int = 4, executor: Executor | None = None,
             parameters: Iterable[ParameterNode] | Any = ()) -> EvalReport:
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
        Any :class:`concurrent.futures.Executor`. A thread pool runs in this process; any
        other executor runs workflow and feedback remotely (see the module docs).
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
    if in_process(executor):
        if executor is None and max_workers > 1 and len(items) > 1:
            with ThreadPoolExecutor(max_workers, thread_name_prefix="trace_nb-eval") as pool:
                traced = forward(workflow, feedback, items, pool)
        else:
            traced = forward(workflow, feedback, items, executor)
        results = [t.result for t in traced]
    else:
        results = _evaluate_remote(workflow, feedback, items, executor, params)
    return EvalReport(results, time.perf_counter() - start)


def _evaluate_remote(workflow: Callable, feedback: Callable, items: list[tuple[int, Any]],
                     executor: Executor, params: list[ParameterNode]) -> list[ExampleResult]:
    payload = _dumps((workflow, feedback, params))
    key = hashlib.sha1(payload).hexdigest()
    values = {p.name: p._data for p in params}
    futures = [executor.submit(_remote_run, payload, key, values, ex, i) for i, ex in items]
    return [f.result() for f in futures]
