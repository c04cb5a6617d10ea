"""The decorator every panel action goes through: the session's lock, errors shown."""

from __future__ import annotations

import functools
from typing import Any


def action(fn: Any) -> Any:
    """Run a method of the controller as one action: inside its ``acting()`` (the session's
    lock held, old errors cleared, any exception shown in the error area, then re-raised)."""

    @functools.wraps(fn)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.acting():
            return fn(self, *args, **kwargs)

    return run
