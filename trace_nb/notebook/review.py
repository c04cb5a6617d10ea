"""A session's review: the proposals on offer, those kept for a human, and the decisions
on them (:class:`ReviewQueue`, a part of :class:`~.session.TraceSession`).

Code follows :mod:`trace_nb.optim.approval`; which proposals an automatic step applies is
:func:`trace_nb.optim.policy.decide`'s call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..optim import Proposal
from ..optim.policy import Decision
from ..optim.refusal import Refusal
from ..optim.states import DecisionSource, ProposalStatus, member
from .lineage import Lineage
from .parameters import ParameterSet
from .run_log import RunLog

__all__ = ["ReviewQueue"]

PENDING = ProposalStatus.PENDING
HUMAN, AUTO = DecisionSource.HUMAN, DecisionSource.AUTO


class ReviewQueue:
    """Proposals and decisions: approve, reject, edit, choose a candidate, step.

    Parameters
    ----------
    params, log, lineage
        The session's parameters, history table and lineage: a decision finds its
        parameter in ``params``, is recorded in ``log`` and adds a version to ``lineage``.
    optimizer
        Returns the session's optimizer (made on first use); it applies the proposals.
    publish
        Called with each applied proposal (puts approved code into the notebook).
    notify
        Called with the event name after each change (``"propose"``, ``"approve"``...).
    session
        The session's name, for messages.

    ``proposals`` are those on offer (the panel shows them); ``waiting`` those a review
    rule kept for a human, which stay on offer across runs. The queue takes no lock: call
    its decisions through the session's methods (``session.approve`` ...), which do.
    """

    def __init__(
        self,
        params: ParameterSet,
        log: RunLog,
        lineage: Lineage,
        optimizer: Callable[[], Any],
        publish: Callable[[Proposal], None],
        notify: Callable[[str], None],
        session: str = "",
    ) -> None:
        self.proposals: list[Proposal] = []
        self.waiting: list[Proposal] = []
        self._params, self._log, self._lineage = params, log, lineage
        self._optimizer, self._publish, self._notify = optimizer, publish, notify
        self._session = session

    # -- what is on offer -------------------------------------------------------------
    def new_run(self) -> None:
        """A run started: only proposals kept for a human stay on offer."""
        self.waiting = [p for p in self.waiting if p.status == PENDING]
        self.proposals = list(self.waiting)

    def clear(self) -> None:
        """Nothing on offer (``reset``)."""
        self.proposals = []

    def keep_for_review(self, proposals: list[Proposal]) -> None:
        """Keep ``proposals`` pending for a human across runs (a review rule chose them)."""
        self.waiting.extend(p for p in proposals if p not in self.waiting)
        self._notify("propose")

    def request(self) -> tuple[list[Proposal], Any]:
        """Ask the optimizer (safe in a worker thread): the proposals and the usage (one,
        a list with one per candidate, or None). Nothing here changes."""
        opt = self._optimizer()
        before = len(opt.log)
        proposals = opt.propose()
        usages = [e.usage for e in opt.log[before:] if e.usage is not None]
        return proposals, (usages if len(usages) > 1 else usages[0] if usages else None)

    def offer(self, proposals: list[Proposal], usage: Any = None) -> list[Proposal]:
        """Make ``proposals`` the pending ones and count the LLM call in the history.
        Proposals kept for review stay on offer unless a new one is for the same parameter."""
        fresh = {id(p.parameter) for p in proposals if p.parameter is not None}
        self.waiting = [
            p for p in self.waiting if p.status == PENDING and id(p.parameter) not in fresh
        ]
        self.proposals = [*self.waiting, *proposals]
        self._log.count_usage(usage)
        self._notify("propose")
        return proposals

    def pending(self, names: str | Iterable[str] | None = None) -> list[Proposal]:
        """The pending proposals (for ``names`` only, when given; KeyError when a name
        has none)."""
        pending = [p for p in self.proposals if p.status == PENDING]
        if names is None:
            return pending
        found = []
        for w in [names] if isinstance(names, str) else list(names):
            if any(p.parameter is None and p.name == w for p in pending):
                found.extend(p for p in pending if p.parameter is None and p.name == w)
                continue  # a suggestion for an unknown name: it can only be rejected
            node = self._params.find(w, self._session)
            match = [p for p in pending if p.parameter is node]
            if not match:
                raise KeyError(f"there is no pending proposal for {w!r}")
            found.extend(match)
        return found

    # -- decisions --------------------------------------------------------------------
    def approve(
        self,
        names: str | Iterable[str] | None = None,
        value: Any = None,
        decided_by: str = HUMAN,
        approve_code: bool = False,
    ) -> list[Proposal]:
        """See :meth:`TraceSession.approve <trace_nb.notebook.session.TraceSession.approve>`."""
        decided_by = member(DecisionSource, decided_by)  # before anything changes
        if value is not None:
            if not isinstance(names, str):
                raise ValueError("approve(name, value=...) edits one proposal: give one name")
            self.edit(names, value)
        chosen = self.pending(names)
        by_param: dict[int, set] = {}
        for p in chosen:
            if p.parameter is not None and p.valid:
                by_param.setdefault(id(p.parameter), set()).add(p.candidate)
        if any(len(c) > 1 for c in by_param.values()):
            raise ValueError(
                "several candidates propose a value for the same parameter: pick one "
                "with choose(k) (the panel: Approve on that candidate's card)"
            )
        if names is not None:
            bad = [p for p in chosen if not p.valid]
            if bad:
                raise ValueError(f"cannot approve {bad[0].name!r}: {bad[0].reason}")
        applied = self._apply([p for p in chosen if p.valid], decided_by, approve_code)
        self._mark(applied, "approved", decided_by)
        self._notify("approve")
        broken = [  # code that failed to load while being applied: now invalid
            p
            for p in chosen
            if not p.valid and p.status == PENDING and p.is_code and p.code is Refusal.CODE_LOAD
        ]
        if names is not None and broken:
            raise ValueError(f"cannot approve {broken[0].name!r}: {broken[0].reason}")
        return applied

    def reject(
        self,
        names: str | Iterable[str] | None = None,
        decided_by: str = HUMAN,
        candidate: int | None = None,
    ) -> list[Proposal]:
        """Reject pending proposals (all when ``names`` is None; only ``candidate``'s)."""
        decided_by = member(DecisionSource, decided_by)
        chosen = [p for p in self.pending(names) if candidate is None or p.candidate == candidate]
        for p in chosen:
            p.status, p.decided_by = ProposalStatus.REJECTED, decided_by
        self._mark([p for p in chosen if p.parameter is not None], "rejected", decided_by)
        self._notify("reject")
        return chosen

    def edit(self, name: str, value: Any, candidate: int | None = None) -> Proposal:
        """Replace the proposal for ``name`` (of ``candidate``) with ``value``, checked
        like any suggestion."""
        mine = [p for p in self.pending(name) if candidate is None or p.candidate == candidate]
        if not mine:
            raise KeyError(
                f"there is no pending proposal for {name!r}"
                + ("" if candidate is None else f" from candidate {candidate}")
            )
        old = mine[0]
        new = old.revalidate(value)
        new.candidate = old.candidate
        self.proposals[self.proposals.index(old)] = new
        self._notify("edit")
        return new

    def choose(
        self, candidate: int, decided_by: str = HUMAN, approve_code: bool = False
    ) -> list[Proposal]:
        """Apply candidate ``candidate``'s valid proposals; the other candidates' become
        ``not_chosen``; the history records the winner."""
        decided_by = member(DecisionSource, decided_by)
        pending = self.pending()
        ours = [p for p in pending if p.candidate == candidate]
        if not ours:
            known = sorted({p.candidate for p in pending if p.candidate is not None})
            raise KeyError(
                f"there is no pending candidate {candidate} (candidates: {known or 'none'})"
            )
        others = [p for p in pending if p.candidate is not None and p.candidate != candidate]
        applied = self._apply([p for p in ours if p.valid], decided_by, approve_code)
        for p in others:
            p.status, p.decided_by = ProposalStatus.NOT_CHOSEN, decided_by
        self._mark(applied, "approved", decided_by)
        self._log.note_candidate(candidate)
        self._notify("approve")
        return applied

    def apply_decision(
        self, decision: Decision, decided_by: str = AUTO, approve_code: bool = False
    ) -> list[Proposal]:
        """Carry out an automatic step's :class:`~trace_nb.optim.policy.Decision`: apply
        ``decision.apply``, mark the candidates that lost ``not_chosen`` and record the
        winner. Held proposals stay pending (the caller says what waits)."""
        decided_by = member(DecisionSource, decided_by)
        decision.mark_not_chosen(decided_by)
        applied = self._apply(decision.apply, decided_by, approve_code)
        self._mark(applied, "approved", decided_by)
        self._log.note_candidate(decision.candidate)
        self._notify("approve")
        return applied

    # -- recording --------------------------------------------------------------------
    def _apply(self, props: list[Proposal], decided_by: str, approve_code: bool) -> list[Proposal]:
        """Apply through the optimizer (one approval rule), then record each new value: the
        notebook's function, and a version in the lineage."""
        applied = self._optimizer().apply(props, decided_by=decided_by, approve_code=approve_code)
        for p in applied:
            self._publish(p)
            self._lineage.accept(
                self._params.display_name(p.parameter),
                p.new,
                source="edit" if p.edited else "proposal",
                step=self._log.last_step,
                reasoning=p.reasoning,
                decided_by=str(decided_by),
            )
        return applied

    def _mark(self, props: list[Proposal], column: str, who: str) -> None:
        names = [
            self._params.display_name(p.parameter) if p.parameter is not None else p.name
            for p in props
        ]
        self._log.mark([n for n in names if n is not None], column, who)
