"""The trace as plain data: what the renderer, the panel and saved state consume.

``graph_data(outputs)`` makes one :func:`~.traverse.topo_ancestors` walk and returns a
JSON-ready dict::

    {"nodes": [{"id", "name", "kind", "value", "type", "description", "op", "trainable",
                "constraint", "feedback", "output"}],
     "edges": [[parent_id, child_id], ...],
     "hidden": 0}

``kind`` is one of ``parameter``, ``value`` (a non-trainable input), ``message`` (an
operator's result) or ``exception``. Ids are the node names (unique among live nodes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .node import Node
from .traverse import topo_ancestors


def preview(value: Any, limit: int = 120) -> str:
    """A one-look text of ``value``: ``repr`` for strings, ``str`` otherwise, cut at ``limit``."""
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except Exception as e:  # a value whose __str__ fails must not break the view
        text = f"<unprintable {type(value).__name__}: {e}>"
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def node_record(n: Node, value_limit: int = 120) -> dict:
    """Plain-data description of one node."""
    op = getattr(n, "op", None)
    return {
        "id": n.name,
        "name": n.name,
        "kind": n.kind,
        "value": preview(n._data, value_limit),
        "type": type(n._data).__name__,
        "description": n.description or (op.description if op is not None else ""),
        "op": op.name if op is not None else None,
        "trainable": n.trainable,
        "constraint": getattr(n, "constraint", None),
        "feedback": [f.describe() for f in n._feedback or ()],
    }


def graph_data(outputs: Iterable[Node], value_limit: int = 120, max_nodes: int | None = None) -> dict:
    """The graph behind ``outputs`` as a dict of nodes and edges (see module docstring).

    With ``max_nodes``, long chains of single-parent operator nodes are collapsed so the
    result has at most about that many nodes; ``hidden`` counts what was folded away and
    each folded run is one node of kind ``collapsed``.
    """
    outputs = list(outputs)
    order = topo_ancestors(outputs)
    out_ids = {id(o) for o in outputs}
    keep = _collapse(order, out_ids, max_nodes) if max_nodes and len(order) > max_nodes else None
    nodes, edges, hidden = [], [], 0
    if keep is None:
        for n in order:
            rec = node_record(n, value_limit)
            rec["output"] = id(n) in out_ids
            nodes.append(rec)
            edges.extend([p.name, n.name] for p in n._parents)
        return {"nodes": nodes, "edges": edges, "hidden": 0}
    # Collapsed view: folded nodes map to a representative "collapsed" node.
    rep: dict[int, str] = {}
    runs: dict[str, list[Node]] = {}
    for n in order:
        r = keep.get(id(n))
        if r is None:
            rep[id(n)] = n.name
            rec = node_record(n, value_limit)
            rec["output"] = id(n) in out_ids
            nodes.append(rec)
        else:
            rep[id(n)] = r
            runs.setdefault(r, []).append(n)
            hidden += 1
    for r, members in runs.items():
        nodes.append({
            "id": r, "name": r, "kind": "collapsed", "value": f"{len(members)} operations",
            "type": "", "description": f"{len(members)} chained operations from "
            f"{members[0].name} to {members[-1].name}", "op": None, "trainable": False,
            "constraint": None, "feedback": [], "output": False,
            "members": [m.name for m in members],
        })
    seen = set()
    for n in order:
        for p in n._parents:
            e = (rep[id(p)], rep[id(n)])
            if e[0] != e[1] and e not in seen:
                seen.add(e)
                edges.append(list(e))
    return {"nodes": nodes, "edges": edges, "hidden": hidden - len(runs)}


def _collapse(order: list[Node], out_ids: set[int], max_nodes: int) -> dict[int, str]:
    """Map nodes inside long single-parent chains to a run id; keep parameters, outputs, ends."""
    children: dict[int, int] = {}
    for n in order:
        for p in n._parents:
            children[id(p)] = children.get(id(p), 0) + 1
    # A node is foldable when it is an interior link of a chain: one node parent, one child,
    # not trainable, not an output, not an exception.
    foldable = [
        len(n._parents) == 1 and children.get(id(n), 0) == 1 and not n.trainable
        and id(n) not in out_ids and n.kind == "message"
        for n in order
    ]
    index = {id(n): i for i, n in enumerate(order)}
    runs: dict[int, str] = {}
    budget = len(order) - max_nodes
    run_no = 0
    # Walk chains: a foldable node whose parent is also foldable continues the parent's run.
    run_of: dict[int, str] = {}
    for n in order:
        if budget <= 0:
            break
        i = index[id(n)]
        if not foldable[i]:
            continue
        parent = n._parents[0]
        r = run_of.get(id(parent))
        if r is None:
            run_no += 1
            r = f"collapsed_{run_no}"
        else:
            budget -= 1  # joining an existing run removes one visible node
        run_of[id(n)] = r
        runs[id(n)] = r
    sizes: dict[str, int] = {}
    for r in runs.values():
        sizes[r] = sizes.get(r, 0) + 1
    # A run of one node hides nothing; show that node as itself.
    return {k: r for k, r in runs.items() if sizes[r] > 1}
