"""The panel's offer to restore autosaved values after a kernel restart."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .buttons import button
from .events import Events


class RestoreOffer(w.HBox):
    """A note with Restore / Keep buttons, shown while the session has autosaved values on
    offer (``session.restorable``).

    Events: ``restore()`` and ``keep()`` when the buttons are clicked.

    Attributes
    ----------
    note : ipywidgets.HTML
        What was saved, and where.
    restore_button, dismiss_button : ipywidgets.Button
    """

    def __init__(self) -> None:
        self._events = Events("restore", "keep")
        self.note = w.HTML()
        self.restore_button = button(
            description="Restore saved values", button_style="warning", icon="undo"
        )
        self.dismiss_button = button(description="Keep the cell's values")
        self.restore_button.on_click(lambda _: self._events.emit("restore"))
        self.dismiss_button.on_click(lambda _: self._events.emit("keep"))
        super().__init__(
            [self.note, self.restore_button, self.dismiss_button], layout=w.Layout(display="none")
        )
        self.add_class("trace-nb-row")

    def on_restore(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when "Restore saved values" is clicked."""
        self._events.on("restore", callback)

    def on_keep(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when "Keep the cell's values" is clicked."""
        self._events.on("keep", callback)

    def show(self, summary: str | None, where: str = "") -> None:
        """Offer the saved values described by ``summary`` (kept ``where``); None hides."""
        if summary is not None:
            self.note.value = (
                f"<div class='trace-nb-note'>Saved values from an earlier kernel: "
                f"{html.escape(summary)}. {html.escape(where)}</div>"
            )
        self.layout.display = "" if summary is not None else "none"
