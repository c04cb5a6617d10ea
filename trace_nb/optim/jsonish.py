"""Finding and decoding JSON-like objects inside LLM text (used by :mod:`.parse`).

Pure functions of the text: balanced-brace spans that respect strings, code fences, and
decoders from strict JSON to lenient forms (raw newlines in strings, trailing commas,
Python literals). Each runs in time linear in the text, bounded on pathological input.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Iterator
from typing import Any

# ------------------------------------------------------------------- text scanning

_SIGNIFICANT = re.compile(r"[\"'{}]")
_STRING_END = {
    '"': re.compile(r'(?:[^"\\]|\\.)*"', re.S),
    "'": re.compile(r"(?:[^'\\]|\\.)*'", re.S),
}
_MAX_SCANS = 64  # bounds the work on pathological input such as "{{{{{..."
#: Significant characters (quotes, braces) all brace scans of one text may visit together.
SCAN_BUDGET = 400_000
_MAX_INT_DIGITS = 4000  # below Python's int/str conversion limit (4300 digits)
_JSON_OPENING = re.compile(r"\{\s*[\"'}]")


class Braces:
    """Finds the ``}`` matching each ``{`` of one text, respecting quoted strings.

    One scan records the match of every brace it passes, so asking about the braces of a
    long truncated reply (``{{{{...``) costs one pass instead of one pass per brace.
    """

    def __init__(self, text: str, budget: int = SCAN_BUDGET) -> None:
        self.text = text
        self.ends: dict[int, int | None] = {}
        self.budget = budget
        self.exhausted = False  # the budget ran out: later braces count as never closed

    def end(self, start: int) -> int | None:
        """Index of the ``}`` closing the ``{`` at ``start``, or None if never closed."""
        if start not in self.ends:
            self._scan(start)
        return self.ends.get(start)

    def _scan(self, start: int) -> None:
        text, ends = self.text, self.ends
        stack: list[int] = []
        pos = start
        while True:
            if self.budget <= 0:
                self.exhausted = True
                break
            self.budget -= 1
            match = _SIGNIFICANT.search(text, pos)
            if match is None:
                break
            char, at = match.group(), match.start()
            if char in "\"'":
                closed = _STRING_END[char].match(text, at + 1)
                if closed is None:
                    break  # an unterminated string swallows the rest
                pos = closed.end()
                continue
            if char == "{":
                stack.append(at)
            elif stack:
                ends[stack.pop()] = at
                if not stack:
                    return
            pos = at + 1
        for opened in stack:
            ends[opened] = None


def top_spans(braces: Braces) -> tuple[list[tuple[int, int]], int | None]:
    """Balanced ``{...}`` spans from the left, not nested in one another; and the position
    of the first ``{`` that opens a JSON-looking object (``{"key"...``) never closed.

    Spans after that position lie inside an object the text never finished (a truncated
    reply): callers must not read a suggestion from them.
    """
    text = braces.text
    spans: list[tuple[int, int]] = []
    truncated_at: int | None = None
    pos = 0
    scans = 0
    while len(spans) < 50 and scans < _MAX_SCANS:
        start = text.find("{", pos)
        if start < 0:
            break
        end = braces.end(start)
        if end is None:
            if truncated_at is None and _JSON_OPENING.match(text, start):
                truncated_at = start
            scans += 1
            pos = start + 1
        else:
            spans.append((start, end + 1))
            pos = end + 1
    return spans, truncated_at


def nested_spans(braces: Braces, spans: list[tuple[int, int]]) -> list[str]:
    """Balanced objects nested inside the top-level spans (a last structured resort)."""
    text = braces.text
    out: list[str] = []
    looked = 0
    for start, end in spans:
        pos = start + 1
        while looked < _MAX_SCANS:
            inner = text.find("{", pos, end)
            if inner < 0:
                break
            looked += 1
            close = braces.end(inner)
            if close is not None and close < end:
                out.append(text[inner : close + 1])
            pos = inner + 1
    return out


# One character class after the fence (no "[\w]*[^`]*" pair): linear even on a very long
# line that ends in a backtick.
_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n`]*$")


def find_fences(text: str) -> list[str]:
    """Contents of the markdown code fences, in order (an unclosed last one included)."""
    blocks: list[str] = []
    fence: str | None = None
    buf: list[str] = []
    for line in text.split("\n"):
        if fence is None:
            match = _FENCE_OPEN.match(line)
            if match:
                fence, buf = match.group(1), []
        elif line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            blocks.append("\n".join(buf))
            fence = None
        else:
            buf.append(line)
    if fence is not None and any(s.strip() for s in buf):
        blocks.append("\n".join(buf))
    return blocks


# ------------------------------------------------------------------------ decoding


def parse_int(digits: str) -> int | str:
    """JSON integers; one too long for Python's int() stays its digit string (coercion
    then says it is too large, instead of the whole reply failing to decode)."""
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else digits


def loads(text: str, strict_controls: bool = True) -> Any:
    """json.loads with :func:`parse_int`; raises ValueError/RecursionError like it."""
    return json.loads(text, strict=strict_controls, parse_int=parse_int)


def strict(text: str) -> tuple[bool, Any]:
    try:
        return True, loads(text)
    except (ValueError, RecursionError, MemoryError):
        return False, None


_ESCAPED_SURROGATE = re.compile(
    r"(?<!\\)((?:\\\\)*)(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\\U0000[dD][89a-fA-F][0-9a-fA-F]{2})"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def repair_surrogates(text: str) -> str:
    r"""Replace lone UTF-16 surrogates (``"\ud800"`` escapes or characters) by U+FFFD.

    A lone surrogate decodes to a str that cannot be encoded as UTF-8, so every later
    write (cache, session file, the next prompt) would fail. Escaped *pairs*, which
    decode to one real character, are kept.
    """
    if "\\" in text and ("\\u" in text or "\\U" in text):

        def fix(match: re.Match[str]) -> str:
            escape = match.group(2)
            keep = len(escape) == 12 and escape[1] == "u"
            return match.group(1) + (escape if keep else "\\ufffd")

        text = _ESCAPED_SURROGATE.sub(fix, text)
    return _SURROGATE.sub("\ufffd", text)


def fix_escapes(body: str) -> str:
    r"""Make the escapes of a double-quoted string body valid JSON (``\d`` → ``\\d``)."""
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < n else ""
        if nxt and nxt in '"\\/bfnrt':
            out.append(char + nxt)
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(body[i : i + 6])
            i += 6
        elif nxt == "'":  # a Python-style escaped apostrophe
            out.append("'")
            i += 2
        else:  # a literal backslash the model forgot to escape (regexes, paths)
            out.append("\\\\")
            i += 1
    return "".join(out)


def pythonish_to_json(text: str) -> tuple[str, bool]:
    """Rewrite near-JSON (Python literals, single quotes, comments, trailing commas,
    bad escapes) as JSON text for ``json.loads(strict=False)``.

    Returns the text and whether Python-only syntax (quotes, True/False/None) was seen.
    Raises ValueError on an unterminated string.
    """
    out: list[str] = []
    pythonic = False
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char in "\"'":
            quote = char * 3 if text.startswith(char * 3, i) else char
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ValueError("unterminated string")
            body = text[i + len(quote) : j]
            if quote != '"':
                pythonic = True
                # Inside '...' or a triple-quoted string a bare " must be escaped for JSON.
                body = re.sub(r'(\\.)|"', lambda m: m.group(1) or '\\"', body, flags=re.S)
            out.append('"' + fix_escapes(body) + '"')
            i = j + len(quote)
        elif char.isalpha() or char == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            mapped = {"True": "true", "False": "false", "None": "null"}.get(word)
            if mapped:
                pythonic = True
            out.append(mapped or word)
            i = j
        elif char == "," and re.match(r"\s*[}\]]", text[i + 1 : i + 200]):
            i += 1  # trailing comma
        elif char == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1  # comments
        else:
            out.append(char)
            i += 1
    return "".join(out), pythonic


def lenient(text: str) -> Iterator[tuple[Any, str]]:
    """Forgiving decoders for an object/array text; yields at most one (value, format)."""
    text = text.strip()
    if not text or text[0] not in "{[":
        return
    try:
        yield loads(text, strict_controls=False), "json-lenient"
        return
    except (ValueError, RecursionError, MemoryError):
        pass
    try:
        converted, pythonic = pythonish_to_json(text)
        yield (
            loads(converted, strict_controls=False),
            "python-literal" if pythonic else "json-lenient",
        )
        return
    except (ValueError, TypeError, RecursionError, MemoryError):
        pass
    # Python-only syntax the rewrite does not cover (tuples, non-string keys, ...).
    value = literal_eval(text)
    if isinstance(value, (dict, list, tuple)):
        yield (list(value) if isinstance(value, tuple) else value), "python-literal"


def literal_eval(text: str, default: Any = None) -> Any:
    """ast.literal_eval without raising or warning (invalid escapes warn); ``default`` on
    failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
            return default


def decode_all(text: str) -> Iterator[tuple[Any, str]]:
    ok, value = strict(text)
    if ok:
        yield value, "json"
        return
    yield from lenient(text)
