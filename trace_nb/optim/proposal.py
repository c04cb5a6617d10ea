"""Proposals: one suggested change to one parameter, checked before anything is applied."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import CoercionError
from ..graph import ParameterNode
from ..text import bounded_diff
from .coerce import coerce_value
from .refusal import Refusal
from .reply import ParsedReply
from .states import DecisionSource, ProposalStatus, Typed


@dataclass(eq=False)
class Proposal:
    """A suggested new value for one parameter.

    ``valid`` is False when the suggestion cannot be used (unknown name, wrong type, code
    that does not parse...); ``reason`` then says why, and the proposal cannot be applied.
    ``name`` is None for a problem with the whole reply (e.g. no JSON in it).
    ``status`` moves from ``pending`` to ``approved``/``rejected``; ``decided_by`` is
    ``human`` or ``auto``. ``code`` is the :class:`~.refusal.Refusal` of an invalid
    proposal. ``attempt`` numbers the call of the step it came from (1, or more after a
    repair turn, see :mod:`.repair`); ``unwrapped`` is True when the suggested text came in
    its repr's quotes and was used without them. ``score`` is the candidate's score on the
    step's examples when a scorer chose among candidates, and ``baseline`` the current
    values' score on the same examples (None when not measured).
    """

    name: str | None
    parameter: ParameterNode | None = field(repr=False)
    old: Any
    new: Any
    reasoning: str = ""
    raw: str = field(default="", repr=False)
    valid: bool = True
    reason: str | None = None
    status: ProposalStatus = Typed(ProposalStatus, ProposalStatus.PENDING)  # type: ignore[assignment]
    decided_by: DecisionSource | None = Typed(DecisionSource, None, optional=True)  # type: ignore[assignment]
    edited: bool = False
    candidate: int | None = None  # which of several alternative replies it came from
    code: Refusal | None = None  # why it is invalid, as a code
    attempt: int = 1  # which call of the step (2: after one repair turn)
    unwrapped: bool = False  # the LLM's text came in repr quotes, used without them
    score: float | None = None  # its candidate's score on the step's examples
    baseline: float | None = None  # the current values' score on the same examples

    @classmethod
    def refusal(
        cls, reasoning: str, raw: str, reason: str, code: Refusal = Refusal.UNREADABLE
    ) -> Proposal:
        """An invalid proposal about the whole reply (no parameter, no value)."""
        return cls(None, None, None, None, reasoning, raw, False, reason, code=code)

    @property
    def repaired(self) -> bool:
        """A usable proposal that came from a repair turn (attempt 2 or later)."""
        return self.valid and self.attempt > 1

    @property
    def is_code(self) -> bool:
        return bool(self.parameter is not None and self.parameter.is_code)

    def diff(self) -> str:
        """A unified diff of old -> new (text and code), or ``old -> new`` for other values."""
        if isinstance(self.old, str) and isinstance(self.new, str):
            return bounded_diff(self.old, self.new)  # linear: long lines are chunked
        return f"{_show(self.old)} -> {_show(self.new)}"

    def revalidate(self, value: Any) -> Proposal:
        """A copy of this proposal with ``value`` (a human edit), checked like any suggestion."""
        if self.parameter is None:
            raise ValueError("this proposal is not about a parameter and cannot be edited")
        new = check(self.parameter, value, self.reasoning, self.raw)
        new.edited = True
        return new


SAME_VALUE = "the suggested value is the same as the current one"
NO_CHANGES = "the reply suggests no changes"

#: More unknown names than this become one summary proposal instead of one each.
MAX_UNKNOWN_PROPOSALS = 5


def _listing(params: dict[str, ParameterNode]) -> str:
    names = list(params)
    shown = ", ".join(names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _unknown(parsed: ParsedReply, params: dict[str, ParameterNode], raw: str) -> list[Proposal]:
    """Invalid proposals for suggested names that are not parameters (bounded work)."""
    unknown = parsed.unknown
    if len(unknown) <= MAX_UNKNOWN_PROPOSALS:
        out = []
        for name, value in unknown.items():
            close = difflib.get_close_matches(str(name)[:200], list(params)[:1000], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(
                Proposal(
                    str(name),
                    None,
                    None,
                    value,
                    parsed.reasoning,
                    raw,
                    False,
                    f"there is no variable named {_cut(name)!r}{hint} "
                    f"(variables: {_listing(params)})",
                    code=Refusal.UNKNOWN_NAME,
                )
            )
        return out
    shown = ", ".join(repr(_cut(k, 40)) for k in list(unknown)[:10])
    return [
        Proposal.refusal(
            parsed.reasoning,
            raw,
            f"the reply names {len(unknown):,} variables that do not exist ({shown}"
            f"{', ...' if len(unknown) > 10 else ''}); they were ignored "
            f"(variables: {_listing(params)})",
            Refusal.UNKNOWN_NAME,
        )
    ]


def _cut(name: object, limit: int = 80) -> str:
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _same(new: Any, old: Any) -> bool:
    """Equal and of the same type; False when comparing fails (arrays, odd __eq__)."""
    try:
        return type(new) is type(old) and bool(new == old)
    except Exception:  # noqa: BLE001
        return False


# The prefix #Variables writes before a value: "(float) x=" or "(code) name:" (then a newline).
_SHOWN_PREFIX = re.compile(
    r"\A\s*\((?P<type>[A-Za-z_]\w*)\)[ \t]*(?:(?P<name>[A-Za-z_]\w*)[ \t]*[=:])?[ \t]*\n?"
)


def strip_shown_prefix(param: ParameterNode, value: Any) -> Any:
    """``value`` without a copied ``(type)`` / ``(type) name=`` prefix, else ``value`` itself.

    Small models copy the way #Variables shows a value into the value: ``"(str) def f(..."``
    or ``"(float) x=2.5"``. Only a label in parentheses followed by the value (and the
    parameter's own name, if any) is removed.
    """
    if not isinstance(value, str):
        return value
    match = _SHOWN_PREFIX.match(value)
    if match is None or (match.group("name") and match.group("name") != param.name):
        return value
    return value[match.end() :]


def unwrap_repr(param: ParameterNode, value: Any) -> Any:
    """The text inside ``value`` when it is the repr of a string, else ``value`` itself.

    Only for a text (non-code) parameter: a suggestion wrapped in a matching pair of quotes
    (``"'HELLO'"``, as the prompt shows a string) that Python reads as one string literal,
    when the current value is not itself wrapped in that quote.
    """
    if param.is_code or not isinstance(param.peek(), str) or not isinstance(value, str):
        return value
    text = value.strip()
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
        return value
    current = param.peek().strip()
    if current[:1] == text[0] and current[-1:] == text[0]:
        return value  # the value itself is quoted; keep the quotes
    try:
        import ast

        inner = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
    return inner if isinstance(inner, str) else value


def check(
    param: ParameterNode,
    value: Any,
    reasoning: str = "",
    raw: str = "",
    *,
    from_llm: bool = False,
) -> Proposal:
    """Coerce ``value`` for ``param``; an invalid value gives a proposal with the reason.

    A value that is invalid only because it starts with a copied type label
    (:func:`strip_shown_prefix`) is used without it. A string parameter accepts any text,
    so there only a copied label *with the parameter's name* (``"(str) name=..."``) goes.
    ``from_llm``: the value is an LLM's suggestion, so a text value in its repr's quotes is
    unwrapped (:func:`unwrap_repr`); a person's edit is taken as typed.
    """
    if from_llm:
        bare = unwrap_repr(param, value)
        if bare is not value:
            unwrapped = check(param, bare, reasoning, raw)
            unwrapped.unwrapped = True
            return unwrapped
    try:
        new = coerce_value(param.peek(), value, is_code=param.is_code)
    except CoercionError as e:
        bare = strip_shown_prefix(param, value)
        if bare is not value:
            retry = check(param, bare, reasoning, raw)
            if retry.valid or retry.code is Refusal.SAME_VALUE:
                return retry
        code = e.code or (Refusal.CODE_INVALID if param.is_code else Refusal.WRONG_TYPE)
        return Proposal(
            param.name, param, param.peek(), value, reasoning, raw, False, str(e), code=code
        )
    except Exception as e:  # noqa: BLE001 - a value that breaks the check is refused, not raised
        return Proposal(
            param.name,
            param,
            param.peek(),
            value,
            reasoning,
            raw,
            False,
            f"the value could not be checked ({type(e).__name__}: {str(e)[:200]})",
            code=Refusal.WRONG_TYPE,
        )
    if isinstance(new, str) and not param.is_code:
        match = _SHOWN_PREFIX.match(new)
        if match and match.group("name") == param.name:
            new = new[match.end() :]
    if _same(new, param.peek()):
        return Proposal(
            param.name,
            param,
            param.peek(),
            new,
            reasoning,
            raw,
            False,
            SAME_VALUE,
            code=Refusal.SAME_VALUE,
        )
    return Proposal(param.name, param, param.peek(), new, reasoning, raw)


def proposals_from_reply(
    parsed: ParsedReply, params: dict[str, ParameterNode], raw: str
) -> list[Proposal]:
    """Turn a parsed reply into proposals: one per suggested name, valid or not."""
    out: list[Proposal] = []
    if parsed.error and not parsed.suggestion:
        out.append(Proposal.refusal(parsed.reasoning, raw, parsed.error))
    for name, value in parsed.suggestion.items():
        out.append(check(params[name], value, parsed.reasoning, raw, from_llm=True))
    out += _unknown(parsed, params, raw)
    if not out:
        out.append(Proposal.refusal(parsed.reasoning, raw, NO_CHANGES, Refusal.NO_CHANGE))
    return out
