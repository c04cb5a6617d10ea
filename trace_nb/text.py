"""Short text of values, and bounded diffs: the one place that decides how a value reads.

* Previews: :func:`cut` (the ellipsis rule), :func:`short_repr` (``repr``, cut),
  :func:`preview` (strings as ``repr``, other values as ``str``: what a graph node shows),
  :func:`value_text` (strings as they are, other values as ``repr``), :func:`full_text`
  (the whole value, pretty-printed, up to a large cap), :func:`cell_text` (a table cell:
  code kept as lines) and :func:`score_text`. None of them raises: a value whose
  ``__repr__``/``__str__`` fails is shown by its type.
* Diffs: a model can send a 70,000-character line or ten thousand lines; ``difflib`` is
  quadratic (and recursive inside ``HtmlDiff``) on such input. The helpers cap the work
  first: long lines are wrapped into chunks, the number of lines is capped, and
  side-by-side diffs fall back to a plain unified diff when the pairwise work would still
  be too much.

Pure functions with no imports of ours, below every layer: the graph, the optimizer, the
training loop and the panel all use them.
"""

from __future__ import annotations

import difflib
import html
import pprint
from typing import Any

__all__ = [
    "bounded_diff",
    "bounded_html_diff",
    "bounded_lines",
    "cell_text",
    "cut",
    "full_text",
    "preview",
    "score_text",
    "short_repr",
    "value_text",
]

#: Longest line given to difflib; longer ones are cut into chunks of this size.
MAX_LINE_CHARS = 200
#: Most lines per side given to difflib; the rest is summarised in one line.
MAX_LINES = 2_000
#: Most (line pairs × characters) HtmlDiff may compare in one changed block (its intraline
#: matching costs about that much) before the plain diff is used instead.
_MAX_PAIR_CHARS = 1_000_000


# ----------------------------------------------------------------------------- previews


def cut(text: str, limit: int) -> str:
    """``text`` when it has at most ``limit`` characters, else its first ``limit - 1`` and "…"."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters with an ellipsis; never raises (a broken
    ``__repr__`` gives ``<TypeName>``)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break messages
        text = f"<{type(value).__name__}>"
    return cut(text, limit)


def preview(value: Any, limit: int = 120) -> str:
    """A one-look text of ``value``: ``repr`` for strings (quotes and escapes show), ``str``
    otherwise, cut at ``limit``; a failing ``__str__`` gives ``<unprintable Type: error>``."""
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except Exception as e:  # noqa: BLE001 - a value whose __str__ fails must not break a view
        text = f"<unprintable {type(value).__name__}: {e}>"
    return cut(text, limit)


def value_text(value: Any, limit: int = 80) -> str:
    """Strings as they are, other values as their ``repr``; cut at ``limit``."""
    return cut(value, limit) if isinstance(value, str) else short_repr(value, limit)


def full_text(value: Any, limit: int = 20_000) -> str:
    """The whole value as text: strings as they are, other values pretty-printed; beyond
    ``limit`` characters, one last line says how many more there are."""
    try:
        text = value if isinstance(value, str) else pprint.pformat(value, width=88)
    except Exception as e:  # noqa: BLE001 - a broken __repr__ must not break the panel
        text = f"<unprintable {type(value).__name__}: {e}>"
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit:,} more characters)"
    return text


def cell_text(value: Any, width: int = 80, max_lines: int = 8) -> str:
    """A table cell: empty for None/NaN, floats to 4 significant digits, one-line text cut at
    ``width``; multi-line text (code) kept as lines, each cut, at most ``max_lines``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    try:
        text = str(value)
    except Exception as e:  # noqa: BLE001 - see preview
        text = f"<unprintable {type(value).__name__}: {e}>"
    lines = text.splitlines() or [""]
    if len(lines) > 1:
        shown = [cut(line, width) for line in lines[:max_lines]]
        if len(lines) > max_lines:
            shown.append(f"… ({len(lines) - max_lines} more lines)")
        return "\n".join(shown)
    return cut(text, width)


