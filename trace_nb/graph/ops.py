"""Operators on nodes: one table, turned into ``Node`` dunder methods at import.

Each traced operation makes a :class:`~.node.MessageNode` holding the :class:`Op`, the
arguments (nodes or plain constants) and the result. The hot path is one closure call,
one Python operation and one object construction, so tracing stays cheap.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def apply(op: Op, fn: Callable, args: tuple, kwargs: dict | None = None) -> MessageNode:
    """Run ``fn`` on the raw values of ``args``/``kwargs`` and record it as ``op``."""
    parents = tuple(a for a in args if isinstance(a, Node))
    raw = tuple(a._data if isinstance(a, Node) else a for a in args)
    if kwargs:
        parents += tuple(v for v in kwargs.values() if isinstance(v, Node))
        raw_kw = {k: _unwrap(v) for k, v in kwargs.items()}
        return MessageNode(fn(*raw, **raw_kw), op, args, parents, kwargs)
    return MessageNode(fn(*raw), op, args, parents)


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
        if isinstance(other, Node):
            return MessageNode(fn(self._data, other._data), op, (self, other), (self, other))
        return MessageNode(fn(self._data, other), op, (self, other), (self,))

    return method


def _reflected_method(op: Op, fn: Callable) -> Callable:
    def method(self: Node, other: Any) -> MessageNode:
        # ``2 + x`` lands here with other=2: record the operands as written.
        return MessageNode(fn(other, self._data), op, (other, self), (self,))

    return method


def _unary_method(op: Op, fn: Callable) -> Callable:
    def method(self: Node, *extra: Any) -> MessageNode:
        if extra:  # round(x, 2)
            return MessageNode(fn(self._data, *extra), op, (self, *extra), (self,))
        return MessageNode(fn(self._data), op, (self,), (self,))

    return method


def _install() -> None:
    for name, fn, desc in _BINARY + _COMPARE:
        op = OPS[name] = _op(name, desc, ("a", "b"))
        setattr(Node, f"__{name}__", _binary_method(op, fn))
        if (name, fn, desc) in _BINARY:
            setattr(Node, f"__r{name}__", _reflected_method(op, fn))
    for name, fn, desc in _UNARY:
        op = OPS[name] = _op(name, desc, ("x", "ndigits"))
        setattr(Node, f"__{name}__", _unary_method(op, fn))
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


def _getitem(self: Node, key: Any) -> MessageNode:
    return apply(OPS["getitem"], operator.getitem, (self, key))


def _contains_node(self: Node, item: Any) -> MessageNode:
    """Traced ``item in x``; the ``in`` operator itself must return a plain bool."""
    return apply(OPS["contains"], operator.contains, (self, item))


def _contains(self: Node, item: Any) -> bool:
    return _unwrap(item) in self._data


def _divmod(self: Node, other: Any) -> MessageNode:
    return apply(OPS["divmod"], divmod, (self, other))


def _call(self: Node, *args: Any, **kwargs: Any) -> MessageNode:
    if not callable(self._data):
        raise TypeError(f"node {self.name!r} holds a {type(self._data).__name__}, not a callable")
    return apply(OPS["call"], lambda f, *a, **k: f(*a, **k), (self, *args), kwargs)


def _len_node(self: Node) -> MessageNode:
    return apply(OPS["len"], len, (self,))


def _iter(self: Node):
    """Iterate over the value, yielding traced items (keys for a dict)."""
    op = OPS["iter_item"]
    for i, item in enumerate(self._data):
        yield MessageNode(item, op, (self, i), (self,))


def _getattr_node(self: Node, key: str) -> MessageNode:
    """Traced ``getattr(x, key)``."""
    return apply(OPS["getattr"], getattr, (self, key))


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
        return apply(op, lambda obj, *a, **k: getattr(obj, name)(*a, **k), (self.node, *args), kwargs)

    def __repr__(self) -> str:
        return f"<traced method {type(self.node._data).__name__}.{self.method} of {self.node.name}>"


def _node_getattr(self: Node, key: str) -> Any:
    # Private and dunder names are never forwarded: IPython and copy/pickle probe them.
    if key.startswith("_"):
        raise AttributeError(key)
    try:
        value = getattr(self._data, key)
    except AttributeError:
        raise AttributeError(
            f"{type(self).__name__} {self.name!r} has no attribute {key!r} and neither has its "
            f"value of type {type(self._data).__name__}"
        ) from None
    if callable(value):
        return TracedMethod(self, key, value)
    return MessageNode(value, OPS["getattr"], (self, key), (self,))


def _setitem(self: Node, key: Any, value: Any) -> None:
    # In-place mutation is applied to the value; it is not a node of the graph.
    self._data[_unwrap(key)] = _unwrap(value)


Node.__getitem__ = _getitem
Node.__setitem__ = _setitem
Node.__contains__ = _contains
Node.__divmod__ = _divmod
Node.__call__ = _call
Node.__iter__ = _iter
Node.__getattr__ = _node_getattr
Node.len = _len_node
Node.contains = _contains_node
Node.getattr = _getattr_node


def _call_fn(self: Node, fn: Callable, *args: Any, **kwargs: Any) -> MessageNode:
    """Traced ``fn(self, *args, **kwargs)`` for any plain function ``fn``."""
    from .names import sanitize

    fname = getattr(fn, "__name__", "call")
    doc = (getattr(fn, "__doc__", None) or "").strip().splitlines()
    op = Op(fname, doc[0] if doc else "a function call.", base_name=sanitize(fname))
    return apply(op, fn, (self, *args), kwargs)


Node.call = _call_fn
