"""The decorator every panel action goes through: the session's lock, errors shown."""

from __future__ import annotations

import functools
from typing import Any


def action(fn: Any) -> Any:
    """Hold the session's lock, clear old errors, run, and show any exception in the error
    area (then re-raise)."""

    @functools.wraps(fn)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.session.lock:
            if self._depth == 0:
                self.clear_errors()
            self._depth += 1
            try:
                return fn(self, *args, **kwargs)
            except Exception as e:
                self._show_error(e)
                raise
            finally:
                self._depth -= 1

    return run
