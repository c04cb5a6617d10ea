"""Feedback on one node of the DAG: a text box and its button, under the node's details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .buttons import button
from .events import Events


class NodeFeedbackView(w.VBox):
    """Where a human writes what they think of an intermediate value.

    Events: ``send(text)`` when "Feedback on this node" is clicked.

    Attributes
    ----------
    text : ipywidgets.Textarea
    button : ipywidgets.Button
    """

    def __init__(self) -> None:
        self._events = Events("send")
        self.text = w.Textarea(
            placeholder="Feedback about this value (e.g. 'the wrong document was retrieved')",
            continuous_update=False,
            layout=w.Layout(height="auto"),
        )
        self.button = button(description="Feedback on this node", icon="comment")
        self.button.on_click(lambda _: self._events.emit("send", self.text.value.strip()))
        super().__init__([self.text, self.button], layout=w.Layout(display="none"))
        self.add_class("trace-nb-node-feedback")

    def on_send(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(text)`` when the button is clicked."""
        self._events.on("send", callback)

    def show(self, visible: bool) -> None:
        """Show the box (for a node that can take feedback) or hide it."""
        self.layout.display = "" if visible else "none"
