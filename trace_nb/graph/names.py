"""Node names: labels on nodes, and per-problem name tables that make them unique.

A node carries an optional *label*: the name the user gave (``node(3, name="size")``), the
variable or module path a session or module gave it, or nothing. ``Node.name`` is that
label, or a default from the node's kind (``param``, ``float``, the operator's name); it is
always a valid Python identifier, but it is not unique.

Names the LLM sees (and the DAG view shows) come from a :class:`NameTable` built for one
problem or one view: trainable nodes first, then other labelled nodes, each keeping its
label when free; then unlabelled nodes, numbered by kind within that graph (``add_1``,
``add_2``, ...). Nothing process-wide decides a name, so two graphs built the same way
always get the same names, whatever else is alive in the kernel. There is no
process-wide state here.

A label is set where the node is made, with one exception, :func:`relabel`: an optimizer
numbering repeated labels among its parameters, and a module naming a parameter after its
path, learn the name only after the node exists. Nothing else writes a label.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from typing import Any

_INVALID = re.compile(r"\W")


def sanitize(base: str) -> str:
    """Turn any text into a valid Python identifier (``"my-var"`` -> ``"my_var"``)."""
    ident = _INVALID.sub("_", str(base).strip()) or "node"
    if ident[0].isdigit():
        ident = "_" + ident
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident):
        ident += "_"
    return ident


def relabel(node: Any, label: str) -> str:
    """Label ``node`` ``label`` (sanitized) after it was made; return the label.

    The one writer of a label outside a node's constructor. Its two callers know the name
    only once the node exists, and users read it on the node itself (``p.name``, the
    prompt, checkpoint keys): :class:`~trace_nb.optim.base.Optimizer` numbering repeated
    labels among its parameters (``x``, ``x`` -> ``x``, ``x_1``), and
    :func:`~trace_nb.modules.module.module_parameters` labelling a parameter after its
    module path (``team_tools_1_prompt``).
    """
    label = sanitize(label)
    if node._base != label:
        node._base = label
    return label


class NameTable:
    """Unique names for the nodes of one graph (see the module docstring).

    Parameters
    ----------
    nodes
        The nodes to name, usually in topological order.
    first
        Nodes named before all others, in this order (an optimizer's parameters), so
        they keep their labels.
    """

    def __init__(self, nodes: Iterable[Any] = (), first: Iterable[Any] = ()):
        # Keyed by the node itself: nodes hash by identity and distinct live objects never
        # share a hash, so the traced ``==`` is never called (and no int is made per node).
        self._names: dict[Any, str] = {}
        self._nodes: dict[str, Any] = {}
        self._counters: dict[str, int] = {}
        for n in first:
            self._label(n)
        labelled, rest = [], []
        for n in nodes:
            if n.trainable:
                self._label(n)
            elif n._base is not None:
                labelled.append(n)
            else:
                rest.append(n)
        for n in labelled:
            self._label(n)
        for n in rest:
            self.add(n)

    def _claim(self, name: str, node: Any) -> str:
        self._names[node] = name
        self._nodes[name] = node
        return name

    def _label(self, node: Any) -> None:
        if node not in self._names:
            label = node.name
            self._claim(label if label not in self._nodes else self._numbered(label), node)

    def _numbered(self, base: str) -> str:
        k = self._counters.get(base, 0) + 1
        while f"{base}_{k}" in self._nodes:
            k += 1
        self._counters[base] = k
        return f"{base}_{k}"

    def add(self, node: Any) -> str:
        """The name of ``node``, assigning one (labelled: its label if free; else numbered)."""
        name = self._names.get(node)
        if name is not None:
            return name
        if node._base is not None or node.trainable:
            self._label(node)
            return self._names[node]
        return self._claim(self._numbered(node.name), node)

    def name(self, node: Any) -> str:
        """The name of ``node`` in this table (assigned on first request)."""
        name = self._names.get(node)
        return name if name is not None else self.add(node)

    __call__ = name

    def node(self, name: str) -> Any | None:
        """The node called ``name`` in this table, or None."""
        return self._nodes.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)
