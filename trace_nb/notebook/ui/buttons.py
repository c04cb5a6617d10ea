"""The panel's buttons: as wide as their full label."""

from __future__ import annotations

from typing import Any

import ipywidgets as w


def button(**kwargs: Any) -> w.Button:
    """A button whose label is never cut (``width: auto``, ``min-width: max-content``)."""
    return w.Button(layout=w.Layout(width="auto", min_width="max-content"), **kwargs)
