"""A run's files kept on local disk until they go to the tracker in one go.

Uploading a file per training step costs two HTTP requests and the tracking server's work
while the run goes on; writing it to a local folder costs a file write. :class:`Staging`
owns that folder: :meth:`Staging.write` puts a text file in it (already scrubbed by the
caller), the tracker takes the folder (:meth:`Staging.take`) when the run ends, uploads it
in one go and removes it. When the upload does not happen (a tracker that is down, a process
that dies), the folder stays where it is and the warning names it, so nothing is lost; a
process killed before it could warn leaves a folder that :func:`orphans` finds (its name holds
the process id), and the next logger warns about it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

__all__ = ["Staging", "file_count", "orphans", "remove"]

PREFIX = "trace_nb-mlflow-"
_NAME = re.compile(rf"{PREFIX}.*-p(\d+)-[^-]+")


class Staging:
    """A folder of files waiting to be uploaded (made on first :meth:`write`).

    Parameters
    ----------
    label
        Part of the folder's name, so that a kept folder can be told apart
        (``trace_nb-mlflow-LABEL-pPID-xxxx`` in the system's temporary folder).
    """

    def __init__(self, label: str = "run") -> None:
        self.label = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40]
        self.folder: Path | None = None
        self._lock = threading.Lock()

    def write(self, path: str, text: str) -> None:
        """Write ``text`` as the file ``path`` (relative, ``/``-separated) of the run,
        replacing an earlier one."""
        parts = [p for p in path.split("/") if p not in ("", ".", "..")]
        if not parts:
            raise ValueError(f"not a file path: {path!r}")
        with self._lock:
            if self.folder is None:
                prefix = f"{PREFIX}{self.label}-p{os.getpid()}-"
                self.folder = Path(tempfile.mkdtemp(prefix=prefix))
            target = self.folder.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def take(self) -> Path | None:
        """The folder with what was written so far (None when nothing was), detached: later
        writes start a new folder, so an upload of this one cannot lose them."""
        with self._lock:
            folder, self.folder = self.folder, None
        return folder


def file_count(folder: Path) -> int:
    """How many files ``folder`` holds."""
    return sum(1 for p in folder.rglob("*") if p.is_file())


def remove(folder: Path) -> None:
    """Remove a folder whose files were uploaded."""
    shutil.rmtree(folder, ignore_errors=True)


def orphans() -> list[Path]:
    """Staging folders (with files) in the temporary folder whose process is gone: files of
    runs that ended before their upload, and before they could say where the files were."""
    if os.name != "posix":  # process ids are checked with kill(pid, 0), a POSIX idiom
        return []
    found = []
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        m = _NAME.fullmatch(folder.name)
        if m and folder.is_dir() and not _alive(int(m.group(1))) and file_count(folder):
            found.append(folder)
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True
