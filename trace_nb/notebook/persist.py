"""Saving and loading sessions as JSON, and exporting their values as Python.

A saved session is read as untrusted input: :func:`load_session` checks the whole file
first (shape, names, value types against a live session of the same name, code through
the same validation as an LLM proposal) and only then replaces the session of that name,
so a refused file changes nothing. Every problem is one :class:`SessionFileError`.
"""

from __future__ import annotations

import ast
import dataclasses
import keyword
import math
from typing import Any, Protocol

from .. import savefile
from ..errors import CoercionError
from ..files import atomic_write
from ..graph import compile_function
from ..optim.codecheck import validate_source
from ..text import cut, short_repr


class SavedSession(Protocol):
    """What this module needs of a session: its name, its state
    (:meth:`~.session.TraceSession.to_state`) and, to check a file against it, its live
    modules."""

    name: str

    def to_state(self) -> dict: ...

    @property
    def modules(self) -> dict[str, Any]: ...


class SessionFileError(ValueError):
    """A saved session file that cannot be loaded (or a session that cannot be exported);
    the message says what is wrong and nothing was changed."""


def session_state(s: SavedSession) -> dict:
    """JSON-ready state of a session: the fields of a ``session`` save file (see
    :mod:`trace_nb.savefile`); the same as ``s.to_state()``."""
    return s.to_state()


def save_session(s: SavedSession, path: str) -> None:
    """Write the session as JSON, atomically; NaN and non-JSON values are refused."""
    savefile.save(path, "session", s.to_state(), f"session {s.name!r}")


# ----------------------------------------------------------------------------- loading


def _fail(path: str, message: str) -> SessionFileError:
    return SessionFileError(f"cannot load the session {path}: {message}; nothing was changed")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


def same_kind(current: Any, saved: Any) -> bool:
    """Whether a saved value may replace ``current``: the same JSON kind (an int stays a
    number, a str stays a str...); an untyped (None) current value accepts anything."""
    if current is None:
        return True
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(saved, float):
        return saved.is_integer()  # an int parameter must not turn fractional
    return _kind(current) == _kind(saved)


def _name_ok(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def _check_state(state: Any, path: str) -> dict[str, Any]:
    """The fields of a session file (already unwrapped, see :mod:`trace_nb.savefile`),
    checked for shape; raises SessionFileError."""
    from .registry import check_name

    name = state.get("name")
    try:
        check_name(name)
    except ValueError as e:
        raise _fail(path, f"its session name is refused: {e}") from None
    sections = {"parameters": dict, "code": dict, "modules": dict, "history": list}
    out: dict[str, Any] = {"name": name}
    for key, kind in sections.items():
        value = state.get(key, kind())
        if not isinstance(value, kind):
            raise _fail(path, f"its {key!r} is a JSON {_kind(value)}, not a {kind.__name__}")
        out[key] = value
    for section in ("parameters", "code", "modules"):
        for k, rec in out[section].items():
            if not _name_ok(k):
                raise _fail(path, f"{section} name {k!r} is not a Python identifier")
            if not isinstance(rec, dict):
                raise _fail(path, f"{section}[{k!r}] is a JSON {_kind(rec)}, not an object")
    for k, rec in out["parameters"].items():
        if "value" not in rec:
            raise _fail(path, f"parameters[{k!r}] has no 'value'")
        for field in ("description", "constraint"):
            if rec.get(field) is not None and not isinstance(rec.get(field), str):
                raise _fail(path, f"parameters[{k!r}].{field} is not text")
    for k, rec in out["code"].items():
        if not isinstance(rec.get("source"), str):
            raise _fail(path, f"code[{k!r}] has no 'source' text")
    for i, row in enumerate(out["history"]):
        problem = _row_problem(row)
        if problem is not None:
            raise _fail(path, f"its history row {i} {problem}")
    optimizer = state.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, dict):
        raise _fail(path, f"its 'optimizer' state is a JSON {_kind(optimizer)}, not an object")
    out["optimizer"] = optimizer
    out["spec"] = _check_spec(state.get("spec"), path)
    from .lineage import Lineage

    try:
        out["lineage"] = Lineage.from_data(state.get("lineage"))
    except (TypeError, ValueError) as e:
        raise _fail(path, f"its 'lineage' is malformed: {e}") from None
    return out


