"""Training state as JSON, written atomically so a crash never leaves half a checkpoint.

A checkpoint holds everything needed to continue a run after a kernel restart: the
parameters, the best parameters and score, the history, the optimizer's state, the usage
spent so far, and the position in the data (step, and the shuffled order of the current
epoch). It never holds an API key: only the optimizer's ``state()`` and plain values.

A checkpoint is read as untrusted input: every field is type-checked, each parameter
value must be of the kind of the live parameter it resumes (an int stays a number), and
saved code passes the same validation as an LLM proposal, against the live function's
signature. Anything wrong is a :class:`CheckpointError` and nothing is changed.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import savefile
from ..errors import CheckpointError, CoercionError
from ..files import finite_or_none, plain_copy
from ..llm.usage import Usage
from ..text import cut, short_repr

__all__ = [
    "CheckpointError",
    "RunState",
    "epoch_order",
    "load_checkpoint",
    "open_run",
    "parameter_values",
    "restore_best",
    "save_checkpoint",
    "set_parameter_values",
]


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
        Calls, tokens and cost spent so far (all sessions): a :class:`Usage`, stored as
        :meth:`Usage.to_dict` (read back with :meth:`Usage.from_dict`, so a damaged count
        reads as 0).
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
    usage: Usage = field(default_factory=Usage)
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The fields of a ``train`` save file (see :mod:`trace_nb.savefile`)."""
        # Not dataclasses.asdict: it copies recursively and fails on deep values.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["usage"] = self.usage.amount().to_dict()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        """The state a checkpoint's fields hold, every field type-checked.

        Raises
        ------
        CheckpointError
            Naming the first field that is missing its expected type.
        """
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name, value in values.items():
            expected = _FIELD_TYPES[name]
            ok = isinstance(value, expected) and not (
                isinstance(value, bool) and bool not in _as_tuple(expected)
            )
            if ok and name in ("step", "stale") and value < 0:
                ok = False
            if ok and name == "order":
                ok = all(isinstance(i, int) and not isinstance(i, bool) for i in data[name])
            if ok and name == "history":
                ok = all(
                    isinstance(row, dict)
                    and isinstance(row.get("step"), int)
                    and not isinstance(row.get("step"), bool)
                    for row in data[name]
                )
            if not ok:
                raise CheckpointError(
                    f"the checkpoint's {name!r} is {_describe(value)}, which "
                    "is not what a training checkpoint holds there; the "
                    "file is damaged or from something else"
                )
        if "usage" in values:
            values["usage"] = Usage.from_dict(values["usage"])
        return cls(**values)

    def check_config(self, config: dict[str, Any]) -> None:
        """Raise :class:`CheckpointError` if ``config`` cannot continue this run."""
        diffs = [
            f"{k}: checkpoint {self.config.get(k)!r}, now {v!r}"
            for k, v in config.items()
            if k in self.config and self.config[k] != v
        ]
        if diffs:
            raise CheckpointError(
                "the checkpoint belongs to a different run setup ("
                + "; ".join(diffs)
                + "); use another checkpoint path or "
                "resume=False to start over"
            )


_FIELD_TYPES: dict[str, Any] = {
    "step": int,
    "epoch": int,
    "order": list,
    "parameters": dict,
    "best_parameters": dict,
    "best_score": (int, float, type(None)),
    "best_step": (int, type(None)),
    "stale": int,
    "history": list,
    "optimizer_state": dict,
    "usage": dict,
    "config": dict,
}


def _as_tuple(kind: Any) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {short_repr(value, 61)}"


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
    data = state.to_json()
    # A score that is not a number is no score: NaN is not JSON.
    data["best_score"] = finite_or_none(data["best_score"])
    data["history"] = [{k: finite_or_none(v) for k, v in row.items()} for row in data["history"]]
    return savefile.save(
        path, "train", data, "the training state (checkpoints need JSON-ready values)"
    )


def load_checkpoint(path: str | os.PathLike[str]) -> RunState:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Older checkpoints (``trace_nb.train/1``) are migrated as they are read.

    Raises
    ------
    CheckpointError
        For a file that is not UTF-8, not JSON, too deep, not shaped like a checkpoint,
        of another kind, or written by a newer trace_nb.
    """
    data = savefile.load(path, "train", CheckpointError)
    try:
        return RunState.from_json(data)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def parameter_values(params: Iterable[Any]) -> dict[str, Any]:
    """``{name: value}`` of parameter nodes (copies, so later in-place edits do not leak in)."""
    return {p.name: plain_copy(p.peek()) for p in params}


def set_parameter_values(params: Iterable[Any], values: Mapping[str, Any]) -> None:
    """Set each parameter whose name is in ``values``; others keep their value."""
    for p in params:
        if p.name in values:
            p.set_value(plain_copy(values[p.name]))


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


