"""No stalled step: a repair turn within the step, and what earlier attempts tried.

When every proposal of a reply is unusable (refused, the current value again, no change,
nothing readable), :func:`ask_with_repair` asks again in the same conversation (but a
reply that keeps the values is accepted when every feedback scored 1, i.e. the outputs are
right, :func:`outputs_right`): the
model's reply, then a short follow-up that quotes each refused suggestion with its reason
and says what a valid suggestion for each variable looks like. At most ``repair`` extra
calls; each is logged as its own :class:`~.base.StepLog` (``attempt`` 2, 3...) and counted
in the LLM's usage. When every attempt is refused the step ends with one summary refusal
(:attr:`~.refusal.Refusal.REPAIR_FAILED`, "2 attempts refused: ...") and nothing usable.
When a repair call itself fails (the server is down, an error after retries) the step
keeps the refused reply it has, as without repair, and the failure is logged.

:class:`Attempts` remembers what the steps since the values last changed suggested and how
each ended, so the next prompt records it: after a step that changed nothing the prompt is
never the same as before (which also keeps the response cache from serving the same reply
to a repeated Propose).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..graph import ParameterNode
from ..text import short_repr
from .proposal import Proposal, proposals_from_reply
from .refusal import Refusal
from .reply import ParsedReply, parse_reply
from .states import ProposalStatus

#: Characters of a refused value quoted back to the model.
QUOTE_CHARS = 300
#: Variables whose valid form the repair message spells out (the rest are counted).
MAX_FORMS = 20
#: Attempts kept in the next prompt (the oldest are dropped; the count still grows).
MAX_RECORDED = 4

ATTEMPTS_HEADER = "#Earlier attempts"

_log = logging.getLogger(__name__)


def stalled(proposals: Iterable[Proposal]) -> bool:
    """True when a reply gave nothing usable: no proposal is valid."""
    proposals = list(proposals)
    return bool(proposals) and not any(p.valid for p in proposals)


#: Refusals that are the right answer when the outputs are already right.
_KEEPS = frozenset({Refusal.SAME_VALUE, Refusal.NO_CHANGE})


def outputs_right(params: Iterable[ParameterNode]) -> bool:
    """True when every feedback the parameters received carries a score of 1 or more (the
    scale trace_nb's trainers and graders use: 1 is right). Text-only feedback never
    counts as right: the optimizer cannot judge it."""
    records = [f for p in params for f in p.feedback]
    return bool(records) and all(f.score is not None and f.score >= 1 for f in records)


def needs_repair(proposals: list[Proposal], right: bool) -> bool:
    """A stalled reply, unless it keeps the values of outputs that are already right."""
    if not stalled(proposals):
        return False
    return not (right and all(p.code in _KEEPS for p in proposals))


def value_form(param: ParameterNode) -> str:
    """What a valid suggestion for ``param`` looks like, in words for the model."""
    value = param.peek()
    if param.is_code:
        head = _definition_head(value, param.name)
        return (
            f"the complete source code of the function as one JSON string starting with "
            f"`{head}`, with its whole body"
        )
    # Numbers are described by the value to move away from, never by an example value: a
    # small model copies an example ("x0": 2.5 after "a number, e.g. 2.5").
    if isinstance(value, bool):
        return f"true or false (not {json.dumps(value)}, its current value)"
    if isinstance(value, int):
        return f"a whole number other than its current value {value}"
    if isinstance(value, float):
        return f"a number other than its current value {value!r}"
    if isinstance(value, str):
        return "the new text itself as a JSON string, with no quotes or label inside it"
    if isinstance(value, list | tuple):
        return "a JSON list"
    if isinstance(value, dict):
        return "a JSON object"
    return f"a value of type {type(value).__name__}"


def _definition_head(source: Any, fallback: str) -> str:
    import ast

    try:
        tree = ast.parse(str(source).strip("\n"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
                return f"{prefix} {node.name}({ast.unparse(node.args)}):"
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    return f"def {fallback}(...):"


def _quote(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= QUOTE_CHARS else value[: QUOTE_CHARS - 1] + "…"
        return json.dumps(text, ensure_ascii=False)
    return short_repr(value, QUOTE_CHARS)


def repair_message(proposals: list[Proposal], params: dict[str, ParameterNode]) -> str:
    """The follow-up after an unusable reply: what was refused, why, and what to send."""
    lines = ["None of the suggestions in your answer can be used:"]
    for p in proposals:
        if p.valid:
            continue
        if p.name is None:
            lines.append(f"- your answer: {p.reason}")
        else:
            lines.append(f"- {p.name} = {_quote(p.new)}: {p.reason}")
    lines.append("")
    lines.append(
        "The feedback says the outputs are not right yet, so change at least one variable to "
        "a new value that is different from its current one. A valid suggestion gives, for:"
    )
    reached = {n: p for n, p in params.items() if p.feedback} or params  # those in #Variables
    for name, param in list(reached.items())[:MAX_FORMS]:
        lines.append(f"- {name}: {value_form(param)}")
    if len(reached) > MAX_FORMS:
        lines.append(f"- (and {len(reached) - MAX_FORMS} more variables, as in #Variables)")
    lines.append(
        'Answer with one JSON object and nothing else: {"reasoning": "...", "answer": "", '
        '"suggestion": {"<variable name>": <new value>}}'
    )
    return "\n".join(lines)


def summary_refusal(attempts: list[list[Proposal]], last: ParsedReply, raw: str) -> Proposal:
    """One refusal for a step whose every attempt was refused: ``N attempts refused: ...``."""
    reasons: list[str] = []
    for proposals in attempts:
        for p in proposals:
            if p.valid:
                continue
            text = f"{p.name}: {p.reason}" if p.name else str(p.reason)
            if text not in reasons:
                reasons.append(text)
    shown = "; ".join(short_repr_text(r, 160) for r in reasons[:4])
    more = f"; and {len(reasons) - 4} more" if len(reasons) > 4 else ""
    return Proposal.refusal(
        last.reasoning,
        raw,
        f"{len(attempts)} attempts refused: {shown}{more}",
        Refusal.REPAIR_FAILED,
    )


def short_repr_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Answered:
    """What :func:`ask_with_repair` got: the step's proposals and the calls it made."""

    proposals: list[Proposal]
    logs: list[Any]
    parsed: ParsedReply
    attempts: list[list[Proposal]] = field(default_factory=list)


def ask_with_repair(
    opt: Any,
    messages: list[dict],
    params: dict[str, ParameterNode],
    problem: Any,
    repair: int,
    temperature: float | None = None,
) -> Answered:
    """Ask ``opt``'s LLM, and up to ``repair`` more times in the same conversation while the
    reply gives nothing usable (:func:`stalled`).

    Returns the usable proposals of the first attempt that had any, else a summary refusal
    followed by the last attempt's refusals. Every call is in ``logs`` (not yet in
    ``opt.log``: the caller appends them, in order).
    """
    from .base import StepLog

    again = repair_temperature(opt, temperature)
    conversation = list(messages)
    right = outputs_right(params.values())
    logs: list[Any] = []
    attempts: list[list[Proposal]] = []
    names = list(params)
    proposals: list[Proposal] = []
    parsed = ParsedReply()
    while True:
        number = len(attempts) + 1
        if number == 1:
            text, usage, mode = opt._ask(conversation, opt.max_tokens, temperature=temperature)
        else:
            try:
                text, usage, mode = opt._ask(conversation, opt.max_tokens, temperature=again)
            except Exception as e:  # noqa: BLE001 - the step keeps what it has
                _log.warning("the repair call failed; keeping the refused reply: %s", e)
                return Answered(proposals, logs, parsed, attempts)
        parsed = parse_reply(text, names)
        proposals = proposals_from_reply(parsed, params, text)
        for p in proposals:
            p.attempt = number
        logs.append(StepLog(conversation, text, proposals, usage, mode, problem, attempt=number))
        attempts.append(proposals)
        if not needs_repair(proposals, right) or len(attempts) > repair:
            break
        conversation = [
            *conversation,
            {"role": "assistant", "content": text},
            {"role": "user", "content": repair_message(proposals, params)},
        ]
    if len(attempts) > 1 and needs_repair(proposals, right):
        proposals = [summary_refusal(attempts, parsed, text), *proposals]
        proposals[0].attempt = len(attempts)
    return Answered(proposals, logs, parsed, attempts)


def repair_temperature(opt: Any, temperature: float | None) -> float | None:
    """The temperature of ``opt``'s repair turns: its ``repair_temperature`` when the step's
    own (``temperature``, else the LLM's default) is lower, else the step's."""
    from .llm_call import takes_temperature

    floor = getattr(opt, "repair_temperature", None)
    if floor is None or not takes_temperature(opt.llm):
        return temperature
    own = temperature if temperature is not None else getattr(opt.llm, "temperature", None)
    return max(float(own or 0.0), float(floor))


def _fingerprint(params: Iterable[ParameterNode]) -> str:
    parts = []
    for p in params:
        try:
            parts.append(f"{p.name}={p.peek()!r}")
        except Exception:  # noqa: BLE001 - an odd repr must not stop a step
            parts.append(f"{p.name}=<{type(p.peek()).__name__}@{id(p.peek())}>")
    return "\n".join(parts)


class Attempts:
    """What the steps since the variables last changed suggested, and how each ended.

    :meth:`note` records a step's attempts (after the proposals are made);
    :meth:`section` renders them for the next prompt, or "" when the variables changed
    since (then the prompt differs anyway, and the record starts over). An entry is
    rendered when the prompt is built, so it tells how the proposal ended: refused (why),
    scored below the current values, rejected by a reviewer, or not applied.
    """

    def __init__(self) -> None:
        self.entries: list[Proposal] = []
        self.total = 0
        self._values: str | None = None

    def _current(self, params: Iterable[ParameterNode]) -> bool:
        return self._values is not None and self._values == _fingerprint(params)

    def section(self, params: Iterable[ParameterNode]) -> str:
        params = list(params)
        if not self.entries or not self._current(params):
            return ""
        shown = self.entries[-MAX_RECORDED:]
        left = self.total - len(shown)
        # An applied suggestion whose values were restored since: the values did change.
        undone = any(p.status == ProposalStatus.APPROVED for p in shown)
        head = (
            f"{ATTEMPTS_HEADER}\nSince the variables last changed, {self.total} suggestion(s) "
            + (
                "were made and none is in effect now"
                if undone
                else "were made and none changed them"
            )
            + (f" ({left} older not shown)" if left else "")
            + ". Do not repeat them; suggest something different:"
        )
        return head + "\n" + "\n".join(_entry(p) for p in shown)

    def note(self, params: Iterable[ParameterNode], attempts: list[list[Proposal]]) -> None:
        params = list(params)
        if not self._current(params):
            self.entries, self.total = [], 0
        self._values = _fingerprint(params)
        for proposals in attempts:
            for p in proposals:
                self.total += 1
                self.entries.append(p)
        del self.entries[:-MAX_RECORDED]  # only the last few are ever shown

    def clear(self) -> None:
        self.entries, self.total, self._values = [], 0, None


def _entry(p: Proposal) -> str:
    what = "the reply" if p.name is None else f"{p.name} = {_quote(p.new)}"
    if not p.valid:
        return f"- {what}: refused ({short_repr_text(str(p.reason), 200)})"
    if p.baseline is not None and p.score is None:
        return f"- {what}: valid, but the program failed on the examples with it, so it was not applied"
    if p.score is not None and p.baseline is not None and p.score < p.baseline:
        return (
            f"- {what}: valid, but it scored {p.score:.2f} on the examples where the "
            f"current values scored {p.baseline:.2f}, so it was not applied"
        )
    if p.status == ProposalStatus.APPROVED:  # then a restore brought the values back
        return f"- {what}: applied, then undone (the earlier values were restored)"
    if p.status == ProposalStatus.REJECTED:
        return f"- {what}: valid, rejected by the reviewer"
    return f"- {what}: valid, not applied"


__all__ = [
    "ATTEMPTS_HEADER",
    "Answered",
    "Attempts",
    "ask_with_repair",
    "repair_message",
    "stalled",
    "summary_refusal",
    "value_form",
]
