"""Which lines of a new text were kept from an old one, fast on long texts (for blame).

``difflib.SequenceMatcher`` is quadratic when lines repeat (blank lines, closing brackets,
a repeated pattern): a 24,000-line value with one edit took seconds to minutes. Here, each
stretch of the two texts still to match goes through three steps:

1. the lines the stretch starts and ends with on both sides are kept as they are (one edit
   in a long text costs one pass);
2. Myers' ``O((N+M)·D)`` algorithm finds a longest common subsequence, fast when the
   stretch differs in few lines (``D``); it stops at a budget of differences;
3. past that budget, lines that occur exactly once in the stretch on both sides anchor the
   match: the longest run of them in the same order on both sides is kept (patience diff,
   ``O(k log k)``), and the stretches between anchors go through these steps again;
4. a long stretch with no such line and many differences is cut into pieces at the same
   fractions of both sides, each matched by Myers (or, past its budget, by
   ``SequenceMatcher`` with its popular-line heuristic, ``autojunk``). Lines that moved
   across a cut then count as changed.

Lines are compared as small integers (each distinct line is numbered once).
"""

from __future__ import annotations

import difflib
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence

__all__ = ["match_lines"]

# Myers' work grows as (N+M)·D and its history as D²: the budget of differences per stretch.
_MYERS_WORK = 4_000_000
_MYERS_MAX_D = 1000
_PIECE = 400  # lines per piece when a long stretch differs too much for one Myers run


def match_lines(old: Sequence[str], new: Sequence[str]) -> list[int | None]:
    """For each line of ``new``, the index of the line of ``old`` it was kept from, or None
    (the line is new or changed).

    The kept lines are equal and in the same order on both sides (a common subsequence).
    """
    ids: dict[str, int] = {}
    a = [ids.setdefault(line, len(ids)) for line in old]
    b = [ids.setdefault(line, len(ids)) for line in new]
    match: list[int | None] = [None] * len(b)
    todo = [(0, len(a), 0, len(b))]
    while todo:
        alo, ahi, blo, bhi = todo.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            match[blo] = alo
            alo, blo = alo + 1, blo + 1
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
            match[bhi] = ahi
        if alo == ahi or blo == bhi:
            continue
        in_a, in_b = Counter(a[alo:ahi]), Counter(b[blo:bhi])
        if in_a.keys().isdisjoint(in_b.keys()):
            continue  # nothing in common: every line of this stretch is new
        pairs = _myers(a, b, alo, ahi, blo, bhi)
        if pairs is None:  # too many differences for one run: anchors, else pieces
            anchors = _anchors(a, b, alo, ahi, blo, bhi, in_a, in_b)
            if anchors:
                edges = [(alo - 1, blo - 1), *anchors, (ahi, bhi)]
                for (i0, j0), (i1, j1) in zip(edges, edges[1:], strict=False):
                    if i1 - i0 > 1 and j1 - j0 > 1:
                        todo.append((i0 + 1, i1, j0 + 1, j1))
                pairs = anchors
            else:
                pairs = _in_pieces(a, b, alo, ahi, blo, bhi)
        for i, j in pairs:
            match[j] = i
    return match


def _anchors(
    a: list[int],
    b: list[int],
    alo: int,
    ahi: int,
    blo: int,
    bhi: int,
    in_a: Counter,
    in_b: Counter,
) -> list[tuple[int, int]]:
    """The longest run of lines unique on both sides that keeps its order, as (i, j) pairs."""
    where = {a[i]: i for i in range(alo, ahi) if in_a[a[i]] == 1}
    pairs = [(where[b[j]], j) for j in range(blo, bhi) if in_b[b[j]] == 1 and b[j] in where]
    if not pairs:
        return []
    tails: list[int] = []  # tails[n]: the smallest old index ending a run of n + 1
    ends: list[int] = []  # the pair at each tail
    before: list[int | None] = [None] * len(pairs)
    for n, (i, _j) in enumerate(pairs):
        at = bisect_left(tails, i)
        if at == len(tails):
            tails.append(i)
            ends.append(n)
        else:
            tails[at], ends[at] = i, n
        before[n] = ends[at - 1] if at else None
    run: list[tuple[int, int]] = []
    n: int | None = ends[-1]
    while n is not None:
        run.append(pairs[n])
        n = before[n]
    return run[::-1]


