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

# str.format fields ("{topic}", "{score:.2f}", not "{0}", "{}" or an escaped "{{x}}"), and
# Jinja-style "{{ name }}". A LaTeX group ("\\boxed{answer}", not "\\n{x}") is matched to be
# skipped.
_FIELD = re.compile(r"(\\[A-Za-z]{2,})?(?<!\{)\{([A-Za-z_]\w*)(?:![rsa])?(?::[^{}\s]*)?\}(?!\})")
_JINJA = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


def _found(text: str) -> dict[tuple[str, str], str]:
    """``(name, style) -> how text first writes it``; style is ``"format"`` or ``"jinja"``:
    the program fills a placeholder only in the style it was written in."""
    found: dict[tuple[str, str], str] = {}
    for m in _FIELD.finditer(text):
        if not m.group(1):  # a LaTeX command's argument, not a field
            found.setdefault((m.group(2), "format"), m.group(0))
    for m in _JINJA.finditer(text):
        found.setdefault((m.group(1), "jinja"), m.group(0))
    return found


def fields(text: str) -> list[str]:
    """The placeholder names in ``text``, in order of first appearance."""
    return list(dict.fromkeys(name for name, _ in _found(text)))


def lost(old: str, new: str) -> list[str]:
    """The placeholders of ``old`` that ``new`` no longer has, written in the same style."""
    kept = _found(new)
    return list(dict.fromkeys(name for name, style in _found(old) if (name, style) not in kept))


def shown(old: str, names: list[str]) -> str:
    """``names`` written as ``old`` writes them (``{topic}`` or ``{{ topic }}``)."""
    found = _found(old)
    out = []
    for name in names:
        forms = [written for (n, _), written in found.items() if n == name]
        out.append(forms[0] if forms else f"{{{name}}}")
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
