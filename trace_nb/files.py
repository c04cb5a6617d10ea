"""Writing and reading state files: atomic writes, JSON that stays JSON, clear errors.

* :func:`atomic_write` leaves the previous version intact when interrupted, and removes
  the temporary files that writers killed mid-save left behind.
* :func:`dumps_json` refuses NaN and infinities (not JSON) with the path of the value.
* :func:`read_json` turns every way a file can be broken into one exception type.
* :func:`plain_copy` copies nested containers without recursion (a 600-deep list is fine).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "dumps_json", "finite_or_none", "plain_copy", "read_json"]

#: Temporary files of other hosts (or of an older naming) are removed after this long.
STALE_TEMP_S = 3600.0
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: keep its file)
    return True


def sweep_temp_files(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left by writers that died mid-save.

    A file of this host whose writer process is gone is removed at once; one of another
    host (a shared folder), or named otherwise, once it is older than
    :data:`STALE_TEMP_S`. Temporary files of live writers are kept.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = Path(path)
    prefix, removed = f".{path.name}.", []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix) : -len(".tmp")].split(".")
        if len(parts) >= 3 and parts[0] == _HOST and parts[1].isdigit():
            pid = int(parts[1])
            if pid == os.getpid() or _alive(pid):
                continue
        else:
            try:
                if now - entry.stat().st_mtime < STALE_TEMP_S:
                    continue
            except OSError:
                continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def atomic_write(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, flushed and
    fsynced, then ``os.replace``d over ``path`` (and the folder fsynced so the rename lasts).
    A reader or a restarted kernel sees the old file or the new one, never a torn one.

    The temporary file is named after this host and process, so the next write removes
    those of writers that were killed mid-save (:func:`sweep_temp_files`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temp_files(path)
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # POSIX: make the rename itself durable; a no-op where folders cannot be opened
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


# ----------------------------------------------------------------------------- JSON


def finite_or_none(value: Any) -> Any:
    """``None`` for a float NaN or infinity (a score that is not a number), else the value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _nonfinite_path(data: Any) -> str | None:
    """Where the first NaN/infinity sits in ``data`` (``parameters['x'][2]``), iteratively."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where or "the value"
        if isinstance(value, dict):
            stack.extend((v, f"{where}[{k!r}]") for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
    return None


def dumps_json(data: Any, what: str, indent: int | None = 1) -> str:
    """``json.dumps`` for a state file, with errors that say what to fix.

    Raises
    ------
    TypeError
        A value JSON cannot store (an object, a set...).
    ValueError
        A NaN or infinity (JSON has none; the path says where), or nesting too deep.
    """
    try:
        return json.dumps(data, indent=indent, allow_nan=False)
    except TypeError as e:
        raise TypeError(
            f"{what} holds a value that JSON cannot store ({e}); values must be "
            "str, numbers, bools, None, lists or dicts"
        ) from None
    except ValueError:
        where = _nonfinite_path(data) or "a value"
        raise ValueError(
            f"{what} holds NaN or infinity at {where}, which JSON cannot store; "
            "set a finite number (or None) first"
        ) from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to save as JSON") from None


def read_json(
    path: str | os.PathLike, error: Callable[[str], Exception], what: str = "file"
) -> Any:
    """Read a JSON state file, raising ``error(message)`` for anything but a missing file.

    Not UTF-8, not JSON, nested too deeply, or too large: each becomes one exception
    type whose message names the file and the problem. ``NaN``/``Infinity`` read as None.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise error(f"cannot read the {what} {path}: {e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(
            f"{path} is not a UTF-8 text file ({e.reason} at byte {e.start}); "
            f"it is not a trace_nb {what}"
        ) from None
    try:
        return json.loads(text, parse_constant=lambda _word: None)
    except json.JSONDecodeError as e:
        raise error(
            f"{path} is not valid JSON ({e.msg}, line {e.lineno} column {e.colno}); "
            f"the {what} is damaged"
        ) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise error(
            f"{path} cannot be read as JSON ({type(e).__name__}); the {what} is "
            "damaged or nested too deeply"
        ) from None


# ----------------------------------------------------------------------------- copies


def plain_copy(value: Any) -> Any:
    """A deep copy of nested dicts/lists/tuples/sets, made without recursion.

    Other objects inside are copied with :func:`copy.deepcopy` (they are leaves here).
    """
    containers = (dict, list, tuple, set, frozenset)
    if not isinstance(value, containers):
        return copy.deepcopy(value)
    root: list[Any] = [None]
    # (source, setter) pairs; containers are built as lists/dicts, then converted.
    work: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    finish: list[tuple[Any, Any, Any, type]] = []
    while work:
        src, parent, key = work.pop()
        if isinstance(src, dict):
            out: Any = {}
            parent[key] = out
            for k, v in src.items():
                if isinstance(v, containers):
                    out[k] = None
                    work.append((v, out, k))
                else:
                    out[k] = copy.deepcopy(v)
        elif isinstance(src, containers):
            items = list(src)
            out = [None] * len(items)
            parent[key] = out
            for i, v in enumerate(items):
                if isinstance(v, containers):
                    work.append((v, out, i))
                else:
                    out[i] = copy.deepcopy(v)
            if type(src) is not list:
                finish.append((out, parent, key, type(src)))
        else:
            parent[key] = copy.deepcopy(src)
    for out, parent, key, kind in reversed(finish):  # innermost first
        try:
            parent[key] = kind(out)
        except TypeError:  # a namedtuple takes its items as arguments
            try:
                parent[key] = kind(*out)
            except TypeError:
                parent[key] = out
    return root[0]
