"""The states of a proposal, as enums: its status and who decided it.

Both are ``str``-valued (``ProposalStatus.PENDING == "pending"``), so a saved file, a
history row or a comparison with the old strings keeps working; :class:`Typed` turns the
plain strings an old file or caller gives back into the enum on assignment. Why a
proposal is *invalid* is :class:`~trace_nb.optim.refusal.Refusal`; why an automatic step
*holds* one for a human is :class:`~trace_nb.optim.policy.HoldReason`.
"""

from __future__ import annotations

import enum
from typing import Any, Generic, TypeVar

__all__ = ["DecisionSource", "ProposalStatus", "Typed", "member"]


class _StrState(str, enum.Enum):
    """A ``str`` enum that prints as its value (``enum.StrEnum`` of Python 3.11), and
    whose repr is the value's (a proposal's repr reads ``status='pending'``)."""

    __str__ = str.__str__
    __format__ = str.__format__
    __repr__ = str.__repr__


class ProposalStatus(_StrState):
    """Where a proposal is in its review (``Proposal.status``)."""

    PENDING = "pending"  #: waiting for a decision
    APPROVED = "approved"  #: applied to its parameter
    REJECTED = "rejected"  #: refused; nothing changed
    NOT_CHOSEN = "not_chosen"  #: another candidate of the same step was applied


class DecisionSource(_StrState):
    """Who decided a proposal (``Proposal.decided_by``)."""

    HUMAN = "human"  #: a person: the panel, or a call such as ``approve(...)``
    AUTO = "auto"  #: an automatic step (Auto, ``step(auto_approve=True)``, training)


E = TypeVar("E", bound=enum.Enum)


def member(kind: type[E], value: Any) -> E:
    """``value`` as a member of ``kind`` (the member itself, or its value: ``"human"``);
    a value ``kind`` does not have is a ValueError that lists the ones it has. Callers
    that change state check a ``decided_by`` with this first, so a bad one changes
    nothing."""
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(repr(m.value) for m in kind)
        raise ValueError(f"{value!r} is not a {kind.__name__} (one of {known})") from None


class Typed(Generic[E]):
    """A dataclass field that holds an enum member and turns a value into one when set:
    ``proposal.status = "approved"`` stores ``ProposalStatus.APPROVED``; a value the enum
    does not have is a ValueError that lists the ones it has. With ``optional=True`` None
    is kept as None."""

    def __init__(self, kind: type[E], default: E | None, *, optional: bool = False):
        self.kind, self.default, self.optional = kind, default, optional

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_state_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self.default  # the dataclass reads the field's default here
        return getattr(obj, self.slot, self.default)

    def __set__(self, obj: Any, value: Any) -> None:
        if value is None and self.optional:
            setattr(obj, self.slot, None)
            return
        setattr(obj, self.slot, member(self.kind, value))
