"""``bundle``: turn a Python function into a traced operator.

A bundled function runs on the raw values of its arguments and returns a
:class:`~.node.MessageNode` whose parents are the node arguments. With
``trainable=True`` its source code is a :class:`~.node.ParameterNode`; when the optimizer
(or the user) changes that source, the next call compiles and runs the new code.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import traceback
import types
import warnings
from collections.abc import Callable
from typing import Any

from .names import sanitize
from .node import ExceptionNode, MessageNode, Node, ParameterNode, usage_frames
from .ops import Op

_CODE_FILENAME = "<trace_nb code {name}>"


class ExecutionError(Exception):
    """A traced function raised. ``exception_node`` records it in the graph.

    The original exception is ``exception_node.data`` (also ``__cause__``). Catch this,
    give ``exception_node.describe()`` as feedback, and let the optimizer fix the code.
    """

    def __init__(self, exception_node: ExceptionNode):
        self.exception_node = exception_node
        super().__init__(exception_node.describe())


class ExternalDependencyError(RuntimeError):
    """A bundled function read a node that was not passed to it as an argument."""


class CodeCompileError(SyntaxError):
    """The source of a trainable function does not compile."""


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


def compile_function(source: str, name: str, namespace: dict, filename: str | None = None) -> Callable:
    """Compile ``source`` (one ``def name(...)``) in ``namespace`` and return the function.

    The ``def`` runs with ``namespace`` as globals and a fresh dict as locals, so the
    function sees the module's (or notebook's) names without defining anything in it.
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
    # Keep the text so tracebacks and inspect.getsource can show the new code.
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    local: dict[str, Any] = {}
    exec(code, namespace, local)
    fn = local.get(name)
    if not callable(fn):
        raise CodeCompileError(f"the code does not define a function named {name!r}")
    extras = {k: v for k, v in local.items() if k != name}
    if extras and hasattr(fn, "__code__"):
        # Imports or constants written above the def must be visible to the function; a
        # function's globals must be a real dict, so it gets a copy with them added.
        fn = types.FunctionType(fn.__code__, {**namespace, **extras}, fn.__name__,
                                fn.__defaults__, fn.__closure__)
        fn.__kwdefaults__ = local[name].__kwdefaults__
        fn.__doc__ = local[name].__doc__
    return fn


def _failing_line(exc: BaseException, filenames: set[str]) -> tuple[str, int | None, str]:
    """The innermost traceback line that belongs to the user's function, and the traceback text."""
    frames = traceback.extract_tb(exc.__traceback__)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for fr in reversed(frames):
        if fr.filename in filenames or not filenames:
            return fr.line or "", fr.lineno, text
    last = frames[-1] if frames else None
    return (last.line or "", last.lineno, text) if last else ("", None, text)


def make_exception_node(
    exc: BaseException, op: Op, args: tuple, parents: tuple[Node, ...], filenames: set[str]
) -> ExceptionNode:
    """Record ``exc`` raised by ``op`` as an :class:`ExceptionNode`."""
    line, lineno, tb = _failing_line(exc, filenames)
    info = {"type": type(exc).__name__, "message": str(exc), "line": line, "lineno": lineno,
            "traceback": tb}
    return ExceptionNode(exc, op, args, parents, info=info)


