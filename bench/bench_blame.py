"""Benchmark of blame on long values (issue 23, item 24). Prints one JSON object.

Run: ``python bench/bench_blame.py`` (``--lines N``, default 24,000). Each case is a
parameter with two versions, the second an edit of the first; blame compares them once.

  cases.<case>.seconds          the first blame (the comparison)           <= a few seconds
  cases.<case>.again_seconds    the second blame (kept: nothing compared)
  cases.<case>.kept             lines of the new version blamed on the old one
  difflib_repeated_one_edit     what the old blame (``difflib.SequenceMatcher`` with
                                ``autojunk=False``) took on the ``repeated_one_edit`` case,
                                measured in this run, and the ratio to the new blame

Cases: ``distinct_one_edit`` (every line different, one changed); ``repeated_one_edit`` (a
50-line block repeated, one line changed: the case where difflib is quadratic);
``repeated_two_edits`` (near both ends); ``repeated_1000_edits`` and ``distinct_1000_edits``
(1,000 lines replaced at random); ``all_same_1000_edits`` (one line repeated, every 24th
changed); ``rewrite`` (nothing in common); ``unrelated_few_kinds`` (two unrelated texts made
of four kinds of line: the worst case found for the new matcher).
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import time


def cases(n: int) -> dict[str, tuple[list[str], list[str]]]:
    rng = random.Random(23)
    out = {}
    distinct = [f"line {i}: {rng.random():.6f}" for i in range(n)]
    repeated = [f"    x_{i % 50} = compute({i % 50})" for i in range(n)]

    def edited(lines: list[str], at: list[int]) -> list[str]:
        new = list(lines)
        for i in at:
            new[i] = f"changed {i}"
        return new

    out["distinct_one_edit"] = (distinct, edited(distinct, [n // 2]))
    out["repeated_one_edit"] = (repeated, edited(repeated, [n // 2]))
    out["repeated_two_edits"] = (repeated, edited(repeated, [100, n - 100]))
    some = rng.sample(range(n), min(1000, n))
    out["repeated_1000_edits"] = (repeated, edited(repeated, some))
    out["distinct_1000_edits"] = (distinct, edited(distinct, some))
    same = ["x"] * n
    out["all_same_1000_edits"] = (same, [("y" if i % 24 == 0 else "x") for i in range(n)])
    out["rewrite"] = (distinct, [f"new {i}" for i in range(n)])
    kinds = ["", "}", "    pass", "x = 1"]
    out["unrelated_few_kinds"] = (
        [rng.choice(kinds) for _ in range(n)],
        [rng.choice(kinds) for _ in range(n)],
    )
    return out


def blame_once(old: list[str], new: list[str]) -> tuple[float, float, int]:
    """Seconds for the first and the second blame of ``new``, and the lines kept from ``old``."""
    from trace_nb.notebook.lineage import Lineage, blame

    lin = Lineage()
    lin.start("p", "\n".join(old))
    lin.accept("p", "\n".join(new), source="proposal", step=0)
    t0 = time.perf_counter()
    rows = blame(lin, "p")
    t1 = time.perf_counter()
    blame(lin, "p")
    t2 = time.perf_counter()
    assert lin.blame_diffs == 1  # the second blame compared nothing
    assert [r["text"] for r in rows] == new
    return t1 - t0, t2 - t1, sum(r["version"] == 0 for r in rows)


def old_blame_seconds(old: list[str], new: list[str]) -> float:
    t0 = time.perf_counter()
    difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    return time.perf_counter() - t0


def main(n: int) -> dict:
    result: dict = {"lines": n, "cases": {}}
    all_cases = cases(n)
    for name, (old, new) in all_cases.items():
        first, again, kept = blame_once(old, new)
        result["cases"][name] = {
            "seconds": round(first, 4),
            "again_seconds": round(again, 4),
            "kept": kept,
            "of": len(new),
        }
    old, new = all_cases["repeated_one_edit"]
    before = old_blame_seconds(old, new)
    after = result["cases"]["repeated_one_edit"]["seconds"]
    result["difflib_repeated_one_edit"] = {
        "seconds": round(before, 3),
        "ratio_to_new": round(before / max(after, 1e-9), 1),
    }
    result["slowest_seconds"] = max(c["seconds"] for c in result["cases"].values())
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=24000)
    args = parser.parse_args()
    print(json.dumps(main(args.lines), indent=1))
