"""Autosave: every session's approved values and history in a JSON file beside the notebook.

A kernel restart loses the live session; the file keeps it. When a ``%%trace`` cell makes a
session that has a saved file (a new kernel, or the next day), the panel says so and offers
to restore it, or the magic restores at once with ``--restore``. Restoring is a choice, not
automatic: "Run All" after a restart must give the same results as the first time (a
tutorial's scripted steps would otherwise meet their own earlier answers).

Files are keyed by notebook and session: ``.trace_nb/<notebook>-<hash>/<session>.json``, so
two notebooks in one folder never share a file. The notebook is found the way each
frontend tells the kernel (:func:`notebook_path`); where no notebook is known (a script,
a terminal IPython) the file is ``.trace_nb/<session>.json``, the layout of earlier
versions, which is also still found and offered (never overwritten) when a notebook has no
file of its own yet.

Saving never stops: while an offer is pending (or the saved file is damaged) the offered
file is first kept aside as ``<session>.offered-<time>.json`` — the offer then restores
from there — and the live work is saved in its place (:func:`status` says so).

The folder is ``.trace_nb/`` in the kernel's working directory (JupyterLab starts kernels in
the notebook's folder); ``TRACE_NB_STATE_DIR`` moves it, and ``TRACE_NB_STATE_DIR=off``
turns autosaving off. Files are written atomically and hold no API key.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pathlib
import re
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..text import cut, short_repr
from . import registry
from .persist import SessionFileError, read_state, save_session
from .session import TraceSession, read_session

#: Events that change what is kept: a run, its feedback and score, every decision, and
#: the values ``session.train()`` learned.
SAVED_ON = {"run", "feedback", "approve", "reject", "edit", "restore", "train"}


_ENABLED: weakref.WeakSet[TraceSession] = weakref.WeakSet()  # sessions that autosave


def state_dir() -> pathlib.Path | None:
    """Where sessions are saved; None when autosaving is off."""
    value = os.environ.get("TRACE_NB_STATE_DIR", ".trace_nb").strip()
    if value.lower() in ("", "0", "off", "false", "no"):
        return None
    return pathlib.Path(value)


def notebook_path(shell: Any = None) -> str | None:
    """The path of the notebook whose kernel this is, as the frontend told it; or None.

    JupyterLab, Notebook 7 and Voilà (through Jupyter Server) set ``JPY_SESSION_NAME`` in
    the kernel's environment, which ipykernel also puts in the namespace as
    ``__session__``; VS Code sets ``__vsc_ipynb_file__``. A script or terminal IPython has
    none of them.
    """
    ns = getattr(shell, "user_ns", None) or {}
    for found in (
        ns.get("__session__"),
        ns.get("__vsc_ipynb_file__"),
        os.environ.get("JPY_SESSION_NAME"),
    ):
        if isinstance(found, str) and found.strip():
            return found.strip()
    return None


def notebook_key(notebook: str) -> str:
    """The folder name of a notebook's autosave files: its file name (readable) and a hash
    of its whole path (two ``analysis.ipynb`` in different folders stay apart)."""
    stem = pathlib.PurePath(notebook.replace("\\", "/")).stem or "notebook"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._")[:60] or "notebook"
    digest = hashlib.sha256(notebook.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem}-{digest}"


def state_path(name: str, shell: Any = None) -> pathlib.Path | None:
    """The autosave file of session ``name`` in the notebook of ``shell`` (None when
    autosaving is off)."""
    folder = state_dir()
    if folder is None:
        return None
    notebook = notebook_path(shell)
    if notebook is not None:
        folder = folder / notebook_key(notebook)
    return folder / f"{name}.json"


def legacy_path(name: str) -> pathlib.Path | None:
    """Where versions before per-notebook keys saved session ``name``."""
    folder = state_dir()
    return None if folder is None else folder / f"{name}.json"


@dataclass
class SavedState:
    """What an autosave file offers: where, when, and the values it holds.

    ``problem`` says why the file cannot be read (then ``values`` is empty); ``legacy``
    marks a file of the layout before per-notebook keys (it may come from another notebook
    in the folder); ``kept_aside`` is set once the live work was saved in the file's old
    place and ``path`` moved aside.
    """

    path: pathlib.Path
    saved_at: str
    values: dict[str, Any]
    runs: int
    problem: str | None = None
    legacy: bool = False
    kept_aside: bool = False

    def summary(self) -> str:
        if self.problem is not None:
            return f"the saved file cannot be read ({self.problem}; saved {self.saved_at})"
        shown = ", ".join(f"{k}={short_repr(v, 40)}" for k, v in list(self.values.items())[:4])
        more = f" and {len(self.values) - 4} more" if len(self.values) > 4 else ""
        return f"{shown}{more} ({self.runs} run(s), saved {self.saved_at})"


def enable(session: TraceSession, shell: Any = None) -> None:
    """Save ``session`` after every run, feedback and decision, to the file of its name in
    ``shell``'s notebook (once per session; the file is fixed then)."""
    if session in _ENABLED:
        return
    _ENABLED.add(session)
    session.autosave_path = state_path(session.name, shell)
    session.on_change(lambda event: _save(session) if event in SAVED_ON else None)


