"""Operators on nodes: one table, turned into ``Node`` dunder methods at import.

Each traced operation makes a :class:`~.node.MessageNode` holding the :class:`Op`, the
arguments (nodes or plain constants) and the result. The hot path is one closure call,
one Python operation and one object construction, so tracing stays cheap.

Nodes inside lists, tuples, dicts and sets given as arguments are unwrapped to their
values and become parents; a result that is (or contains) a node is unwrapped the same
way, so a node's ``data`` is never a node. A failing operation raises
:class:`~.errors.ExecutionError` (see :mod:`.errors`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import raise_traced
from .node import MessageNode, Node


@dataclass(frozen=True, eq=False)
class Op:
    """What an operator node did. ``arg_names`` name the arguments in the #Code line."""

    name: str
    description: str
    arg_names: tuple[str, ...] = ()
    base_name: str = "op"
    source: str | None = None

    def doc(self) -> str:
        """``[name] description`` as shown under #Documentation."""
        return f"[{self.name}] {self.description}"


def _op(name: str, description: str, arg_names: tuple[str, ...] = ("x",)) -> Op:
    return Op(name, description, arg_names, base_name=name.replace(".", "_"))


def _unwrap(v: Any) -> Any:
    return v._data if isinstance(v, Node) else v


CONTAINERS = (list, tuple, dict, set, frozenset)


def unwrap_deep(value: Any, found: dict[int, Node]) -> Any:
    """``value`` with every node (also inside lists, tuples, dicts and sets) replaced by its
    value; the nodes are added to ``found`` (id -> node, in order of appearance)."""
    if isinstance(value, Node):
        found.setdefault(id(value), value)
        return value._data
    kind = type(value)
    if kind not in CONTAINERS or not value:
        return value
    if kind is dict:
        return {unwrap_deep(k, found): unwrap_deep(v, found) for k, v in value.items()}
    items = [unwrap_deep(v, found) for v in value]
    return items if kind is list else kind(items)


def apply(op: Op, fn: Callable, args: tuple, kwargs: dict | None = None) -> MessageNode:
    """Run ``fn`` on the raw values of ``args``/``kwargs`` and record it as ``op``.

    Exceptions from ``fn`` propagate unchanged (callers decide how to record them).
    """
    found: dict[int, Node] = {}
    raw = tuple(unwrap_deep(a, found) for a in args)
    if kwargs:
        raw_kw = {k: unwrap_deep(v, found) for k, v in kwargs.items()}
        result = fn(*raw, **raw_kw)
    else:
        result = fn(*raw)
    parents = tuple(found.values())
    if isinstance(result, Node) or type(result) in CONTAINERS:
        inner: dict[int, Node] = {}
        result = unwrap_deep(result, inner)
        parents += tuple(n for k, n in inner.items() if k not in found)
    return MessageNode(result, op, args, parents, kwargs or None)


def traced(op: Op, fn: Callable, args: tuple, kwargs: dict | None = None) -> MessageNode:
    """:func:`apply`, raising :class:`~.errors.ExecutionError` when ``fn`` fails."""
    try:
        return apply(op, fn, args, kwargs)
    except Exception as exc:
        found: dict[int, Node] = {}
        for a in (*args, *(kwargs or {}).values()):
            unwrap_deep(a, found)
        raise_traced(exc, op, args, tuple(found.values()))


# -- the operator table -----------------------------------------------------------------
# (dunder, name, python function, description). Binary entries also get a reflected
# dunder (``__radd__``) that records the operands in their written order.
_BINARY = [
    ("add", operator.add, "a + b: sum of numbers, or concatenation of strings/lists."),
    ("sub", operator.sub, "a - b: difference."),
    ("mul", operator.mul, "a * b: product, or repetition of a string/list."),
    ("truediv", operator.truediv, "a / b: true division."),
    ("floordiv", operator.floordiv, "a // b: floor division."),
    ("mod", operator.mod, "a % b: remainder, or %-formatting of a string."),
    ("pow", operator.pow, "a ** b: power."),
    ("lshift", operator.lshift, "a << b: left shift."),
    ("rshift", operator.rshift, "a >> b: right shift."),
    ("and", operator.and_, "a & b: bitwise and / set intersection."),
    ("or", operator.or_, "a | b: bitwise or / set or dict union."),
    ("xor", operator.xor, "a ^ b: bitwise exclusive or."),
    ("matmul", operator.matmul, "a @ b: matrix product."),
]
_COMPARE = [
    ("lt", operator.lt, "a < b."),
    ("le", operator.le, "a <= b."),
    ("gt", operator.gt, "a > b."),
    ("ge", operator.ge, "a >= b."),
    ("eq", operator.eq, "a == b: value equality."),
    ("ne", operator.ne, "a != b: value inequality."),
]
_UNARY = [
    ("neg", operator.neg, "-x: negation."),
    ("pos", operator.pos, "+x: unary plus."),
    ("abs", abs, "abs(x): absolute value."),
    ("invert", operator.invert, "~x: bitwise inversion."),
    ("round", round, "round(x): round to the nearest integer."),
    ("floor", math.floor, "math.floor(x): round down."),
    ("ceil", math.ceil, "math.ceil(x): round up."),
    ("trunc", math.trunc, "math.trunc(x): round toward zero."),
]

