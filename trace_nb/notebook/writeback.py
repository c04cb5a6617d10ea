"""Writing a session's current values back into its cell's source (``%trace_writeback``).

Each ``--param`` assignment gets its current value as a Python literal (inside a
``param(...)`` call the call is kept), and each ``--code`` function its approved source;
the rest of the cell is left as it was, byte for byte.

Positions come from :mod:`ast`, so the cell is cut into lines as ``ast`` counts them (at
``\n``, ``\r\n`` and ``\r`` only): ``str.splitlines`` would also break at a form feed or
U+2028 and put the value in the wrong place.
"""

from __future__ import annotations

import ast
import re
from typing import Any, Protocol, TypeGuard

from .persist import python_literal


class WritableSession(Protocol):
    """What writing back needs of a session: its name, its cell (``spec.source``), its
    state (:meth:`~.session.TraceSession.to_state`) and which values differ from the cell."""

    name: str
    spec: Any

    def to_state(self) -> dict: ...

    def differences(self) -> dict[str, tuple[Any, Any]]: ...


def writeback(s: WritableSession) -> str:
    """The cell source with each parameter's assignment and each code function replaced."""
    if s.spec is None:
        raise ValueError(f"session {s.name!r} has no cell source to write back into")
    source = s.spec.source
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        raise ValueError(
            f"session {s.name!r}: its saved cell source does not parse ({e}); "
            "run the cell again to record it"
        ) from None
    lines = source_lines(source)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    edits: list[tuple[int, int, str]] = []
    state = s.to_state()
    params = state["parameters"]
    code = state["code"]
    written: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            for name, v in _value_of_each_name(stmt):
                if name not in params or name in written:
                    continue  # a later ``x = x + ...`` is an operation on it, kept as written
                new = _literal(params[name]["value"], name)
                if _wraps_param(v) and v.args:
                    v = v.args[0]  # keep param(..., constraint=...) around the new value
                written.add(name)
                end_line, end_col = _end(v)
                edits.append(
                    (
                        _pos(lines, offsets, v.lineno, v.col_offset),
                        _pos(lines, offsets, end_line, end_col),
                        new,
                    )
                )
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name in code:
            start = min([stmt.lineno] + [d.lineno for d in stmt.decorator_list])
            deco = "".join(lines[start - 1 : stmt.lineno - 1])
            edits.append(
                (
                    offsets[start - 1],
                    offsets[_end(stmt)[0]],
                    deco + code[stmt.name]["source"].rstrip() + "\n",
                )
            )
    unwritten = [k for k in s.differences() if k in params and k not in written]
    if unwritten:
        raise ValueError(
            f"session {s.name!r}: cannot write {unwritten[0]!r} back into the cell: its "
            "assignment is not `name = value` (or `name, other = value, other_value`) at the "
            f"cell's top level; write it so, or copy the value from "
            f"trace_nb.session({s.name!r}).parameters[{unwritten[0]!r}]"
        )
    for a, b, text in sorted(edits, reverse=True):
        source = source[:a] + text + source[b:]
    return source


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def source_lines(source: str) -> list[str]:
    """``source`` cut into lines (with their ends) the way :mod:`ast` numbers them."""
    return _LINE.findall(source)


def _end(node: ast.expr | ast.stmt) -> tuple[int, int]:
    """Where ``node`` ends (line, column): :func:`ast.parse` sets both on every node (only
    nodes built by hand can lack them)."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    return node.end_lineno, node.end_col_offset


def _wraps_param(v: ast.expr) -> TypeGuard[ast.Call]:
    """``param(value, ...)`` as the user wrote it in the cell (the source, not the rewrite
    :mod:`.transform` runs)."""
    return isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "param"


def _pos(lines: list[str], offsets: list[int], lineno: int, col: int) -> int:
    # ast columns count UTF-8 bytes; the string is indexed by characters.
    chars = len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8", errors="ignore"))
    return offsets[lineno - 1] + chars


def _literal(value: Any, name: str = "value") -> str:
    return python_literal(value, f"parameter {name!r}")


def _value_of_each_name(stmt: ast.Assign | ast.AnnAssign) -> list[tuple[str, ast.expr]]:
    """The variables an assignment binds to a value of their own in the source, each with
    that value: ``x = v``, ``x: T = v`` and ``x, y = v, w`` (``a = b = v`` shares its value
    and ``x, y = f()`` has none to replace: neither gives one)."""
    if isinstance(stmt, ast.AnnAssign):
        target, value = stmt.target, stmt.value
    elif len(stmt.targets) == 1:
        target, value = stmt.targets[0], stmt.value
    else:
        return []
    if isinstance(target, ast.Name) and value is not None:
        return [(target.id, value)]
    if (
        isinstance(target, ast.Tuple | ast.List)
        and isinstance(value, ast.Tuple | ast.List)
        and len(target.elts) == len(value.elts)
        and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
    ):
        return [
            (t.id, v)
            for t, v in zip(target.elts, value.elts, strict=True)
            if isinstance(t, ast.Name)
        ]
    return []
