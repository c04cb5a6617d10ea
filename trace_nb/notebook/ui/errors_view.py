"""The panel's error area: every error of a click or a job, with its traceback."""

from __future__ import annotations

import html
import traceback

import ipywidgets as w


class ErrorsView(w.HTML):
    """Errors shown one under the other, each with a folded traceback.

    Attributes
    ----------
    errors : list of BaseException
        Every error shown since the view was made (clearing the area keeps them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []
        self.add_class("trace-nb-errors")

    def show(self, error: BaseException) -> None:
        """Add ``error`` to the area (an error just shown is not shown twice)."""
        if self.errors and self.errors[-1] is error:
            return  # already shown by an inner call
        self.errors.append(error)
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=-6))
        head = f"{type(error).__name__}: {error}"
        self.value += (
            f"<div class='trace-nb-error'><b>{html.escape(head)}</b><details>"
            f"<summary>traceback</summary><pre>{html.escape(tb)}</pre></details></div>"
        )

    def clear(self) -> None:
        """Empty the area."""
        self.value = ""
