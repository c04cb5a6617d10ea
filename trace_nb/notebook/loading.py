"""``trace_nb.load_session(path)``: a saved session becomes the session of its name.

Reading and checking the file is :func:`.session.read_session` (see :mod:`.persist`);
this module decides where the loaded state goes and keeps autosaving it.
"""

from __future__ import annotations

import pathlib
from typing import Any

from . import autosave, registry
from .persist import check_same_parameters
from .session import TraceSession, read_session

__all__ = ["load_session"]


def load_session(path: str) -> TraceSession:
    """Load a session saved with :meth:`TraceSession.save` as the session of its name.

    When a live session has that name (its cell ran), the file's values, code and history
    go into it: variables and the panel that hold it keep working on the loaded state, and
    it goes on autosaving (the autosave file of the work it replaced is kept aside first,
    see :func:`.autosave.live_work_kept`). The file's parameters must then be the live
    session's. With no live session, the loaded one becomes the session of its name and
    autosaves from then on; inside IPython the shell keeps it alive, as it keeps a
    ``%%trace`` cell's session (see :mod:`.registry`).

    Raises
    ------
    SessionFileError
        When the file is not a readable session, a value has the wrong type for the live
        session of that name, saved code fails validation, or the file's parameters are
        not the live session's. The live session (if any) is left as it was.
    FileNotFoundError
        When there is no such file.
    """
    s = read_session(path)  # everything checked: only now does anything change
    live = registry.find(s.name)
    if live is not None:
        check_same_parameters(live.parameter_names(), s.parameter_names(), live.name, path)
        with live.lock, autosave.live_work_kept(live, pathlib.Path(path)):
            live.adopt_state(s)
        return live
    shell = _shell()
    registry.register(s, shell)
    autosave.enable(s, shell)
    return s


def _shell() -> Any:
    """The running IPython shell, or None."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    return get_ipython()
