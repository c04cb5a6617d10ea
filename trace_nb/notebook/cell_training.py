"""Train a ``%%trace`` cell over a dataset: the cell is the workflow, one run per example.

The cell reads the current example from a variable (``example`` unless told otherwise);
:func:`trace_nb.train` runs it on minibatches, sends each output its own feedback and asks
the session's optimizer for one update per step. Cells share the notebook's namespace, so
examples run one at a time (``max_workers=1``) in this kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..graph import Node
from .runner import RunnableSession, execute, publish_code


class TrainedSession(RunnableSession, Protocol):
    """What training a cell needs of its session, beyond running it: the compiled cell,
    its optimizer, and where the result is recorded."""

    compiled: Any

    @property
    def optimizer(self) -> Any: ...

    def record_training(self, result: Any) -> None: ...


def train_session(
    session: TrainedSession,
    dataset: Any,
    feedback: Callable | None = None,
    *,
    input: str = "example",
    **kwargs: Any,
) -> Any:
    """Run :func:`trace_nb.train` with the session's cell as the workflow.

    Parameters
    ----------
    feedback
        ``feedback(example, output)`` returning text, a score, or ``(score, text)``;
        defaults to the cell's ``--feedback`` function called with the output alone.
    input
        Name of the variable the cell reads the example from.
    **kwargs
        Passed to :func:`trace_nb.train` (``batch_size``, ``epochs``, ``validation``,
        ``budget``, ``checkpoint``, ``view``...). ``max_workers`` is always 1.
    """
    from ..training import train
    from ..training.engines import engine_for

    if engine_for(kwargs.get("executor")) is not None:
        raise ValueError(
            "a %%trace cell runs in this kernel's namespace, so it cannot run on a remote "
            "engine: train it here (threads), or write the workflow as a function of the "
            "example and call trace_nb.train(workflow, dataset, feedback, optimizer, "
            "executor=...)"
        )
    if session.compiled is None or session.shell is None:
        raise RuntimeError(
            f"session {session.name!r} has no cell to train: run its %%trace cell first"
        )
    shell = session.shell
    if feedback is None:
        if not session.spec.feedback:
            raise ValueError(
                "give feedback=fn(example, output), or name a --feedback function "
                "in the %%trace line"
            )
        fn = shell.user_ns[session.spec.feedback]

        def on_output(example: Any, output: Any) -> Any:
            return fn(output)

        feedback = on_output

    def workflow(example: Any) -> Node:
        shell.user_ns[input] = example
        value, _ = execute(shell, session, session.compiled)
        if not isinstance(value, Node):
            raise ValueError(
                "the cell's output does not depend on any parameter, so training "
                "cannot improve it; make its last expression use a --param value"
            )
        return value

    kwargs["max_workers"] = 1
    result = train(workflow, dataset, feedback, session.optimizer, **kwargs)
    publish_code(session, shell.user_ns)
    session.record_training(result)
    return result
