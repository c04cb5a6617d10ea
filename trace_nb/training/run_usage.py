"""A training run's LLM usage: one :class:`~trace_nb.llm.usage.Usage`, plus where it ran.

:attr:`TrainResult.usage <trace_nb.training.result.TrainResult.usage>` is a
:class:`RunUsage`: the amounts of every watched LLM call of the run (all sessions of a
resumed run), and on a remote engine the engine's name and, per worker, a
:class:`WorkerUsage` (examples run and the LLM usage that worker reported).

Earlier versions gave the run's usage as a plain dict (``result.usage["calls"]``). Item access still
works, with a :class:`DeprecationWarning`: read the attributes (``result.usage.calls``,
``result.usage.workers``) instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..llm.usage import Usage

__all__ = ["RunUsage", "WorkerUsage"]


@dataclass(frozen=True)
class WorkerUsage(Usage):
    """One remote worker's share of a run: the LLM usage it reported and ``examples`` it ran."""

    examples: int = 0

    @classmethod
    def of(cls, usage: Usage, examples: int) -> WorkerUsage:
        """``usage``'s amounts with ``examples``."""
        u = usage.amount()
        return cls(
            u.calls, u.prompt_tokens, u.completion_tokens, u.cost, u.cached_calls, int(examples)
        )

    def to_dict(self) -> dict[str, Any]:
        """:meth:`Usage.to_dict` with ``examples`` first."""
        return {"examples": self.examples, **super().to_dict()}


@dataclass(frozen=True)
class RunUsage(Usage):
    """A training run's :class:`Usage`, and where its examples ran.

    Attributes
    ----------
    calls, prompt_tokens, completion_tokens, cost, cached_calls, tokens
        As in :class:`Usage`: every watched LLM call of the run.
    engine
        The remote engine's name (``"dask"``, ``"ray"``...), or ``None`` for a local run.
    workers
        Per worker (by its address or id): a :class:`WorkerUsage`; empty for a local run.
    """

    engine: str | None = None
    workers: Mapping[str, WorkerUsage] = field(default_factory=dict, hash=False)

    @classmethod
    def of(
        cls,
        usage: Usage,
        engine: str | None = None,
        workers: Mapping[str, WorkerUsage] | None = None,
    ) -> RunUsage:
        """``usage``'s amounts with ``engine`` and ``workers``."""
        u = usage.amount()
        return cls(
            u.calls,
            u.prompt_tokens,
            u.completion_tokens,
            u.cost,
            u.cached_calls,
            engine,
            dict(workers or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """:meth:`Usage.to_dict`, plus ``engine`` and ``workers`` (each worker's
        :meth:`WorkerUsage.to_dict`) when the run used a remote engine."""
        out = super().to_dict()
        if self.engine is not None:
            out["engine"] = self.engine
            out["workers"] = {w: u.to_dict() for w, u in self.workers.items()}
        return out

    # -- the old dict spelling, kept working for a while ------------------------------
    def __getitem__(self, key: str) -> Any:
        """``result.usage["calls"]``: deprecated, read ``result.usage.calls``."""
        _warn_item_access(key)
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """``result.usage.get("workers")``: deprecated, read the attribute."""
        _warn_item_access(key)
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        _warn_item_access(str(key))
        return key in self.to_dict()


def _warn_item_access(key: str) -> None:
    warnings.warn(
        f"TrainResult.usage is a RunUsage, no longer a dict: read usage.{key} instead of "
        f"usage[{key!r}] (usage.workers[name] is a WorkerUsage; usage.to_dict() gives the "
        "old dict)",
        DeprecationWarning,
        stacklevel=3,
    )
