"""Interpreting one decoded JSON/Python value as a reply: where the suggestion is, and
how good a reading it is (a rank: lower is better)."""

from __future__ import annotations

import re
from typing import Any

from ...text import short_repr as _show
from ..jsonish import decode_all
from .model import (
    META_KEYS,
    PAIR_NAME_KEYS,
    PAIR_VALUE_KEYS,
    TERMINATE_ERROR,
    Names,
    ParsedReply,
    as_text,
    norm_key,
)

TERMINATE_RE = re.compile(r"\bTERMINATE\b")


def split(mapping: dict[Any, Any], names: Names) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a suggestion mapping into (known, unknown), exact keys winning over stripped."""
    known: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    pending = []
    for key, value in mapping.items():
        skey = key if isinstance(key, str) else str(key)
        if skey in names.set and skey not in known:
            known[skey] = value
        else:
            pending.append((skey, value))
    for skey, value in pending:
        norm = norm_key(skey)
        if norm in names.set and norm not in known:
            known[norm] = value
        else:
            unknown[skey] = value
    return known, unknown


def pairs_to_dict(items: list[Any]) -> dict[Any, Any] | None:
    """``[{"name": "x", "value": 1}, {"y": 2}]`` → ``{"x": 1, "y": 2}``; None if not that."""
    out: dict[Any, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            return None
        lowered = {(norm_key(k).lower() if isinstance(k, str) else k): k for k in item}
        name_key = next((lowered[k] for k in PAIR_NAME_KEYS if k in lowered), None)
        value_key = next((lowered[k] for k in PAIR_VALUE_KEYS if k in lowered), None)
        if name_key is not None and value_key is not None and isinstance(item[name_key], str):
            out[item[name_key]] = item[value_key]
        elif len(item) == 1:
            out.update(item)
        else:
            return None
    return out


# Ranks of a candidate reading: lower is better.
OK, BAD_SUGGESTION, META_ONLY, OTHER = 0, 1, 2, 3


def read_suggestion(value: Any, names: Names, base: ParsedReply) -> tuple[int, ParsedReply]:
    """Interpret the value of a ``suggestion`` key; ``base`` carries reasoning/answer."""
    example = names.example()
    if isinstance(value, str):
        inner = value.strip()
        if inner.upper() == "TERMINATE" or (not inner and TERMINATE_RE.search(base.answer)):
            base.error = TERMINATE_ERROR
            return BAD_SUGGESTION, base
        if inner.startswith(("{", "[")):  # a double-encoded object: "suggestion": "{\"x\": 5}"
            for obj, _fmt in decode_all(inner):
                if isinstance(obj, (dict, list)):
                    return read_suggestion(obj, names, base)
        base.error = (
            f"the reply's 'suggestion' is a string ({_show(value)}), not an object mapping "
            f"variable names to new values; expected JSON like {example}"
        )
        return BAD_SUGGESTION, base
    if isinstance(value, list):
        pairs = pairs_to_dict(value)
        if pairs is None:
            base.error = (
                "the reply's 'suggestion' is a list whose items are not "
                '{"name": ..., "value": ...} objects; expected JSON like ' + example
            )
            return BAD_SUGGESTION, base
        value = pairs
    if isinstance(value, dict):
        known, unknown = split(value, names)
        base.suggestion, base.unknown = known, unknown
        if unknown and not known:
            base.error = (
                "the suggestion names no trainable variable: it has "
                + ", ".join(_show(k, 40) for k in list(unknown)[:10])
                + f"; {names.listing()}"
            )
        return OK, base
    if value is None:
        if TERMINATE_RE.search(base.answer):
            base.error = TERMINATE_ERROR
        else:
            base.error = (
                "the reply's 'suggestion' is null; expected an object mapping variable names "
                f"to new values, like {example} (or {{}} for no changes)"
            )
        return BAD_SUGGESTION, base
    kind = type(value).__name__
    article = "an" if kind[:1] in "aeiou" else "a"
    base.error = (
        f"the reply's 'suggestion' is {article} {kind} ({_show(value)}), not an "
        f"object mapping variable names to new values; expected JSON like {example}"
    )
    return BAD_SUGGESTION, base


def interpret(obj: Any, names: Names, fmt: str, depth: int = 0) -> tuple[int, ParsedReply]:
    """Rank and read one decoded JSON/Python value found in the reply."""
    if isinstance(obj, dict):
        return interpret_dict(obj, names, fmt, depth)
    if isinstance(obj, list):
        best: tuple[int, ParsedReply] | None = None
        for item in obj[:20]:  # e.g. [{"reasoning": ..., "suggestion": {...}}]
            if isinstance(item, dict):
                found = interpret_dict(item, names, fmt, depth + 1)
                if found[0] == OK:
                    return found
                if best is None or found[0] < best[0]:
                    best = found
        if best is not None and best[0] < OTHER:
            return best
        pairs = pairs_to_dict(obj) if obj else None
        if pairs is not None:
            known, unknown = split(pairs, names)
            if known:
                return OK, ParsedReply(suggestion=known, unknown=unknown, format=fmt)
        return OTHER, ParsedReply(
            error=f"the reply is a JSON array, not an object; expected JSON like {names.example()}",
            format=fmt,
        )
    kind = {str: "string", bool: "boolean", type(None): "null"}.get(type(obj), "number")
    return OTHER, ParsedReply(
        error=f"the reply is a JSON {kind} ({_show(obj)}), not an object; "
        f"expected JSON like {names.example()}",
        format=fmt,
    )


def interpret_dict(
    obj: dict[Any, Any], names: Names, fmt: str, depth: int
) -> tuple[int, ParsedReply]:
    meta: dict[str, Any] = {}
    others: dict[Any, Any] = {}
    for key, value in obj.items():
        canon = META_KEYS.get(norm_key(key).lower()) if isinstance(key, str) else None
        if canon is not None and canon not in meta:
            meta[canon] = value
        else:
            others[key] = value
    base = ParsedReply(
        reasoning=as_text(meta.get("reasoning")), answer=as_text(meta.get("answer")), format=fmt
    )
    if "suggestion" in meta:
        return read_suggestion(meta["suggestion"], names, base)
    # A wrapper such as {"response": {"reasoning": ..., "suggestion": {...}}}.
    if depth < 3:
        for value in others.values():
            if isinstance(value, dict) and any(
                isinstance(k, str) and META_KEYS.get(norm_key(k).lower()) == "suggestion"
                for k in value
            ):
                found = interpret_dict(value, names, fmt, depth + 1)
                if found[0] == OK:
                    return found
    # Models often put the new values at the top level, next to the reasoning.
    known, _unknown = split(others, names)
    if known:
        base.suggestion = known
        return OK, base
    if meta:
        base.error = no_suggestion_error(base, names)
        return META_ONLY, base
    api_error = others.get("error")
    if api_error is not None and len(others) <= 3:
        message = api_error.get("message", api_error) if isinstance(api_error, dict) else api_error
        base.error = f"the reply is an API error, not a suggestion: {_show(as_text(message), 200)}"
        return OTHER, base
    keys = ", ".join(_show(str(k), 40) for k in list(others)[:10]) or "none"
    base.error = (
        f"the reply has no 'suggestion': its JSON object has the keys {keys} "
        f"(and {names.listing()}); expected JSON like {names.example()}"
    )
    return OTHER, base


def no_suggestion_error(base: ParsedReply, names: Names) -> str:
    if TERMINATE_RE.search(base.answer) or base.reasoning.rstrip(" .!*`\"'\n").endswith(
        "TERMINATE"
    ):
        return TERMINATE_ERROR
    return (
        "the reply has no 'suggestion' (it only gives reasoning/answer); "
        f"expected JSON like {names.example()}"
    )
