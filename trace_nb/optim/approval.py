"""The one rule for applying LLM code without a human: only with ``approve_code=True``.

Every path that applies proposals on its own (``Optimizer.step``, ``Optimizer.apply`` with
``decided_by="auto"``, ``TraceSession.step(auto_approve=True)``, ``%trace_step --auto``,
the panel's Auto, ``trace_nb.train``) holds code proposals for review unless the caller
passes ``approve_code=True`` (the panel: the "auto-approve code" box); which proposals an
automatic step applies, holds or leaves out is :func:`trace_nb.optim.policy.decide`'s call.
A human's decision (``decided_by="human"``) is the approval. Value proposals (text, numbers...) are not code:
they never run.

Before any code proposal is applied it must load: compile, run its definition (imports
included) and define the function. If not, it becomes invalid with the reason and nothing
changes.
"""

from __future__ import annotations

from typing import Any

from .proposal import Proposal
from .refusal import Refusal

OPT_IN = "approve_code"


def needs_review(prop: Proposal, decided_by: str, approve_code: bool) -> bool:
    """True when ``prop`` is code that nobody approved: held, not applied."""
    return prop.is_code and decided_by != "human" and not approve_code


def check_loads(prop: Proposal) -> bool:
    """Load a code proposal's source without adopting it; on failure mark the proposal
    invalid with the reason and return False. Other proposals pass."""
    loader: Any = getattr(prop.parameter, "loader", None) if prop.is_code else None
    if loader is None:
        return True
    try:
        loader(prop.new)
    except Exception as e:  # noqa: BLE001 - any failure to load is the reason to refuse
        prop.valid = False
        prop.reason = f"the code cannot be applied: {e}"
        prop.code = Refusal.CODE_LOAD
        return False
    return True
