"""A session's review: asking the optimizer, and the decisions on its proposals."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..llm.default import default_llm
from ..optim import Proposal
from ..optim.policy import NOT_CHOSEN, Decision, decide
from ..optim.refusal import Refusal
from .locking import serialized as _serialized

OPTIMIZERS = ("OptoPrime", "OPRO")  # what ``%%trace --optimizer`` may name


def optimizer_kind(name: str | None) -> str:
    """The optimizer ``name`` names (any case; None: OptoPrime); ValueError for others."""
    for kind in OPTIMIZERS:
        if (name or "OptoPrime").lower() == kind.lower():
            return kind
    raise ValueError(f"unknown optimizer {name!r}; use {' or '.join(OPTIMIZERS)}")


class ReviewMixin:
    """Proposals and decisions of :class:`~.session.TraceSession` (approve / reject / edit /
    step); code follows :mod:`trace_nb.optim.approval`."""

    # -- optimizing -------------------------------------------------------------------
    @property
    def optimizer(self) -> Any:
        """The session's optimizer, made on first use from the magic's options."""
        if self._optimizer is None:
            from ..optim import OPRO, OptoPrime

            spec = self.spec
            kind = optimizer_kind(spec.optimizer if spec else None)
            llm = self._resolve_llm()
            if kind == "OPRO":
                self._optimizer = OPRO(self.parameter_nodes, llm=llm)
            else:
                self._optimizer = OptoPrime(
                    self.parameter_nodes,
                    llm=llm,
                    memory_size=(spec.memory if spec else 0) or 0,
                    candidates=getattr(spec, "candidates", 1) or 1,
                )
            if self._pending_optimizer_state:
                self._optimizer.load_state(self._pending_optimizer_state)
                self._pending_optimizer_state = None
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value: Any) -> None:
        self._optimizer = value

    def _resolve_llm(self) -> Any:
        if self.llm is not None:
            return self.llm
        spec = self.spec
        if spec is not None and spec.llm_var:
            ns = self.shell.user_ns if self.shell is not None else {}
            if spec.llm_var not in ns:
                raise NameError(f"--llm {spec.llm_var}: no variable of that name in the notebook")
            return ns[spec.llm_var]
        if default_llm() is not None:
            return default_llm()
        from ..llm import LLM

        self.llm = LLM(model=spec.model if spec else None)
        return self.llm

    @_serialized
    def propose(self) -> list[Proposal]:
        """Ask the optimizer for proposals; nothing changes until they are approved."""
        return self.adopt(*self.request_proposals())

    def request_proposals(self) -> tuple[list[Proposal], Any]:
        """The LLM call of :meth:`propose` (safe in a worker thread): proposals and usage.

        The session is not changed; :meth:`adopt` makes the proposals its own, so a
        cancelled request leaves everything as it was.
        """
        if self.last_feedback is None and not self.node_feedback:
            raise ValueError(
                "no feedback yet: give feedback on the output first "
                "(session.feedback(...), %trace_feedback, or the panel)"
            )
        opt = self.optimizer
        before = len(opt.log)
        proposals = opt.propose()
        usages = [e.usage for e in opt.log[before:] if e.usage is not None]
        return proposals, (usages if len(usages) > 1 else usages[0] if usages else None)

    @_serialized
    def adopt(self, proposals: list[Proposal], usage: Any = None) -> list[Proposal]:
        """Make ``proposals`` the pending ones and count the LLM call in the history.

        Proposals kept for review (``waiting``) stay on offer, unless a new proposal is for
        the same parameter: then the new one replaces it."""
        fresh = {id(p.parameter) for p in proposals if p.parameter is not None}
        self.waiting = [
            p for p in self.waiting if p.status == "pending" and id(p.parameter) not in fresh
        ]
        self.proposals = [*self.waiting, *proposals]
        if self.rows and usage is not None:
            row = self.rows[-1]
            for u in usage if isinstance(usage, list) else [usage]:  # one per candidate
                row["calls"] += 1
                row["tokens"] += u.prompt_tokens + u.completion_tokens
                row["cost"] += u.cost
        self._notify("propose")
        return proposals

    @_serialized
    def choose(
        self, candidate: int, decided_by: str = "human", approve_code: bool = False
    ) -> list[Proposal]:
        """Pick candidate ``candidate`` (from ``OptoPrime(candidates=k)``): apply its valid
        proposals; the other candidates' get the status ``"not_chosen"``; the history
        records the winner."""
        ours = [p for p in self.proposals if p.status == "pending" and p.candidate == candidate]
        if not ours:
            known = sorted(
                {
                    p.candidate
                    for p in self.proposals
                    if p.status == "pending" and p.candidate is not None
                }
            )
            raise KeyError(
                f"there is no pending candidate {candidate} (candidates: {known or 'none'})"
            )
        others = [
            p
            for p in self.proposals
            if p.status == "pending" and p.candidate is not None and p.candidate != candidate
        ]
        applied = self._apply([p for p in ours if p.valid], decided_by, approve_code)
        for p in others:
            p.status, p.decided_by = NOT_CHOSEN, decided_by
        self._mark_row(applied, "approved", decided_by)
        if self.rows:
            self.rows[-1]["candidate"] = candidate
        self._notify("approve")
        return applied

    @_serialized
    def apply_decision(
        self, decision: Decision, decided_by: str = "auto", approve_code: bool = False
    ) -> list[Proposal]:
        """Carry out an automatic step's :class:`~trace_nb.optim.policy.Decision`: apply
        ``decision.apply``, mark the candidates that lost ``"not_chosen"`` and record the
        winner in the history. Held proposals stay pending (the caller says what waits)."""
        decision.mark_not_chosen(decided_by)
        applied = self._apply(decision.apply, decided_by, approve_code)
        self._mark_row(applied, "approved", decided_by)
        if decision.candidate is not None and self.rows:
            self.rows[-1]["candidate"] = decision.candidate
        self._notify("approve")
        return applied

    def _pending(self, names: str | Iterable[str] | None) -> list[Proposal]:
        if names is None:
            return [p for p in self.proposals if p.status == "pending"]
        wanted = [names] if isinstance(names, str) else list(names)
        found = []
        for w in wanted:
            pending = [p for p in self.proposals if p.status == "pending"]
            if any(p.parameter is None and p.name == w for p in pending):
                found.extend(p for p in pending if p.parameter is None and p.name == w)
                continue  # a suggestion for an unknown name: it can only be rejected
            node = self._find(w)
            match = [p for p in pending if p.parameter is node]
            if not match:
                raise KeyError(f"there is no pending proposal for {w!r}")
            found.extend(match)
        return found

    @_serialized
    def approve(
        self,
        names: str | Iterable[str] | None = None,
        value: Any = None,
        decided_by: str = "human",
        approve_code: bool = False,
    ) -> list[Proposal]:
        """Apply pending proposals (all valid ones when ``names`` is None).

        With ``value``, the proposal for ``names`` is edited first (and checked again).
        An invalid proposal cannot be approved: asking for it by name raises ValueError.
        With ``decided_by="auto"`` code proposals stay pending unless ``approve_code=True``
        (:mod:`trace_nb.optim.approval`). Code that does not load (a failing import)
        becomes invalid with the reason, and nothing changes.
        """
        if value is not None:
            if not isinstance(names, str):
                raise ValueError("approve(name, value=...) edits one proposal: give one name")
            self.edit(names, value)
        chosen = self._pending(names)
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
        self._mark_row(applied, "approved", decided_by)
        self._notify("approve")
        broken = [
            p
            for p in chosen
            if not p.valid
            and p.status == "pending"
            and p.is_code
            and p.code is Refusal.CODE_LOAD
        ]
        if names is not None and broken:
            raise ValueError(f"cannot approve {broken[0].name!r}: {broken[0].reason}")
        return applied

    @_serialized
    def reject(
        self,
        names: str | Iterable[str] | None = None,
        decided_by: str = "human",
        candidate: int | None = None,
    ) -> list[Proposal]:
        """Reject pending proposals (all when ``names`` is None; only that candidate's with
        ``candidate``)."""
        chosen = [p for p in self._pending(names) if candidate is None or p.candidate == candidate]
        for p in chosen:
            p.status, p.decided_by = "rejected", decided_by
        self._mark_row([p for p in chosen if p.parameter is not None], "rejected", decided_by)
        self._notify("reject")
        return chosen

    @_serialized
    def edit(self, name: str, value: Any, candidate: int | None = None) -> Proposal:
        """Replace the proposal for ``name`` (of ``candidate``, when several) with ``value``,
        checked like any suggestion."""
        mine = [p for p in self._pending(name) if candidate is None or p.candidate == candidate]
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

    @_serialized
    def step(self, auto_approve: bool = False, approve_code: bool = False) -> list[Proposal]:
        """Propose; with ``auto_approve`` also apply what :func:`trace_nb.optim.policy.decide`
        allows: every valid value proposal, code proposals only with ``approve_code=True``
        (the one opt-in for unreviewed code), and of several candidates the first."""
        if approve_code and not auto_approve:
            raise ValueError(
                "step(approve_code=True) only means something with auto_approve=True: pass "
                "both to apply code unreviewed, or neither and approve the code yourself"
            )
        proposals = self.propose()
        if auto_approve:
            self.apply_decision(decide(proposals, approve_code=approve_code), "auto", approve_code)
        return proposals

    def _apply(self, props: list[Proposal], decided_by: str, approve_code: bool) -> list[Proposal]:
        """Apply through the optimizer (one approval rule), then record each new value: the
        notebook's function, and a version in the lineage."""
        applied = self.optimizer.apply(props, decided_by=decided_by, approve_code=approve_code)
        for p in applied:
            self._after_apply(p)
            self.lineage.accept(
                self.display_name(p.parameter),
                p.new,
                source="edit" if p.edited else "proposal",
                step=len(self.rows) - 1 if self.rows else None,
                reasoning=p.reasoning,
                decided_by=decided_by,
            )
        return applied

    def _after_apply(self, prop: Proposal) -> None:
        # An approved code proposal redefines the function in the user's namespace.
        for fname, b in self._code.items():
            if b.parameter is prop.parameter and self.shell is not None:
                self.shell.user_ns[fname] = b.function

    def _mark_row(self, props: list[Proposal], column: str, who: str) -> None:
        if not self.rows or not props:
            return
        row = self.rows[-1]
        names = [
            self.display_name(p.parameter) if p.parameter is not None else p.name for p in props
        ]
        row[column] = ", ".join(filter(None, [row[column], *names]))
        row["decided_by"] = who
