"""The trace as plain data: what the renderer, the panel and saved state consume.

``graph_data(outputs)`` makes one :func:`~.traverse.topo_ancestors` walk and returns a
JSON-ready dict::

    {"nodes": [{"id", "name", "kind", "value", "type", "description", "op", "trainable",
                "constraint", "feedback", "output"}],
     "edges": [[parent_id, child_id], ...],
     "hidden": 0}

``kind`` is one of ``parameter``, ``value`` (a non-trainable input), ``message`` (an
operator's result) or ``exception``. Ids are the names of a :class:`~.names.NameTable` over
the graph (unique within it, and the names the optimizer shows the LLM for that graph);
:func:`find` maps an id back to its node.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..text import preview
from .names import NameTable
from .node import Node
from .traverse import children, topo_ancestors

__all__ = ["find", "graph_data", "node_record", "preview"]  # preview: see trace_nb.text


def find(outputs: Iterable[Node], node_id: str) -> Node | None:
    """The node that :func:`graph_data` of ``outputs`` calls ``node_id``, or None."""
    return NameTable(topo_ancestors(list(outputs))).node(node_id)


def node_record(n: Node, value_limit: int = 120, name: str | None = None) -> dict:
    """Plain-data description of one node (``name``: its name in the view's table)."""
    op = getattr(n, "op", None)
    name = name or n.name
    return {
        "id": name,
        "name": name,
        "kind": n.kind,
        "value": preview(n._data, value_limit),
        "type": type(n._data).__name__,
        "description": n.description or (op.description if op is not None else ""),
        "op": op.name if op is not None else None,
        "trainable": n.trainable,
        "constraint": getattr(n, "constraint", None),
        "feedback": [f.describe() for f in n._feedback or ()],
    }


def graph_data(
    outputs: Iterable[Node], value_limit: int = 120, max_nodes: int | None = None
) -> dict:
    """The graph behind ``outputs`` as a dict of nodes and edges (see module docstring).

    With ``max_nodes``, long chains of single-parent operator nodes are collapsed, then
    repeated structures (many nodes of one kind and operator feeding the same nodes, as a
    loop or a fan-in makes), so the result has at most about that many nodes; ``hidden``
    counts what was folded away and each folded run or group is one node of kind
    ``collapsed`` listing its ``members``.
    """
    outputs = list(outputs)
    order = topo_ancestors(outputs)
    table = NameTable(order)
    out_ids = {id(o) for o in outputs}
    keep = _collapse(order, out_ids, max_nodes) if max_nodes and len(order) > max_nodes else None
    nodes, edges, hidden = [], [], 0
    if keep is None:
        for n in order:
            rec = node_record(n, value_limit, table(n))
            rec["output"] = id(n) in out_ids
            nodes.append(rec)
            edges.extend([table(p), rec["id"]] for p in n._parents)
        return {"nodes": nodes, "edges": edges, "hidden": 0}
    # Collapsed view: folded nodes map to a representative "collapsed" node.
    rep: dict[int, str] = {}
    runs: dict[str, list[Node]] = {}
    for n in order:
        r = keep.get(id(n))
        if r is None:
            rep[id(n)] = table(n)
            rec = node_record(n, value_limit, rep[id(n)])
            rec["output"] = id(n) in out_ids
            nodes.append(rec)
        else:
            rep[id(n)] = r
            runs.setdefault(r, []).append(n)
            hidden += 1
    for r, members in runs.items():
        if r.startswith("block_"):
            what = f"{len(members)} operations"
            desc = f"{what} that ran one after another, from {table(members[0])} to {table(members[-1])}"
        elif r.startswith("group_"):
            what = f"{len(members)} {members[0].kind} nodes"
            desc = (
                f"{what} of the same kind feeding the same nodes "
                f"({table(members[0])} … {table(members[-1])})"
            )
        else:
            what = f"{len(members)} operations"
            desc = f"{what} chained from {table(members[0])} to {table(members[-1])}"
        nodes.append(
            {
                "id": r,
                "name": r,
                "kind": "collapsed",
                "value": what,
                "type": "",
                "description": desc,
                "op": None,
                "trainable": False,
                "constraint": None,
                "feedback": [],
                "output": False,
                "members": [table(m) for m in members],
            }
        )
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
    kids = children(order)
    # A node is foldable when it is an interior link of a chain: one node parent, one child,
    # not trainable, not an output, not an exception.
    foldable = [
        len(n._parents) == 1
        and len(kids.get(n, ())) == 1
        and not n.trainable
        and id(n) not in out_ids
        and n.kind == "message"
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
    runs = {k: r for k, r in runs.items() if sizes[r] > 1}
    visible = len(order) - len(runs) + len({r for r in runs.values()})
    if visible > max_nodes:
        _group_repeats(order, out_ids, runs, visible - max_nodes)
        visible = len(order) - len(runs) + len(set(runs.values()))
    if visible > max_nodes:
        _fold_blocks(order, out_ids, runs, visible - max_nodes)
    return runs


def _fold_blocks(order: list[Node], out_ids: set[int], runs: dict[int, str], excess: int) -> None:
    """Last resort (e.g. a loop's body): fold the longest stretches of consecutive operator
    nodes, in topological order, into one block each."""
    stretches: list[list[Node]] = []
    current: list[Node] = []
    for n in order:
        if n.kind == "message" and id(n) not in runs and id(n) not in out_ids:
            current.append(n)
        else:
            if len(current) > 1:
                stretches.append(current)
            current = []
    if len(current) > 1:
        stretches.append(current)
    number = 0
    for stretch in sorted(stretches, key=len, reverse=True):
        if excess <= 0:
            break
        # Cut the stretch into as many blocks as the budget allows (not one giant block).
        blocks = len(stretch) - min(excess, len(stretch) - 1)
        size = -(-len(stretch) // blocks)
        for start in range(0, len(stretch), size):
            members = stretch[start : start + size]
            if len(members) < 2:
                continue
            number += 1
            for m in members:
                runs[id(m)] = f"block_{number}"
            excess -= len(members) - 1


def _group_repeats(order: list[Node], out_ids: set[int], runs: dict[int, str], excess: int) -> None:
    """Fold sibling nodes of one kind and operator that feed the same nodes (largest first)."""
    kids = children(order)
    groups: dict[tuple, list[Node]] = {}
    for n in order:
        if id(n) in runs or id(n) in out_ids or n.kind == "exception":
            continue
        targets = tuple(sorted({runs.get(id(c), id(c)) for c in kids.get(n, ())}, key=str))
        op = getattr(n, "op", None)
        key = (
            n.kind,
            op.name if op is not None else None,
            targets,
            tuple(runs.get(id(p), id(p)) for p in n._parents) if n._parents else (),
        )
        groups.setdefault(key, []).append(n)
    number = 0
    for members in sorted(groups.values(), key=len, reverse=True):
        if excess <= 0 or len(members) < 3:
            break
        number += 1
        for m in members:
            runs[id(m)] = f"group_{number}"
        excess -= len(members) - 1
