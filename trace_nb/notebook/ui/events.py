"""Named events of a view: ``on_<event>(callback)`` registers, the view emits.

A view of the panel owns one :class:`Events` and offers an ``on_<event>`` method per event
name; it says *that* something happened (a click, a pick) and with what, never what to do
about it. The controller (:mod:`.controller`) registers the callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Events"]


class Events:
    """Callbacks by event name, called in the order they were registered.

    Parameters
    ----------
    *names : str
        The events this set knows; registering or emitting another name is an error.
    """

    def __init__(self, *names: str):
        self._callbacks: dict[str, list[Callable[..., Any]]] = {n: [] for n in names}

    def on(self, name: str, callback: Callable[..., Any]) -> None:
        """Call ``callback(*args)`` whenever ``name`` is emitted."""
        self._known(name).append(callback)

    def emit(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Call every callback registered for ``name`` with ``args`` and ``kwargs``."""
        for callback in list(self._known(name)):
            callback(*args, **kwargs)

    @property
    def names(self) -> tuple[str, ...]:
        """The event names this set knows."""
        return tuple(self._callbacks)

    def _known(self, name: str) -> list[Callable[..., Any]]:
        try:
            return self._callbacks[name]
        except KeyError:
            raise KeyError(
                f"no event {name!r} here; the events are: {', '.join(self._callbacks)}"
            ) from None
