"""Keeping what a module learned: JSON save/load, and export as a runnable Python file.

Names in files are relative to the module (``reason``, ``planner.prompt``,
``tools[0].prompt``), so a file saved from one instance loads into any instance of the
same structure. Values and code are stored as text and JSON values, never pickled.

:func:`export` writes the module's class source with each trainable method's body
replaced by its learned source, the learned values (and any code that could not be
written into the class) in ``LEARNED_VALUES``, applied after ``__init__`` by
:func:`learned`, and what the class needs from its module: imports for names that live
in importable modules, the source of functions and classes defined in a notebook, and
literal constants.
"""

from __future__ import annotations
import __future__ as _future

import ast
import builtins
import functools
import inspect
import linecache
import os
import pprint
import sys
import textwrap
from typing import Any

from .. import savefile
from ..files import atomic_write
from ..graph import function_source
from ..optim.codecheck import validate_code
from ..text import short_repr
from .model import original_class
from .module import Entry, entries, trainable_methods


def state_dict(module: Any) -> dict[str, Any]:
    """Relative name -> current value (source text for code parameters)."""
    return {e.display(): e.node.peek() for e in entries(module)}


def check_state_dict(module: Any, values: Any, strict: bool = True) -> dict[str, Any]:
    """The values :func:`load_state_dict` would set on ``module``, checked and converted,
    without changing anything; ValueError says what is wrong."""
    if not isinstance(values, dict):
        raise ValueError(
            f"the values for {type(module).__name__} are a {type(values).__name__}, not "
            "an object of name -> value"
        )
    found = {e.display(): e.node for e in entries(module)}
    unknown = sorted(set(values) - set(found))
    missing = sorted(set(found) - set(values)) if strict else []
    if unknown or missing:
        raise ValueError(
            f"{type(module).__name__} cannot take these values: unknown names "
            f"{unknown}, missing names {missing}; its parameters are {sorted(found)}"
        )
    converted = {}
    for name, value in values.items():
        node = found[name]
        if node.is_code:
            try:  # saved code passes the same checks as an LLM proposal (issue 14 item 6)
                validate_code(node.peek(), value)
            except ValueError as e:
                raise ValueError(
                    f"the code for {name!r} is refused (it does not compile, or "
                    f"is not safe to load): {e}"
                ) from e
            loader = getattr(node, "loader", None)
            if loader is not None:  # the function is made as a call would make it
                try:
                    loader(value)
                except Exception as e:  # noqa: BLE001 - any failure to load refuses it
                    raise ValueError(
                        f"the code for {name!r} does not load, so it is refused "
                        f"(calls would still run the old function): {e}"
                    ) from e
        elif not _same_kind(node.peek(), value):
            raise ValueError(
                f"{name!r} is a {type(node.peek()).__name__} in {type(module).__name__} "
                f"but the values give a {type(value).__name__} ({short_repr(value, 60)})"
            )
        elif isinstance(node.peek(), tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(node.peek(), int) and isinstance(value, float):
            value = int(value)  # JSON wrote 3 as 3.0 (bool is caught by _same_kind)
        converted[name] = value
    return converted


def load_state_dict(module: Any, values: dict[str, Any], strict: bool = True) -> Any:
    """Set ``module``'s parameters from ``values`` (as made by :func:`state_dict`).

    Raises ValueError for names the module does not have, for names it has that
    ``values`` lacks (when ``strict``), for a value of another kind than the parameter's
    (a number for a str...), and for code that does not compile or load (an import it
    runs fails); nothing is changed then. A list given for a tuple value becomes a tuple
    (JSON has no tuples), a whole float for an int an int.
    """
    found = {e.display(): e.node for e in entries(module)}
    for name, value in check_state_dict(module, values, strict).items():
        found[name].set_value(value)
    return module


def save(module: Any, path: str | os.PathLike[str]) -> None:
    """Write ``module``'s values and code to ``path`` as JSON (atomically), a ``module``
    save file (see :mod:`trace_nb.savefile`).

    Raises
    ------
    TypeError, ValueError
        When a value cannot be stored as JSON (an object; NaN); nothing is written.
    """
    cls = type(module)
    params = {
        e.display(): {"value": e.node.peek(), "code": bool(e.node.is_code)} for e in entries(module)
    }
    fields = {"class": f"{cls.__module__}.{cls.__qualname__}", "parameters": params}
    savefile.save(path, "module", fields, f"{cls.__name__}")


class ModuleFileError(ValueError):
    """A module file that cannot be loaded; the message says why, and nothing changed."""


def load(module: Any, path: str | os.PathLike[str]) -> Any:
    """Read a file written by :func:`save` into ``module`` (all names must match).

    The whole file is checked first (JSON, shape, each value's type against the module's
    current value, code like an LLM proposal); a file that fails raises
    :class:`ModuleFileError` and changes nothing.
    """
    where = os.fspath(path)
    doc = savefile.load(path, "module", ModuleFileError)
    params = doc.get("parameters")
    if not isinstance(params, dict) or not all(
        isinstance(v, dict) and "value" in v for v in params.values()
    ):
        raise ModuleFileError(f"{where!r}: 'parameters' must map each name to {{\"value\": ...}}")
    values = {k: v["value"] for k, v in params.items()}
    current = {e.display(): e.node.peek() for e in entries(module)}
    for name, value in values.items():
        if name in current and not _same_kind(current[name], value):
            raise ModuleFileError(
                f"{where!r}: {name!r} is a {type(current[name]).__name__} in "
                f"{type(module).__name__} but the file gives a "
                f"{type(value).__name__} ({short_repr(value, 60)})"
            )
    try:
        return load_state_dict(module, values)
    except ValueError as e:
        raise ModuleFileError(f"{where!r}: {e}") from None


def _same_kind(current: Any, value: Any) -> bool:
    """Whether a value read from JSON may replace ``current`` (JSON has no tuples, and may
    write a whole float for an int)."""
    if current is None:
        return True
    if isinstance(current, bool):
        return isinstance(value, bool)
    if isinstance(current, int):
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if isinstance(current, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(current, list | tuple):
        return isinstance(value, list | tuple)
    return isinstance(value, type(current))


def learned(values: dict[str, Any]) -> Any:
    """Class decorator (used by exported files): set ``values`` after every ``__init__``."""

    def decorate(cls: type) -> type:
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            load_state_dict(self, values, strict=False)

        cls.__init__ = __init__
        return cls

    return decorate


# -- export -----------------------------------------------------------------------------
def export(module: Any, path: str | os.PathLike[str]) -> str:
    """Write a Python file that rebuilds ``module``'s class with what it learned.

    Importing the file and constructing the class gives an object that behaves like
    ``module``. Raises ValueError when the class uses a global that cannot be written
    (neither importable, nor defined in the notebook, nor a literal constant).
    """
    cls = type(module)
    if "." in cls.__qualname__:
        raise ValueError(f"export needs a class defined at the top level, not {cls.__qualname__}")
    ns = vars(sys.modules[cls.__module__])
    found = entries(module)
    root_code = {e.method: e.node.peek() for e in found if e.owner is module and e.method}
    src, written = _with_learned_methods(
        _class_source(original_class(cls)), cls.__name__, root_code
    )
    values = {
        e.display(): e.node.peek()
        for e in found
        if not (e.owner is module and e.method in written) and not _unchanged(e, cls)
    }
    writer = _Writer({cls.__name__: cls, "LEARNED_VALUES": None, "_trace_learned": None})
    writer.resolve(src, ns)
    for e in found:  # learned code runs in its class's module: write what it needs too
        owner = type(e.owner)
        if e.node.is_code and e.display() in values and (owner is cls or owner in writer.emitted):
            writer.resolve(e.node.peek(), vars(sys.modules[owner.__module__]))
    head = (
        f'"""{cls.__name__} with learned values and code, exported by trace_nb from '
        f"{cls.__module__}.{cls.__qualname__}.\n\nImport this file and construct "
        f'{cls.__name__}(...) to rebuild the trained object.\n"""\n'
    )
    if ns.get("annotations") is _future.annotations:
        head += "from __future__ import annotations\n"
    imports = sorted(set(writer.imports), key=lambda line: (line.startswith("from"), line))
    imports.append("from trace_nb.modules import learned as _trace_learned")
    blocks = [
        head + "\n".join(imports),
        "\n".join(writer.consts),
        *writer.defs,
        "LEARNED_VALUES = " + pprint.pformat(values, sort_dicts=False, width=100),
        "@_trace_learned(LEARNED_VALUES)\n" + src,
    ]
    text = "\n\n\n".join(b.rstrip("\n") for b in blocks if b) + "\n"
    compile(text, os.fspath(path), "exec")  # never write a file that does not parse
    atomic_write(path, text)
    return os.fspath(path)


def _unchanged(entry: Entry, root: type) -> bool:
    """A sub-module's method whose code is still what its class says (nothing to store)."""
    owner = type(entry.owner)
    if not entry.method or owner is root:
        return False
    method = trainable_methods(entry.owner).get(entry.method)
    try:
        return method is not None and entry.node.peek() == function_source(method._fn)
    except ValueError:
        return False


def _with_learned_methods(src: str, name: str, code: dict[str, str]) -> tuple[str, set[str]]:
    """``src`` with the bodies of the methods in ``code`` replaced; and the names replaced.

    A method is left as it was (its code then goes to ``LEARNED_VALUES``) when the learned
    source is not a single undecorated ``def``, or when indenting it would change a
    multi-line string.
    """
    cdef = next(
        (n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == name), None
    )
    if cdef is None:
        raise ValueError(f"no 'class {name}' statement found in the source of {name}")
    lines = src.splitlines(keepends=True)
    written: set[str] = set()
    for stmt in reversed(cdef.body):
        if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) or stmt.name not in code:
            continue
        new = code[stmt.name]
        try:
            body = ast.parse(new).body
        except SyntaxError:
            continue
        if len(body) != 1 or not isinstance(body[0], type(stmt)) or body[0].decorator_list:
            continue
        text = textwrap.indent(new.rstrip("\n") + "\n", " " * stmt.col_offset)
        if ast.dump(ast.parse("class _C:\n" + text).body[0].body[0]) != ast.dump(body[0]):
            continue
        lines[stmt.lineno - 1 : stmt.end_lineno] = [text]
        written.add(stmt.name)
    return "".join(lines), written


def _underlying(value: Any) -> Any:
    for attr in ("_fn", "__func__", "fget"):
        value = getattr(value, attr, None) or value
    return value


def _class_source(cls: type) -> str:
    """Source of ``cls`` with its decorators, also for classes defined in a notebook cell."""
    for value in vars(cls).values():  # a method's code object names the cell or file
        code = getattr(_underlying(value), "__code__", None)
        lines = linecache.getlines(code.co_filename) if code is not None else []
        if not lines:
            continue
        for node in ast.walk(ast.parse("".join(lines))):
            if (
                isinstance(node, ast.ClassDef)
                and node.name == cls.__name__
                and node.lineno <= code.co_firstlineno <= node.end_lineno
            ):
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                return textwrap.dedent("".join(lines[start - 1 : node.end_lineno]))
    try:
        return textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError) as e:
        raise ValueError(f"cannot read the source of class {cls.__qualname__}: {e}") from e


