"""Traced failures: every exception raised while tracing becomes an :class:`ExecutionError`.

An operator (``node(1) / node(0)``), an attribute read, a call, unpacking a traced value
or a bundled function that raises records an :class:`~.node.ExceptionNode` and raises
:class:`ExecutionError` holding it, so one ``except ExecutionError`` catches every traced
failure, as in the reference Trace.

So that code written for plain Python keeps working, the raised error is *also* an
instance of the original exception's type where Python allows it: ``node(1) / node(0)``
raises an error that ``except ExecutionError`` and ``except ZeroDivisionError`` both catch.
"""

from __future__ import annotations

import traceback
from typing import Any, NoReturn

from .node import ExceptionNode, Node


class ExecutionError(Exception):
    """A traced function or operator raised. ``exception_node`` records it in the graph.

    The original exception is ``exception_node.data`` (also ``__cause__``). Catch this,
    give ``exception_node.describe()`` as feedback, and let the optimizer fix the code.
    """

    def __init__(self, exception_node: ExceptionNode):
        self.exception_node = exception_node
        Exception.__init__(self, exception_node.describe())

    def __str__(self) -> str:
        return self.exception_node.describe()

    def __reduce__(self) -> Any:
        return (execution_error, (self.exception_node,))


_MIXED: dict[type, type] = {}


def _mixed_class(original: type) -> type:
    """``ExecutionError`` that is also a subclass of ``original`` (or plain when impossible)."""
    cls = _MIXED.get(original)
    if cls is None:
        if original is Exception or issubclass(original, ExecutionError):
            cls = ExecutionError
        else:
            try:
                cls = type(
                    "ExecutionError",
                    (ExecutionError, original),
                    {
                        "__module__": __name__,
                        "__qualname__": "ExecutionError",
                        "__init__": ExecutionError.__init__,
                        "__str__": ExecutionError.__str__,
                    },
                )
            except TypeError:  # e.g. a layout conflict between built-in exception types
                cls = ExecutionError
        _MIXED[original] = cls
    return cls


def execution_error(exception_node: ExceptionNode) -> ExecutionError:
    """The :class:`ExecutionError` to raise for ``exception_node`` (see the module docstring)."""
    original = exception_node._data
    cls = _mixed_class(type(original)) if isinstance(original, Exception) else ExecutionError
    try:
        return cls(exception_node)
    except Exception:  # an exception type whose constructor insists on its own arguments
        return ExecutionError(exception_node)


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
    exc: BaseException,
    op: Any,
    args: tuple,
    parents: tuple[Node, ...],
    filenames: set[str] | None,
) -> ExceptionNode:
    """Record ``exc`` raised by ``op`` as an :class:`ExceptionNode`.

    An :class:`ExecutionError` coming from a nested traced call or an operator is recorded
    as the exception it carries, so the message names the real error; the failing line is
    still found in the traceback of the error as it reached this call.
    """
    recorded = exc
    if isinstance(exc, ExecutionError) and isinstance(exc.exception_node._data, BaseException):
        recorded = exc.exception_node._data
    if filenames is None:  # an operator failed: no line of the user's function to show
        line, lineno = "", None
        tb = "".join(traceback.format_exception_only(type(recorded), recorded))
    else:
        line, lineno, tb = _failing_line(exc, filenames)
    info = {
        "type": type(recorded).__name__,
        "message": str(recorded),
        "line": line,
        "lineno": lineno,
        "traceback": tb,
    }
    return ExceptionNode(recorded, op, args, parents, info=info)


def raise_traced(
    exc: BaseException,
    op: Any,
    args: tuple,
    parents: tuple[Node, ...],
    filenames: set[str] | None = None,
) -> NoReturn:
    """Raise the :class:`ExecutionError` for ``exc`` raised by ``op`` (chained to ``exc``)."""
    node = make_exception_node(exc, op, args, parents, filenames)
    raise execution_error(node).with_traceback(exc.__traceback__) from exc
