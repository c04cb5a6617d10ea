"""Lineage and blame: every accepted value of every parameter, where it came from, how it scored.

Each parameter of a session has a chain of :class:`Version` records: the cell's value
(version 0), then one per approved proposal, edit or restore, each with its parent, the run
it was decided after, the LLM's reasoning, who approved it and whether a human edited it.
A version collects the scores of the runs that used it. :func:`blame` tells, for a text or
code parameter, which version brought each line of the current value: each version is
compared with its parent once (:func:`~.linediff.match_lines`, fast on long values), and
the answer is kept, so showing it again (a click in the panel) compares nothing.
"""

from __future__ import annotations

import difflib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..optim.states import DecisionSource
from ..text import short_repr
from .linediff import match_lines

__all__ = ["Lineage", "Version", "blame"]

_KEEP_ORIGINS = 16  # blame answers kept per parameter (each is one int per line)


@dataclass
class Version:
    """One accepted value of a parameter.

    Attributes
    ----------
    number : int
        0 for the cell's value, then 1, 2, ... in the order accepted.
    value : Any
    parent : int or None
        The version it replaced.
    source : str
        ``cell``, ``proposal``, ``edit`` (a human changed the LLM's value) or ``restore``.
    step : int or None
        The run after which it was accepted (its feedback led to it).
    reasoning : str
        The LLM's reasoning (empty for the cell's value and restores).
    decided_by : str
        ``human``, ``auto`` or ``""``.
    runs : dict
        Run number -> score, for the runs that used this version and were scored.
    time : str
    """

    number: int
    value: Any
    parent: int | None
    source: str
    step: int | None = None
    reasoning: str = ""
    decided_by: str = ""
    runs: dict[int, float] = field(default_factory=dict)
    time: str = field(default_factory=lambda: time.strftime("%H:%M:%S"))

    def __post_init__(self) -> None:
        self.runs = {int(k): float(v) for k, v in self.runs.items()}  # JSON keys are text

    @property
    def score(self) -> float | None:
        """The mean score of the runs that used it (None before any)."""
        return sum(self.runs.values()) / len(self.runs) if self.runs else None


