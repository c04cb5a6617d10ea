"""Read an LLM reply into reasoning, answer and a suggestion of new parameter values.

OptoPrime asks the model for JSON of the form::

    {"reasoning": "...", "answer": "...", "suggestion": {"<var>": <new value>, ...}}

Real models (GPT-4o as well as tiny local models) send many deformed variants of it:
fenced, wrapped in prose, Python literals, raw newlines inside strings, trailing commas,
XML tags, truncated output, or plain ``TERMINATE``. :func:`parse_reply` tries a fixed
sequence of readers, from the strictest to the most forgiving, and never raises: when no
suggestion can be read, :attr:`ParsedReply.error` says why, in words meant for the user.

Values are returned exactly as the reply gives them (``"5"`` stays a string); turning them
into the parameter's type is the job of :mod:`trace_nb.optim.coerce`.

Decisions
---------
* ``"suggestion": {}`` (or ``[]``) is a valid reply meaning "no changes": the result has
  ``suggestion == {}`` and ``error is None``; callers treat it as zero proposals.
* ``"suggestion": null`` is *not* treated like ``{}``; it is reported as an error because
  it is not the documented format (the message tells the model to send ``{}``).
* A suggestion whose keys are all unknown gives ``suggestion == {}``, the keys in
  :attr:`ParsedReply.unknown` and an error naming them; unknown keys are never guessed
  into known names (only exact, then whitespace/quote-stripped, matches count).
* The word ``TERMINATE`` never cancels a suggestion that is present; it only explains an
  empty result.
* A reply cut off before its suggestion closed (an unbalanced ``{``) gives an error rather
  than a partial suggestion read from the fragments.
* XML ``<value>`` contents are returned as (dedented, stripped) text.
* Lone UTF-16 surrogates (``"\\ud800"``) are repaired to U+FFFD before reading, so no
  value that cannot be encoded as UTF-8 ever leaves the parser.
* The work is bounded: a reply longer than :data:`MAX_SEARCH_CHARS` is read only when it
  is one JSON document; lenient decoders see at most :data:`MAX_LENIENT_CHARS` per
  candidate; a JSON integer too long for ``int()`` stays its digit string.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .coerce import _show
from .jsonish import (
    Braces,
    decode_all,
    find_fences,
    fix_escapes,
    lenient,
    loads,
    nested_spans,
    pythonish_to_json,
    repair_surrogates,
    strict,
    top_spans,
)

__all__ = ["FORMATS", "MAX_LENIENT_CHARS", "MAX_SEARCH_CHARS", "ParsedReply", "parse_reply"]

#: Longest reply searched for JSON inside prose; longer ones must be one JSON document.
MAX_SEARCH_CHARS = 256_000
#: Longest candidate text given to the (pure-Python) lenient decoders, and their total.
MAX_LENIENT_CHARS = 64_000
_LENIENT_TOTAL = 256_000

#: Every value :attr:`ParsedReply.format` can take, from strictest to most forgiving.
FORMATS = (
    "json",
    "json-fenced",
    "json-embedded",
    "python-literal",
    "json-lenient",
    "xml",
    "key-value",
    "none",
)

TERMINATE_ERROR = "the model answered TERMINATE (no changes suggested)"


@dataclass
class ParsedReply:
    """What could be read from one LLM reply.

    Attributes
    ----------
    reasoning : str
        The reply's ``reasoning`` ("" when absent), always a str.
    answer : str
        The reply's ``answer`` ("" when absent), always a str.
    suggestion : dict[str, Any]
        New values for known parameter names only, as the reply gave them (not coerced).
    unknown : dict[str, Any]
        Suggested keys that are not known parameter names (hallucinated or misspelled).
    error : str or None
        Why no suggestion could be read, in words for the user; None when reading worked
        (``suggestion`` may still be empty: the model suggested no changes).
    format : str
        Which reader succeeded, one of :data:`FORMATS` ("none" when nothing was read).
    """

    reasoning: str = ""
    answer: str = ""
    suggestion: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    format: str = "none"

    @property
    def ok(self) -> bool:
        """True when the reply was read without error."""
        return self.error is None


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
        return _parse(repair_surrogates(text), _Names(names), depth=0)
    except (RecursionError, MemoryError) as exc:
        return ParsedReply(error=f"the reply is nested too deeply or too large to read "
                           f"({type(exc).__name__}); expected flat JSON like "
                           f"{_Names(names).example()}")
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        return ParsedReply(error=f"could not read the reply ({type(exc).__name__}: "
                           f"{_show(str(exc), 200)})")


# --------------------------------------------------------------------------- helpers


class _Names:
    """The known parameter names, in order (for messages) and as a set (for lookup)."""

    def __init__(self, names: Collection[str]) -> None:
        if isinstance(names, str):  # a single name passed by mistake
            names = [names]
        self.order = list(dict.fromkeys(str(n) for n in (names or ())))
        self.set = set(self.order)

    def example(self) -> str:
        shown = self.order[:3] or ["<variable>"]
        inner = ", ".join(f'"{n}": <new value>' for n in shown)
        if len(self.order) > 3:
            inner += ", ..."
        return '{"reasoning": "...", "answer": "...", "suggestion": {' + inner + "}}"

    def listing(self) -> str:
        if not self.order:
            return "there are no trainable variables"
        shown = ", ".join(repr(n) for n in self.order[:10])
        more = f" and {len(self.order) - 10} more" if len(self.order) > 10 else ""
        return f"the trainable variables are {shown}{more}"


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            return _show(value, 2000)
    return str(value)


def _norm_key(key: str) -> str:
    """Strip whitespace and stray quoting (``"'x'"``, ``"`x`"``, ``" x "``) from a key."""
    return key.strip().strip("\"'`").strip()


# Canonical meta keys, matched after _norm_key and lower().
_META_KEYS = {
    "reasoning": "reasoning",
    "reason": "reasoning",
    "answer": "answer",
    "suggestion": "suggestion",
    "suggestions": "suggestion",
}
_PAIR_NAME_KEYS = ("name", "variable", "var", "key", "parameter", "param")
_PAIR_VALUE_KEYS = ("value", "new_value", "new value", "suggestion", "suggested_value")

_HTML_RE = re.compile(r"(?:<!--.*?-->\s*)?<(?:!doctype\s+html|html\b|head\b|body\b)", re.I | re.S)
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title", re.I | re.S)
_TERMINATE_RE = re.compile(r"\bTERMINATE\b")
_SUGGESTION_KEY_BEFORE = re.compile(r"""["']suggestions?["']\s*:\s*\Z""", re.I)
_REASONING_RE = re.compile(r'"reasoning"\s*:\s*("(?:[^"\\]|\\.)*")', re.S)
_ANSWER_RE = re.compile(r'"answer"\s*:\s*("(?:[^"\\]|\\.)*")', re.S)


def _split(mapping: dict[Any, Any], names: _Names) -> tuple[dict[str, Any], dict[str, Any]]:
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
        norm = _norm_key(skey)
        if norm in names.set and norm not in known:
            known[norm] = value
        else:
            unknown[skey] = value
    return known, unknown


def _pairs_to_dict(items: list[Any]) -> dict[Any, Any] | None:
    """``[{"name": "x", "value": 1}, {"y": 2}]`` → ``{"x": 1, "y": 2}``; None if not that."""
    out: dict[Any, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            return None
        lowered = {(_norm_key(k).lower() if isinstance(k, str) else k): k for k in item}
        name_key = next((lowered[k] for k in _PAIR_NAME_KEYS if k in lowered), None)
        value_key = next((lowered[k] for k in _PAIR_VALUE_KEYS if k in lowered), None)
        if name_key is not None and value_key is not None and isinstance(item[name_key], str):
            out[item[name_key]] = item[value_key]
        elif len(item) == 1:
            out.update(item)
        else:
            return None
    return out


# Ranks of a candidate reading: lower is better.
_OK, _BAD_SUGGESTION, _META_ONLY, _OTHER = 0, 1, 2, 3


def _read_suggestion(value: Any, names: _Names, base: ParsedReply) -> tuple[int, ParsedReply]:
    """Interpret the value of a ``suggestion`` key; ``base`` carries reasoning/answer."""
    example = names.example()
    if isinstance(value, str):
        inner = value.strip()
        if inner.upper() == "TERMINATE" or (not inner and _TERMINATE_RE.search(base.answer)):
            base.error = TERMINATE_ERROR
            return _BAD_SUGGESTION, base
        if inner.startswith(("{", "[")):  # a double-encoded object: "suggestion": "{\"x\": 5}"
            for obj, _fmt in decode_all(inner):
                if isinstance(obj, (dict, list)):
                    return _read_suggestion(obj, names, base)
        base.error = (
            f"the reply's 'suggestion' is a string ({_show(value)}), not an object mapping "
            f"variable names to new values; expected JSON like {example}"
        )
        return _BAD_SUGGESTION, base
    if isinstance(value, list):
        pairs = _pairs_to_dict(value)
        if pairs is None:
            base.error = (
                "the reply's 'suggestion' is a list whose items are not "
                '{"name": ..., "value": ...} objects; expected JSON like ' + example
            )
            return _BAD_SUGGESTION, base
        value = pairs
    if isinstance(value, dict):
        known, unknown = _split(value, names)
        base.suggestion, base.unknown = known, unknown
        if unknown and not known:
            base.error = (
                "the suggestion names no trainable variable: it has "
                + ", ".join(_show(k, 40) for k in list(unknown)[:10])
                + f"; {names.listing()}"
            )
        return _OK, base
    if value is None:
        if _TERMINATE_RE.search(base.answer):
            base.error = TERMINATE_ERROR
        else:
            base.error = (
                "the reply's 'suggestion' is null; expected an object mapping variable names "
                f"to new values, like {example} (or {{}} for no changes)"
            )
        return _BAD_SUGGESTION, base
    kind = type(value).__name__
    article = "an" if kind[:1] in "aeiou" else "a"
    base.error = (
        f"the reply's 'suggestion' is {article} {kind} ({_show(value)}), not an "
        f"object mapping variable names to new values; expected JSON like {example}"
    )
    return _BAD_SUGGESTION, base


def _interpret(obj: Any, names: _Names, fmt: str, depth: int = 0) -> tuple[int, ParsedReply]:
    """Rank and read one decoded JSON/Python value found in the reply."""
    if isinstance(obj, dict):
        return _interpret_dict(obj, names, fmt, depth)
    if isinstance(obj, list):
        best: tuple[int, ParsedReply] | None = None
        for item in obj[:20]:  # e.g. [{"reasoning": ..., "suggestion": {...}}]
            if isinstance(item, dict):
                found = _interpret_dict(item, names, fmt, depth + 1)
                if found[0] == _OK:
                    return found
                if best is None or found[0] < best[0]:
                    best = found
        if best is not None and best[0] < _OTHER:
            return best
        pairs = _pairs_to_dict(obj) if obj else None
        if pairs is not None:
            known, unknown = _split(pairs, names)
            if known:
                return _OK, ParsedReply(suggestion=known, unknown=unknown, format=fmt)
        return _OTHER, ParsedReply(
            error=f"the reply is a JSON array, not an object; expected JSON like {names.example()}",
            format=fmt,
        )
    kind = {str: "string", bool: "boolean", type(None): "null"}.get(type(obj), "number")
    return _OTHER, ParsedReply(
        error=f"the reply is a JSON {kind} ({_show(obj)}), not an object; "
        f"expected JSON like {names.example()}",
        format=fmt,
    )


def _interpret_dict(
    obj: dict[Any, Any], names: _Names, fmt: str, depth: int
) -> tuple[int, ParsedReply]:
    meta: dict[str, Any] = {}
    others: dict[Any, Any] = {}
    for key, value in obj.items():
        canon = _META_KEYS.get(_norm_key(key).lower()) if isinstance(key, str) else None
        if canon is not None and canon not in meta:
            meta[canon] = value
        else:
            others[key] = value
    base = ParsedReply(
        reasoning=_as_text(meta.get("reasoning")), answer=_as_text(meta.get("answer")), format=fmt
    )
    if "suggestion" in meta:
        return _read_suggestion(meta["suggestion"], names, base)
    # A wrapper such as {"response": {"reasoning": ..., "suggestion": {...}}}.
    if depth < 3:
        for value in others.values():
            if isinstance(value, dict) and any(
                isinstance(k, str) and _META_KEYS.get(_norm_key(k).lower()) == "suggestion"
                for k in value
            ):
                found = _interpret_dict(value, names, fmt, depth + 1)
                if found[0] == _OK:
                    return found
    # Models often put the new values at the top level, next to the reasoning.
    known, _unknown = _split(others, names)
    if known:
        base.suggestion = known
        return _OK, base
    if meta:
        base.error = _no_suggestion_error(base, names)
        return _META_ONLY, base
    api_error = others.get("error")
    if api_error is not None and len(others) <= 3:
        message = api_error.get("message", api_error) if isinstance(api_error, dict) else api_error
        base.error = f"the reply is an API error, not a suggestion: {_show(_as_text(message), 200)}"
        return _OTHER, base
    keys = ", ".join(_show(str(k), 40) for k in list(others)[:10]) or "none"
    base.error = (
        f"the reply has no 'suggestion': its JSON object has the keys {keys} "
        f"(and {names.listing()}); expected JSON like {names.example()}"
    )
    return _OTHER, base


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


def _no_suggestion_error(base: ParsedReply, names: _Names) -> str:
    if _TERMINATE_RE.search(base.answer) or base.reasoning.rstrip(" .!*`\"'\n").endswith(
        "TERMINATE"
    ):
        return TERMINATE_ERROR
    return (
        "the reply has no 'suggestion' (it only gives reasoning/answer); "
        f"expected JSON like {names.example()}"
    )


# ----------------------------------------------------------------------- XML tags

# Every XML helper below runs in linear time: a model can send thousands of unclosed tags,
# where a regex such as <(\w+)>(.*?)</\1> would rescan the rest of the text per tag.
_XML_OPEN = re.compile(r"<([A-Za-z_][\w.:-]*)(?:\s[^<>]*)?>")
_CDATA = re.compile(r"\A\s*<!\[CDATA\[(.*?)\]\]>\s*\Z", re.S)


def _tag_res(tag: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    name = re.escape(tag)
    return re.compile(rf"<{name}(?:\s[^<>]*)?>", re.I), re.compile(rf"</{name}\s*>", re.I)


def _tag(text: str, tag: str, unclosed: bool = False) -> str | None:
    """Content of the first ``<tag>...</tag>``; with ``unclosed``, up to the end if the
    closing tag is missing."""
    opening_re, closing_re = _tag_res(tag)
    opening = opening_re.search(text)
    if opening is None:
        return None
    closing = closing_re.search(text, opening.end())
    if closing is None:
        return text[opening.end() :] if unclosed else None
    return text[opening.end() : closing.start()]


def _elements(text: str, tag: str) -> list[str]:
    """Contents of the successive ``<tag>...</tag>`` elements."""
    opening_re, closing_re = _tag_res(tag)
    out: list[str] = []
    pos = 0
    while len(out) < 1000:
        opening = opening_re.search(text, pos)
        if opening is None:
            break
        closing = closing_re.search(text, opening.end())
        if closing is None:
            break
        out.append(text[opening.end() : closing.start()])
        pos = closing.end()
    return out


def _children(text: str) -> list[tuple[str, str]]:
    """``(name, content)`` of the outermost ``<name>...</name>`` elements, in order."""
    out: list[tuple[str, str]] = []
    missing: set[str] = set()  # names with no closing tag further on: never look again
    pos = 0
    for opening in _XML_OPEN.finditer(text):
        name = opening.group(1)
        if opening.start() < pos or name in missing:
            continue
        closing = re.compile(rf"</{re.escape(name)}\s*>").search(text, opening.end())
        if closing is None:
            missing.add(name)
            if len(missing) > 100:
                break
            continue
        out.append((name, text[opening.end() : closing.start()]))
        pos = closing.end()
    return out


def _variables(text: str) -> list[tuple[str, str]]:
    """``<variable><name>x</name><value>v</value></variable>`` entries as (name, value)."""
    pairs = []
    for block in _elements(text, "variable"):
        name, value = _tag(block, "name"), _tag(block, "value")
        if name is not None and value is not None:
            pairs.append((name, value))
    return pairs


_XML_ENTRY_OPEN = re.compile(r"<(?:variable|value)(?:\s[^<>]*)?>", re.I)
_XML_ENTRY_CLOSE = re.compile(r"</(?:variable|value)\s*>", re.I)


def _xml_cut_off(text: str) -> bool:
    """True when the last ``<variable>``/``<value>`` opened is never closed."""
    last_open = max(_XML_ENTRY_OPEN.finditer(text), key=lambda m: m.start(), default=None)
    if last_open is None:
        return False
    return _XML_ENTRY_CLOSE.search(text, last_open.end()) is None


def _xml_text(raw: str) -> str:
    cdata = _CDATA.match(raw)
    if cdata:
        raw = cdata.group(1)
    # Dedent rather than strip so that indented code keeps its shape.
    return textwrap.dedent(re.sub(r"\A[ \t]*\n", "", raw)).strip()


def _parse_xml(text: str, names: _Names) -> ParsedReply | None:
    reasoning = _tag(text, "reasoning")
    answer = _tag(text, "answer")
    body = _tag(text, "suggestion", unclosed=True)
    pairs = _variables(body if body is not None else text)
    if body is None and not pairs and reasoning is None:
        return None
    if _xml_cut_off(body if body is not None else text):
        base = ParsedReply(reasoning=_xml_text(reasoning or ""), format="xml")
        base.error = ("the reply looks truncated (a <variable> or <value> tag is never "
                      "closed), so no complete suggestion could be read; was the max_tokens "
                      "limit too small?")
        return base
    base = ParsedReply(
        reasoning=_xml_text(reasoning or ""), answer=_xml_text(answer or ""), format="xml"
    )
    if pairs:
        mapping: dict[str, Any] = {}
        for name, value in pairs:
            mapping.setdefault(_xml_text(name), _xml_text(value))
        return _read_suggestion(mapping, names, base)[1]
    if body is None:
        base.error = _no_suggestion_error(base, names)
        return base
    inner = _xml_text(body)
    if not inner:
        return base  # <suggestion></suggestion>: no changes
    if inner.upper() == "TERMINATE":
        base.error = TERMINATE_ERROR
        return base
    # JSON only when the tag starts with it: code inside child tags may contain braces.
    candidates = find_fences(inner) if inner.startswith(("```", "~~~")) else []
    if inner.startswith(("{", "[")):
        candidates = [inner] + [inner[a:b] for a, b in top_spans(Braces(inner))[0]]
    for candidate in candidates:
        for obj, _fmt in decode_all(candidate):
            if isinstance(obj, dict) and any(
                isinstance(k, str) and _META_KEYS.get(_norm_key(k).lower()) == "suggestion"
                for k in obj
            ):
                found = _interpret_dict(obj, names, "xml", 0)[1]
                found.reasoning = found.reasoning or base.reasoning
                found.answer = found.answer or base.answer
                return found
            if isinstance(obj, (dict, list)):
                return _read_suggestion(obj, names, base)[1]
    children = _children(inner)
    if children:
        mapping = {}
        for name, value in children:
            mapping.setdefault(name, _xml_text(value))
        return _read_suggestion(mapping, names, base)[1]
    base.error = (
        "the <suggestion> tag holds neither JSON nor "
        "<variable><name>...</name><value>...</value></variable> entries"
    )
    return base


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


def _parse_key_values(text: str, names: _Names) -> ParsedReply | None:
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
    _recover_meta(text, reply)
    return reply


def _recover_meta(text: str, reply: ParsedReply) -> None:
    """Fill reasoning/answer from ``"reasoning": "..."`` in text that did not parse whole."""
    for attr, pattern in (("reasoning", _REASONING_RE), ("answer", _ANSWER_RE)):
        if getattr(reply, attr):
            continue
        match = pattern.search(text)
        if match:
            try:
                setattr(reply, attr, _as_text(loads(match.group(1), strict_controls=False)))
            except ValueError:
                pass
        else:
            tagged = _tag(text, attr)
            if tagged is not None:
                setattr(reply, attr, _xml_text(tagged))


# ---------------------------------------------------------------------------- main


def _parse(raw: str, names: _Names, depth: int) -> ParsedReply:
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    stripped = text.strip().lstrip("\ufeff").strip()
    if not stripped:
        return ParsedReply(
            error="the reply is empty" if not raw else "the reply is empty (whitespace only)"
        )
    if _HTML_RE.match(stripped):
        title = _TITLE_RE.search(stripped)
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
        return _interpret(whole, names, "json")[1]
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
        rank, reply = _interpret(obj, names, fmt)
        if rank == _OK:
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
    if truncated:
        # Kept: objects before the cut-off one, and a suggestion object that closed
        # ('{"reasoning": "r", "suggestion": {"x": 5}' lost only the outer brace).
        spans = [(a, b) for a, b in spans
                 if a < truncated_at or _SUGGESTION_KEY_BEFORE.search(text, max(a - 40, 0), a)]
    span_texts = [text[a:b] for a, b in spans]

    # 2. Code fences; 3. balanced objects embedded in prose, from the left.
    found = strict_candidates(fences, "json-fenced") or strict_candidates(
        span_texts, "json-embedded"
    )
    if found is not None:
        _recover_meta(text, found)
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
                    _recover_meta(text, found)
                    return found

    # Objects nested inside broken or truncated outer ones (e.g. a complete suggestion
    # whose enclosing reply was cut off).
    for candidate in nested_spans(braces, spans):
        for obj, fmt in decode_all(candidate):
            if isinstance(obj, dict):
                rank, reply = _interpret(obj, names, "json-embedded" if fmt == "json" else fmt)
                if rank == _OK:
                    _recover_meta(text, reply)
                    return reply

    if _BAD_SUGGESTION in kept:
        return kept[_BAD_SUGGESTION]

    # 5. XML-like tags.
    xml = _parse_xml(text, names)
    if xml is not None and (xml.suggestion or xml.unknown or _tag(text, "suggestion", True)):
        return xml

    # 6. "name": value pairs for the known names.
    if not truncated:
        pairs = _parse_key_values(text, names)
        if pairs is not None:
            return pairs

    if _META_ONLY in kept:
        return kept[_META_ONLY]
    if xml is not None:
        return xml
    bare = stripped.strip("*_`\"'.!# \n")
    if bare.upper() == "TERMINATE" or _TERMINATE_RE.search(stripped):
        return ParsedReply(error=TERMINATE_ERROR)
    if truncated:
        reply = ParsedReply(
            error="the reply looks truncated (a '{' is never closed), so no complete "
            "suggestion could be read; was the max_tokens limit too small?"
        )
        _recover_meta(text, reply)
        return reply
    if _OTHER in kept:
        return kept[_OTHER]
    if braces.exhausted:
        return ParsedReply(
            error="the reply has too many unbalanced braces and quotes to search for JSON; "
            f"expected JSON like {names.example()}"
        )
    return ParsedReply(
        error=f"the reply contains no JSON object (expected JSON like {names.example()}); "
        f"it begins: {_show(stripped[:60])}"
    )
