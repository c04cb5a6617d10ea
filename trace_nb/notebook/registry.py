"""Finding sessions by name without keeping them alive.

``trace_nb.session(name)`` finds the session of the ``%%trace --name NAME`` cell. The
lookup table holds sessions weakly: what keeps a session alive is its owner, never the
table. A ``%%trace`` cell's session (and one loaded inside IPython) is owned by the
IPython shell it runs in, so it lasts as long as that shell or until
:func:`forget` / :meth:`TraceSession.close <trace_nb.notebook.session.TraceSession.close>`;
a session made in plain Python is owned by whoever holds it, like any object. A dropped
session, with its graph, panel and shell, is then freed by the garbage collector.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import TraceSession

__all__ = ["find", "forget", "names", "register", "session"]

_BY_NAME: weakref.WeakValueDictionary[str, TraceSession] = weakref.WeakValueDictionary()
#: The attribute of an IPython shell that holds the sessions it owns ({name: session}).
#: A cycle (shell → sessions → shell) the garbage collector frees with the shell.
_SHELL_ATTR = "_trace_nb_sessions"
#: session -> (a weak reference to) the shell that owns it.
_OWNER: weakref.WeakKeyDictionary[TraceSession, weakref.ref] = weakref.WeakKeyDictionary()


def register(s: TraceSession, shell: Any = None) -> None:
    """Make ``s`` the session named ``s.name`` (replacing any other of that name).

    With ``shell``, the shell owns ``s`` (keeps it alive) in place of the session of that
    name it owned before.
    """
    old = _BY_NAME.get(s.name)
    if old is not None and old is not s:
        _disown(old)  # the name is s's now: its shell stops keeping the old one
    _BY_NAME[s.name] = s
    if shell is not None:
        _disown(s)  # one owner at a time
        owned = getattr(shell, _SHELL_ATTR, None)
        if owned is None:
            owned = {}
            setattr(shell, _SHELL_ATTR, owned)
        owned[s.name] = s
        _OWNER[s] = weakref.ref(shell)


def find(name: str) -> TraceSession | None:
    """The live session named ``name``, or None."""
    return _BY_NAME.get(name)


def names() -> list[str]:
    """The names of the live sessions, sorted."""
    return sorted(_BY_NAME.keys())


def session(name: str = "default") -> TraceSession:
    """The session of the ``%%trace --name NAME`` cell.

    Raises
    ------
    KeyError
        When no live session has that name; the message lists those that do.
    """
    found = find(name)
    if found is None:
        known = ", ".join(names()) or "none yet"
        raise KeyError(
            f"no trace session named {name!r} (sessions: {known}); run a "
            f"%%trace --name {name} cell first"
        )
    return found


def forget(s: TraceSession) -> None:
    """Stop finding ``s`` by name, and let the shell that owns it stop keeping it.

    What else holds ``s`` (a variable, an open panel) still keeps it alive.
    """
    if _BY_NAME.get(s.name) is s:
        del _BY_NAME[s.name]
    _disown(s)


def _disown(s: TraceSession) -> None:
    ref = _OWNER.pop(s, None)
    shell = ref() if ref is not None else None
    owned = getattr(shell, _SHELL_ATTR, None)
    if owned is not None and owned.get(s.name) is s:
        del owned[s.name]
