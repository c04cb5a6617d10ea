"""What a training step measures on its own minibatch for the step policy
(:mod:`trace_nb.optim.policy`): a candidate's score, and whether a proposal's value would
make any example score worse (the review gate)."""

from __future__ import annotations

import contextlib
from typing import Any

from .inprocess import mean_score


def _scores_with(trainer: Any, proposals: list, batch: list[int]) -> list:
    """The minibatch's results with ``proposals``' values in place; the parameters get their
    values back and the feedback is cleared. Costs one workflow run per example."""
    try:
        with contextlib.ExitStack() as trials:
            for p in proposals:
                trials.enter_context(p.parameter.trial(p.new))
            traced = trainer.forward_batch(batch)
    finally:
        trainer.optimizer.zero_feedback()
    return [t.result for t in traced]


def preview_on_batch(trainer: Any, prop: Any, batch: list[int], before: list) -> Any:
    """How many examples of the minibatch ``prop``'s value scores lower than now."""
    from ..optim.gates import Regressions

    after = _scores_with(trainer, [prop], batch)
    worse = sum(
        1
        for b, a in zip(before, after, strict=True)
        if b.score is not None and (a.score is None or a.score < b.score)
    )
    return Regressions(worse, mean_score(after))


def score_on_batch(trainer: Any, proposals: list, batch: list[int]) -> float | None:
    """The minibatch's mean score with ``proposals``' values in place (one candidate's, for
    :func:`trace_nb.optim.policy.decide`, which calls this only for values that may run)."""
    return mean_score(
        _scores_with(trainer, [p for p in proposals if p.parameter is not None], batch)
    )
