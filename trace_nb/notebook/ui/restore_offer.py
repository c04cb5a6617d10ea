"""The panel's offer to restore autosaved values after a kernel restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .actions import action as _action


class RestoreOfferMixin:
    """Mixed into :class:`~.panel.Panel`: a note with Restore / Keep buttons, shown while
    the session has autosaved values on offer (``session.restorable``)."""

    session: Any

    def _restore_offer(self, B: Callable[..., w.Button]) -> w.HBox:
        self.restore_note = w.HTML()
        self.restore_button = B(
            description="Restore saved values", button_style="warning", icon="undo"
        )
        self.dismiss_button = B(description="Keep the cell's values")
        self.restore_box = w.HBox(
            [self.restore_note, self.restore_button, self.dismiss_button],
            layout=w.Layout(display="none"),
        )
        self.restore_box.add_class("trace-nb-row")
        self.restore_button.on_click(lambda _: self._quietly(self.restore))
        self.dismiss_button.on_click(lambda _: self._quietly(self.keep_cell_values))
        return self.restore_box

    @_action
    def restore(self) -> list[str]:
        """Restore the values this session autosaved (after a kernel restart), then run."""
        from ..autosave import restore

        self._idle()
        names = restore(self.session)
        self.session.run()
        kept = self.session.autosave_kept
        self._set_status(
            f"restored {', '.join(names) or 'the history'} from the autosave; "
            + (f"the work it replaced is kept in {kept}; " if kept is not None else "")
            + "%%trace --reset starts over"
        )
        return names

    @_action
    def keep_cell_values(self) -> None:
        """Dismiss the offer to restore autosaved values (a file kept aside for the offer
        stays on disk; the live work goes on being saved)."""
        self.session.restorable = None
        self.refresh()
