"""Autosave: every session's approved values and history in a JSON file beside the notebook.

A kernel restart loses the live session; the file keeps it. When a ``%%trace`` cell makes a
session that has a saved file (a new kernel, or the next day), the panel says so and offers
to restore it, or the magic restores at once with ``--restore``. Restoring is a choice, not
automatic: "Run All" after a restart must give the same results as the first time (a
tutorial's scripted steps would otherwise meet their own earlier answers).

The folder is ``.trace_nb/`` in the kernel's working directory (JupyterLab starts kernels in
the notebook's folder); ``TRACE_NB_STATE_DIR`` moves it, and ``TRACE_NB_STATE_DIR=off``
turns autosaving off. Files are written atomically and hold no API key.
"""

from __future__ import annotations

import os
import pathlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..text import short_repr

if TYPE_CHECKING:
    from .session import TraceSession

SAVED_ON = {"run", "approve", "reject", "edit", "restore"}  # events that change what is kept


def state_dir() -> pathlib.Path | None:
    """Where sessions are saved; None when autosaving is off."""
    value = os.environ.get("TRACE_NB_STATE_DIR", ".trace_nb").strip()
    if value.lower() in ("", "0", "off", "false", "no"):
        return None
    return pathlib.Path(value)


def state_path(name: str) -> pathlib.Path | None:
    """The autosave file of session ``name`` (None when autosaving is off)."""
    folder = state_dir()
    return None if folder is None else folder / f"{name}.json"


@dataclass
class SavedState:
    """What an autosave file offers: where, when, and the values it holds."""

    path: pathlib.Path
    saved_at: str
    values: dict[str, Any]
    runs: int

    def summary(self) -> str:
        shown = ", ".join(f"{k}={short_repr(v, 40)}" for k, v in list(self.values.items())[:4])
        more = f" and {len(self.values) - 4} more" if len(self.values) > 4 else ""
        return f"{shown}{more} ({self.runs} run(s), saved {self.saved_at})"


def enable(session: TraceSession) -> None:
    """Save ``session`` after every run and decision (once per session)."""
    if getattr(session, "_autosave_on", False):
        return
    session._autosave_on = True
    session.on_change(lambda event: _save(session) if event in SAVED_ON else None)


def _save(session: TraceSession) -> None:
    path = state_path(session.name)
    if path is None or not session.rows or session.restorable is not None:
        return  # nothing yet, or the saved state is still on offer: never overwrite it
    from .persist import save_session

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_session(session, str(path))
        session.autosave_error = None
    except Exception as e:  # noqa: BLE001 - a full disk must not break the review loop
        session.autosave_error = f"autosave to {path} failed: {type(e).__name__}: {e}"


def find_saved(name: str) -> SavedState | None:
    """The autosaved state of session ``name``, if a readable file exists."""
    path = state_path(name)
    if path is None or not path.is_file():
        return None
    from .persist import read_state

    try:
        state = read_state(str(path))
        values = {k: rec["value"] for k, rec in state["parameters"].items()}
        values.update({k: rec["source"] for k, rec in state["code"].items()})
        for mod, saved in state["modules"].items():
            params = saved.get("parameters", saved)
            if isinstance(params, dict):
                values.update({f"{mod}.{k}": v for k, v in params.items()})
        runs = len(state["history"])
    except Exception:  # noqa: BLE001 - unreadable: restore() will say exactly why
        values, runs = {}, 0
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    return SavedState(path, stamp, values, runs)


def restore(session: TraceSession, shell: Any = None) -> list[str]:
    """Put the autosaved values and history into ``session``; return the names restored.

    The file is read and checked completely first (:func:`~.persist.read_session`: types
    against ``session``'s, code validation); a file that fails leaves the session as it
    was and raises :class:`~.persist.SessionFileError`.
    """
    from .persist import SessionFileError, read_session

    saved = find_saved(session.name)
    if saved is None:
        raise SessionFileError(
            f"there is no saved state for session {session.name!r} "
            f"(looked for {state_path(session.name)})"
        )
    with session.lock:
        loaded = read_session(str(saved.path), like=session)
        return session.adopt_state(loaded, shell)
