"""Draw a trace with graphviz. Imported only when a graph is drawn.

Parameters are red boxes, operator results blue ellipses, outputs bold, exceptions in
red, collapsed chains grey. Node ids are the node names (valid identifiers, so graphviz
never escapes them and a click in the SVG maps straight back to a node).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from ..text import cut
from .data import graph_data
from .node import Node

STYLES: dict[str, dict[str, str]] = {
    "parameter": {
        "shape": "box",
        "style": "rounded,filled",
        "fillcolor": "#FFE5E5",
        "color": "#FF7E79",
    },
    "value": {"shape": "box", "style": "filled", "fillcolor": "#F2F2F2", "color": "#A0A0A0"},
    "message": {"shape": "ellipse", "style": "filled", "fillcolor": "#DEEBF6", "color": "#5C9BD5"},
    "exception": {
        "shape": "octagon",
        "style": "filled",
        "fillcolor": "#FFD6D6",
        "color": "firebrick1",
    },
    "collapsed": {
        "shape": "note",
        "style": "filled,dashed",
        "fillcolor": "#EEEEEE",
        "color": "#888888",
    },
}

DOT_MISSING = (
    "Graphviz's `dot` program is not installed, so the trace cannot be drawn. "
    "Install it with `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS) or `conda install graphviz`, then run the cell again."
)


def label(rec: dict, value_limit: int) -> str:
    """Graphviz HTML-like label: name, operator and a cut value."""
    value = cut(rec["value"], value_limit)
    op = f"<BR/><I>{html.escape(rec['op'])}</I>" if rec.get("op") else ""
    return f"<<B>{html.escape(rec['name'])}</B>{op}<BR/>{html.escape(value)}>"


def to_dot(data: dict, value_limit: int = 40, rankdir: str = "TB") -> Any:
    """A ``graphviz.Digraph`` of plain graph data (from :func:`.data.graph_data`)."""
    import graphviz

    g = graphviz.Digraph("trace", graph_attr={"rankdir": rankdir}, node_attr={"fontsize": "10"})
    for rec in data["nodes"]:
        attrs = dict(STYLES.get(rec["kind"], STYLES["value"]))
        if rec.get("output"):
            attrs["penwidth"] = "2.5"
        g.node(rec["id"], label=label(rec, value_limit), tooltip=rec["kind"], **attrs)
    for a, b in data["edges"]:
        g.edge(a, b)
    return g


def svg(data: dict, value_limit: int = 40) -> str:
    """SVG text of the graph; raises RuntimeError with install help when `dot` is missing."""
    import graphviz

    try:
        return to_dot(data, value_limit).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound as e:
        raise RuntimeError(DOT_MISSING) from e


class GraphView:
    """A picture of the graph behind some outputs; shows itself as SVG in a notebook."""

    def __init__(self, outputs: Iterable[Node], value_limit: int = 40, max_nodes: int | None = 300):
        self.data = graph_data(outputs, max_nodes=max_nodes)
        self.value_limit = value_limit

    def digraph(self) -> Any:
        return to_dot(self.data, self.value_limit)

    def svg(self) -> str:
        return svg(self.data, self.value_limit)

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except RuntimeError:
            return None  # the mime bundle below explains how to install graphviz

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        text = f"<trace graph: {len(self.data['nodes'])} nodes, {len(self.data['edges'])} edges>"
        try:
            return {"image/svg+xml": self.svg(), "text/plain": text}
        except RuntimeError as e:
            return {"text/plain": f"{text}\n{e}"}

    def __repr__(self) -> str:
        return f"<trace graph: {len(self.data['nodes'])} nodes, {len(self.data['edges'])} edges>"
