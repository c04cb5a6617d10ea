"""Where a run's steps go: counters per run, from each step's replies and proposals.

* ``steps_run``: optimizer steps made; ``wasted_steps``: steps that applied nothing (the
  reply suggested no change, repeated a value, or every suggestion was refused and not
  repaired); ``kept_steps``: steps that applied nothing because every valid candidate
  scored below the current values on the step's examples (best of k keeps the values; not
  counted as wasted: the model gave usable, new values and they were measured worse).
* ``repairs``: repair turns (extra calls within a step, :mod:`trace_nb.optim.repair`);
  ``repaired_steps``: steps that applied a value a repair turn brought.
* ``no_change_replies``: replies that suggested no change; ``identical_replies``: replies
  byte-identical to the run's previous reply; ``unwrapped``: string values that came in
  their repr's quotes and were used without them.
* ``refusals``: refused proposals by reason code (:class:`trace_nb.optim.refusal.Refusal`).
* ``first_prompt_tokens`` / ``repair_prompt_tokens`` / ``repair_completion_tokens``: prompt
  tokens of the steps' first calls, and the tokens of the repair turns, counted apart.

The reference method has no step log of trace_nb's kind: its one reply per step is read
from its proposals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..optim.refusal import Refusal

COUNTERS = [
    "steps_run",
    "wasted_steps",
    "kept_steps",
    "repairs",
    "repaired_steps",
    "no_change_replies",
    "identical_replies",
    "unwrapped",
    "first_prompt_tokens",
    "repair_prompt_tokens",
    "repair_completion_tokens",
]

# Results made before proposals carried a code (the "before" tables) name their two
# commonest refusals by these fixed texts only.
_LEGACY = {
    "the suggested value is the same as the current one": Refusal.SAME_VALUE,
    "the reply suggests no changes": Refusal.NO_CHANGE,
}


def code_of(p: Any) -> str | None:
    """The refusal code of an invalid proposal (``"other"`` when it has none)."""
    if getattr(p, "valid", True):
        return None
    code = getattr(p, "code", None)
    if code is None:
        code = _LEGACY.get(p.reason)
    return code.value if code is not None else "other"


def empty() -> dict[str, Any]:
    return {**dict.fromkeys(COUNTERS, 0), "refusals": {}}


def _calls(optimizer: Any, start: int, proposals: list) -> list[tuple[str, int, Any, list]]:
    """(reply, attempt, usage, proposals) of each call of this step."""
    log = getattr(optimizer, "log", None)
    entries = log[start:] if isinstance(log, list) else []
    entries = [e for e in entries if hasattr(e, "reply") and hasattr(e, "proposals")]
    if entries:
        return [(e.reply, getattr(e, "attempt", 1), e.usage, e.proposals) for e in entries]
    raw = next((p.raw for p in proposals if getattr(p, "raw", "")), "")
    return [(raw, 1, None, proposals)]


def log_length(optimizer: Any) -> int:
    log = getattr(optimizer, "log", None)
    return len(log) if isinstance(log, list) else 0


def count_step(
    counts: dict[str, Any],
    optimizer: Any,
    start: int,
    proposals: Iterable[Any],
    previous: list[str],
) -> None:
    """Add one step to ``counts``; ``start`` is the optimizer's log length before the step,
    ``previous`` holds the run's last reply (updated here)."""
    proposals = list(proposals)
    counts["steps_run"] += 1
    applied = [p for p in proposals if p.status == "approved"]
    # Kept: candidates were measured and none won (a step whose chosen candidate then failed
    # to load has a winner, and is wasted, not kept).
    candidates = [p for p in proposals if getattr(p, "candidate", None) is not None]
    kept = (
        not applied
        and any(p.valid for p in candidates)
        and all(p.status == "not_chosen" for p in candidates)
    )
    counts["kept_steps"] += kept
    counts["wasted_steps"] += not applied and not kept
    counts["repaired_steps"] += any(getattr(p, "attempt", 1) > 1 for p in applied)
    refusals = Counter(counts["refusals"])
    for reply, attempt, usage, call_proposals in _calls(optimizer, start, proposals):
        if attempt > 1:
            counts["repairs"] += 1
            counts["repair_prompt_tokens"] += getattr(usage, "prompt_tokens", 0) or 0
            counts["repair_completion_tokens"] += getattr(usage, "completion_tokens", 0) or 0
        else:
            counts["first_prompt_tokens"] += getattr(usage, "prompt_tokens", 0) or 0
        codes = [code_of(p) for p in call_proposals]
        counts["no_change_replies"] += Refusal.NO_CHANGE.value in codes
        counts["unwrapped"] += sum(bool(getattr(p, "unwrapped", False)) for p in call_proposals)
        refusals.update(c for c in codes if c is not None)
        if previous and reply == previous[-1]:
            counts["identical_replies"] += 1
        previous[:] = [reply]
    for p in proposals:  # a summary refusal is not in any call's proposals
        if getattr(p, "code", None) is Refusal.REPAIR_FAILED:
            refusals[Refusal.REPAIR_FAILED.value] += 1
    counts["refusals"] = dict(sorted(refusals.items()))


__all__ = ["COUNTERS", "code_of", "count_step", "empty", "log_length"]