def score_text(score: float | None, missing: str = "-") -> str:
    """A score in a status line or table: 3 significant digits, ``missing`` for none."""
    return missing if score is None else f"{score:.3g}"


# ----------------------------------------------------------------------------- diffs


def bounded_lines(
    text: str, max_line_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES
) -> list[str]:
    """``text`` as lines, each at most ``max_line_chars`` long, at most ``max_lines`` of them.

    Long lines are split into consecutive chunks (so a change inside one still shows), each
    ending after a space when one is in its second half (so words stay whole), else cut at
    the limit; beyond ``max_lines`` one last line says how many characters were left out.
    """
    if not isinstance(text, str):
        text = str(text)
    out: list[str] = []
    consumed = 0
    for line in text.splitlines() or [""]:
        if len(out) >= max_lines:
            break
        consumed += len(line) + 1
        if len(line) <= max_line_chars:
            out.append(line)
            continue
        start = 0
        while start < len(line) and len(out) < max_lines:
            end = min(start + max_line_chars, len(line))
            if end < len(line):  # end the chunk after a space in its second half, if any
                space = line.rfind(" ", start + max_line_chars // 2, end)
                end = space + 1 if space != -1 else end
            out.append(line[start:end])
            start = end
    left = len(text) - consumed
    if left > 0:
        out.append(f"… ({left:,} more characters not shown)")
    return out


def bounded_diff(
    old: str,
    new: str,
    *,
    context: int = 3,
    max_line_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
) -> str:
    """A unified diff of ``old`` → ``new`` in bounded time (lines capped as in
    :func:`bounded_lines`)."""
    a = bounded_lines(old, max_line_chars, max_lines)
    b = bounded_lines(new, max_line_chars, max_lines)
    return "\n".join(difflib.unified_diff(a, b, "current", "proposed", lineterm="", n=context))


def bounded_html_diff(
    old: str,
    new: str,
    *,
    wrapcolumn: int = 70,
    max_line_chars: int = MAX_LINE_CHARS,
    max_lines: int = 500,
) -> str:
    """A side-by-side ``difflib.HtmlDiff`` table of ``old`` → ``new``, bounded.

    ``wrapcolumn`` cuts lines at that column, inside words too (``0``: no cut; leave the
    wrapping to CSS). When the changed blocks are too large for HtmlDiff's pairwise line
    matching (or it fails, e.g. on recursion), the result is the :func:`bounded_diff` text
    in a ``<pre>``. Returns HTML (a ``<table>`` or a ``<pre>``).
    """
    a = bounded_lines(old, max_line_chars, max_lines)
    b = bounded_lines(new, max_line_chars, max_lines)
    if _pair_work(a, b) <= _MAX_PAIR_CHARS:
        long = max(len(a), len(b)) > 100  # show the changes with context, not every line
        try:
            return difflib.HtmlDiff(wrapcolumn=wrapcolumn).make_table(
                a, b, "current", "proposed", context=long, numlines=5
            )
        except (RecursionError, MemoryError):
            pass
    text = "\n".join(difflib.unified_diff(a, b, "current", "proposed", lineterm=""))
    return f"<pre class='trace-nb-plain-diff'>{html.escape(text)}</pre>"


def _pair_work(a: list[str], b: list[str]) -> int:
    """The largest (old lines × new lines × longest line) over the replaced blocks."""
    worst = 0
    # The same matcher settings as HtmlDiff's Differ (autojunk on): repeated lines are junk
    # there, so a long run of identical chunks becomes one big replaced block.
    matcher = difflib.SequenceMatcher(None, a, b)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "replace":
            longest = max(len(line) for line in (*a[i1:i2], *b[j1:j2]))
            worst = max(worst, (i2 - i1) * (j2 - j1) * (longest + 20))  # + per-pair cost
    return worst
