"""Node names: unique, valid Python identifiers that round-trip through an LLM.

A name is what the optimizer shows the LLM and what the LLM must answer with, so it
has to be a valid identifier and unique among the nodes alive at the same time.
Names are allocated lazily (on first use of ``Node.name``) so that tracing an
operation costs nothing for naming; a user-given name is claimed at creation.
The registry holds nodes weakly: it never keeps a graph alive.
"""

from __future__ import annotations

import keyword
import re
import threading
import weakref
from typing import Any

_INVALID = re.compile(r"\W")

_live: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_next_suffix: dict[str, int] = {}
_lock = threading.Lock()


def sanitize(base: str) -> str:
    """Turn any text into a valid Python identifier (``"my-var"`` -> ``"my_var"``)."""
    ident = _INVALID.sub("_", str(base).strip()) or "node"
    if ident[0].isdigit():
        ident = "_" + ident
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident):
        ident += "_"
    return ident


def allocate(base: str, owner: Any) -> str:
    """Claim a unique name for ``owner``: ``base`` itself if free, else ``base_1``, ``base_2``...

    ``base`` must already be sanitized. The per-base counter only moves forward so
    that allocation stays O(1) amortized even with many nodes of one kind.
    """
    with _lock:
        if base not in _live:
            _live[base] = owner
            return base
        i = _next_suffix.get(base, 1)
        while f"{base}_{i}" in _live:
            i += 1
        _next_suffix[base] = i + 1
        name = f"{base}_{i}"
        _live[name] = owner
        return name


def lookup(name: str) -> Any | None:
    """The live node named ``name``, or None."""
    return _live.get(name)


def rename(owner: Any, old: str | None, base: str) -> str:
    """Give ``owner`` a new name from ``base`` and release ``old`` (e.g. a module naming its parts)."""
    with _lock:
        if old is not None and _live.get(old) is owner:
            del _live[old]
    return allocate(base, owner)