class Lineage:
    """The versions of every parameter of one session, by the parameter's readable name."""

    def __init__(self) -> None:
        self.versions: dict[str, list[Version]] = {}
        self.current: dict[str, int] = {}
        # name -> version number -> (that Version, the version number that brought each line)
        self._origins: dict[str, dict[int, tuple[Version, list[int]]]] = {}
        self.blame_diffs = 0  # versions compared with their parent so far (each once)

    def replace_with(self, other: Lineage) -> None:
        """Take ``other``'s versions (a loaded session's) in place of this lineage's."""
        self.versions, self.current = other.versions, other.current
        self._origins, self.blame_diffs = other._origins, other.blame_diffs

    def clear(self) -> None:
        """Forget every version (``reset``)."""
        self.replace_with(Lineage())

    def table(self, name: str) -> list[dict]:
        """The versions of ``name`` as rows: version, current, parent, source, the run it
        followed, score, runs, who decided, reasoning, value, time (empty: none yet)."""
        current = self.current.get(name)
        return [
            {
                "version": v.number,
                "current": v.number == current,
                "parent": v.parent,
                "source": v.source,
                "after_run": v.step,
                "score": v.score,
                "runs": len(v.runs),
                "decided_by": v.decided_by,
                "reasoning": v.reasoning,
                "value": v.value,
                "time": v.time,
            }
            for v in self.versions.get(name, [])
        ]

    def restore(self, name: str, number: int, node: Any, step: int | None) -> Any:
        """Make version ``number`` of ``name`` current again on its parameter ``node`` (a
        new version records it) and return the value.

        The value is checked as a proposal would be, and code must load, before anything
        changes (ValueError, or CodeCompileError from the loader, otherwise).
        """
        from ..optim.proposal import check
        from ..optim.refusal import Refusal

        v = self.get(name, number)
        if v is None:  # a session file from before versions were saved has none
            raise KeyError(
                f"no versions of {name!r} to restore: run its cell first (a run records the "
                "current value as version 0)"
            )
        prop = check(node, v.value, f"restore version {number}")
        if not prop.valid and prop.code is not Refusal.SAME_VALUE:
            raise ValueError(f"cannot restore version {number} of {name!r}: {prop.reason}")
        loader = getattr(node, "loader", None) if node.is_code else None
        if loader is not None:
            loader(prop.new)  # raises CodeCompileError (nothing changed) if it does not load
        node.set_value(prop.new)
        self.accept(
            name,
            prop.new,
            source="restore",
            step=step,
            reasoning=f"restored version {number}",
            decided_by=DecisionSource.HUMAN.value,
        )
        return prop.new

    def start(self, name: str, value: Any) -> None:
        """Record the cell's value of a new parameter (version 0), once."""
        if name not in self.versions:
            self.versions[name] = [Version(0, value, None, "cell")]
            self.current[name] = 0

    def accept(
        self,
        name: str,
        value: Any,
        *,
        source: str,
        step: int | None,
        reasoning: str = "",
        decided_by: str = "",
    ) -> Version:
        """A new version of ``name`` (the current one is its parent); it becomes current."""
        chain = self.versions.setdefault(name, [])
        parent = self.current.get(name)
        v = Version(len(chain), value, parent, source, step, reasoning, decided_by)
        chain.append(v)
        self.current[name] = v.number
        return v

    def score(self, values: dict[str, Any], run: int, score: float | None) -> None:
        """Credit run ``run``'s ``score`` to the current version of each parameter in
        ``values`` (a later score for the same run replaces the earlier one)."""
        if score is None:
            return
        for name in values:
            v = self.get(name)
            if v is not None:
                v.runs[run] = float(score)

    def get(self, name: str, number: int | None = None) -> Version | None:
        """Version ``number`` of ``name`` (the current one by default), or None."""
        chain = self.versions.get(name)
        if not chain:
            return None
        n = self.current.get(name, len(chain) - 1) if number is None else number
        if not 0 <= n < len(chain):
            raise KeyError(f"{name!r} has versions 0..{len(chain) - 1}, not {n}")
        return chain[n]

    def chain(self, name: str, number: int | None = None) -> list[Version]:
        """Version ``number`` (current by default) and its ancestors, oldest first."""
        out = []
        v = self.get(name, number)
        while v is not None:
            out.append(v)
            v = None if v.parent is None else self.versions[name][v.parent]
        return out[::-1]

    def diff(self, name: str, a: int, b: int | None = None) -> str:
        """A unified diff of version ``a`` → ``b`` (current by default) of ``name``."""
        va, vb = self.get(name, a), self.get(name, b)
        if va is None or vb is None:
            raise KeyError(f"no versions of {name!r}")
        old, new = _lines(va.value), _lines(vb.value)
        return "\n".join(
            difflib.unified_diff(
                old, new, f"{name} v{va.number}", f"{name} v{vb.number}", lineterm=""
            )
        )

    # -- blame ---------------------------------------------------------------------
    def origins(self, name: str, number: int | None = None) -> tuple[list[str], list[int]]:
        """The lines of version ``number`` (current by default) of ``name`` and, for each,
        the number of the version that brought it.

        Each version is compared with its parent once; the last ``_KEEP_ORIGINS`` answers
        per parameter are kept, and a version whose answer was dropped is worked out from
        its nearest kept ancestor. Raises KeyError for an unknown name or number and
        ValueError when the versions' parents form a cycle.
        """
        target = self.get(name, number)
        if target is None:
            raise KeyError(f"no versions of {name!r}")
        chain, kept = self.versions[name], self._origins.setdefault(name, {})
        path: list[Version] = []  # from target up to (not including) a known ancestor
        seen: set[int] = set()
        v: Version | None = target
        while v is not None and not _known(kept, v):
            if v.number in seen:
                raise ValueError(f"the versions of {name!r} have a parent cycle at v{v.number}")
            seen.add(v.number)
            path.append(v)
            v = chain[v.parent] if v.parent is not None and 0 <= v.parent < len(chain) else None
        lines, origin = (_lines(v.value), kept[v.number][1]) if v is not None else ([], [])
        for step in reversed(path):
            new = _lines(step.value)
            if v is None:  # the root: every line is its own
                origin = [step.number] * len(new)
            else:
                match = match_lines(lines, new)
                origin = [step.number if i is None else origin[i] for i in match]
                self.blame_diffs += 1
            lines, v = new, step
            kept[step.number] = (step, origin)
            while len(kept) > _KEEP_ORIGINS:
                del kept[next(iter(kept))]
        return lines, origin

    # -- saving --------------------------------------------------------------------
    def to_data(self) -> dict:
        """Plain JSON-ready data."""
        return {
            "current": dict(self.current),
            "versions": {k: [asdict(v) for v in chain] for k, chain in self.versions.items()},
        }

    @classmethod
    def from_data(cls, data: Any) -> Lineage:
        """Read :meth:`to_data` output; anything malformed raises ValueError."""
        out = cls()
        if not data:
            return out
        if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
            raise ValueError("the lineage is not an object with 'versions'")
        for name, chain in data["versions"].items():
            if not isinstance(name, str) or not isinstance(chain, list) or not chain:
                raise ValueError(f"the lineage of {name!r} is not a non-empty list of versions")
            out.versions[name] = [_version(name, i, v) for i, v in enumerate(chain)]
        current = data.get("current") or {}
        if not isinstance(current, dict):
            raise ValueError("the lineage's 'current' is not an object")
        for name, n in current.items():
            if name in out.versions and _whole(n) and 0 <= n < len(out.versions[name]):
                out.current[name] = n
        return out


