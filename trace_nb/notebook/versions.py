"""A session's versions of each parameter: the lineage table, diffs, blame, and restore."""

from __future__ import annotations

from typing import Any

from .lineage import blame
from .locking import serialized as _serialized


class VersionsMixin:
    """Every accepted value of each parameter of :class:`~.session.TraceSession` (its
    :class:`~.lineage.Lineage`), as tables, diffs and blame, and restoring an old one."""

    lineage: Any
    rows: list[dict]

    def versions(self, name: str) -> Any:
        """Every accepted value of parameter ``name`` as a DataFrame: version, parent,
        source (cell / proposal / edit / restore), the run it followed, score (mean of the
        runs that used it), who decided, the LLM's reasoning, and the value."""
        import pandas as pd

        chain = self.lineage.versions.get(self._readable(name))
        if not chain:
            raise KeyError(
                f"no versions of {name!r} yet (parameters: {', '.join(self.parameters)})"
            )
        current = self.lineage.current.get(self._readable(name))
        return pd.DataFrame(
            [
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
                for v in chain
            ]
        )

    def diff(self, name: str, a: int, b: int | None = None) -> str:
        """Unified diff of version ``a`` → ``b`` (the current one by default) of ``name``."""
        return self.lineage.diff(self._readable(name), a, b)

    def blame(self, name: str, limit: int | None = None) -> list[dict]:
        """Where each line of ``name``'s current value came from: version, run, source
        (``edit`` when a human changed the LLM's text), who approved it, the reasoning
        (the first ``limit`` lines with ``limit``). Worked out once per version."""
        return blame(self.lineage, self._readable(name), limit)

    @_serialized
    def restore_version(self, name: str, number: int) -> Any:
        """Make version ``number`` of ``name`` current again (a new version records it).

        Code is checked as a proposal would be (it must compile and load) before anything
        changes. Run ``%trace_writeback NAME`` to put the value back into the cell.
        """
        from ..optim.proposal import check
        from ..optim.refusal import Refusal

        readable = self._readable(name)
        v = self.lineage.get(readable, number)
        node = self._find(readable)
        prop = check(node, v.value, f"restore version {number}")
        if not prop.valid and prop.code is not Refusal.SAME_VALUE:
            raise ValueError(f"cannot restore version {number} of {readable!r}: {prop.reason}")
        loader = getattr(node, "loader", None) if node.is_code else None
        if loader is not None:
            loader(prop.new)  # raises CodeCompileError (nothing changed) if it does not load
        node.set_value(prop.new)
        self._after_apply(prop)
        self.lineage.accept(
            readable,
            prop.new,
            source="restore",
            step=len(self.rows) - 1,
            reasoning=f"restored version {number}",
            decided_by="human",
        )
        self._notify("restore")
        return prop.new

    def _readable(self, name: str) -> str:
        """The readable parameter name (``agent.act``) for ``name`` or a node name."""
        return self.display_name(self._find(name))
