"""Reading replies written as XML-like tags (``<reasoning>``, ``<suggestion>``,
``<variable><name>..</name><value>..</value></variable>``)."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from ..jsonish import Braces, decode_all, find_fences, top_spans
from .interpret import interpret_dict, no_suggestion_error, read_suggestion
from .model import META_KEYS, TERMINATE_ERROR, Names, ParsedReply, norm_key

# ----------------------------------------------------------------------- XML tags

# Every XML helper below runs in linear time: a model can send thousands of unclosed tags,
# where a regex such as <(\w+)>(.*?)</\1> would rescan the rest of the text per tag.
_XML_OPEN = re.compile(r"<([A-Za-z_][\w.:-]*)(?:\s[^<>]*)?>")
_CDATA = re.compile(r"\A\s*<!\[CDATA\[(.*?)\]\]>\s*\Z", re.S)


def _tag_res(tag: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    name = re.escape(tag)
    return re.compile(rf"<{name}(?:\s[^<>]*)?>", re.I), re.compile(rf"</{name}\s*>", re.I)


def tag(text: str, tag: str, unclosed: bool = False) -> str | None:
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
        name, value = tag(block, "name"), tag(block, "value")
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


def xml_text(raw: str) -> str:
    cdata = _CDATA.match(raw)
    if cdata:
        raw = cdata.group(1)
    # Dedent rather than strip so that indented code keeps its shape.
    return textwrap.dedent(re.sub(r"\A[ \t]*\n", "", raw)).strip()


def parse_xml(text: str, names: Names) -> ParsedReply | None:
    reasoning = tag(text, "reasoning")
    answer = tag(text, "answer")
    body = tag(text, "suggestion", unclosed=True)
    pairs = _variables(body if body is not None else text)
    if body is None and not pairs and reasoning is None:
        return None
    if _xml_cut_off(body if body is not None else text):
        base = ParsedReply(reasoning=xml_text(reasoning or ""), format="xml")
        base.error = (
            "the reply looks truncated (a <variable> or <value> tag is never "
            "closed), so no complete suggestion could be read; was the max_tokens "
            "limit too small?"
        )
        return base
    base = ParsedReply(
        reasoning=xml_text(reasoning or ""), answer=xml_text(answer or ""), format="xml"
    )
    if pairs:
        mapping: dict[str, Any] = {}
        for name, value in pairs:
            mapping.setdefault(xml_text(name), xml_text(value))
        return read_suggestion(mapping, names, base)[1]
    if body is None:
        base.error = no_suggestion_error(base, names)
        return base
    inner = xml_text(body)
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
                isinstance(k, str) and META_KEYS.get(norm_key(k).lower()) == "suggestion"
                for k in obj
            ):
                found = interpret_dict(obj, names, "xml", 0)[1]
                found.reasoning = found.reasoning or base.reasoning
                found.answer = found.answer or base.answer
                return found
            if isinstance(obj, (dict, list)):
                return read_suggestion(obj, names, base)[1]
    children = _children(inner)
    if children:
        mapping = {}
        for name, value in children:
            mapping.setdefault(name, xml_text(value))
        return read_suggestion(mapping, names, base)[1]
    base.error = (
        "the <suggestion> tag holds neither JSON nor "
        "<variable><name>...</name><value>...</value></variable> entries"
    )
    return base
