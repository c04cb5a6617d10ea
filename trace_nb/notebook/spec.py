"""What ``%%trace`` was told about one cell: the magic's options, saved with the session."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CellSpec:
    """What ``%%trace`` was told about one cell (saved with the session)."""

    source: str
    params: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    feedback: str | None = None
    optimizer: str = "OptoPrime"
    model: str | None = None
    memory: int = 0
    llm_var: str | None = None
    raise_errors: bool = False
    candidates: int = 1
    repair: int = 1
