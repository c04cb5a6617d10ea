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
from typing import TYPE_CHECKING, Any

from .persist import python_literal

if TYPE_CHECKING:
    from .session import TraceSession


def writeback(s: TraceSession) -> str:
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
    values = s.parameters
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
        ):
            name = stmt.targets[0].id
            if name in s._params:
                v = stmt.value
                new = _literal(values[name], name)
                if _wraps_param(v) and v.args:
                    v = v.args[0]  # keep param(..., constraint=...) around the new value
                edits.append(
                    (
                        _pos(lines, offsets, v.lineno, v.col_offset),
                        _pos(lines, offsets, v.end_lineno, v.end_col_offset),
                        new,
                    )
                )
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name in s._code:
            start = min([stmt.lineno] + [d.lineno for d in stmt.decorator_list])
            deco = "".join(lines[start - 1 : stmt.lineno - 1])
            edits.append(
                (
                    offsets[start - 1],
                    offsets[stmt.end_lineno],
                    deco + values[stmt.name].rstrip() + "\n",
                )
            )
    for a, b, text in sorted(edits, reverse=True):
        source = source[:a] + text + source[b:]
    return source


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def source_lines(source: str) -> list[str]:
    """``source`` cut into lines (with their ends) the way :mod:`ast` numbers them."""
    return _LINE.findall(source)


def _wraps_param(v: ast.expr) -> bool:
    """``param(value, ...)`` as the user wrote it in the cell (the source, not the rewrite
    :mod:`.transform` runs)."""
    return isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "param"


def _pos(lines: list[str], offsets: list[int], lineno: int, col: int) -> int:
    # ast columns count UTF-8 bytes; the string is indexed by characters.
    chars = len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8", errors="ignore"))
    return offsets[lineno - 1] + chars


def _literal(value: Any, name: str = "value") -> str:
    return python_literal(value, f"parameter {name!r}")
