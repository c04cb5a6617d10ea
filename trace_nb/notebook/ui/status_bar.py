"""The status row: a progress bar, the status line, and Cancel."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .buttons import button
from .events import Events


class StatusBar(w.HBox):
    """Progress, a one-line status and the Cancel button.

    Events: ``cancel()`` when Cancel is clicked (register with :meth:`on_cancel`).

    Attributes
    ----------
    progress : ipywidgets.IntProgress
        Steps of an auto run, or striped (indeterminate) while an LLM call runs.
    status : ipywidgets.HTML
        The status line.
    cancel_button : ipywidgets.Button
    """

    def __init__(self) -> None:
        self._events = Events("cancel")
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="160px"))
        self.status = w.HTML("ready")
        self.status.add_class("trace-nb-status-line")
        self.cancel_button = button(description="Cancel", icon="times")
        self.cancel_button.on_click(lambda _: self._events.emit("cancel"))
        super().__init__([self.progress, self.status, self.cancel_button])
        self.add_class("trace-nb-row")

    def on_cancel(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when Cancel is clicked."""
        self._events.on("cancel", callback)

    def say(self, text: str) -> None:
        """Show ``text`` (plain text) as the status line."""
        self.status.value = html.escape(text)

    def working(self, label: str, seconds: float) -> None:
        """Show a spinner, what runs (``label``) and for how long it has run."""
        self.status.value = (
            f"<span class='trace-nb-spinner'></span>working… {html.escape(label)} "
            f"<span class='trace-nb-elapsed'>{seconds:.0f} s</span>"
        )

    def count(self, done: int | None = None, total: int | None = None) -> None:
        """Show ``done`` steps of ``total`` on the progress bar (None keeps either)."""
        if total is not None:
            self.progress.max = total
        if done is not None:
            self.progress.value = done

    def busy(self, running: bool) -> None:
        """Stripe the progress bar while something runs; Cancel only then."""
        self.cancel_button.disabled = not running
        if running:
            self.progress.add_class("trace-nb-indeterminate")
        else:
            self.progress.remove_class("trace-nb-indeterminate")
