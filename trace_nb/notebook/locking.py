"""The session lock: every change of a session's state holds it (see :func:`serialized`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def serialized(method: Callable) -> Callable:
    """Run ``method`` holding ``self.lock``: changes from the panel (on any thread), from
    background follow-ups and from the notebook never interleave."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked
