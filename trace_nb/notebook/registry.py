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

import re
import weakref
from typing import Any, Protocol


class Named(Protocol):
    """What the registry needs of a session: its name (and to be weakly referable)."""

    name: str


__all__ = ["check_name", "find", "forget", "names", "register", "session"]

_BY_NAME: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
#: The attribute of an IPython shell that holds the sessions it owns ({name: session}).
#: A cycle (shell → sessions → shell) the garbage collector frees with the shell.
_SHELL_ATTR = "_trace_nb_sessions"
#: session -> (a weak reference to) the shell that owns it.
_OWNER: weakref.WeakKeyDictionary[Any, weakref.ref] = weakref.WeakKeyDictionary()


#: A session name: a letter (any script), digit or ``_`` first, then letters, digits, ``_``,
#: ``-``, ``.`` and single inner spaces. It names the autosave file, so no path separator,
#: quote or control character can reach that file's name.
_NAME = re.compile(r"\w(?:[\w.-]| (?=[\w.-])){0,99}")


def check_name(name: object) -> str:
    """``name`` if it is a valid session name; else ValueError saying what is wrong.

    A session name starts with a letter (of any script), a digit or ``_`` and holds only letters,
    digits, ``_``, ``-``, ``.`` and single spaces between them (at most 100 characters):
    it names the session's autosave file, so a path separator (``../x``), a quote or a
    control character is refused rather than written. (Names with spaces, which older
    versions accepted, still load; the magic line cannot give one.)
    """
    if isinstance(name, str) and _NAME.fullmatch(name):
        return name
    hint = ""
    if isinstance(name, str) and len(name) > 1 and name[0] in "'\"" and name[-1:] == name[:1]:
        hint = " (the quotes are part of it: write --name qa, not --name 'qa')"
    raise ValueError(
        f"{name!r} is not a valid session name{hint}: use a letter, digit or '_' first, then "
        "letters, digits, '_', '-' or '.' (at most 100 characters, no '/', '\\' or "
        "quotes), e.g. --name qa_v2"
    )


def register(s: Named, shell: Any = None) -> None:
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


def find(name: str) -> Any:
    """The live session named ``name``, or None."""
    return _BY_NAME.get(name)


def names() -> list[str]:
    """The names of the live sessions, sorted."""
    return sorted(_BY_NAME.keys())


def session(name: str = "default") -> Any:
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


def forget(s: Named) -> None:
    """Stop finding ``s`` by name, and let the shell that owns it stop keeping it.

    What else holds ``s`` (a variable, an open panel) still keeps it alive.
    """
    if _BY_NAME.get(s.name) is s:
        del _BY_NAME[s.name]
    _disown(s)


def _disown(s: Named) -> None:
    ref = _OWNER.pop(s, None)
    shell = ref() if ref is not None else None
    owned = getattr(shell, _SHELL_ATTR, None)
    if owned is not None and owned.get(s.name) is s:
        del owned[s.name]