def open_run(
    path: str | os.PathLike[str] | None, resume: bool, config: dict[str, Any], optimizer: Any
) -> tuple[RunState, bool]:
    """The state to start from, and whether it was resumed from ``path``.

    With ``resume`` and an existing checkpoint, the optimizer's parameters and state are
    set from it (after checking that ``config`` matches); otherwise a fresh state.
    """
    if resume and path is None:
        raise ValueError("resume=True needs checkpoint= (the path to resume from)")
    params = list(optimizer.parameters)
    if resume and path is not None and Path(path).exists():
        state = load_checkpoint(path)
        state.check_config({k: v for k, v in config.items() if k != "parameters"})
        size = config.get("dataset_size")
        if state.order and isinstance(size, int) and sorted(state.order) != list(range(size)):
            raise CheckpointError(
                f"{path}: its epoch order is not an order of the "
                f"{size} examples; the file is damaged"
            )
        saved_names = state.config.get("parameters", [])
        if not isinstance(saved_names, list) or not all(isinstance(n, str) for n in saved_names):
            raise CheckpointError(f"{path}: its config lists no parameter names")
        rename = match_names(saved_names, [p.name for p in params])
        state.parameters = {rename.get(k, k): v for k, v in state.parameters.items()}
        state.best_parameters = {rename.get(k, k): v for k, v in state.best_parameters.items()}
        state.parameters = check_values(params, state.parameters, path)
        state.best_parameters = check_values(params, state.best_parameters, path)
        state.config["parameters"] = config["parameters"]
        # Nothing has changed yet; the optimizer's state goes first, and back if it fails.
        if state.optimizer_state and hasattr(optimizer, "load_state"):
            before = optimizer.state() if hasattr(optimizer, "state") else None
            try:
                optimizer.load_state(state.optimizer_state)
            except Exception as e:  # noqa: BLE001 - a damaged state must not half-load
                if before is not None:
                    optimizer.load_state(before)
                raise CheckpointError(
                    f"{path}: the optimizer state cannot be loaded "
                    f"({type(e).__name__}: {cut(str(e), 200)})"
                ) from None
        set_parameter_values(params, state.parameters)
        return state, True
    return RunState(config=config, parameters=parameter_values(params)), False


def check_values(
    params: Iterable[Any], values: Mapping[str, Any], path: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Saved values checked against the live parameters they will replace.

    A value must be of the live value's kind (:func:`~trace_nb.notebook.persist.same_kind`
    rules: an int stays a whole number, a str a str...); saved code must pass
    :func:`~trace_nb.optim.codecheck.validate_source` against the live function and load
    (an import it runs must succeed), as an approved proposal must. Names
    that are not live parameters are refused.

    Returns
    -------
    dict
        The values (code normalised).

    Raises
    ------
    CheckpointError
        Naming the parameter and what is wrong.
    """
    from ..optim.codecheck import validate_source

    where = f"{path}: " if path is not None else ""
    live = {p.name: p for p in params}
    out: dict[str, Any] = {}
    for name, value in values.items():
        p = live.get(name)
        if p is None:
            raise CheckpointError(
                f"{where}the checkpoint has a value for {name!r}, which is "
                f"not a parameter of the optimizer ({', '.join(live)})"
            )
        if getattr(p, "is_code", False):
            try:
                out[name] = validate_source(value, name, p.peek())
            except CoercionError as e:
                raise CheckpointError(f"{where}{e}") from None
            loader = getattr(p, "loader", None)
            if loader is not None:  # made as a call would make it: all or nothing
                try:
                    loader(out[name])
                except Exception as e:  # noqa: BLE001 - any failure to load refuses it
                    raise CheckpointError(
                        f"{where}the saved code of {name!r} does not load ({type(e).__name__}: "
                        f"{cut(str(e), 200)}); fix the import it needs, or start over with "
                        "resume=False"
                    ) from None
        elif not _same_kind(p.peek(), value):
            raise CheckpointError(
                f"{where}parameter {name!r} holds {_describe(p.peek())} but the checkpoint "
                f"gives {_describe(value)}; resume with the parameters this run was started "
                "with, or start over with resume=False"
            )
        else:
            out[name] = _like(p.peek(), value)
    return out


def _like(current: Any, saved: Any) -> Any:
    """A JSON value back in the live value's container or number type."""
    if isinstance(current, (tuple, set, frozenset)) and isinstance(saved, list):
        try:
            return type(current)(saved)
        except TypeError:
            return saved
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(saved, float):
        return int(saved)
    return saved


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _same_kind(current: Any, saved: Any) -> bool:
    if current is None:
        return True
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(saved, float):
        return saved.is_integer()
    if isinstance(current, (set, frozenset)):
        return isinstance(saved, list)
    return _kind(current) == _kind(saved)


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
        raise CheckpointError(
            f"the checkpoint's parameters {saved} do not match the optimizer's {current}"
        )
    return dict(pairs)


def _base(name: str) -> str:
    return re.sub(r"_\d+$", "", name)
