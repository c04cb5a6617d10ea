"""The training loop: minibatches of traced runs, per-example feedback, one optimizer step each.

One step: zero the optimizer's feedback; run the workflow on a minibatch in this process
(threads), each example traced; score every output with the feedback function; send each
output its own feedback with ``backward``; one ``optimizer.propose()`` + ``apply()`` (one LLM
call that sees all outputs and their feedback); score the validation set; keep the best
parameters; write the checkpoint. See :func:`train`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from .budget import Budget
from .config import TrainConfig
from .progress import ProgressListener
from .result import TrainResult
from .trainer import Trainer

__all__ = ["TrainResult", "train"]


def train(
    workflow: Callable,
    dataset: Iterable[Any],
    feedback: Callable,
    optimizer: Any,
    *,
    batch_size: int = 4,
    epochs: int = 1,
    validation: Iterable[Any] | None = None,
    max_workers: int = 4,
    executor: Any = None,
    budget: Budget | Mapping[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    patience: int | None = None,
    shuffle_seed: int | None = 0,
    progress: bool = True,
    view: ProgressListener | None = None,
    max_steps: int | None = None,
    calls_per_example: int | None = None,
    workflow_llm: Any = None,
    tokens_per_call: int | None = None,
    restore_best: bool = False,
    callback: Callable[[dict], Any] | None = None,
    approve_code: bool = False,
    review: Any = None,
    gate: str | None = None,
    tracking: Any = None,
) -> TrainResult:
    """Train ``optimizer``'s parameters on a dataset, a minibatch per optimizer step.

    Parameters
    ----------
    workflow
        ``workflow(example)`` runs traced code that uses the optimizer's parameters and
        returns the output node, or raises (an ``ExecutionError`` becomes feedback from its
        exception node; any other error is described and blamed on all parameters).
    dataset
        Training examples; each epoch visits them once in a shuffled order.
    feedback
        ``feedback(example, output_value)`` returns text, a score, ``(score, text)`` or
        ``{"score": ..., "feedback": ...}``. Called in worker threads: keep it thread-safe.
    optimizer
        An :class:`~trace_nb.optim.OptoPrime` (or any optimizer with ``parameters``,
        ``zero_feedback``, ``propose``, ``apply``; ``state``/``load_state`` for checkpoints).
    batch_size, epochs
        Examples per step (each output gets its own feedback, all in one prompt), and passes
        over the dataset.
    validation
        Examples scored after every step that changed something; their mean score (examples
        without a score count as 0) picks the best parameters and drives ``patience``.
        Without it the minibatch mean does, judging the values it was measured with.
    max_workers, executor
        Concurrency. By default ``max_workers`` threads run examples in this process. A
        ``ThreadPoolExecutor`` you pass is used instead. A remote engine (any other
        ``concurrent.futures.Executor`` such as a process pool, a Dask ``Client`` or
        ``client.get_executor()``, ``"ray"`` after ``ray.init()``, or
        :class:`~trace_nb.training.engines.RayEngine`) runs the minibatch and the validation
        set on its workers: each task gets the parameters' values by name and sends back
        the result, the trace as data (rebuilt here, so the optimizer sees the same prompt
        as for a local run) and its LLM usage, which counts in the totals and the budget;
        a task that raises or a worker that dies becomes that example's error feedback.
        See :mod:`trace_nb.training.remote`.
    budget
        :class:`Budget` or dict (``calls``, ``tokens``, ``cost``): stop before a step whose
        estimated usage would go past a limit (``stopped_reason="budget"``).
    checkpoint, resume
        Path of a JSON checkpoint written atomically after every step; with ``resume=True``
        an existing checkpoint is continued (a missing one starts a fresh run).
    patience
        Stop after this many steps without a better monitored score.
    shuffle_seed
        Seed of the per-epoch shuffling (None: dataset order), so resumed runs see the
        same minibatches.
    progress, view
        Show a tqdm bar (with the projected usage, then running totals); also update a
        :class:`~trace_nb.notebook.ui.train_view.TrainView` or any listener.
    max_steps
        Run at most this many steps in this call (a resumed call counts afresh).
    calls_per_example, workflow_llm
        Workflow LLM calls per example (for the projection and the first budget check),
        and the workflow's LLM client, whose usage is counted with the optimizer's (on a
        remote engine, workers report the usage of every LLM the workflow called).
    tokens_per_call
        Tokens of one optimizer call, to project before anything runs (otherwise
        estimated from the first prompt's size).
    restore_best
        Put the best parameters back on the optimizer at the end.
    callback
        Called with each history row after the step (and its checkpoint) completed.
    approve_code
        Training applies every valid proposal without review. Code written by the LLM
        must not run unreviewed unless you say so: with code parameters in the optimizer
        this must be True, else training refuses to start.
    review, gate
        A rule of :mod:`trace_nb.optim.gates` (a callable or a preset such as ``"diff>3"``)
        choosing proposals that are not applied but kept for a human in
        ``TrainResult.waiting``; ``gate="no_regression"`` keeps a proposal whose preview on
        the step's minibatch scores any example lower.
    tracking
        Where the run is also recorded, live: ``"mlflow"`` (a run in MLflow's configured
        store, experiment ``trace_nb``), an :class:`~trace_nb.tracking.MLflowLogger` or a
        dict of its options (``{"experiment": ..., "tracking_uri": ...}``), ``"otel"``
        (OpenTelemetry spans, also after :func:`trace_nb.tracking.otel.disable`), or a list
        of these.
        Params, per-step metrics, changed values, diffs, reasoning, the history and the
        final prompt go to MLflow, the LLM calls as traces; a failing tracker warns once
        and the run goes on. Spans are emitted anyway whenever OpenTelemetry is configured
        (see :mod:`trace_nb.tracking.otel`).

    Returns
    -------
    TrainResult
    """
    # Every keyword but the data (validation) is an option of the run: one TrainConfig,
    # checked there, is what the Trainer reads.
    options = {k: v for k, v in locals().items() if k in _OPTION_NAMES}
    config = TrainConfig.of(options, gate=gate)
    code = [p.name for p in optimizer.parameters if getattr(p, "is_code", False)]
    if code and not config.approve_code:
        raise ValueError(
            f"the optimizer has code parameters ({', '.join(code)}); training would run the "
            "LLM's code without your review. Pass approve_code=True to allow that, or train "
            "with value parameters only and review code changes in the panel."
        )
    data = list(dataset)
    if not data:
        raise ValueError("the dataset is empty")
    val = None if validation is None else list(validation)
    return Trainer(workflow, data, feedback, optimizer, val or None, config).run()


_OPTION_NAMES = frozenset(f.name for f in fields(TrainConfig))