#: The types of the history table's own columns (the parameter columns hold any scalar).
_ROW_TYPES: dict[str, tuple[type, ...]] = {
    "step": (int,),
    "time": (str,),
    "output": (str, type(None)),
    "feedback": (str, type(None)),
    "score": (int, float, type(None)),
    "approved": (str,),
    "rejected": (str,),
    "decided_by": (str,),
    "node_feedback": (str, type(None)),
    "calls": (int,),
    "tokens": (int,),
    "cost": (int, float),
}


def _row_problem(row: Any) -> str | None:
    """What is wrong with a saved history row (the panel's table draws every cell), or None."""
    if not isinstance(row, dict):
        return f"is a JSON {_kind(row)}, not an object"
    step = row.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 10**9:
        return f"has the step {short_repr(step, 40)}, not a run number (the score plot needs it)"
    for key, value in row.items():
        if not isinstance(key, str):
            return f"has a column {key!r} that is not text"
        if isinstance(value, list | dict):
            return f"has a {_kind(value)} in column {key!r}, where a table cell is expected"
        types = _ROW_TYPES.get(key)
        if types is not None and (
            not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        ):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            return f"has {short_repr(value, 40)} in column {key!r}, which holds {names}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"has {value!r} in column {key!r}, not a finite number"
        if key in ("score", "cost") and isinstance(value, int) and abs(value) > 2**1023:
            # the score plot draws it as a float: 10**400 would break every refresh
            return f"has {short_repr(value, 40)} in column {key!r}, beyond a float's range"
    return None


def _check_spec(spec: Any, path: str) -> Any:
    from .spec import CellSpec

    if not spec:
        return None
    if not isinstance(spec, dict):
        raise _fail(path, f"its 'spec' is a JSON {_kind(spec)}, not an object")
    fields = {f.name: f for f in dataclasses.fields(CellSpec)}
    unknown = sorted(set(spec) - set(fields))
    if unknown:
        raise _fail(path, f"its 'spec' has unknown fields {unknown}")
    if not isinstance(spec.get("source"), str):
        raise _fail(path, "its 'spec' has no cell 'source' text")
    for key in ("params", "code"):
        if not isinstance(spec.get(key, []), list) or not all(
            isinstance(v, str) for v in spec.get(key, [])
        ):
            raise _fail(path, f"its 'spec'.{key} is not a list of names")
    return CellSpec(**spec)


