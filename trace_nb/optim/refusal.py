"""Why a proposal was not usable, as a code (the reason text is for people, this is for
counting and deciding): set where the proposal is refused, never derived from the text."""

from __future__ import annotations

import enum


class Refusal(str, enum.Enum):
    """Reason codes of invalid proposals (``Proposal.code``)."""

    SAME_VALUE = "same_value"  # the suggested value equals the current one
    NO_CHANGE = "no_change"  # the reply suggests no changes at all
    UNREADABLE = "unreadable"  # no suggestion could be read from the reply
    UNKNOWN_NAME = "unknown_name"  # a name that is not a variable
    WRONG_TYPE = "wrong_type"  # the value cannot be converted to the variable's type
    CODE_FORM = "code_form"  # a code suggestion that is not a definition of the function
    CODE_INVALID = "code_invalid"  # a definition that fails the code check (syntax, signature)
    CODE_LOAD = "code_load"  # checked code that does not load (import, missing name)
    REPAIR_FAILED = "repair_failed"  # every attempt of a step was refused (see repair.py)


#: Codes of a step that changed nothing because the model did not produce a usable value.
STALLED = frozenset(
    {
        Refusal.SAME_VALUE,
        Refusal.NO_CHANGE,
        Refusal.UNREADABLE,
        Refusal.UNKNOWN_NAME,
        Refusal.WRONG_TYPE,
        Refusal.CODE_FORM,
        Refusal.CODE_INVALID,
        Refusal.CODE_LOAD,
    }
)

__all__ = ["STALLED", "Refusal"]