OPS: dict[str, Op] = {}


def _binary_method(op: Op, fn: Callable) -> Callable:
    def method(self: Node, other: Any) -> MessageNode:
        # The try costs nothing unless something raises (Python >= 3.11).
        try:
            if isinstance(other, Node):
                return MessageNode(fn(self._data, other._data), op, (self, other), (self, other))
            if type(other) in CONTAINERS:
                return apply(op, fn, (self, other))
            return MessageNode(fn(self._data, other), op, (self, other), (self,))
        except Exception as exc:
            parents = (self, other) if isinstance(other, Node) and other is not self else (self,)
            raise_traced(exc, op, (self, other), parents)

    return method


def _reflected_method(op: Op, fn: Callable) -> Callable:
    def method(self: Node, other: Any) -> MessageNode:
        # ``2 + x`` lands here with other=2: record the operands as written.
        try:
            if type(other) in CONTAINERS:
                return apply(op, fn, (other, self))
            return MessageNode(fn(other, self._data), op, (other, self), (self,))
        except Exception as exc:
            raise_traced(exc, op, (other, self), (self,))

    return method


def _unary_method(op: Op, fn: Callable) -> Callable:
    def method(self: Node, *extra: Any) -> MessageNode:
        try:
            if extra:  # round(x, 2)
                return MessageNode(fn(self._data, *extra), op, (self, *extra), (self,))
            return MessageNode(fn(self._data), op, (self,), (self,))
        except Exception as exc:
            raise_traced(exc, op, (self, *extra), (self,))

    return method


_OPERATOR_METHODS: dict[str, Callable] = {}  # "__add__" -> the traced method installed


def _install() -> None:
    for name, fn, desc in _BINARY + _COMPARE:
        op = OPS[name] = _op(name, desc, ("a", "b"))
        _OPERATOR_METHODS[f"__{name}__"] = _binary_method(op, fn)
        if (name, fn, desc) in _BINARY:
            _OPERATOR_METHODS[f"__r{name}__"] = _reflected_method(op, fn)
    for name, fn, desc in _UNARY:
        op = OPS[name] = _op(name, desc, ("x", "ndigits"))
        _OPERATOR_METHODS[f"__{name}__"] = _unary_method(op, fn)
    for dunder, method in _OPERATOR_METHODS.items():
        setattr(Node, dunder, method)
    # eq/ne are traced, so keep the identity hash that Python would otherwise drop.
    Node.__hash__ = object.__hash__


_install()

OPS["getitem"] = _op("getitem", "x[key]: item or slice of a sequence or mapping.", ("x", "key"))
OPS["getattr"] = _op("getattr", "getattr(x, name): attribute of a value.", ("x", "name"))
OPS["call"] = _op("call", "x(*args, **kwargs): call a callable value.", ("x",))
OPS["len"] = _op("len", "len(x): number of items.", ("x",))
OPS["contains"] = _op("contains", "item in x: membership test.", ("x", "item"))
OPS["divmod"] = _op("divmod", "divmod(a, b): quotient and remainder.", ("a", "b"))
OPS["iter_item"] = _op("iter_item", "the i-th item produced by iterating over x.", ("x", "i"))
OPS["clone"] = _op("clone", "a copy of x.", ("x",))
for _kind in ("list", "tuple", "dict", "set", "frozenset"):
    OPS[f"make_{_kind}"] = Op(
        f"make_{_kind}", f"a {_kind} made of the given values.", (), base_name=f"make_{_kind}"
    )


def container_op(kind: type) -> Op:
    """The operator that records building a ``kind`` from nodes (see :func:`.node.node`)."""
    return OPS[f"make_{kind.__name__}"]


def _getitem(self: Node, key: Any) -> MessageNode:
    return traced(OPS["getitem"], operator.getitem, (self, key))


def _contains_node(self: Node, item: Any) -> MessageNode:
    """Traced ``item in x``; the ``in`` operator itself must return a plain bool."""
    return traced(OPS["contains"], operator.contains, (self, item))


def _contains(self: Node, item: Any) -> bool:
    return _unwrap(item) in self._data


def _divmod(self: Node, other: Any) -> MessageNode:
    return traced(OPS["divmod"], divmod, (self, other))


def _call_value(f: Any, *a: Any, **k: Any) -> Any:
    if not callable(f):
        raise TypeError(f"the node holds a {type(f).__name__}, not a callable")
    return f(*a, **k)


def _call(self: Node, *args: Any, **kwargs: Any) -> MessageNode:
    return traced(OPS["call"], _call_value, (self, *args), kwargs)


def _len_node(self: Node) -> MessageNode:
    return traced(OPS["len"], len, (self,))


def _iter(self: Node):
    """Iterate over the value, yielding traced items (keys for a dict).

    A value that cannot be iterated (unpacking a traced ``None``) raises ExecutionError.
    """
    op = OPS["iter_item"]
    try:
        items = iter(self._data)
    except Exception as exc:
        raise_traced(exc, op, (self,), (self,))
    return _items(self, op, items)