def _myers(
    a: list[int], b: list[int], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]] | None:
    """A longest common subsequence of the two stretches (Myers 1986), as (i, j) pairs;
    None when they differ in more lines than the budget allows."""
    n, m = ahi - alo, bhi - blo
    max_d = min(n + m, _MYERS_MAX_D, max(64, _MYERS_WORK // (n + m)))
    off = max_d + 1
    v = [0] * (2 * max_d + 3)  # v[off + k]: the furthest x reached on diagonal k = x - y
    history: list[list[int]] = []  # before step d: v for k in [-d-1, d+1]
    for d in range(max_d + 1):
        history.append(v[off - d - 1 : off + d + 2])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[off + k - 1] < v[off + k + 1]):
                x = v[off + k + 1]  # a line of b inserted
            else:
                x = v[off + k - 1] + 1  # a line of a deleted
            y = x - k
            while x < n and y < m and a[alo + x] == b[blo + y]:
                x, y = x + 1, y + 1
            v[off + k] = x
            if x >= n and y >= m:
                return _walk_back(history, x, y, k, d, alo, blo)
    return None


def _walk_back(
    history: list[list[int]], x: int, y: int, k: int, d: int, alo: int, blo: int
) -> list[tuple[int, int]]:
    """The matched lines of the path Myers found, followed from its end to (0, 0)."""
    pairs = []
    while d > 0:
        before = history[d]  # index of diagonal k: k + d + 1

        def at(diagonal: int, before: list[int] = before, d: int = d) -> int:
            return before[diagonal + d + 1]

        if k == -d or (k != d and at(k - 1) < at(k + 1)):
            k_prev = k + 1
            x_prev = at(k_prev)
            x_mid = x_prev  # down: a line of b inserted
        else:
            k_prev = k - 1
            x_prev = at(k_prev)
            x_mid = x_prev + 1  # right: a line of a deleted
        while x > x_mid:  # the diagonal run after the move: equal lines
            x, y = x - 1, y - 1
            pairs.append((alo + x, blo + y))
        x, k, d = x_prev, k_prev, d - 1
        y = x - k
    while x > 0 and y > 0:
        x, y = x - 1, y - 1
        pairs.append((alo + x, blo + y))
    return pairs


def _in_pieces(
    a: list[int], b: list[int], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Match a long stretch with many differences piece by piece: the stretches are cut at
    the same fractions on both sides, and each pair of pieces is matched by Myers (or, when
    that pair too differs too much, by :func:`_popular_lines_skipped`). Lines that moved
    across a cut count as changed; everything else is matched as Myers would."""
    n, m = ahi - alo, bhi - blo
    pieces = -(-max(n, m) // _PIECE)
    pairs: list[tuple[int, int]] = []
    for c in range(pieces):
        a0, a1 = alo + n * c // pieces, alo + n * (c + 1) // pieces
        b0, b1 = blo + m * c // pieces, blo + m * (c + 1) // pieces
        if a0 == a1 or b0 == b1:
            continue
        found = _myers(a, b, a0, a1, b0, b1)
        pairs += found if found is not None else _popular_lines_skipped(a, b, a0, a1, b0, b1)
    return pairs


def _popular_lines_skipped(
    a: list[int], b: list[int], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Matching blocks by ``SequenceMatcher`` with ``autojunk`` (lines that make up more than
    1% of a long stretch do not start a match): the fallback for stretches Myers gives up on."""
    matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=True)
    return [
        (alo + i + t, blo + j + t)
        for i, j, size in matcher.get_matching_blocks()
        for t in range(size)
    ]
