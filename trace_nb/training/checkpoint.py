"""Training state as JSON, written atomically so a crash never leaves half a checkpoint.

A checkpoint holds everything needed to continue a run after a kernel restart: the
parameters, the best parameters and score, the history, the optimizer's state, the usage
spent so far, and the position in the data (step, and the shuffled order of the current
epoch). It never holds an API key: only the optimizer's ``state()`` and plain values.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..files import atomic_write

__all__ = ["FORMAT", "CheckpointError", "RunState", "epoch_order", "load_checkpoint",
           "open_run", "parameter_values", "restore_best", "save_checkpoint", "set_parameter_values"]

FORMAT = "trace_nb.train/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that belongs to a different run."""


@dataclass
class RunState:
    """The mutable state of a training run (what a checkpoint stores).

    Attributes
    ----------
    step
        Steps completed, counted over all epochs (the next step is ``step + 1``).
    epoch, order
        The epoch ``order`` belongs to, and the shuffled dataset indices of that epoch.
    parameters, best_parameters
        ``{name: value}`` now, and at the best score so far.
    best_score, best_step
        The best monitored score and the step that reached it (0: before any step).
    stale
        Steps since the monitored score last improved (for ``patience``).
    history
        One row per step (and a row 0 for the first validation).
    optimizer_state
        ``optimizer.state()``.
    usage
        Calls, tokens and cost spent so far (all sessions).
    config
        What the run was started with (batch size, data size...), checked on resume.
    """

    step: int = 0
    epoch: int = -1
    order: list[int] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    best_parameters: dict[str, Any] = field(default_factory=dict)
    best_score: float | None = None
    best_step: int | None = None
    stale: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    optimizer_state: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        if data.get("format") != FORMAT:
            raise CheckpointError(f"not a trace_nb training checkpoint (format "
                                  f"{data.get('format')!r}, expected {FORMAT!r})")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def check_config(self, config: dict[str, Any]) -> None:
        """Raise :class:`CheckpointError` if ``config`` cannot continue this run."""
        diffs = [f"{k}: checkpoint {self.config.get(k)!r}, now {v!r}"
                 for k, v in config.items() if k in self.config and self.config[k] != v]
        if diffs:
            raise CheckpointError("the checkpoint belongs to a different run setup ("
                                  + "; ".join(diffs) + "); use another checkpoint path or "
                                  "resume=False to start over")


def save_checkpoint(path: str | os.PathLike[str], state: RunState) -> Path:
    """Write ``state`` to ``path`` atomically.

    The JSON goes to a temporary file in the same directory, is flushed and fsynced, and
    then replaces ``path`` in one ``os.replace``: a reader (or a restarted kernel) sees
    the old checkpoint or the new one, never a torn file.

    Raises
    ------
    TypeError
        When a parameter value (or the optimizer state) is not JSON-serializable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(state.to_json(), indent=1)
    except TypeError as e:
        raise TypeError(f"the training state cannot be saved as JSON ({e}); checkpoints "
                        "need JSON-ready parameter values") from e
    return atomic_write(path, text)


def load_checkpoint(path: str | os.PathLike[str]) -> RunState:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a training checkpoint")
    return RunState.from_json(data)


def parameter_values(params: Iterable[Any]) -> dict[str, Any]:
    """``{name: value}`` of parameter nodes (copies, so later in-place edits do not leak in)."""
    return {p.name: copy.deepcopy(p._data) for p in params}


def set_parameter_values(params: Iterable[Any], values: Mapping[str, Any]) -> None:
    """Set each parameter whose name is in ``values``; others keep their value."""
    for p in params:
        if p.name in values:
            p._set(copy.deepcopy(values[p.name]))


def restore_best(optimizer: Any, result: Any) -> None:
    """Set ``optimizer``'s parameters to ``result.best_parameters`` (or a ``{name: value}`` dict)."""
    if optimizer is None:
        raise ValueError("no optimizer to restore the parameters on")
    values = result if isinstance(result, Mapping) else result.best_parameters
    set_parameter_values(optimizer.parameters, values)


def epoch_order(n: int, seed: int | None, epoch: int) -> list[int]:
    """The dataset order of ``epoch``: shuffled reproducibly from ``seed`` (None: no shuffle)."""
    order = list(range(n))
    if seed is not None:
        random.Random(f"trace_nb.train:{seed}:{epoch}").shuffle(order)
    return order


def open_run(path: str | os.PathLike[str] | None, resume: bool, config: dict[str, Any],
             optimizer: Any) -> tuple[RunState, bool]:
    """The state to start from, and whether it was resumed from ``path``.

    With ``resume`` and an existing checkpoint, the optimizer's parameters and state are
    set from it (after checking that ``config`` matches); otherwise a fresh state.
    """
    if resume and path is None:
        raise ValueError("resume=True needs checkpoint= (the path to resume from)")
    params = list(optimizer.parameters)
    if resume and Path(path).exists():
        state = load_checkpoint(path)
        state.check_config({k: v for k, v in config.items() if k != "parameters"})
        rename = match_names(state.config.get("parameters", []), [p.name for p in params])
        state.parameters = {rename.get(k, k): v for k, v in state.parameters.items()}
        state.best_parameters = {rename.get(k, k): v for k, v in state.best_parameters.items()}
        state.config["parameters"] = config["parameters"]
        set_parameter_values(params, state.parameters)
        if state.optimizer_state and hasattr(optimizer, "load_state"):
            optimizer.load_state(state.optimizer_state)
        return state, True
    return RunState(config=config, parameters=parameter_values(params)), False


def match_names(saved: list[str], current: list[str]) -> dict[str, str]:
    """Map the checkpoint's parameter names to the current ones.

    Equal names map to themselves. A name that is gone is paired by position with a
    current name of the same base (``offset`` and ``offset_1``: re-running a notebook cell
    while the old parameter is still alive gives the new one a suffix).

    Raises
    ------
    CheckpointError
        When the parameters cannot be paired.
    """
    if sorted(saved) == sorted(current):
        return {n: n for n in saved}
    pairs = list(zip(saved, current, strict=False))
    if len(saved) != len(current) or any(_base(a) != _base(b) for a, b in pairs):
        raise CheckpointError(f"the checkpoint's parameters {saved} do not match the "
                              f"optimizer's {current}")
    return dict(pairs)


def _base(name: str) -> str:
    return re.sub(r"_\d+$", "", name)