def _save(session: TraceSession) -> None:
    path = session.autosave_path
    if path is None or not session.rows:
        return
    if registry.find(session.name) is not session:  # closed: the name is another's now
        session.autosave_error = (
            f"not autosaved: session {session.name!r} was closed, so {path} is left to "
            "the session of that name now (save this one with .save(path))"
        )
        return

    try:
        _keep_offer_aside(session, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_session(session, str(path))
        session.autosave_error = None
    except Exception as e:  # noqa: BLE001 - a full disk must not break the review loop
        session.autosave_error = f"autosave to {path} failed: {type(e).__name__}: {e}"


def _keep_offer_aside(session: TraceSession, path: pathlib.Path) -> None:
    """Before the live work takes ``path``: move the file on offer there out of its way."""
    offer = session.restorable
    if offer is None or offer.kept_aside or offer.path != path or not path.is_file():
        return
    aside = _free_name(path, "offered")
    os.replace(path, aside)
    offer.path, offer.kept_aside = aside, True


def status(session: TraceSession) -> str | None:
    """A sentence for the panel about autosaving while an offer is pending: where the
    live work goes and where the offered values are kept; None when nothing is on offer."""
    offer = session.restorable
    if offer is None:
        return None
    live = session.autosave_path
    where = f"this session's work is saved to {live}" if live is not None else "autosave is off"
    origin = (
        " (saved before files were kept per notebook: it may come from another notebook "
        "in this folder)"
        if offer.legacy
        else ""
    )
    earlier = _kept_files(live, exclude=offer.path)
    shown = ", ".join(str(p) for p in earlier[-3:])  # the newest three
    more = f" and {len(earlier) - 3} older in {earlier[0].parent}" if len(earlier) > 3 else ""
    also = (
        f" Earlier saves kept aside (load one with trace_nb.load_session(path)): {shown}{more}."
        if earlier
        else ""
    )
    if offer.kept_aside or offer.path != live:
        return f"The offered values stay in {offer.path}{origin}; {where}.{also}"
    return (
        f"The offered values are in {offer.path}{origin}; once this session saves, they are "
        f"kept aside in a copy beside it and {where}.{also}"
    )


def _kept_files(live: pathlib.Path | None, exclude: pathlib.Path | None = None) -> list:
    """The files kept aside beside ``live`` (offers a session saved past, live work a
    restore replaced), oldest first: an offer left pending in two kernels in a row is no
    longer the one on offer, but it is still named."""
    if live is None:
        return []
    try:
        found = [
            p
            for kind in ("offered", "before-restore")
            for p in live.parent.glob(f"{glob.escape(live.stem)}.{kind}-*.json")
            if p != exclude and p.is_file()
        ]
        return sorted(found, key=lambda p: p.stat().st_mtime)
    except OSError:
        return []


def _keep_live_aside(session: TraceSession, offered: pathlib.Path) -> pathlib.Path | None:
    """Before a restore replaces this session's values and history: move the file of its
    live work out of the way (it is not the offered file); the new place, or None."""
    live = session.autosave_path
    if live is None or not session.rows or not live.is_file() or _same_file(live, offered):
        return None
    aside = _free_name(live, "before-restore")
    os.replace(live, aside)
    return aside


def _same_file(a: pathlib.Path, b: pathlib.Path) -> bool:
    try:
        return a == b or os.path.samefile(a, b)
    except OSError:
        return False


def _free_name(path: pathlib.Path, kind: str) -> pathlib.Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.stem}.{kind}-{stamp}.json")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.stem}.{kind}-{stamp}-{n}.json")
    return aside


def find_saved(name: str, shell: Any = None) -> SavedState | None:
    """The autosaved state of session ``name`` in ``shell``'s notebook: its own file, or
    else a file of the layout before per-notebook keys; None when there is neither."""
    path = state_path(name, shell)
    if path is None:
        return None
    old = legacy_path(name)
    legacy = False
    if not path.is_file():
        if old is None or old == path or not old.is_file():
            return None
        path, legacy = old, True
    return _read_offer(path, legacy)


def _read_offer(path: pathlib.Path, legacy: bool) -> SavedState:
    problem = None
    try:
        state = read_state(str(path))
        values = {k: rec["value"] for k, rec in state["parameters"].items()}
        values.update({k: rec["source"] for k, rec in state["code"].items()})
        for mod, saved in state["modules"].items():
            params = saved.get("parameters", saved)
            if isinstance(params, dict):
                values.update({f"{mod}.{k}": v for k, v in params.items()})
        runs = len(state["history"])
    except Exception as e:  # noqa: BLE001 - unreadable: restore() says exactly why
        values, runs = {}, 0
        problem = cut(f"{type(e).__name__}: {e}", 300)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    return SavedState(path, stamp, values, runs, problem, legacy)


def restore(session: TraceSession, shell: Any = None) -> list[str]:
    """Put the autosaved values and history into ``session``; return the names restored.

    The file on offer (``session.restorable``, else the one :func:`find_saved` finds) is
    read and checked completely first (:func:`~.session.read_session`: types against
    ``session``'s, code validation); a file that fails leaves the session as it was and
    raises :class:`~.persist.SessionFileError`.
    """
    saved = session.restorable or find_saved(session.name, shell or session.shell)
    if saved is None:
        raise SessionFileError(
            f"there is no saved state for session {session.name!r} "
            f"(looked for {state_path(session.name, shell or session.shell)})"
        )
    with session.lock:
        loaded = read_session(str(saved.path), like=session)
        with live_work_kept(session, saved.path):  # the work done since the restart
            return session.adopt_state(loaded, shell)


@contextlib.contextmanager
def live_work_kept(session: TraceSession, source: pathlib.Path) -> Iterator[None]:
    """Around a restore or load from ``source`` that replaces ``session``'s values and
    history: the autosave file of its live work is first moved aside as
    ``<session>.before-restore-<time>.json`` (``session.autosave_kept`` says where), and put
    back if the replacement fails."""
    kept = session.autosave_kept = _keep_live_aside(session, source)
    try:
        yield
    except BaseException:
        if kept is not None:  # nothing changed: the live work's file goes back
            os.replace(kept, session.autosave_path)
            session.autosave_kept = None
        raise
