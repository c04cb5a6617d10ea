"""Placeholders in a text parameter (``{topic}``, ``{{ question }}``) that an LLM's new
text must keep.

A prompt template's placeholders are where the program puts its inputs. Small models
rewrite a template from the filled-in prompt they see in #Others (``"Write a short
description of a mountain hut."`` for ``"... of {topic}."``), so the new text answers one
input and ignores the rest. An LLM's suggestion that drops a placeholder of the current
text is refused (:attr:`~.refusal.Refusal.PLACEHOLDER_LOST`) and goes through the repair
turn; a person's edit is taken as typed.
"""

from __future__ import annotations

import re

# str.format fields ("{topic}", not "{0}" or "{}") and Jinja-style "{{ name }}"
_FIELD = re.compile(r"\{([A-Za-z_]\w*)\}")
_JINJA = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


def fields(text: str) -> list[str]:
    """The placeholder names in ``text``, in order of first appearance."""
    found = [m.group(1) for m in _FIELD.finditer(text)]
    found += [m.group(1) for m in _JINJA.finditer(text)]
    return list(dict.fromkeys(found))


def lost(old: str, new: str) -> list[str]:
    """The placeholders of ``old`` that ``new`` no longer has."""
    kept = set(fields(new))
    return [name for name in fields(old) if name not in kept]


def shown(old: str, names: list[str]) -> str:
    """``names`` written as ``old`` writes them (``{topic}`` or ``{{ topic }}``)."""
    out = []
    for name in names:
        m = re.search(r"\{\{\s*" + re.escape(name) + r"\s*\}\}", old)
        out.append(m.group(0) if m and f"{{{name}}}" not in old else f"{{{name}}}")
    return ", ".join(out)


def reason(old: str, names: list[str]) -> str:
    """Why a new text that drops ``names`` is refused, and what to send instead."""
    marks = shown(old, names)
    return (
        f"the new text drops {marks}, which the current text has: the program puts its "
        f"input there, so a new text must keep {marks} written exactly like that "
        "(rewrite the instructions around it, not a filled-in example)"
    )


__all__ = ["fields", "lost", "reason", "shown"]
