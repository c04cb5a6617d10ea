"""SQLite cache of chat replies.

Notebooks are re-run constantly; caching identical requests makes a re-run
free and deterministic. The cache key covers everything that changes the
reply (endpoint, model, messages, sampling settings, schema) and never the
API key, so the file is safe to share and never holds a secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CachedReply", "ResponseCache", "cache_key", "default_cache_path", "resolve_cache"]

_FILENAME = "llm-cache.sqlite"
_SURROGATE = re.compile("[\ud800-\udfff]")  # cannot be stored as UTF-8 text
_OFF_VALUES = {"0", "false", "no", "off"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    json_mode TEXT NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CachedReply:
    """One stored reply: its text, reporting model, tokens and JSON mode."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    json_mode: str


def cache_key(
    *,
    base_url: str,
    model: str,
    messages: list[dict[str, Any]],
    temperature: float | None,
    seed: int | None,
    max_tokens: int | None,
    json_schema: dict[str, Any] | None,
    wants_json: bool | None = None,
) -> str:
    """Hash a request into a cache key.

    Returns
    -------
    str
        Hex SHA-256 of the canonical JSON (sorted keys, no whitespace) of
        the arguments. The API key is deliberately not a parameter.
    """
    payload: list[Any] = [base_url, model, messages, temperature, seed, max_tokens, json_schema]
    if wants_json is not None and wants_json != (json_schema is not None):
        # Only a call that asks for another output form than its schema implies has its
        # own key (keys of ordinary calls stay as they were, so existing caches still hit).
        payload.append({"json": wants_json})
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    # surrogatepass: a lone surrogate in a message must not make the key fail.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def default_cache_path() -> Path:
    """Default cache file location.

    ``$TRACE_NB_CACHE_DIR/llm-cache.sqlite``, else
    ``$XDG_CACHE_HOME/trace_nb/llm-cache.sqlite``, else
    ``~/.cache/trace_nb/llm-cache.sqlite``.
    """
    if os.environ.get("TRACE_NB_CACHE_DIR"):
        return Path(os.environ["TRACE_NB_CACHE_DIR"]).expanduser() / _FILENAME
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "trace_nb" / _FILENAME
    return Path.home() / ".cache" / "trace_nb" / _FILENAME


def resolve_cache(cache: bool | str | os.PathLike[str] | None) -> ResponseCache | None:
    """Turn the ``LLM(cache=...)`` argument into a cache object.

    Parameters
    ----------
    cache
        ``True``: default location (disabled by env ``TRACE_NB_CACHE=0``);
        ``False``/``None``: no cache; a string or path: that file.

    Returns
    -------
    ResponseCache or None
    """
    if cache is None or cache is False:
        return None
    if cache is True:
        if os.environ.get("TRACE_NB_CACHE", "").strip().lower() in _OFF_VALUES:
            return None
        return ResponseCache(default_cache_path())
    if isinstance(cache, (str, os.PathLike)):
        return ResponseCache(Path(cache).expanduser())
    raise TypeError(f"cache must be True, False, or a file path, got {cache!r}")


class ResponseCache:
    """Thread-safe SQLite store of :class:`CachedReply` rows.

    One connection shared by all threads (``check_same_thread=False``) and
    serialized with a lock: SQLite writes are serialized anyway, and a lock
    is simpler than per-thread connections that would never be closed.
    Nothing touches the disk until the first write, so creating an ``LLM``
    never creates directories.

    Parameters
    ----------
    path
        SQLite file; its directory is created on first write.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path)}  # the connection and the lock stay here

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(Path(state["path"]))

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        # Caller holds the lock.
        if self._conn is not None:
            return self._conn
        if not create and not self.path.exists():
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: wait for other processes (e.g. parallel workers) writing.
        conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError:
            pass  # some filesystems (network mounts) lack WAL; rollback journal works too
        with conn:
            conn.execute(_SCHEMA)
        self._conn = conn
        return conn

    def get(self, key: str) -> CachedReply | None:
        """Return the stored reply for ``key``, or ``None`` on a miss.

        A broken cache file is reported as a warning and treated as a miss:
        a cache must never make a call fail.
        """
        with self._lock:
            try:
                conn = self._connect(create=False)
                if conn is None:
                    return None
                row = conn.execute(
                    "SELECT text, model, prompt_tokens, completion_tokens, json_mode "
                    "FROM replies WHERE key = ?",
                    (key,),
                ).fetchone()
            except sqlite3.Error as exc:
                warnings.warn(f"trace_nb LLM cache {self.path} unreadable: {exc}", stacklevel=3)
                return None
        if row is None:
            return None
        try:
            return CachedReply(
                str(row[0]), str(row[1]), max(int(row[2]), 0), max(int(row[3]), 0), str(row[4])
            )
        except (TypeError, ValueError, OverflowError):
            return None  # a row written by something else: a miss, not a crash

    def put(self, key: str, reply: CachedReply) -> None:
        """Store ``reply`` under ``key`` in one transaction (last write wins)."""
        with self._lock:
            try:
                conn = self._connect(create=True)
                assert conn is not None
                with conn:  # commits on success, rolls back on error
                    conn.execute(
                        "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            key,
                            _SURROGATE.sub("\ufffd", reply.text),
                            reply.model,
                            reply.prompt_tokens,
                            reply.completion_tokens,
                            reply.json_mode,
                            time.time(),
                        ),
                    )
            except (sqlite3.Error, OSError, ValueError) as exc:
                warnings.warn(f"trace_nb LLM cache {self.path} not writable: {exc}", stacklevel=3)

    def __bool__(self) -> bool:
        return True  # an empty cache is still a cache (``__len__`` would say False)

    def __len__(self) -> int:
        with self._lock:
            try:
                conn = self._connect(create=False)
                if conn is None:
                    return 0
                return int(conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])
            except sqlite3.Error as exc:
                warnings.warn(f"trace_nb LLM cache {self.path} unreadable: {exc}", stacklevel=2)
                return 0

    def clear(self) -> None:
        """Delete every stored reply.

        Raises
        ------
        OSError
            When the file is not a readable cache (delete the file to start afresh).
        """
        with self._lock:
            try:
                conn = self._connect(create=False)
                if conn is not None:
                    with conn:
                        conn.execute("DELETE FROM replies")
            except sqlite3.Error as exc:
                raise OSError(
                    f"trace_nb LLM cache {self.path} is not a readable cache ({exc}); "
                    "delete the file to start afresh"
                ) from None

    def close(self) -> None:
        """Close the connection; a later call reopens it."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