def _shell() -> Any:
    """The running IPython shell, or None."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    return get_ipython()


def _user_namespace() -> dict[str, Any]:
    """The notebook's namespace, so restored code sees the notebook's helpers (outside
    IPython, a fresh ``__main__``-like one). Validated code defines nothing in it."""
    shell = _shell()
    return shell.user_ns if shell is not None else {"__name__": "__main__"}


def read_state(path: str) -> dict[str, Any]:
    """The fields of the session file at ``path``, checked for shape (old files migrated,
    see :mod:`trace_nb.savefile`); raises :class:`SessionFileError`."""
    fields = savefile.load(
        path,
        "session",
        lambda m: SessionFileError(f"cannot load the session: {m}; nothing was changed"),
    )
    return _check_state(fields, path)


def check_against(state: dict[str, Any], live: SavedSession | None, path: str) -> dict:
    """Check the fields of a session file (:func:`read_state`) against ``live``, the
    session it would fill (None: none), and compile its code; return the code as
    name -> (function, source). Int values that JSON wrote as ``3.0`` become ints again
    (``state`` is changed in place).

    Values must have the types of ``live``'s, module values must suit its modules, and
    saved code passes the checks of an LLM proposal against ``live``'s code.

    Raises
    ------
    SessionFileError
        When a value has the wrong type or saved code fails validation.
    """
    name = state["name"]
    current = live.to_state() if live is not None else {"parameters": {}, "code": {}}
    live_values = {k: rec["value"] for k, rec in current["parameters"].items()}
    live_code = {k: rec["source"] for k, rec in current["code"].items()}
    for k, rec in state["parameters"].items():
        if k in live_values and not same_kind(live_values[k], rec["value"]):
            raise _fail(
                path,
                f"parameter {k!r} is a {_kind(live_values[k])} in session "
                f"{name!r} but the file gives a {_kind(rec['value'])} "
                f"({short_repr(rec['value'], 60)})",
            )
        value = live_values.get(k)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and isinstance(rec["value"], float)
        ):
            rec["value"] = int(rec["value"])  # JSON wrote 3 as 3.0: an int stays an int
    if live is not None:
        _check_module_values(live, state["modules"], path)
    functions = {}
    for k, rec in state["code"].items():
        try:
            source = validate_source(rec["source"], k, live_code.get(k))
            fn = compile_function(source, k, _user_namespace())
        except CoercionError as e:
            raise _fail(path, str(e)) from None
        except Exception as e:  # noqa: BLE001 - an import the code needs may be missing
            raise _fail(
                path,
                f"the saved code of {k!r} does not load ({type(e).__name__}: {cut(str(e), 200)})",
            ) from None
        functions[k] = (fn, source)
    return functions


def _check_module_values(live: SavedSession, modules: dict[str, Any], path: str) -> None:
    """Saved module values against the live session's modules: the same names and kinds,
    and code that loads (:func:`~trace_nb.modules.persist.check_state_dict`)."""
    live_modules = live.modules
    if not live_modules:
        return
    from ..modules.persist import check_state_dict

    for k, values in modules.items():
        module = live_modules.get(k)
        if module is None:
            continue
        try:
            check_state_dict(module, values)
        except ValueError as e:
            raise _fail(path, f"module {k!r}: {e}") from None


def check_same_parameters(
    live: tuple[set[str], set[str]], loaded: tuple[set[str], set[str]], name: str, path: str
) -> None:
    """Refuse a file whose parameters are not those of the live session it would fill:
    ``live`` and ``loaded`` are (value parameters and modules, code parameters), as
    :meth:`~.session.TraceSession.parameter_names` gives them."""
    live_values, live_code = live
    if not live_values and not live_code:
        return  # the live session has no parameters yet: the file gives them
    file_values, file_code = loaded
    if (file_values, file_code) == (live_values, live_code):
        return
    said = []
    for what, mine, theirs in (
        ("parameters", live_values, file_values),
        ("code", live_code, file_code),
    ):
        if mine != theirs:
            said.append(
                f"{what}: the file has {sorted(theirs) or 'none'}, the live session "
                f"{sorted(mine) or 'none'}"
            )
    raise _fail(
        path,
        f"it is a session {name!r} with other parameters than the live session of "
        f"that name ({'; '.join(said)}). Run the %%trace --name {name} cell with the "
        f"file's parameters first, or close the live session "
        f"(trace_nb.session({name!r}).close()) to load the file as a new one",
    )


# ----------------------------------------------------------------------------- export


def python_literal(value: Any, what: str) -> str:
    """``repr(value)`` when it reads back as an equal value with ``ast.literal_eval``.

    Raises
    ------
    SessionFileError
        For values with no Python literal (objects, NaN, infinities): writing their repr
        into a ``.py`` file could run code when imported.
    """
    text = repr(value)
    try:
        back = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        back = _NOT_A_LITERAL
    if (
        back is _NOT_A_LITERAL
        or back != value
        or type(back) is not type(value)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise SessionFileError(
            f"{what} ({type(value).__name__}) has no Python literal, so it "
            "cannot be written as Python; give it a str, number, bool, "
            "None, list, tuple or dict value"
        )
    return text


_NOT_A_LITERAL = object()


def export_session(s: SavedSession, path: str) -> None:
    """Write the current values (and approved code) as an importable Python file.

    Names must be identifiers, values Python literals and code valid by the same rules as
    an LLM proposal; the text is compiled before it is written. Nothing is written when
    any check fails (:class:`SessionFileError`).
    """
    state = s.to_state()
    lines = [repr(f"Values learned by trace_nb session {s.name!r}."), ""]
    for k, rec in state["parameters"].items():
        if not _name_ok(k):
            raise SessionFileError(f"cannot export parameter {k!r}: not a Python identifier")
        lines.append(f"{k} = {python_literal(rec['value'], f'parameter {k!r}')}")
    for k, rec in state["code"].items():
        if not _name_ok(k):
            raise SessionFileError(f"cannot export code {k!r}: not a Python identifier")
        try:
            source = validate_source(rec["source"], k)
        except CoercionError as e:
            raise SessionFileError(f"cannot export: {e}") from None
        lines += ["", "", source.rstrip()]
    text = "\n".join(lines) + "\n"
    try:
        compile(text, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise SessionFileError(
            f"cannot export session {s.name!r}: the file would not compile ({e})"
        ) from None
    atomic_write(path, text)
