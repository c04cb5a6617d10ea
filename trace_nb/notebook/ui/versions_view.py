"""The versions of the selected parameter: the lineage table, a version picker, the diff
of the picked version against the current value, and "Restore this version"."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w

from .buttons import button
from .events import Events


class VersionsView(w.VBox):
    """Lineage of one parameter, hidden while no parameter with versions is selected.

    Events: ``pick(number)`` when another version is picked, ``restore(number)`` when
    "Restore this version" is clicked (``number`` is the picked version, or None).

    Attributes
    ----------
    table : ipywidgets.HTML
        Versions with source, score, who decided; blame for text and code.
    pick : ipywidgets.Dropdown
    diff : ipywidgets.HTML
        The picked version against the current value.
    restore_button : ipywidgets.Button
    """

    def __init__(self) -> None:
        self._events = Events("pick", "restore")
        self.table = w.HTML()
        self.pick = w.Dropdown(options=[], description="version", layout=w.Layout(width="auto"))
        self.diff = w.HTML()
        self.restore_button = button(description="Restore this version", icon="undo")
        self.restore_button.on_click(lambda _: self._events.emit("restore", self.picked))
        self.pick.observe(lambda _: self._events.emit("pick", self.picked), names=["value"])
        picker = w.HBox([self.pick, self.restore_button])
        picker.add_class("trace-nb-row")
        super().__init__([self.table, picker, self.diff], layout=w.Layout(display="none"))

    def on_pick(self, callback: Callable[[int | None], Any]) -> None:
        """Call ``callback(number)`` when another version is picked."""
        self._events.on("pick", callback)

    def on_restore(self, callback: Callable[[int | None], Any]) -> None:
        """Call ``callback(number)`` when "Restore this version" is clicked."""
        self._events.on("restore", callback)

    @property
    def picked(self) -> int | None:
        """The number of the picked version, or None."""
        return None if self.pick.value is None else int(self.pick.value)

    def show(self, table_html: str, options: Sequence[tuple[str, int]], current: int) -> None:
        """Show a parameter's versions: the table, and the picker's ``(label, number)``
        options; a new list of options picks ``current`` (a pick event follows)."""
        self.layout.display = ""
        self.table.value = table_html
        if self.pick.options != tuple(options):
            self.pick.options = list(options)
            self.pick.value = current

    def hide(self) -> None:
        """Hide the view (no parameter with versions is selected)."""
        self.layout.display = "none"

    def show_diff(self, text: str | None) -> None:
        """Show the picked version's diff against the current value ("" when they are the
        same; None shows nothing)."""
        if text is None:
            self.diff.value = ""
        elif text:
            self.diff.value = f"<pre class='trace-nb-version-diff'>{html.escape(text)}</pre>"
        else:
            self.diff.value = "<i>the same as the current value</i>"