def _items(self: Node, op: Op, items: Any):
    for i, item in enumerate(items):
        if isinstance(item, Node) or type(item) in CONTAINERS:
            yield apply(op, lambda _x, _i, v=item: v, (self, i))
        else:
            yield MessageNode(item, op, (self, i), (self,))


def _getattr_node(self: Node, key: str) -> MessageNode:
    """Traced ``getattr(x, key)``."""
    return traced(OPS["getattr"], getattr, (self, key))


def _clone(self: Node) -> MessageNode:
    """Traced copy: a new node holding a deep copy of the value, with this node as parent."""
    import copy

    return traced(OPS["clone"], copy.deepcopy, (self,))


def _eq_node(self: Node, other: Any) -> MessageNode:
    """Traced ``==`` (the reference Trace's spelling; ``==`` itself is traced here too)."""
    return _OPERATOR_METHODS["__eq__"](self, other)


def _neq_node(self: Node, other: Any) -> MessageNode:
    """Traced ``!=`` (the reference Trace's spelling)."""
    return _OPERATOR_METHODS["__ne__"](self, other)


_method_ops: dict[tuple[type, str], Op] = {}


def _method_op(owner: type, method: str, fn: Any) -> Op:
    key = (owner, method)
    op = _method_ops.get(key)
    if op is None:
        doc = (getattr(fn, "__doc__", None) or "").strip().splitlines()
        summary = doc[0] if doc else f"the {method} method of {owner.__name__}."
        name = f"{owner.__name__}.{method}"
        op = _method_ops[key] = Op(name, summary, ("self",), base_name=method)
    return op


class TracedMethod:
    """A method of a node's value; calling it records an operator node."""

    __slots__ = ("node", "method", "fn")

    def __init__(self, node: Node, method: str, fn: Any):
        self.node, self.method, self.fn = node, method, fn

    def __call__(self, *args: Any, **kwargs: Any) -> MessageNode:
        op = _method_op(type(self.node._data), self.method, self.fn)
        name = self.method
        return traced(
            op, lambda obj, *a, **k: getattr(obj, name)(*a, **k), (self.node, *args), kwargs
        )

    def __repr__(self) -> str:
        return f"<traced method {type(self.node._data).__name__}.{self.method} of {self.node.name}>"


def _node_getattr(self: Node, key: str) -> Any:
    # Private and dunder names are never forwarded: IPython and copy/pickle probe them.
    if key.startswith("_"):
        raise AttributeError(key)
    try:
        value = getattr(self._data, key)
    except AttributeError as exc:
        err = AttributeError(
            f"{type(self).__name__} {self.name!r} has no attribute {key!r} and neither has its "
            f"value of type {type(self._data).__name__}"
        )
        err.__traceback__ = exc.__traceback__
        raise_traced(err, OPS["getattr"], (self, key), (self,))
    if isinstance(value, Node):  # an attribute holding a node: its value, and it is a parent
        return MessageNode(
            value._data,
            OPS["getattr"],
            (self, key),
            (self, value) if value is not self else (self,),
        )
    if callable(value):
        return TracedMethod(self, key, value)
    if type(value) in CONTAINERS:
        return apply(OPS["getattr"], getattr, (self, key))
    return MessageNode(value, OPS["getattr"], (self, key), (self,))


def _setitem(self: Node, key: Any, value: Any) -> None:
    # In-place mutation is applied to the value; it is not a node of the graph.
    self._data[_unwrap(key)] = _unwrap(value)


# Installed with setattr, like the operator table: Node's class body does not declare them
# (a declared __getattr__ would make every attribute of a node look valid to pyright).
for _name, _method in {
    "__getitem__": _getitem,
    "__setitem__": _setitem,
    "__contains__": _contains,
    "__divmod__": _divmod,
    "__call__": _call,
    "__iter__": _iter,
    "__getattr__": _node_getattr,
    "len": _len_node,
    "contains": _contains_node,
    "getattr": _getattr_node,
    "clone": _clone,
    "eq": _eq_node,
    "neq": _neq_node,
}.items():
    setattr(Node, _name, _method)
del _name, _method


def _call_fn(self: Node, fn: Callable | str, *args: Any, **kwargs: Any) -> MessageNode:
    """Traced ``fn(self, *args, **kwargs)`` for any plain function ``fn``.

    ``fn`` may also be a method's name, as in the reference Trace: ``x.call("append", 3)``
    is ``x.append(3)``, traced the same way.
    """
    from .names import sanitize

    if isinstance(fn, str):
        return getattr(self, fn)(*args, **kwargs)

    fname = getattr(fn, "__name__", "call")
    doc = (getattr(fn, "__doc__", None) or "").strip().splitlines()
    op = Op(fname, doc[0] if doc else "a function call.", base_name=sanitize(fname))
    return traced(op, fn, (self, *args), kwargs)


setattr(Node, "call", _call_fn)  # noqa: B010 - see the methods installed above