_TEXT_FIELDS = ("source", "reasoning", "decided_by", "time")


def _finite(x: int | float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond float's range
        return False


def _whole(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool)


def _version(name: str, i: int, data: Any) -> Version:
    """Version ``i`` of ``name`` read from a file, checked: numbered in order, its parent
    an earlier version (so every chain ends, no cycle), text fields text, and ``runs`` an
    object of run number -> score. ValueError says what is wrong."""
    where = f"version {i} of {name!r}"
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not an object")
    unknown = sorted(set(data) - set(Version.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{where} has unknown fields {unknown}")
    for key in ("value", "source"):
        if key not in data:
            raise ValueError(f"{where} has no {key!r}")
    if data.get("number") != i or not _whole(data.get("number")):
        raise ValueError(f"{where} is numbered {data.get('number')!r}, not {i}")
    parent = data.get("parent")
    if parent is not None and not (_whole(parent) and 0 <= parent < i):
        raise ValueError(
            f"{where} has the parent {parent!r}: a parent must be an earlier version "
            f"(0..{i - 1}) or null"
        )
    step = data.get("step")
    if step is not None and not (_whole(step) and step >= 0):
        raise ValueError(f"{where} has the step {step!r}, not a run number")
    for key in _TEXT_FIELDS:
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{where}: its {key!r} is not text")
    runs = data.get("runs", {})
    if not isinstance(runs, dict):
        raise ValueError(f"{where}: its 'runs' is not an object of run number -> score")
    for run, score in runs.items():
        # ASCII digits only ("²" is a digit to str.isdigit, not to int), and few of them
        text = str(run) if _whole(run) else run
        if not (isinstance(text, str) and text.isascii() and text.isdigit() and len(text) < 10):
            raise ValueError(f"{where}: run {short_repr(run, 40)} is not a run number")
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not _finite(score)  # also a whole number too large for a float
        ):
            raise ValueError(
                f"{where}: the score of run {run} is {short_repr(score, 40)}, not a number"
            )
    return Version(**data)


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines()
    import json

    try:
        return json.dumps(value, indent=1, sort_keys=True, default=repr).splitlines()
    except (TypeError, ValueError):
        return repr(value).splitlines()


def _known(kept: dict[int, tuple[Version, list[int]]], v: Version) -> bool:
    entry = kept.get(v.number)
    return entry is not None and entry[0] is v


def blame(lineage: Lineage, name: str, limit: int | None = None) -> list[dict]:
    """For each line of the current value of ``name``: the version that brought it.

    Returns a list of dicts: ``line`` (1-based), ``text``, ``version``, ``source``, ``step``,
    ``reasoning``, ``decided_by``, ``edited`` (the line came from a human edit); with
    ``limit``, only the first ``limit`` lines. Worked out once per version (see
    :meth:`Lineage.origins`).
    """
    lines, origin = lineage.origins(name)
    chain = lineage.versions[name]
    count = len(lines) if limit is None else max(0, min(limit, len(lines)))
    out = []
    for i in range(count):
        v = chain[origin[i]]
        out.append(
            {
                "line": i + 1,
                "text": lines[i],
                "version": v.number,
                "source": v.source,
                "step": v.step,
                "reasoning": v.reasoning,
                "decided_by": v.decided_by,
                "edited": v.source == "edit",
            }
        )
    return out