def _free_names(source: str) -> set[str]:
    """Names ``source`` reads and never binds itself (globals it needs), minus builtins."""
    loads, bound = set(), set()
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(n.name)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
    return loads - bound - set(dir(builtins))


def _importable(module: str) -> bool:
    mod = sys.modules.get(module)
    return (
        module != "__main__"
        and mod is not None
        and (module in sys.builtin_module_names or bool(getattr(mod, "__file__", None)))
    )


def _is_literal(value: Any) -> bool:
    try:
        back = ast.literal_eval(repr(value))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return type(back) is type(value) and back == value


class _Writer:
    """Collects the imports, constants and definitions that exported code needs."""

    def __init__(self, defined: dict[str, Any]):
        self.bound = dict(defined)  # name -> object it stands for in the exported file
        self.imports: list[str] = []
        self.consts: list[str] = []
        self.defs: list[str] = []
        self.emitted: set[Any] = set()

    def resolve(self, source: str, ns: dict[str, Any]) -> None:
        for name in sorted(_free_names(source)):
            if name not in ns:
                continue  # a local we did not see bound, or a name missing in the original too
            value = ns[name]
            if name in self.bound:
                if self.bound[name] is not value and self.bound[name] is not None:
                    raise ValueError(f"cannot export: two different objects are named {name!r}")
                continue
            self.bound[name] = value
            self._define(name, value, ns)

    def _define(self, name: str, value: Any, ns: dict[str, Any]) -> None:
        if inspect.ismodule(value):
            target = value.__name__
            self.imports.append(
                f"import {target}" if target == name else f"import {target} as {name}"
            )
            return
        mod, qual = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
        if isinstance(mod, str) and isinstance(qual, str):
            if _importable(mod):
                m = sys.modules[mod]
                attr = (
                    qual
                    if getattr(m, qual, None) is value
                    else next((k for k, v in vars(m).items() if v is value), None)
                )
                if attr is not None:
                    self.imports.append(
                        f"from {mod} import {attr}" + ("" if attr == name else f" as {name}")
                    )
                    return
            elif "<" not in qual and "." not in qual:
                source = (
                    _class_source(original_class(value))
                    if isinstance(value, type)
                    else textwrap.dedent(inspect.getsource(_underlying(value)))
                )
                self.resolve(source, vars(sys.modules[mod]))  # what it needs comes first
                self.defs.append(
                    source if qual == name else f"{source.rstrip()}\n{name} = {qual}\n"
                )
                self.emitted.add(value)
                return
        if _is_literal(value):
            self.consts.append(f"{name} = {value!r}")
            return
        raise ValueError(
            f"cannot export the global {name!r} ({type(value).__name__}): only modules, "
            "importable or notebook-defined functions and classes, and literal constants can be "
            "written; move it into an importable module or pass it to the constructor"
        )
