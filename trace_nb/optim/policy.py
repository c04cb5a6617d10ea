"""The one step policy: what an automatic step does with the LLM's proposals.

Every path that decides without a human asks :func:`decide`: ``Optimizer.step``, the
panel's Auto (:mod:`trace_nb.notebook.ui.autorun`) and training
(:mod:`trace_nb.training.trainer`). The caller applies ``Decision.apply`` (its own way:
the session records lineage, the trainer validates), holds ``Decision.hold`` for a human
and records ``Decision.not_chosen`` with :meth:`Decision.mark_not_chosen`.

The rules, in order:

1. Only valid, pending proposals about a parameter take part. An invalid proposal is never
   previewed, scored or applied.
2. Without ``approve_code=True`` a code proposal is held for review (reason
   :attr:`HoldReason.CODE`): it is never previewed, never run to score a candidate, never
   applied. LLM code runs only when someone approved it.
3. Several candidates (``OptoPrime(candidates=k)``): at most one is applied. With a
   ``scorer`` the best-scoring one wins (the "best of k"), else the first (the lowest
   temperature); the others are *not chosen* (a status, kept for the record). Given the
   current values' score on the same examples (``current_score``), a best candidate that
   scores *below* it (or that could not be scored at all) is not applied either: every
   candidate is not chosen and the values stay (``Decision.kept``); a tie applies the
   candidate. Scoring runs
   the workflow with a candidate's values, so when any candidate changes code and
   ``approve_code`` is off, no candidate is scored or applied: all of them wait for a human
   to choose (reason :attr:`HoldReason.CODE`).
4. The review rule (:mod:`.gates`) holds more proposals for a human (reason
   :attr:`HoldReason.REVIEW`); it sees only proposals that may run (rule 2 came first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .gates import GateContext, resolve
from .proposal import Proposal
from .states import DecisionSource, ProposalStatus, member

__all__ = ["NOT_CHOSEN", "Decision", "Hold", "HoldReason", "decide"]

#: The status of a candidate's proposal when another candidate was applied.
NOT_CHOSEN = ProposalStatus.NOT_CHOSEN


class HoldReason(Enum):
    """Why a proposal waits for a human (branch on this, never on the text)."""

    CODE = "code"  #: LLM code, and ``approve_code`` is off
    REVIEW = "review"  #: the review rule chose it


@dataclass
class Hold:
    """One proposal kept for a human: the reason code and the reason in words."""

    proposal: Proposal
    reason: HoldReason
    text: str


@dataclass
class Decision:
    """What :func:`decide` chose.

    Attributes
    ----------
    apply
        Proposals to apply now (valid, pending, at most one candidate's).
    hold
        Proposals that wait for a human, each with its reason.
    not_chosen
        Proposals of the candidates that were not chosen.
    candidate
        The chosen candidate's number, or None when there was no choice to make.
    scores
        Each scored candidate's score (None: nothing could be scored).
    kept
        True when every candidate scored below the current values (``current_score``), or
        none could be scored where they were: none is applied, all are not chosen.
    """

    apply: list[Proposal] = field(default_factory=list)
    hold: list[Hold] = field(default_factory=list)
    not_chosen: list[Proposal] = field(default_factory=list)
    candidate: int | None = None
    scores: dict[int, float | None] = field(default_factory=dict)
    kept: bool = False

    def held(self, reason: HoldReason | None = None) -> list[Proposal]:
        """The held proposals (only those held for ``reason``, when given)."""
        return [h.proposal for h in self.hold if reason is None or h.reason is reason]

    def mark_not_chosen(self, decided_by: DecisionSource | str = DecisionSource.AUTO) -> None:
        """Record the candidates that lost: status ``"not_chosen"`` (they stay listed)."""
        source = member(DecisionSource, decided_by)  # an unknown source changes nothing
        for p in self.not_chosen:
            if p.status == "pending":
                p.status, p.decided_by = NOT_CHOSEN, source


def _code_hold(p: Proposal) -> Hold:
    if p.is_code:
        text = f"the LLM's code for {p.name!r} runs only after a human approves it"
    else:  # a value of a candidate that, elsewhere, changes code
        text = (
            f"candidate {p.candidate} is one of several and some change code: choosing "
            "among them would run that code, so a human chooses"
        )
    return Hold(p, HoldReason.CODE, text + " (or approve_code=True)")


def decide(
    proposals: Sequence[Proposal],
    review: Any = None,
    approve_code: bool = False,
    scorer: Callable[[list[Proposal]], float | None] | None = None,
    *,
    round: int = 1,
    previewer: Callable[[Proposal], Any] | None = None,
    current_score: float | Callable[[], float | None] | None = None,
) -> Decision:
    """Decide what an automatic step applies, holds and leaves out (see the module docs).

    Parameters
    ----------
    proposals
        One step's proposals (any status; only valid pending ones take part).
    review
        A rule of :mod:`.gates` (a preset name, a callable, a list), or None.
    approve_code
        The one opt-in for applying (and running) LLM code without a human.
    scorer
        ``scorer(one_candidates_proposals) -> score`` (higher is better; None: no score);
        only called for candidates that may run.
    round
        The 1-based round, for rules such as ``"every:K"``.
    previewer
        ``previewer(proposal)`` returns something with a ``regressions`` count, for the
        ``"regression"`` rule; only called for proposals that may run.
    current_score
        The current values' score on the examples ``scorer`` uses: with several scored
        candidates, the best is applied only if it scores at least this (None: always; a
        best candidate without a score is then not applied).
        A callable is asked once, after the candidates were scored (a caller whose
        scorer also measures the current values, as a preview does, can pass what it saw).

    Returns
    -------
    Decision
        Nothing is changed: the caller applies, holds and marks.
    """
    rule = resolve(review)
    live = [p for p in proposals if p.parameter is not None and p.valid and p.status == "pending"]
    out = Decision()
    numbers = sorted({p.candidate for p in live if p.candidate is not None})
    # One candidate left (the others repeated it) is still measured against the values,
    # when measuring it runs no code nobody approved.
    measured = scorer is not None and current_score is not None
    runnable = approve_code or not any(p.is_code for p in live)
    if len(numbers) > 1 or (numbers and measured and runnable):
        live = _choose(proposals, live, numbers, approve_code, scorer, out, current_score)
    for p in live:
        if p.is_code and not approve_code:
            out.hold.append(_code_hold(p))
    ctx = GateContext(round, previewer)
    held = {id(h.proposal) for h in out.hold}
    for p in live:
        if id(p) not in held and rule(p, ctx):
            out.hold.append(Hold(p, HoldReason.REVIEW, f"the review rule keeps {p.name!r}"))
    held = {id(h.proposal) for h in out.hold}
    out.apply = [p for p in live if id(p) not in held]
    return out


def _choose(
    proposals: Sequence[Proposal],
    live: list[Proposal],
    numbers: list[int],
    approve_code: bool,
    scorer: Callable[[list[Proposal]], float | None] | None,
    out: Decision,
    current_score: float | Callable[[], float | None] | None,
) -> list[Proposal]:
    """Pick one candidate (or, when all score below ``current_score``, none) into
    ``out``; return the proposals still in play."""
    groups = {k: [p for p in live if p.candidate == k] for k in numbers}
    if not approve_code and any(p.is_code for p in live if p.candidate is not None):
        # Scoring would run the LLM's code: a human chooses among all of them.
        for p in live:
            if p.candidate is not None:
                out.hold.append(_code_hold(p))
        return [p for p in live if p.candidate is None]
    best = numbers[0]
    if scorer is not None:
        out.scores = {k: scorer(groups[k]) for k in numbers}
        best = max(numbers, key=lambda k: _rank(out.scores[k]))
        top = out.scores[best]
        current = current_score() if callable(current_score) else current_score
        for k in numbers:  # kept with each proposal: the next prompt says how it did
            for p in groups[k]:
                p.score, p.baseline = out.scores[k], current
        # No candidate could be scored where the current values were (every one broke the
        # run): none of them is known to be as good, so none is applied either.
        if current is not None and (top is None or top < current):
            out.kept = True  # every candidate would make the examples worse: keep the values
            out.not_chosen = [
                p for p in proposals if p.status == "pending" and p.candidate is not None
            ]
            return [p for p in live if p.candidate is None]
    if len(numbers) == 1:
        return live  # the only candidate left, measured and kept: there was no choice
    out.candidate = best
    out.not_chosen = [  # invalid ones too: they lost with their candidate
        p
        for p in proposals
        if p.status == "pending" and p.candidate is not None and p.candidate != best
    ]
    return [p for p in live if p.candidate in (None, best)]


def _rank(score: float | None) -> float:
    return float("-inf") if score is None else score
