"""Source code to functions and back: what a trainable function's code parameter needs.

:func:`function_source` reads a function's ``def`` (decorators dropped);
:func:`compile_function` compiles a new source in a namespace without defining anything in
it, keeping the text for tracebacks and ``inspect.getsource``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

from ..errors import CodeCompileError

__all__ = ["compile_function", "function_source"]

_CODE_FILENAME = "<trace_nb code {name}>"


def function_source(fn: Callable) -> str:
    """Source of ``fn`` from its ``def`` line (decorators dropped), dedented."""
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise ValueError(
            f"cannot read the source code of {getattr(fn, '__qualname__', fn)!r}, which a trainable "
            "function needs; define it in a .py file or a notebook cell (not in exec/eval or the "
            "interactive prompt)"
        ) from e
    tree = ast.parse(src)
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = src.splitlines(keepends=True)
            return "".join(lines[stmt.lineno - 1 :]).rstrip() + "\n"
    raise ValueError(f"no function definition found in the source of {fn!r}")


def compile_function(
    source: str, name: str, namespace: dict, filename: str | None = None, bind_name: bool = False
) -> Callable:
    """Compile ``source`` (one ``def name(...)``) in ``namespace`` and return the function.

    The ``def`` runs with ``namespace`` as globals and a fresh dict as locals, so the
    function sees the module's (or notebook's) names without defining anything in it.
    With ``bind_name``, ``name`` inside the code means the new function itself (a recursive
    call runs the new code even though ``namespace[name]`` still holds the old function).
    Raises :class:`CodeCompileError` with the line and reason when it does not compile.
    """
    filename = filename or _CODE_FILENAME.format(name=name)
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as e:
        raise CodeCompileError(
            f"the code for {name!r} does not compile: {e.msg} (line {e.lineno}): "
            f"{(e.text or '').strip()}"
        ) from e
    if bind_name:
        code = _in_own_scope(source, name, filename) or code
    # Keep the text so tracebacks and inspect.getsource can show the new code.
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    local: dict[str, Any] = {}
    try:
        exec(code, namespace, local)
    except Exception as e:  # e.g. an import of a module that is not installed
        raise CodeCompileError(
            f"the code for {name!r} does not load: {type(e).__name__}: {e}"
        ) from e
    fn = local.get(name)
    if _SCOPE in local:  # the code ran inside a scope that returns the function
        fn = local[_SCOPE]()
        local = {}
        if isinstance(fn, types.FunctionType):
            fn.__qualname__ = fn.__name__
    if not callable(fn):
        raise CodeCompileError(f"the code does not define a function named {name!r}")
    extras = {k: v for k, v in local.items() if k != name}
    if extras and hasattr(fn, "__code__"):
        # Imports or constants written above the def must be visible to the function; a
        # function's globals must be a real dict, so it gets a copy with them added.
        fn = types.FunctionType(
            fn.__code__, {**namespace, **extras}, fn.__name__, fn.__defaults__, fn.__closure__
        )
        fn.__kwdefaults__ = local[name].__kwdefaults__
        fn.__doc__ = local[name].__doc__
    return fn


_SCOPE = "__trace_nb_scope__"


def _in_own_scope(source: str, name: str, filename: str) -> Any:
    """``source`` compiled inside a function that returns ``name`` (None if that cannot be):
    names it defines, the function's own name included, are then closure variables, and the
    rest still comes from the namespace's live globals. Line numbers stay those of ``source``."""
    tree = ast.parse(source, filename)
    if not tree.body:
        return None
    last = tree.body[-1]
    ret = ast.Return(value=ast.Name(id=name, ctx=ast.Load()))
    ast.copy_location(ret, last)
    scope = ast.FunctionDef(
        name=_SCOPE,
        args=ast.arguments(
            posonlyargs=[],
            args=[],
            vararg=None,
            kwonlyargs=[],
            kw_defaults=[],
            kwarg=None,
            defaults=[],
        ),
        body=[*tree.body, ret],
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    if "type_params" in ast.FunctionDef._fields:  # required from Python 3.12 on
        setattr(scope, "type_params", [])  # noqa: B010 - not in the 3.10 stubs pyright reads
    ast.copy_location(scope, tree.body[0])
    module = ast.Module(body=[scope], type_ignores=[])
    ast.fix_missing_locations(module)
    try:
        return compile(module, filename, "exec")
    except SyntaxError:  # e.g. ``from m import *``, which only a module may do
        return None
