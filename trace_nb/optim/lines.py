"""How one node is written in an OptoPrime prompt: ``(type) name=value`` lines and
``result = op(arg=...)`` #Code lines, with the cuts a character budget imposes."""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any

from ..graph import ExceptionNode, MessageNode, Node, ParameterNode
from ..graph.ops import OPS

Names = Callable[[Node], str]

# Cuts applied only when the problem does not fit its character budget, as fractions of
# it (2,000 and 60 characters at the default budget of 30,000); with no budget nothing is cut.
VALUE_SHARE = 15  # one #Inputs/#Others/#Outputs value: at most budget // 15 characters
ARG_SHARE = 500  # a constant written inline in #Code: at most budget // 500 characters
VALUE_LIMIT = 30_000 // VALUE_SHARE  # the cuts at the default budget
ARG_LIMIT = 30_000 // ARG_SHARE


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + f"… [{len(text) - limit + 1} more characters]"


def type_name(n: Node) -> str:
    if isinstance(n, ParameterNode) and n.is_code:
        return "code"
    if n.kind == "exception":
        return type(n.peek()).__name__
    return type(n.peek()).__name__


def _own_name(n: Node) -> str:
    return n.name


def value_line(n: Node, limit: int | None = None, names: Names = _own_name) -> str:
    """``(type) name=value``; code parameters as ``(code) name:`` and their source.

    Values longer than ``limit`` characters are cut (None: never). ``names`` gives each node's name (the problem's :class:`~trace_nb.graph.names.NameTable`).
    """
    if isinstance(n, ParameterNode) and n.is_code:
        return f"(code) {names(n)}:\n{n.peek()}"
    value = n.describe() if isinstance(n, ExceptionNode) else repr(n.peek())
    if limit is not None:
        value = cut(value, limit)
    return f"({type_name(n)}) {names(n)}={value}"


def code_line(
    n: MessageNode,
    names: Names = _own_name,
    arg_limit: int | None = None,
    taken: Container[str] = (),
) -> str:
    """``result = op(arg=name_or_constant, ...)`` for one operator node.

    Arguments are labelled by the operator's parameter names; the positional arguments a
    ``*rest`` parameter collects are shown as the tuple it receives (``rest=(w1, w2)``).
    Constants longer than ``arg_limit`` characters are cut (None: never). A built-in
    operator whose placeholder labels (``a``, ``b``, ``x``...) are also names in the problem
    (``taken``) is written positionally: ``sub(a, 1.0)``, never ``sub(a=a, b=1.0)``.
    """
    op = n.op
    if _builtin(op) and any(label.lstrip("*") in taken for label in op.arg_names):
        args = [_arg_text(a, names, arg_limit) for a in n.args]
        args += [f"{k}={_arg_text(v, names, arg_limit)}" for k, v in (n.kwargs or {}).items()]
        shown: set[int] = set()
        for a in (*n.args, *(n.kwargs or {}).values()):
            _node_ids(a, shown)
        args += [f"uses={names(p)}" for p in n._parents if id(p) not in shown]
        return f"{names(n)} = {op.name}({', '.join(args)})"
    arg_names = op.arg_names
    positional = [a for a in arg_names if not a.startswith("**")]
    star = next((i for i, a in enumerate(positional) if a.startswith("*")), None)
    args = []
    for i, a in enumerate(n.args):
        if star is not None and i >= star:
            break
        label = positional[i] if i < len(positional) else f"arg{i}"
        args.append(f"{label}={_arg_text(a, names, arg_limit)}")
    if star is not None and len(n.args) > star:
        rest = n.args[star:]
        inner = ", ".join(_arg_text(a, names, arg_limit) for a in rest)
        args.append(f"{positional[star][1:]}=({inner}{',' if len(rest) == 1 else ''})")
    for k, v in (n.kwargs or {}).items():
        args.append(f"{k}={_arg_text(v, names, arg_limit)}")
    # Dependencies that were not arguments (a trainable function's code, external reads).
    given: set[int] = set()
    for a in (*n.args, *(n.kwargs or {}).values()):
        _node_ids(a, given)
    extra = [p for p in n._parents if id(p) not in given]
    for p in extra:
        args.append(f"{'code' if getattr(p, 'is_code', False) else 'uses'}={names(p)}")
    return f"{names(n)} = {op.name}({', '.join(args)})"


def _builtin(op: Any) -> bool:
    """An operator of trace_nb's own (``add``, ``getitem``, ``str.replace``...), whose
    argument names are placeholders."""
    return OPS.get(op.name) is op or (op.arg_names == ("self",) and op.name.count(".") == 1)


def _cut_opt(text: str, limit: int | None) -> str:
    return text if limit is None else cut(text, limit)


def _arg_text(a: Any, names: Names = _own_name, limit: int | None = None) -> str:
    if isinstance(a, Node):
        return names(a)
    wide = None if limit is None else limit * 4
    if type(a) in (list, tuple, set, frozenset, dict) and _holds_node(a):
        # A container of nodes (unwrapped into parents by the graph): show their names.
        if isinstance(a, dict):
            inner = ", ".join(
                f"{_arg_text(k, names, limit)}: {_arg_text(v, names, limit)}" for k, v in a.items()
            )
            return _cut_opt("{" + inner + "}", wide)
        inner = ", ".join(_arg_text(v, names, limit) for v in a)
        if isinstance(a, tuple):
            return _cut_opt(f"({inner}{',' if len(a) == 1 else ''})", wide)
        return _cut_opt(f"[{inner}]" if isinstance(a, list) else "{" + inner + "}", wide)
    return _cut_opt(repr(a), limit)


def _holds_node(a: Any) -> bool:
    items = a.items() if isinstance(a, dict) else ((v, None) for v in a)
    for k, v in items:
        if isinstance(k, Node) or isinstance(v, Node):
            return True
        for x in (k, v):
            if type(x) in (list, tuple, set, frozenset, dict) and _holds_node(x):
                return True
    return False


def _node_ids(a: Any, out: set[int]) -> None:
    if isinstance(a, Node):
        out.add(id(a))
    elif type(a) in (list, tuple, set, frozenset):
        for v in a:
            _node_ids(v, out)
    elif type(a) is dict:
        for k, v in a.items():
            _node_ids(k, out)
            _node_ids(v, out)
