"""The one save-file format: a versioned JSON envelope, written atomically, read with checks.

Everything trace_nb keeps on disk (a session, a module's learned values, a training
checkpoint) is one JSON object::

    {"format": "trace_nb", "kind": "session", "version": 2, ...the kind's own fields...}

:func:`save` writes it atomically (:func:`~trace_nb.files.atomic_write`); :func:`load`
reads it back as untrusted input and returns the kind's fields at the current version,
or raises the caller's error type with a message that says what is wrong and what to do:
a damaged or truncated file, a file of another kind (and how to load that kind), a file
that is not trace_nb's, or one written by a newer trace_nb (upgrade to read it).

Older files keep loading: the first formats were spelled ``"format": "trace_nb.<kind>/1"``
with the kind's fields beside it; they read as version 1 and are migrated step by step
(:data:`MIGRATIONS`) to the current version. Checking the fields is the caller's job.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import atomic_write, dumps_json, read_json
from .text import short_repr

__all__ = ["FORMAT", "KINDS", "MIGRATIONS", "Kind", "dumps", "envelope", "load", "parse", "save"]

FORMAT = "trace_nb"
#: The keys of the envelope itself; a kind's fields may not use them.
ENVELOPE_KEYS = ("format", "kind", "version")


@dataclass(frozen=True)
class Kind:
    """One kind of save file: its current version, and how to talk about it."""

    version: int
    what: str  # "saved session": how messages name a file of this kind
    load_with: str  # the call that loads a file of this kind (for "wrong kind" errors)


KINDS: dict[str, Kind] = {
    "session": Kind(2, "saved session", "trace_nb.load_session(path)"),
    "module": Kind(2, "module file", "trace_nb.modules.load(module, path)"),
    "train": Kind(2, "training checkpoint", "trace_nb.train(..., checkpoint=path, resume=True)"),
}


def _v1_to_v2(fields: dict[str, Any]) -> dict[str, Any]:
    # Version 2 moved the kind and version out of the "format" string into the envelope;
    # the fields themselves are unchanged.
    return fields


#: ``MIGRATIONS[(kind, n)]`` turns a kind's fields at version ``n`` into version ``n + 1``.
MIGRATIONS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    (kind, 1): _v1_to_v2 for kind in KINDS
}
#: The first spelling of each kind (version 1), before the envelope.
LEGACY: dict[str, str] = {f"trace_nb.{kind}/1": kind for kind in KINDS}


def envelope(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` wrapped in the envelope of ``kind`` at its current version."""
    spec = KINDS[kind]
    clash = [k for k in ENVELOPE_KEYS if k in fields]
    if clash:
        raise ValueError(f"a {spec.what}'s fields may not be named {clash}")
    return {"format": FORMAT, "kind": kind, "version": spec.version, **fields}


def dumps(kind: str, fields: dict[str, Any], what: str | None = None) -> str:
    """The JSON text of ``fields`` in the envelope of ``kind`` (ends with a newline).

    Raises
    ------
    TypeError, ValueError
        For values JSON cannot store (see :func:`~trace_nb.files.dumps_json`).
    """
    return dumps_json(envelope(kind, fields), what or f"the {KINDS[kind].what}") + "\n"


def save(
    path: str | os.PathLike[str], kind: str, fields: dict[str, Any], what: str | None = None
) -> Path:
    """Write ``fields`` as a save file of ``kind`` to ``path``, atomically.

    Nothing is written when a value cannot be stored (TypeError / ValueError).
    """
    return atomic_write(path, dumps(kind, fields, what))


def load(
    path: str | os.PathLike[str], kind: str, error: Callable[[str], Exception]
) -> dict[str, Any]:
    """Read the save file of ``kind`` at ``path``: its fields at the current version.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    Exception
        ``error(message)`` for anything else: a file that cannot be read, is not UTF-8 or
        not JSON (damaged or truncated), is not a trace_nb file, holds another kind, or
        was written by a newer trace_nb.
    """
    data = read_json(path, error, KINDS[kind].what)
    return parse(data, kind, error, where=os.fspath(path))


def parse(
    data: Any, kind: str, error: Callable[[str], Exception], where: str = "the file"
) -> dict[str, Any]:
    """The fields of an already-decoded save file of ``kind``, migrated (see :func:`load`)."""
    spec = KINDS[kind]
    found, version, fields = _identify(data, spec, where, error)
    if found != kind:
        other = KINDS[found]
        raise error(
            f"{where} is a trace_nb {other.what}, not a {spec.what}; load it with {other.load_with}"
        )
    if version > spec.version:
        raise error(
            f"{where} was written by a newer trace_nb ({spec.what} version {version}; "
            f"this trace_nb reads up to version {spec.version}): upgrade trace_nb "
            "to load it"
        )
    while version < spec.version:
        fields = MIGRATIONS[(kind, version)](fields)
        version += 1
    return fields


def _identify(
    data: Any, spec: Kind, where: str, error: Callable[[str], Exception]
) -> tuple[str, int, dict[str, Any]]:
    """(kind, version, fields) of a decoded file, old spelling or new."""
    if not isinstance(data, dict):
        raise error(f"{where} holds a JSON {_json_kind(data)}, not a trace_nb {spec.what}")
    fmt = data.get("format")
    if isinstance(fmt, str) and fmt in LEGACY:
        return LEGACY[fmt], 1, {k: v for k, v in data.items() if k != "format"}
    if fmt != FORMAT:
        said = "has no 'format'" if fmt is None else f"has the format {_short(fmt)}"
        raise error(f"{where} is not a trace_nb file (it {said}); expected a trace_nb {spec.what}")
    kind, version = data.get("kind"), data.get("version")
    if not isinstance(kind, str) or kind not in KINDS:
        raise error(
            f"{where} is a trace_nb file of an unknown kind {_short(kind)} (known: "
            f"{', '.join(KINDS)}); it was written by a newer trace_nb, or is damaged"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise error(
            f"{where} has the version {_short(version)}, not a whole number from 1: "
            f"the {KINDS[kind].what} is damaged"
        )
    return kind, version, {k: v for k, v in data.items() if k not in ENVELOPE_KEYS}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    return short_repr(value, 60)
