"""The reading ladder: the readers tried on one reply, strictest first."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from ...text import short_repr as _show
from ..jsonish import (
    Braces,
    decode_all,
    find_fences,
    lenient,
    nested_spans,
    repair_surrogates,
    strict,
    top_spans,
)
from .interpret import BAD_SUGGESTION, META_ONLY, OK, OTHER, TERMINATE_RE, interpret
from .keyvalue import parse_key_values, recover_meta
from .model import TERMINATE_ERROR, Names, ParsedReply
from .xml import parse_xml, tag

__all__ = ["MAX_LENIENT_CHARS", "MAX_SEARCH_CHARS", "parse_reply"]

#: Longest reply searched for JSON inside prose; longer ones must be one JSON document.
MAX_SEARCH_CHARS = 256_000
#: Longest candidate text given to the (pure-Python) lenient decoders, and their total.
MAX_LENIENT_CHARS = 64_000
_LENIENT_TOTAL = 256_000

_HTML_RE = re.compile(r"(?:<!--.*?-->\s*)?<(?:!doctype\s+html|html\b|head\b|body\b)", re.I | re.S)
_TITLE_RE = re.compile(r"<title[^<>]{0,200}>([^<]{0,300})</title", re.I)  # bounded: no rescans
_SUGGESTION_KEY_BEFORE = re.compile(r"""["']suggestions?["']\s*:\s*\Z""", re.I)


def parse_reply(text: str, names: Collection[str]) -> ParsedReply:
    """Read reasoning, answer and suggested values from an LLM reply.

    Parameters
    ----------
    text : str
        The raw reply. Anything else is converted to text first (bytes decoded, None → "").
    names : Collection[str]
        The names of the trainable parameters; only these go into ``suggestion``.

    Returns
    -------
    ParsedReply
        Never raises: unreadable replies give ``error`` set and an empty ``suggestion``.

    Notes
    -----
    Readers are tried in this order: strict JSON of the whole reply; JSON in code fences;
    the balanced ``{...}`` objects embedded in prose, from the left; lenient JSON / Python
    literals (raw control characters, trailing commas, single quotes, True/False/None,
    comments, bad escapes); XML-like tags; ``"name": value`` pairs for known names.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", errors="replace")
        elif text is None:
            text = ""
        elif not isinstance(text, str):
            text = str(text)
        return _parse(repair_surrogates(text), Names(names), depth=0)
    except (RecursionError, MemoryError) as exc:
        return ParsedReply(
            error=f"the reply is nested too deeply or too large to read "
            f"({type(exc).__name__}); expected flat JSON like "
            f"{Names(names).example()}"
        )
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        return ParsedReply(
            error=f"could not read the reply ({type(exc).__name__}: {_show(str(exc), 200)})"
        )


def _too_deep(text: str) -> bool:
    """True when the text is JSON that only fails for its nesting depth."""
    if not text.startswith(("[", "{")):
        return False
    try:
        json.loads(text)
    except RecursionError:
        return True
    except (ValueError, MemoryError):
        return False
    return False


# ---------------------------------------------------------------------------- main


def _parse(raw: str, names: Names, depth: int) -> ParsedReply:
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    stripped = text.strip().lstrip("\ufeff").strip()
    if not stripped:
        return ParsedReply(
            error="the reply is empty" if not raw else "the reply is empty (whitespace only)"
        )
    if _HTML_RE.match(stripped):
        title = _TITLE_RE.search(stripped, 0, 20_000)
        where = f" — page title: {_show(' '.join(title.group(1).split()))}" if title else ""
        return ParsedReply(
            error=f"the reply is an HTML page, not JSON (was the base URL right?){where}"
        )

    # 1. The whole reply is strict JSON: it is authoritative, whatever it holds.
    ok, whole = strict(stripped)
    if ok:
        if isinstance(whole, str) and depth < 2:
            return _parse(whole, names, depth + 1)  # a reply sent as a JSON string literal
        if isinstance(whole, str) and whole.strip().upper() == "TERMINATE":
            return ParsedReply(error=TERMINATE_ERROR)
        return interpret(whole, names, "json")[1]
    if _too_deep(stripped):
        return ParsedReply(
            error="the reply is JSON nested too deeply to read (hundreds of levels); "
            f"expected flat JSON like {names.example()}"
        )
    if len(stripped) > MAX_SEARCH_CHARS:
        return ParsedReply(
            error=f"the reply is {len(stripped):,} characters long and not one valid JSON "
            f"document; replies over {MAX_SEARCH_CHARS:,} characters are not searched for "
            f"JSON inside prose. Ask for plain JSON like {names.example()}"
        )

    kept: dict[int, ParsedReply] = {}  # best non-OK reading per rank, first one wins
    tried: set[str] = set()

    def consider(obj: Any, fmt: str) -> ParsedReply | None:
        rank, reply = interpret(obj, names, fmt)
        if rank == OK:
            return reply
        kept.setdefault(rank, reply)
        return None

    def strict_candidates(texts: list[str], fmt: str) -> ParsedReply | None:
        for candidate in texts:
            candidate = candidate.strip()
            if not candidate or candidate in tried:
                continue
            tried.add(candidate)
            ok, obj = strict(candidate)
            if ok and isinstance(obj, (dict, list)):
                found = consider(obj, fmt)
                if found is not None:
                    return found
        return None

    fences = find_fences(text)
    braces = Braces(text)
    spans, truncated_at = top_spans(braces)
    # A reply cut off inside an object: nothing inside that object may be applied.
    # (Even when the text ends in "}": that may close an inner object, as in a cut-off
    # '{"suggestion": {"cfg": {"x": 1}'.)
    truncated = truncated_at is not None
    if truncated_at is not None:
        # Kept: objects before the cut-off one, and a suggestion object that closed
        # ('{"reasoning": "r", "suggestion": {"x": 5}' lost only the outer brace).
        cut_at = truncated_at
        spans = [
            (a, b)
            for a, b in spans
            if a < cut_at or _SUGGESTION_KEY_BEFORE.search(text, max(a - 40, 0), a)
        ]
    span_texts = [text[a:b] for a, b in spans]

    # 2. Code fences; 3. balanced objects embedded in prose, from the left.
    found = strict_candidates(fences, "json-fenced") or strict_candidates(
        span_texts, "json-embedded"
    )
    if found is not None:
        recover_meta(text, found)
        return found

    # 4. Lenient decoding of the whole reply, the fences and the embedded objects.
    lenient_tried: set[str] = set()
    lenient_left = _LENIENT_TOTAL
    for candidate in [stripped, *fences, *span_texts]:
        candidate = candidate.strip()
        if candidate in lenient_tried or len(candidate) > min(MAX_LENIENT_CHARS, lenient_left):
            continue
        lenient_tried.add(candidate)
        lenient_left -= len(candidate)
        for obj, fmt in lenient(candidate):
            if isinstance(obj, (dict, list)):
                found = consider(obj, fmt)
                if found is not None:
                    recover_meta(text, found)
                    return found

    # Objects nested inside broken or truncated outer ones (e.g. a complete suggestion
    # whose enclosing reply was cut off).
    for candidate in nested_spans(braces, spans):
        for obj, fmt in decode_all(candidate):
            if isinstance(obj, dict):
                rank, reply = interpret(obj, names, "json-embedded" if fmt == "json" else fmt)
                if rank == OK:
                    recover_meta(text, reply)
                    return reply

    if BAD_SUGGESTION in kept:
        return kept[BAD_SUGGESTION]

    # 5. XML-like tags.
    xml = parse_xml(text, names)
    if xml is not None and (xml.suggestion or xml.unknown or tag(text, "suggestion", True)):
        return xml

    # 6. "name": value pairs for the known names.
    if not truncated:
        pairs = parse_key_values(text, names)
        if pairs is not None:
            return pairs

    if META_ONLY in kept:
        return kept[META_ONLY]
    if xml is not None:
        return xml
    bare = stripped.strip("*_`\"'.!# \n")
    if bare.upper() == "TERMINATE" or TERMINATE_RE.search(stripped):
        return ParsedReply(error=TERMINATE_ERROR)
    if truncated:
        reply = ParsedReply(
            error="the reply looks truncated (a '{' is never closed), so no complete "
            "suggestion could be read; was the max_tokens limit too small?"
        )
        recover_meta(text, reply)
        return reply
    if OTHER in kept:
        return kept[OTHER]
    if braces.exhausted:
        return ParsedReply(
            error="the reply has too many unbalanced braces and quotes to search for JSON; "
            f"expected JSON like {names.example()}"
        )
    return ParsedReply(
        error=f"the reply contains no JSON object (expected JSON like {names.example()}); "
        f"it begins: {_show(stripped[:60])}"
    )
