"""Review gates for long runs: a rule decides which proposals wait for a human.

A rule is a plain callable ``rule(proposal, context) -> bool`` (True: a human decides) or
the name of a preset; a list of rules waits when any of them says so. Code proposals also
wait unless the run has the one opt-in ``approve_code``, and a rule never sees them then:
:func:`trace_nb.optim.policy.decide` holds them first, so no rule previews unapproved code.

Presets:

``"none"``        nothing waits (but code without ``approve_code``)
``"code"``        every code change waits
``"regression"``  a proposal waits when its preview shows any regression (the panel runs the
                  cell on the session's examples, ``train`` the minibatch); the same as
                  ``gate="no_regression"``
``"diff>N"``      a change of more than N lines waits
``"every:K"``     every K-th round waits for a human entirely
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GateContext", "PRESETS", "Regressions", "resolve"]


@dataclass
class GateContext:
    """What a rule may look at besides the proposal: the round (1-based) and a way to
    preview the proposal (anything with a ``regressions`` count), run once and kept on it."""

    round: int
    previewer: Callable[[Any], Any] | None = None

    def preview(self, proposal: Any) -> Any:
        result = getattr(proposal, "preview", None)
        if result is None:
            if self.previewer is None:
                raise ValueError(
                    "this run cannot preview proposals, so the 'regression' rule "
                    "does not apply here"
                )
            result = self.previewer(proposal)
            proposal.preview = result
        return result


Rule = Callable[[Any, GateContext], bool]


@dataclass
class Regressions:
    """A preview's verdict when nothing more is known: how many examples got worse."""

    regressions: int
    mean_after: float | None = None


def _changed_lines(p: Any) -> int:
    old = p.old if isinstance(p.old, str) else repr(p.old)
    new = p.new if isinstance(p.new, str) else repr(p.new)
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    return sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))


PRESETS: dict[str, Rule] = {
    "none": lambda p, ctx: False,
    "code": lambda p, ctx: p.is_code,
    "regression": lambda p, ctx: ctx.preview(p).regressions > 0,
}


def resolve(rule: str | Rule | Sequence[str | Rule] | None) -> Rule:
    """Turn a preset name, a callable, or a list of them into one rule."""
    if rule is None:
        return PRESETS["none"]
    if callable(rule):
        return rule
    if isinstance(rule, str):
        if rule in PRESETS:
            return PRESETS[rule]
        if rule == "no_regression":
            return PRESETS["regression"]
        m = re.fullmatch(r"diff>(\d+)", rule.replace(" ", ""))
        if m:
            limit = int(m.group(1))
            return lambda p, ctx: _changed_lines(p) > limit
        m = re.fullmatch(r"every:(\d+)", rule.replace(" ", ""))
        if m and int(m.group(1)) > 0:
            k = int(m.group(1))
            return lambda p, ctx: ctx.round % k == 0
        raise ValueError(f"unknown review rule {rule!r}: {_VALID_RULES}")
    if not isinstance(rule, list | tuple):
        raise TypeError(
            f"review rule {rule!r} ({type(rule).__name__}) is not a rule: {_VALID_RULES}"
        )
    rules = [resolve(r) for r in rule]
    return lambda p, ctx: any(r(p, ctx) for r in rules)


_VALID_RULES = (
    "use a callable(proposal, context) -> bool, one of 'none', 'code', 'regression', "
    "'no_regression', 'diff>N', 'every:K', or a list of those"
)
