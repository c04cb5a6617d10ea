"""Preview a proposal on examples before approving it: outputs and scores, before → after.

The cell runs twice per example, once with the current values and once with the proposed
value, and the ``--feedback`` function scores both. Nothing is kept: the parameter gets its
value back (even when a run fails), no history row is written, and the optimizer's state is
untouched. Examples come from ``session.examples`` (each one is put in the variable the cell
reads, ``example`` by default), else the cell runs once as it is (the last run's input).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..feedback import parse_feedback
from ..graph import Node
from ..optim.proposal import check
from ..optim.refusal import Refusal
from ..optim.states import ProposalStatus
from ..text import cut, short_repr
from .runner import RunnableSession
from .transform import RUNTIME

__all__ = ["Preview", "PreviewRow", "preview", "preview_proposal", "projected_runs"]


class PreviewedSession(RunnableSession, Protocol):
    """What a preview needs of a session, beyond running its cell: the compiled cell,
    the proposals on offer and the examples to run on (``examples`` is read with
    ``getattr``: a session may have none)."""

    compiled: Any

    @property
    def proposals(self) -> list: ...

    def trial_runs(self) -> Any: ...

    def display_name(self, node: Any) -> str: ...


@dataclass
class PreviewRow:
    """One example: output and score with the current value (before) and the proposed one."""

    example: str
    before: str
    after: str
    before_score: float | None
    after_score: float | None
    after_feedback: str = ""
    error: str = ""

    @property
    def regression(self) -> bool:
        """The proposed value scores lower here (or fails where the current one did not)."""
        if self.error:
            return True
        return (
            self.before_score is not None
            and self.after_score is not None
            and self.after_score < self.before_score
        )


@dataclass
class Preview:
    """The result of :func:`preview`, regressions first."""

    name: str
    value: Any
    rows: list[PreviewRow] = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0

    @property
    def regressions(self) -> int:
        return sum(r.regression for r in self.rows)

    @property
    def mean_before(self) -> float | None:
        return _mean([r.before_score for r in self.rows])

    @property
    def mean_after(self) -> float | None:
        return _mean([r.after_score for r in self.rows])

    def frame(self) -> Any:
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([{**vars(r), "regression": r.regression} for r in self.rows])


def _mean(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def projected_runs(session: Any) -> int:
    """How many times a preview runs the cell: twice per example."""
    examples = getattr(session, "examples", None) or [None]
    return 2 * len(examples)


def preview_proposal(
    session: PreviewedSession,
    name: str,
    value: Any = None,
    *,
    input: str = "example",
    candidate: int | None = None,
) -> Preview:
    """:func:`preview` of the pending proposal for ``name`` (candidate ``candidate``'s,
    when given; ``value`` in its place, when given); the result is also kept on the
    proposals it previews (``proposal.preview``)."""
    node = session.params.find(name, session.name)
    mine = [
        p
        for p in session.proposals
        if p.parameter is node
        and p.status == ProposalStatus.PENDING
        and (candidate is None or p.candidate == candidate)
    ]
    if value is None and candidate is not None:
        if not mine:
            raise KeyError(f"candidate {candidate} proposes nothing for {name!r}")
        if not mine[0].valid:  # never previewed: its code could run in the loader
            raise ValueError(
                f"candidate {candidate}'s proposal for {name!r} is invalid, so it is not "
                f"previewed: {mine[0].reason}"
            )
        value = mine[0].new
    result = preview(session, name, value, input=input)
    for p in mine:
        if value is None or p.new == value:
            p.preview = result
    return result


def preview(
    session: PreviewedSession, name: str, value: Any = None, *, input: str = "example"
) -> Preview:
    """Run the session's cell with the pending proposal for ``name`` (or ``value``) on the
    session's examples; see the module docstring. Regressions come first."""
    from .runner import execute

    if session.compiled is None or session.shell is None:
        raise RuntimeError(
            f"session {session.name!r} has no cell to run: run its %%trace cell first"
        )
    node = session.params.find(name, session.name)
    if value is None:
        pending = [
            p
            for p in session.proposals
            if p.parameter is node and p.status == ProposalStatus.PENDING
        ]
        if not pending:
            raise KeyError(f"there is no pending proposal for {name!r} to preview")
        if not pending[0].valid:
            raise ValueError(f"the proposal for {name!r} is invalid: {pending[0].reason}")
        value = pending[0].new
    elif node.is_code:  # code given here passes the proposal checks before it may load
        checked = check(node, value)
        if not checked.valid and checked.code is not Refusal.SAME_VALUE:
            raise ValueError(f"the code given for {name!r} is refused: {checked.reason}")
    if node.is_code and getattr(node, "loader", None) is not None:
        node.loader(value)  # code that does not load is refused before anything runs
    ns = session.shell.user_ns
    grade = ns.get(session.spec.feedback) if session.spec and session.spec.feedback else None
    examples = list(getattr(session, "examples", None) or [None])
    out = Preview(session.display_name(node), value)
    start = time.monotonic()
    # The runs rebind the cell's names: the notebook gets its own back. Only those names
    # (and the example's) are put back, so a cell the user runs meanwhile keeps its work.
    ours = set(session.compiled.binds) | {input, RUNTIME}
    saved_ns = {k: ns[k] for k in ours if k in ns}
    with session.trial_runs():  # a module the cell rebuilds is not adopted
        try:
            for example in examples:
                if example is not None:
                    ns[input] = example
                before = _run(execute, session, grade)
                with node.trial(value):
                    after = _run(execute, session, grade)
                out.runs += 2
                out.rows.append(
                    PreviewRow(
                        example="(the cell as it is)"
                        if example is None
                        else short_repr(example, 80),
                        before=before[0],
                        after=after[0],
                        before_score=before[1],
                        after_score=after[1],
                        after_feedback=after[2],
                        error=after[3] if not before[3] else "",
                    )
                )
        finally:
            for key in ours:
                if key not in saved_ns:
                    ns.pop(key, None)  # names the runs added
                elif ns.get(key, _GONE) is not saved_ns[key]:
                    ns[key] = saved_ns[key]  # names the runs rebound
    out.rows.sort(key=lambda r: (not r.regression, r.example))
    out.seconds = time.monotonic() - start
    return out


_GONE = object()


def _run(execute: Any, session: PreviewedSession, grade: Any) -> tuple[str, float | None, str, str]:
    """One run of the cell: (output preview, score, feedback text, error)."""
    try:
        value, _ = execute(session.shell, session, session.compiled)
    except Exception as e:  # noqa: BLE001 - a failing run is a result, shown as such
        said = cut(f"{type(e).__name__}: {e}", 300)
        return said, None, "", said
    data = value.peek() if isinstance(value, Node) else value
    score, text = None, ""
    if grade is not None:
        try:
            score, text = parse_feedback(grade(data))
        except Exception as e:  # noqa: BLE001
            text = f"the feedback function failed: {type(e).__name__}: {e}"
    return short_repr(data, 300), score, text or "", ""
