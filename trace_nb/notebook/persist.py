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
import pathlib
from typing import TYPE_CHECKING, Any

from .. import savefile
from ..files import atomic_write, finite_or_none
from ..graph import BundledFunction, ParameterNode, compile_function
from ..optim.codecheck import validate_source
from ..optim.coerce import CoercionError
from ..text import cut, short_repr

if TYPE_CHECKING:
    from .session import TraceSession


class SessionFileError(ValueError):
    """A saved session file that cannot be loaded (or a session that cannot be exported);
    the message says what is wrong and nothing was changed."""


def session_state(s: TraceSession) -> dict:
    """JSON-ready state of a session: parameters, code, history, optimizer memory (the
    fields of a ``session`` save file, see :mod:`trace_nb.savefile`)."""
    params = {
        k: {"value": p.peek(), "description": p.description, "constraint": p.constraint}
        for k, p in s._params.items()
    }
    code = {k: {"source": b.parameter.peek()} for k, b in s._code.items()}
    modules = {}
    if s._modules:
        from ..modules import state_dict

        modules = {k: state_dict(obj) for k, obj in s._modules.items()}
    if s._optimizer is not None:
        opt = s._optimizer.state() if hasattr(s._optimizer, "state") else None
    else:  # memory loaded from a file and not yet given to an optimizer is kept too
        opt = s._pending_optimizer_state
    spec = vars(s.spec).copy() if s.spec is not None else None
    # A score that is not a number is no score: NaN is not JSON.
    rows = [
        {k: finite_or_none(v) for k, v in row.items()} if isinstance(row, dict) else row
        for row in s.rows
    ]
    return {
        "name": s.name,
        "parameters": params,
        "code": code,
        "modules": modules,
        "history": rows,
        "optimizer": opt,
        "spec": spec,
        "lineage": s.lineage.to_data(),
    }


def save_session(s: TraceSession, path: str) -> None:
    """Write the session as JSON, atomically; NaN and non-JSON values are refused."""
    savefile.save(path, "session", session_state(s), f"session {s.name!r}")


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


def read_session(path: str, like: TraceSession | None = None) -> TraceSession:
    """The session saved at ``path``, checked completely, as a new session that nothing
    finds by name yet.

    Values must have the types of ``like``'s (by default the live session of the file's
    name, if any) and saved code passes the checks of an LLM proposal against ``like``'s.

    Raises
    ------
    SessionFileError
        When the file is not a readable session, a value has the wrong type, or saved
        code fails validation.
    FileNotFoundError
        When there is no such file.
    """
    from . import registry
    from .session import TraceSession

    state = read_state(path)
    name = state["name"]
    live = like if like is not None else registry.find(name)
    live_values = {k: p.peek() for k, p in live._params.items()} if live is not None else {}
    live_code = {k: b.parameter.peek() for k, b in live._code.items()} if live is not None else {}
    for k, rec in state["parameters"].items():
        if k in live_values and not same_kind(live_values[k], rec["value"]):
            raise _fail(
                path,
                f"parameter {k!r} is a {_kind(live_values[k])} in session "
                f"{name!r} but the file gives a {_kind(rec['value'])} "
                f"({short_repr(rec['value'], 60)})",
            )
        current = live_values.get(k)
        if (
            isinstance(current, int)
            and not isinstance(current, bool)
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

    s = TraceSession(name, register=False)
    s.spec = state["spec"]
    for k, rec in state["parameters"].items():
        s._params[k] = ParameterNode(
            rec["value"],
            name=k,
            description=rec.get("description"),
            constraint=rec.get("constraint"),
        )
    for k, (fn, source) in functions.items():
        b = BundledFunction(fn, trainable=True, allow_external_dependencies=True)
        b.parameter.set_value(source)
        s._code[k] = b
    # A module is an object the cell makes: its values wait until the cell registers it.
    s._saved_modules = dict(state["modules"])
    s.rows = state["history"]
    # Optimizer memory is restored when the optimizer is made (loading needs no API key).
    s._pending_optimizer_state = state["optimizer"]
    s.lineage = state["lineage"]
    return s


def _check_module_values(live: TraceSession, modules: dict[str, Any], path: str) -> None:
    """Saved module values against the live session's modules: the same names and kinds,
    and code that loads (:func:`~trace_nb.modules.persist.check_state_dict`)."""
    if not live._modules:
        return
    from ..modules.persist import check_state_dict

    for k, values in modules.items():
        module = live._modules.get(k)
        if module is None:
            continue
        try:
            check_state_dict(module, values)
        except ValueError as e:
            raise _fail(path, f"module {k!r}: {e}") from None


def load_session(path: str) -> TraceSession:
    """Load a session saved with :func:`save_session` as the session of its name.

    When a live session has that name (its cell ran), the file's values, code and history
    go into it: variables and the panel that hold it keep working on the loaded state, and
    it goes on autosaving (the autosave file of the work it replaced is kept aside first,
    see :func:`.autosave.live_work_kept`). The file's parameters must then be the live session's. With no
    live session, the loaded one becomes the session of its name and autosaves from then
    on; inside IPython the shell keeps it alive, as it keeps a ``%%trace`` cell's session
    (see :mod:`.registry`).

    Raises
    ------
    SessionFileError
        When the file is not a readable session, a value has the wrong type for the live
        session of that name, saved code fails validation, or the file's parameters are
        not the live session's. The live session (if any) is left as it was.
    FileNotFoundError
        When there is no such file.
    """
    from . import autosave, registry

    s = read_session(path)  # everything checked: only now does anything change
    live = registry.find(s.name)
    if live is not None:
        _check_same_parameters(live, s, path)
        with live.lock, autosave.live_work_kept(live, pathlib.Path(path)):
            live.adopt_state(s)
        return live
    shell = _shell()
    registry.register(s, shell)
    autosave.enable(s, shell)
    return s


def _names(s: TraceSession) -> tuple[set[str], set[str]]:
    """(value parameters and modules, code parameters) a session has or will have."""
    values = set(s._params) | set(s._modules) | set(s._saved_modules)
    if s.spec is not None:
        values |= set(s.spec.params)
    return values, set(s._code) | (set(s.spec.code) if s.spec is not None else set())


def _check_same_parameters(live: TraceSession, loaded: TraceSession, path: str) -> None:
    """Refuse a file whose parameters are not those of the live session it would fill."""
    live_values, live_code = _names(live)
    if not live_values and not live_code:
        return  # the live session has no parameters yet: the file gives them
    file_values, file_code = _names(loaded)
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
        f"it is a session {live.name!r} with other parameters than the live session of "
        f"that name ({'; '.join(said)}). Run the %%trace --name {live.name} cell with the "
        f"file's parameters first, or close the live session "
        f"(trace_nb.session({live.name!r}).close()) to load the file as a new one",
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


def export_session(s: TraceSession, path: str) -> None:
    """Write the current values (and approved code) as an importable Python file.

    Names must be identifiers, values Python literals and code valid by the same rules as
    an LLM proposal; the text is compiled before it is written. Nothing is written when
    any check fails (:class:`SessionFileError`).
    """
    lines = [repr(f"Values learned by trace_nb session {s.name!r}."), ""]
    for k, p in s._params.items():
        if not _name_ok(k):
            raise SessionFileError(f"cannot export parameter {k!r}: not a Python identifier")
        lines.append(f"{k} = {python_literal(p.peek(), f'parameter {k!r}')}")
    for k, b in s._code.items():
        if not _name_ok(k):
            raise SessionFileError(f"cannot export code {k!r}: not a Python identifier")
        try:
            source = validate_source(b.parameter.peek(), k)
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
