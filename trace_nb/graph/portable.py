"""A trace that travels: one output's graph as plain, picklable data, and the graph rebuilt.

A remote worker runs a traced workflow and cannot send its nodes back (they hold
references to live objects of that process). It sends :func:`export_trace` of the output
instead; the driver calls :func:`rebuild_trace` and gets real nodes that the optimizer
treats exactly like a local trace: same labels, values, operators, arguments and order,
so the prompt built from a remote minibatch is the prompt built from the same minibatch
run locally.

The data (``version`` 1)::

    {"version": 1,
     "ops": [{"name", "description", "arg_names", "base_name", "source"}, ...],
     "nodes": [{"id", "kind", "name", "description", "parents": [ids], ...}, ...],
     "output": id}

Nodes come parents first (ids are positions). Like :func:`.data.graph_data`, each has a
``kind`` (``parameter``, ``value``, ``message``, ``exception``), a ``name`` (its label, or
None when it has none), a ``description`` and parent ids. Beyond that view it carries
what rebuilding needs:

* ``param``: the stable name of one of the trained parameters. Their values are not sent
  back: the driver sent them and maps the name to its own parameter node.
* ``value``: the value itself when it pickles, else ``preview``: ``{"type", "repr",
  "str"}``, and the rebuilt node holds a :class:`RemoteValue` (an instance of a subclass
  named like the original type, whose ``repr`` and ``str`` are the original's texts), so
  the prompt still reads the same and ``isinstance(v, RemoteValue)`` says it is a preview.
* ``op``, ``args``, ``kwargs``, ``info`` for operator results (``args`` hold
  :class:`NodeRef` where a node was passed).
* ``shared``: the node existed before the run (a module-level constant, a parameter that is
  not trained). The driver merges shared nodes that look alike across examples, as they
  were one node on the worker; nodes made during the run are never merged.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .frames import collect_unpickled, pop_frame, push_frame, stop_collecting
from .node import ExceptionNode, MessageNode, Node, ParameterNode
from .ops import Op
from .traverse import topo_ancestors

__all__ = [
    "NodeRef",
    "RebuildError",
    "RemoteValue",
    "export_trace",
    "rebuild_trace",
    "recording_existing",
]

VERSION = 1
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (list, tuple, set, frozenset)


class NodeRef:
    """An argument that was a node: the position of that node in the exported list."""

    __slots__ = ("id",)

    def __init__(self, id: int):  # noqa: A002 - the record's key
        self.id = id

    def __reduce__(self) -> tuple:
        return (NodeRef, (self.id,))

    def __repr__(self) -> str:
        return f"NodeRef({self.id})"


class RemoteValue:
    """A value that could not be sent back from a worker: its texts as the worker saw them.

    Instances belong to a subclass named like the original type, so ``type(v).__name__``
    (which the prompt shows) is unchanged; ``repr`` and ``str`` give the original texts.
    """

    __slots__ = ("type_name", "text_repr", "text_str")

    def __init__(self, type_name: str, text_repr: str, text_str: str):
        self.type_name, self.text_repr, self.text_str = type_name, text_repr, text_str

    def __repr__(self) -> str:
        return self.text_repr

    def __str__(self) -> str:
        return self.text_str


_remote_types: dict[str, type] = {}


def _remote_value(preview: Mapping[str, str]) -> RemoteValue:
    name = str(preview.get("type") or "object")
    cls = _remote_types.get(name)
    if cls is None:
        cls = _remote_types[name] = type(name, (RemoteValue,), {"__slots__": ()})
    return cls(name, str(preview.get("repr", "")), str(preview.get("str", "")))


def _plain(value: Any, depth: int = 0) -> bool:
    """True when ``value`` is built from plain values only (pickles, same repr after)."""
    t = type(value)
    if t in _PLAIN:
        return True
    if depth > 20:
        return False
    if t in _CONTAINERS:
        return all(_plain(v, depth + 1) for v in value)
    if t is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _texts(value: Any) -> dict[str, str]:
    def text(f: Any) -> str:
        try:
            return f(value)
        except Exception as e:  # noqa: BLE001 - a value whose repr fails still travels
            return f"<unprintable {type(value).__name__}: {e}>"

    return {"type": type(value).__name__, "repr": text(repr), "str": text(str)}


def _travels(value: Any) -> bool:
    """Whether ``value`` survives a pickle round trip (an exception whose ``__init__`` takes
    other arguments pickles, then fails to unpickle on the other side)."""
    if _plain(value):
        return True
    try:
        pickle.loads(pickle.dumps(value))
    except Exception:  # noqa: BLE001 - anything that does not round-trip travels as text
        return False
    return True


def _put_value(rec: dict, value: Any) -> None:
    if isinstance(value, RemoteValue):  # already a preview (a re-export on the driver)
        rec["preview"] = {"type": value.type_name, "repr": value.text_repr, "str": value.text_str}
        return
    if _travels(value):
        rec["value"] = value
    else:
        rec["preview"] = _texts(value)


def _get_value(rec: Mapping[str, Any]) -> Any:
    return _remote_value(rec["preview"]) if "preview" in rec else rec.get("value")


def _encode_arg(a: Any, ids: Mapping[Node, int]) -> Any:
    if isinstance(a, Node):
        return NodeRef(ids[a])
    t = type(a)
    if t in _CONTAINERS:
        return t(_encode_arg(v, ids) for v in a)
    if t is dict:
        return {_encode_arg(k, ids): _encode_arg(v, ids) for k, v in a.items()}
    if isinstance(a, RemoteValue) or _travels(a):
        return a
    return _remote_value(_texts(a))


def _decode_arg(a: Any, nodes: list[Node]) -> Any:
    if isinstance(a, NodeRef):
        return nodes[a.id]
    t = type(a)
    if t in _CONTAINERS:
        return t(_decode_arg(v, nodes) for v in a)
    if t is dict:
        return {_decode_arg(k, nodes): _decode_arg(v, nodes) for k, v in a.items()}
    return a


def _info(info: Any) -> Any:
    if info is None or _travels(info):
        return info
    # Keep the text fields the feedback uses.
    return {str(k): (v if _plain(v) else str(v)) for k, v in dict(info).items()}


def export_trace(
    output: Node, parameters: Mapping[str, ParameterNode], existing: Iterable[int] | None = None
) -> dict:
    """The graph behind ``output`` as plain data (see the module docstring).

    Parameters
    ----------
    output
        The node that receives the feedback.
    parameters
        Stable name -> parameter node, for the trained parameters: these travel by name.
    existing
        Ids of the nodes that existed before this run (see :func:`recording_existing`): these
        are marked ``shared``. None marks nothing shared.
    """
    order = topo_ancestors([output])
    by_node: dict[Node, str] = {p: name for name, p in parameters.items()}
    before = set(existing) if existing is not None else set()
    ids: dict[Node, int] = {}
    ops: dict[int, int] = {}
    op_list: list[dict] = []
    records: list[dict] = []
    for n in order:
        ids[n] = len(records)
        rec: dict[str, Any] = {
            "id": len(records),
            "kind": n.kind,
            "name": n._base,
            "description": n.description,
            "parents": [ids[p] for p in n._parents],
        }
        name = by_node.get(n)
        if name is not None:
            rec["param"] = name
            records.append(rec)
            continue
        _put_value(rec, n._data)
        if isinstance(n, ParameterNode):
            rec["constraint"], rec["is_code"] = n.constraint, n.is_code
        if isinstance(n, MessageNode):
            op = n.op
            k = ops.get(id(op))
            if k is None:
                k = ops[id(op)] = len(op_list)
                op_list.append(
                    {
                        "name": op.name,
                        "description": op.description,
                        "arg_names": list(op.arg_names),
                        "base_name": op.base_name,
                        "source": op.source,
                    }
                )
            rec["op"] = k
            rec["args"] = [_encode_arg(a, ids) for a in n.args]
            rec["kwargs"] = (
                {k2: _encode_arg(v, ids) for k2, v in n.kwargs.items()} if n.kwargs else n.kwargs
            )
            rec["info"] = _info(n.info)
        if id(n) in before:
            rec["shared"] = True
        records.append(rec)
    return {"version": VERSION, "ops": op_list, "nodes": records, "output": ids[output]}


class RebuildError(ValueError):
    """Trace data that cannot be rebuilt (a newer format, an unknown parameter, bad ids)."""


def _signature(rec: Mapping[str, Any], parents: tuple[Node, ...], ops: list[Op]) -> tuple:
    value = _get_value(rec)
    op = ops[rec["op"]] if rec.get("op") is not None else None
    return (
        rec.get("kind"),
        rec.get("name"),
        rec.get("description"),
        type(value).__name__,
        _texts(value)["repr"],
        tuple(id(p) for p in parents),
        id(op),  # equal operators are one object (the ``ops`` cache); a position is not
        rec.get("constraint"),
    )


def rebuild_trace(
    data: Mapping[str, Any],
    parameters: Mapping[str, ParameterNode],
    shared: dict | None = None,
    ops: dict | None = None,
) -> Node:
    """The output node of trace ``data`` (from :func:`export_trace`), with its graph.

    ``parameters`` maps stable names to this process's parameters, which take the place of
    the ``param`` records. Pass the same ``shared`` dict (and ``ops`` dict) when rebuilding
    the examples of one minibatch, so nodes that existed before the runs, and operators,
    are one object each, as they were on the worker.
    """
    if not isinstance(data, Mapping) or data.get("version") != VERSION:
        got = data.get("version") if isinstance(data, Mapping) else type(data).__name__
        raise RebuildError(
            f"trace data of version {got!r}; this trace_nb reads version "
            f"{VERSION}: run the same trace_nb version on workers and driver"
        )
    shared = {} if shared is None else shared
    ops = {} if ops is None else ops
    op_objs = []
    for d in data["ops"]:
        key = (d["name"], d["description"], tuple(d["arg_names"]), d["base_name"], d["source"])
        op = ops.get(key)
        if op is None:
            op = ops[key] = Op(
                d["name"],
                d["description"],
                tuple(d["arg_names"]),
                base_name=d["base_name"],
                source=d["source"],
            )
        op_objs.append(op)
    nodes: list[Node] = []
    for rec in data["nodes"]:
        if "param" in rec:
            p = parameters.get(rec["param"])
            if p is None:
                raise RebuildError(
                    f"the worker's trace uses parameter {rec['param']!r}, which is not one of "
                    f"the trained parameters here ({', '.join(parameters) or 'none'})"
                )
            nodes.append(p)
            continue
        try:
            parents = tuple(nodes[i] for i in rec["parents"])
        except (IndexError, TypeError) as e:
            raise RebuildError(
                f"trace data node {rec.get('id')} names a parent that does not come before it"
            ) from e
        key = _signature(rec, parents, op_objs) if rec.get("shared") else None
        if key is not None and key in shared:
            nodes.append(shared[key])
            continue
        n = _make(rec, parents, nodes, op_objs)
        if key is not None:
            shared[key] = n
        nodes.append(n)
    return nodes[data["output"]]


def _make(
    rec: Mapping[str, Any], parents: tuple[Node, ...], nodes: list[Node], ops: list[Op]
) -> Node:
    kind, value = rec["kind"], _get_value(rec)
    if kind in ("message", "exception"):
        cls = ExceptionNode if kind == "exception" else MessageNode
        kwargs = rec.get("kwargs")
        n = cls(
            value,
            ops[rec["op"]],
            tuple(_decode_arg(a, nodes) for a in rec["args"]),
            parents,
            {k: _decode_arg(v, nodes) for k, v in kwargs.items()} if kwargs else kwargs,
            rec.get("info"),
        )
        n.description = rec.get("description")
    elif kind == "parameter":
        # Not one of the trained parameters: a copy that does not claim its name process-wide.
        n = ParameterNode.__new__(ParameterNode)
        Node.__init__(n, value, description=rec.get("description"))
        n.constraint, n.is_code, n.loader = rec.get("constraint"), bool(rec.get("is_code")), None
    else:
        n = Node(value, description=rec.get("description"))
        n._parents = parents
    n._base = rec.get("name")
    return n


class Existing:
    """Nodes that exist before the runs of a remote worker: those its payload unpickled (kept
    here, so their ids stay theirs) and those made while it loaded (module imports)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.created: set[int] = set()

    @property
    def ids(self) -> set[int]:
        return {id(n) for n in self.nodes} | self.created


@contextmanager
def recording_existing() -> Iterator[Existing]:
    """Inside the block, note every node unpickled or made (in this context): pass
    ``.ids`` to :func:`export_trace` as ``existing`` for traces of later runs."""
    found = Existing()
    frame, token = push_frame()
    sink, sink_token = collect_unpickled()
    try:
        yield found
    finally:
        stop_collecting(sink_token)
        pop_frame(frame, token)
        found.nodes = sink
        found.created = set(frame.created)
