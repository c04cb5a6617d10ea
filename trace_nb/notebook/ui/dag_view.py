"""The clickable trace DAG: graphviz SVG in a small anywidget.

Python sets ``svg``; a click on a node in the browser sets ``selected`` to the node's id
(graphviz writes each node's id into its ``<title>``). ``max_nodes`` bounds the drawing:
long chains are folded into "collapsed" nodes, and :meth:`DagView.expand` (or the
"Show all nodes" button) sets it to 0, which means no limit.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

DEFAULT_MAX_NODES = 300


class DagView(anywidget.AnyWidget):
    """Clickable SVG of a trace.

    Attributes
    ----------
    svg : str
        Graphviz SVG text (empty when there is nothing to draw).
    selected : str
        Id of the clicked (or :meth:`select`-ed) node; "" when none.
    max_nodes : int
        Fold long chains so about this many nodes are drawn; 0 draws every node.
    hidden : int
        How many nodes the current drawing folded into collapsed (grey) boxes.
    message : str
        Shown instead of a drawing (e.g. when graphviz is missing).
    data : dict
        The graph data last drawn (not synced).
    """

    # The text, not the Path: for a Path, anywidget connects every instance to a class-level
    # file-change signal (for hot reload), which keeps every DagView, its panel and the
    # session's graph alive forever.
    _esm = (pathlib.Path(__file__).parent / "dag_view.js").read_text(encoding="utf-8")
    svg = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    max_nodes = traitlets.Int(DEFAULT_MAX_NODES).tag(sync=True)
    hidden = traitlets.Int(0).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.data: dict = {"nodes": [], "edges": [], "hidden": 0}

    def show(self, data: dict) -> None:
        """Draw graph ``data`` (from ``session.graph()``); unchanged data is not redrawn."""
        if data == self.data and (self.svg or self.message):
            return
        self.data = data
        # Count what the grey boxes hold, so the note agrees with their labels.
        self.hidden = sum(
            len(n.get("members", ())) for n in data["nodes"] if n.get("kind") == "collapsed"
        )
        if not data["nodes"]:
            self.svg, self.message = "", "(no trace yet: the output does not depend on a parameter)"
            return
        from ...graph.render import svg

        try:
            self.svg, self.message = svg(data), ""
        except RuntimeError as e:  # graphviz's `dot` is missing: say how to install it
            self.svg, self.message = "", str(e)

    @property
    def node_ids(self) -> list[str]:
        """Ids of the nodes drawn now."""
        return [n["id"] for n in self.data["nodes"]]

    def record(self, node_id: str) -> dict | None:
        """The graph-data record of a drawn node, or None."""
        return next((n for n in self.data["nodes"] if n["id"] == node_id), None)

    def select(self, node_id: str) -> None:
        """Select a node as a click would; KeyError if it is not drawn."""
        if node_id not in self.node_ids:
            raise KeyError(f"no node {node_id!r} in the graph (nodes: {', '.join(self.node_ids)})")
        self.selected = node_id

    def expand(self) -> None:
        """Draw every node (no folding)."""
        self.max_nodes = 0

    def fold(self) -> None:
        """Fold long chains again (the default drawing)."""
        self.max_nodes = DEFAULT_MAX_NODES

    def on_select(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(node_id)`` whenever the selection changes."""
        self.observe(lambda change: callback(change["new"]), names=["selected"])