class BundledFunction:
    """A traced operator made from a function by :func:`bundle`."""

    def __init__(
        self,
        fn: Callable,
        description: str | None = None,
        trainable: bool = False,
        catch_execution_error: bool = True,
        allow_external_dependencies: bool = False,
        code_name: str | None = None,
    ):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self.catch_execution_error = catch_execution_error
        self.allow_external_dependencies = allow_external_dependencies
        self.trainable = trainable
        fname = fn.__name__
        doc = inspect.getdoc(fn) or ""
        try:
            sig = inspect.signature(fn)
            arg_names = tuple(sig.parameters)
        except (TypeError, ValueError):
            arg_names = ()
        self.signature_names = arg_names
        self.op = Op(fname, description or doc or f"the function {fname}.", arg_names,
                     base_name=sanitize(fname))
        self.parameter: ParameterNode | None = None
        self._compiled: tuple[str, Callable] | None = None
        self.compile_error: str | None = None
        if trainable:
            source = function_source(fn)
            self.parameter = ParameterNode(
                source, name=code_name or f"code_{fname}",
                description=f"the source code of the function {fname}",
                constraint=f"Python source of one function that keeps the name and call signature of {fname}.",
                is_code=True,
            )
            self._compiled = (source, fn)

    # -- code parameter -------------------------------------------------------------
    @property
    def function(self) -> Callable:
        """The plain function that the next call runs (compiled from the code parameter)."""
        if self.parameter is None:
            return self._fn
        source = self.parameter._data
        if self._compiled is not None and self._compiled[0] == source:
            return self._compiled[1]
        namespace = self._namespace()
        try:
            fn = compile_function(source, self._fn.__name__, namespace,
                                  filename=f"<trace_nb code {self.parameter.name}>")
        except CodeCompileError as e:
            # Keep the last code that worked; say so loudly and remember why.
            self.compile_error = str(e)
            warnings.warn(f"{e}; still running the previous version.", stacklevel=3)
            return self._compiled[1] if self._compiled else self._fn
        self.compile_error = None
        self._compiled = (source, fn)
        return fn

    def _namespace(self) -> dict:
        fn = self._fn
        if not fn.__closure__:
            return fn.__globals__
        # Closures cannot be recreated by exec: give the new code a snapshot of the free variables.
        ns = dict(fn.__globals__)
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__, strict=False):
            try:
                ns[var] = cell.cell_contents
            except ValueError:
                pass
        return ns

    # -- calling ----------------------------------------------------------------------
    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        if self.trainable:
            # One code parameter per instance: two agents of one class train separately.
            key = f"__trace_bundle_{self._fn.__name__}"
            bound = instance.__dict__.get(key)
            if bound is None:
                bound = BundledFunction(
                    self._fn, description=self.op.description, trainable=True,
                    catch_execution_error=self.catch_execution_error,
                    allow_external_dependencies=self.allow_external_dependencies,
                    code_name=f"{type(instance).__name__.lower()}_{self._fn.__name__}",
                )
                instance.__dict__[key] = bound
            return functools.partial(bound, instance)
        return functools.partial(self, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> MessageNode:
        fn = self.function
        inputs = [a for a in args if isinstance(a, Node)]
        inputs += [v for v in kwargs.values() if isinstance(v, Node)]
        raw = [a._data if isinstance(a, Node) else a for a in args]
        raw_kw = {k: (v._data if isinstance(v, Node) else v) for k, v in kwargs.items()}
        frames = usage_frames()
        frames.append({})
        try:
            result = fn(*raw, **raw_kw)
        except Exception as exc:
            if not self.catch_execution_error:
                raise
            parents = tuple(inputs) + ((self.parameter,) if self.parameter is not None else ())
            filenames = {getattr(fn, "__code__", None) and fn.__code__.co_filename} - {None}
            node = make_exception_node(exc, self.op, tuple(args), parents, filenames)
            raise ExecutionError(node).with_traceback(exc.__traceback__) from exc
        finally:
            used = frames.pop()
        external = self._external(used, inputs, result)
        if isinstance(result, Node):
            result = result._data
        parents = tuple(inputs)
        if self.parameter is not None:
            parents += (self.parameter,)
        parents += tuple(external)
        return MessageNode(result, self.op, tuple(args), parents, kwargs or None)

    def _external(self, used: dict[int, Node], inputs: list[Node], result: Any) -> list[Node]:
        """Nodes the function read or returned that were not among its arguments."""
        if isinstance(result, Node):
            from .traverse import topo_ancestors

            for n in topo_ancestors([result]):
                if not n._parents:
                    used[id(n)] = n
        given = {id(n) for n in inputs}
        if self.parameter is not None:
            given.add(id(self.parameter))
        external = [n for k, n in used.items() if k not in given]
        if external and not self.allow_external_dependencies:
            names = ", ".join(n.name for n in external)
            raise ExternalDependencyError(
                f"{self.op.name}() used node(s) {names} that were not passed to it as arguments, "
                "so the trace would miss them. Pass them as arguments, or decorate with "
                "bundle(allow_external_dependencies=True) to record them as dependencies."
            )
        return external

    def __repr__(self) -> str:
        kind = "trainable " if self.trainable else ""
        return f"<{kind}bundled function {self.op.name}>"


def bundle(
    description: str | Callable | None = None,
    trainable: bool = False,
    catch_execution_error: bool = True,
    allow_external_dependencies: bool = False,
) -> Any:
    """Decorator that makes a function a traced operator.

    Parameters
    ----------
    description
        Shown to the optimizer under #Documentation; defaults to the docstring.
    trainable
        Make the function's source code a parameter the optimizer can rewrite.
    catch_execution_error
        Record an exception as an :class:`ExceptionNode` and raise :class:`ExecutionError`
        (True), or let the original exception through (False).
    allow_external_dependencies
        Record nodes the function reads without receiving them as extra parents (True),
        or raise :class:`ExternalDependencyError` (False).

    Usable as ``@bundle()``, ``@bundle(trainable=True)``, ``bundle()(f)`` and ``@bundle``.
    """
    if callable(description):  # bare @bundle
        return BundledFunction(description)

    def decorate(fn: Callable) -> BundledFunction:
        return BundledFunction(fn, description, trainable, catch_execution_error,
                               allow_external_dependencies)

    return decorate


__all__ = ["bundle", "BundledFunction", "ExecutionError", "ExternalDependencyError",
           "CodeCompileError", "compile_function", "function_source"]
