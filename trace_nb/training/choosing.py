"""Choices a training step makes on its own minibatch: which of several candidates to apply,
and whether a proposal's value would make any example score worse (the review gate)."""

from __future__ import annotations

from typing import Any

from .inprocess import mean_score


def _scores_with(trainer: Any, proposals: list, batch: list[int]) -> list:
    """The minibatch's results with ``proposals``' values in place; the parameters get their
    values back and the feedback is cleared. Costs one workflow run per example."""
    old = [(p.parameter, p.parameter._data) for p in proposals]
    for p in proposals:
        p.parameter._set(p.new)
    try:
        traced = trainer.forward_batch(batch)
    finally:
        for node, value in old:
            node._set(value)
        trainer.opt.zero_feedback()
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


def pick_candidate(trainer: Any, proposals: list, batch: list[int]) -> tuple[int | None, list]:
    """With several candidates (``OptoPrime(candidates=k)``): the one whose values score best
    on the minibatch, and the proposals left to apply (the others are rejected)."""
    numbers = sorted(
        {
            p.candidate
            for p in proposals
            if p.candidate is not None and p.valid and p.status == "pending"
        }
    )
    if len(numbers) < 2:
        return None, proposals
    scores = {}
    for k in numbers:
        mine = [p for p in proposals if p.candidate == k and p.valid and p.parameter is not None]
        score = mean_score(_scores_with(trainer, mine, batch))
        scores[k] = float("-inf") if score is None else score
    best = max(numbers, key=lambda k: scores[k])
    for p in proposals:
        if p.candidate is not None and p.candidate != best and p.status == "pending":
            p.status, p.decided_by = "rejected", "auto"
    return best, [p for p in proposals if p.candidate in (None, best)]
