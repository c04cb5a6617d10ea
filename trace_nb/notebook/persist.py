"""Saving sessions as JSON, exporting values as Python, and writing values back into a cell."""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any

from ..files import atomic_write
from ..graph import BundledFunction, ParameterNode, compile_function

if TYPE_CHECKING:
    from .session import TraceSession

FORMAT = "trace_nb.session/1"


def session_state(s: TraceSession) -> dict:
    """JSON-ready state of a session: parameters, code, history, optimizer memory."""
    params = {k: {"value": p._data, "description": p.description, "constraint": p.constraint}
              for k, p in s._params.items()}
    code = {k: {"source": b.parameter._data} for k, b in s._code.items()}
    modules = {}
    if s._modules:
        from ..modules import state_dict

        modules = {k: state_dict(obj) for k, obj in s._modules.items()}
    opt = s._optimizer.state() if s._optimizer is not None and hasattr(s._optimizer, "state") else None
    spec = vars(s.spec).copy() if s.spec is not None else None
    return {"format": FORMAT, "name": s.name, "parameters": params, "code": code, "modules": modules,
            "history": s.rows, "optimizer": opt, "spec": spec}


def save_session(s: TraceSession, path: str) -> None:
    try:
        text = json.dumps(session_state(s), indent=1)
    except TypeError as e:
        raise TypeError(f"session {s.name!r} holds a value that JSON cannot store ({e}); "
                        "parameters must be str, numbers, bools, lists or dicts") from e
    atomic_write(path, text)


def load_session(path: str) -> TraceSession:
    from .magics import CellSpec
    from .session import TraceSession

    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a saved trace_nb session (format {state.get('format')!r})")
    s = TraceSession(state["name"])
    if state.get("spec"):
        s.spec = CellSpec(**state["spec"])
    for k, rec in state["parameters"].items():
        s._params[k] = ParameterNode(rec["value"], name=k, description=rec.get("description"),
                                     constraint=rec.get("constraint"))
    for k, rec in state.get("code", {}).items():
        fn = compile_function(rec["source"], k, {"__name__": "__main__"})
        b = BundledFunction(fn, trainable=True, allow_external_dependencies=True)
        b.parameter._set(rec["source"])
        s._code[k] = b
    # A module is an object the cell makes: its values wait until the cell registers it.
    s._saved_modules = dict(state.get("modules", {}))
    s.rows = state.get("history", [])
    # Optimizer memory is restored when the optimizer is made (loading needs no API key).
    s._pending_optimizer_state = state.get("optimizer")
    return s


def export_session(s: TraceSession, path: str) -> None:
    lines = [f'"""Values learned by trace_nb session {s.name!r}."""', ""]
    for k, p in s._params.items():
        lines.append(f"{k} = {p._data!r}")
    for b in s._code.values():
        lines += ["", "", b.parameter._data.rstrip()]
    atomic_write(path, "\n".join(lines) + "\n")


def writeback(s: TraceSession) -> str:
    """The cell source with each parameter's assignment and each code function replaced."""
    if s.spec is None:
        raise ValueError(f"session {s.name!r} has no cell source to write back into")
    source = s.spec.source
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    edits: list[tuple[int, int, str]] = []
    values = s.parameters
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name in s._params:
                v = stmt.value
                new = _literal(values[name])
                if _is_param_call(v) and v.args:
                    v = v.args[0]  # keep param(..., constraint=...) around the new value
                edits.append((_pos(lines, offsets, v.lineno, v.col_offset),
                              _pos(lines, offsets, v.end_lineno, v.end_col_offset), new))
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name in s._code:
            start = min([stmt.lineno] + [d.lineno for d in stmt.decorator_list])
            deco = "".join(lines[start - 1: stmt.lineno - 1])
            edits.append((offsets[start - 1], offsets[stmt.end_lineno],
                          deco + values[stmt.name].rstrip() + "\n"))
    for a, b, text in sorted(edits, reverse=True):
        source = source[:a] + text + source[b:]
    return source


def _is_param_call(v: ast.expr) -> bool:
    return isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "param"


def _pos(lines: list[str], offsets: list[int], lineno: int, col: int) -> int:
    # ast columns count UTF-8 bytes; the string is indexed by characters.
    chars = len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8", errors="ignore"))
    return offsets[lineno - 1] + chars


def _literal(value: Any) -> str:
    return repr(value)
