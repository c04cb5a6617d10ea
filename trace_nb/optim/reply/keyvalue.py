"""Reading ``name: value`` pairs for the known names, and reasoning/answer from text
that did not parse whole."""

from __future__ import annotations

import re
from typing import Any

from ..jsonish import fix_escapes, loads, pythonish_to_json
from .model import Names, ParsedReply, as_text
from .xml import tag, xml_text

_REASONING_RE = re.compile(r'"reasoning"\s*:\s*("(?:[^"\\]|\\.)*")', re.S)
_ANSWER_RE = re.compile(r'"answer"\s*:\s*("(?:[^"\\]|\\.)*")', re.S)


# ------------------------------------------------------------------ key-value pairs

_KV_VALUE = (
    r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
    r"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?!\w)"
    r"|(?:true|false|null|True|False|None)\b)"
)
_KV_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False}


def _kv_decode(token: str) -> Any:
    if token[0] == '"':
        try:
            return loads(token, strict_controls=False)
        except ValueError:
            return loads('"' + fix_escapes(token[1:-1]) + '"', strict_controls=False)
    if token[0] == "'":
        return loads(pythonish_to_json(token)[0], strict_controls=False)
    if token in _KV_CONSTANTS or token == "None":
        return _KV_CONSTANTS.get(token)
    return loads(token)


_KV_PAIR = re.compile(
    r"""(?:"([^"\n]{1,200})"|'([^'\n]{1,200})'|`([^`\n]{1,200})`"""
    r"|^[ \t]*(?:[-*][ \t]+)?([A-Za-z_][\w.:-]{0,200}))[ \t]*[:=][ \t]*" + _KV_VALUE,
    re.M,
)


def parse_key_values(text: str, names: Names) -> ParsedReply | None:
    """``"name": value`` pairs for known names; one linear pass whatever the number of names."""
    found: dict[str, Any] = {}
    for match in _KV_PAIR.finditer(text):
        name = next(g for g in match.groups()[:4] if g is not None)
        if name not in names.set:
            continue
        # The last mention wins: models often restate the old value before the new one.
        try:
            found[name] = _kv_decode(match.group(5))
        except (ValueError, SyntaxError, RecursionError):
            continue
    if not found:
        return None
    reply = ParsedReply(suggestion=found, format="key-value")
    recover_meta(text, reply)
    return reply


def recover_meta(text: str, reply: ParsedReply) -> None:
    """Fill reasoning/answer from ``"reasoning": "..."`` in text that did not parse whole."""
    for attr, pattern in (("reasoning", _REASONING_RE), ("answer", _ANSWER_RE)):
        if getattr(reply, attr):
            continue
        match = pattern.search(text)
        if match:
            try:
                setattr(reply, attr, as_text(loads(match.group(1), strict_controls=False)))
            except ValueError:
                pass
        else:
            tagged = tag(text, attr)
            if tagged is not None:
                setattr(reply, attr, xml_text(tagged))
