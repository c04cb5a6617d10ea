"""The runtime a rewritten ``%%trace`` cell calls into (``__trace_nb__`` in its namespace).

``call`` decides what a call becomes: a plain call when no argument is traced; an operator
node for a function defined in the notebook (its docstring documents it); the session's
trainable version for a ``--code`` function; an opaque operator node for library calls.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from ..graph import BundledFunction, ExecutionError, Node, ParameterNode
from ..graph.errors import make_exception_node
from ..graph.names import sanitize
from ..graph.ops import Op, TracedMethod, apply
from .parameters import ParameterSet


class TracedSession(Protocol):
    """What a cell run needs of its session: the parameters to register what the cell
    makes in (:class:`~.parameters.ParameterSet`), the magic's options (``spec.code``
    names the ``--code`` functions) and the shell whose namespace the cell runs in."""

    name: str
    params: ParameterSet
    spec: Any
    shell: Any


current: contextvars.ContextVar[CellTracer | None] = contextvars.ContextVar(
    "trace_nb_cell", default=None
)


class CellTracer:
    """Turns the calls of one cell run into trace nodes, on behalf of a session."""

    def __init__(self, session: TracedSession, user_module: str = "__main__"):
        # Weakly: the cell's namespace keeps its last tracer (as ``__trace_nb__``), which
        # must not keep a closed session alive.
        self._session = weakref.ref(session)
        self.user_module = user_module
        self._bundles: dict[int, tuple[Callable, BundledFunction]] = {}
        self._library_ops: dict[int, tuple[Callable, Op]] = {}
        self.cell_values: dict[str, Any] = {}

    @property
    def session(self) -> TracedSession:
        """The session this cell runs for."""
        s = self._session()
        if s is None:
            raise RuntimeError("the session of this %%trace cell was closed; run the cell again")
        return s

    # -- parameters -------------------------------------------------------------------
    def param(
        self, name: str, value: Any, description: str | None = None, constraint: str | None = None
    ) -> Any:
        """The session's parameter ``name``; created from ``value`` on the first run.

        A module (``trace_nb.Module``/``@model`` instance) registers all of its parameters
        and is returned itself: its methods and attributes are the traced values.
        """
        if _is_module(value):
            return self.session.params.register_module(name, value)
        if isinstance(value, Node):
            value = value.peek()
        self.cell_values[name] = value
        return self.session.params.parameter(name, value, description, constraint)

    # -- calls ------------------------------------------------------------------------
    def call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(func, functools.partial) and isinstance(func.func, BundledFunction):
            if func.args and _is_module(func.args[0]):  # a module's bundled method
                self._adopt_module(func.args[0])
            return func(*args, **kwargs)  # already traced (a bundled method is a partial)
        if _traces_itself(func):
            return func(*args, **kwargs)  # already traced
        session = self.session
        code = session.params.code_bundle(func, session.spec.code if session.spec else ())
        if code is not None:  # a --code function is traced even on plain arguments
            return code(*args, **kwargs)
        if not (
            any(isinstance(a, Node) for a in args)
            or any(isinstance(v, Node) for v in kwargs.values())
        ):
            return func(*args, **kwargs)
        owner = func.__self__ if inspect.ismethod(func) else func  # a module, or its method's
        if _is_module(owner):
            self._adopt_module(owner)
            return func(*args, **kwargs)  # a module traces itself: its forward sees the nodes
        if self._is_notebook_function(func):
            return self._bundle(func)(*args, **kwargs)
        return self._library_call(func, args, kwargs)

    def fstring(self, *pieces: Any) -> Any:
        """An f-string; traced as a ``format`` operator when a value in it is traced."""
        template, values = [], []
        for piece in pieces:
            if isinstance(piece, tuple):
                value, conversion, spec = piece
                conv = {115: "!s", 114: "!r", 97: "!a"}.get(conversion, "")
                if "{" in spec or "}" in spec:  # a computed spec str.format cannot spell
                    plain = value.data if isinstance(value, Node) else value
                    shown = {"!s": str, "!r": repr, "!a": ascii}.get(conv, lambda v: v)(plain)
                    text = format(shown, spec)
                    template.append(text.replace("{", "{{").replace("}", "}}"))
                    continue
                template.append("{" + conv + (":" + spec if spec else "") + "}")
                values.append(value)
            else:
                template.append(piece.replace("{", "{{").replace("}", "}}"))
        text = "".join(template)
        if not any(isinstance(v, Node) for v in values):
            return text.format(*values)
        op = Op(
            "format",
            "str.format(template, *values): fill the template's {} fields.",
            ("template",),
            base_name="format",
        )
        return apply(op, lambda t, *v: t.format(*v), (text, *values))

    def _adopt_module(self, obj: Any) -> None:
        """A module the cell calls joins the session (its parameters get the panel's
        feedback and show in its header), under the notebook variable that holds it."""
        session = self.session
        if any(m is obj for m in session.params.modules.values()):
            return
        ns = session.shell.user_ns if session.shell is not None else {}
        name = next((k for k, v in ns.items() if v is obj and not k.startswith("_")), None)
        if name is not None:
            session.params.register_module(name, obj)

    def _is_notebook_function(self, func: Any) -> bool:
        return inspect.isfunction(func) and func.__module__ == self.user_module

    def _bundle(self, func: Callable) -> BundledFunction:
        cached = self._bundles.get(id(func))
        if cached is None or cached[0] is not func:
            cached = (func, BundledFunction(func, allow_external_dependencies=True))
            self._bundles[id(func)] = cached
        return cached[1]

    def _library_call(self, func: Any, args: tuple, kwargs: dict) -> Node:
        cached = self._library_ops.get(id(func))
        if cached is None or cached[0] is not func:
            name = (
                getattr(func, "__qualname__", None)
                or getattr(func, "__name__", None)
                or type(func).__name__
            )
            module = getattr(func, "__module__", None) or ""
            full = f"{module}.{name}" if module and module != "builtins" else name
            doc = (inspect.getdoc(func) or "").strip().splitlines()
            summary = doc[0] if doc else "no documentation"
            op = Op(
                name,
                f"library call {full}: {summary}",
                _arg_names(func),
                base_name=sanitize(name.split(".")[-1]),
            )
            cached = (func, op)
            self._library_ops[id(func)] = cached
        op = cached[1]
        try:
            out = apply(op, func, args, kwargs or None)
        except Exception as exc:
            parents = tuple(a for a in (*args, *kwargs.values()) if isinstance(a, Node))
            node = make_exception_node(exc, op, args, parents, set())
            raise ExecutionError(node).with_traceback(exc.__traceback__) from exc
        if isinstance(out.peek(), Node):  # the callee traced something itself: keep both histories
            inner = out.peek()
            out._data = inner.peek()  # no public writer for an op output: graph-internal
            out._parents = (*out._parents, inner)
        return out


def _traces_itself(func: Any) -> bool:
    """A node (calling one is a traced operation: graph.ops gives Node its ``__call__``), a
    traced method, a bundled function, or :func:`param`."""
    return isinstance(func, Node | TracedMethod | BundledFunction) or func is param


def _is_module(value: Any) -> bool:
    import sys

    mod = sys.modules.get("trace_nb.modules")  # only loaded if the user made a module
    return mod is not None and isinstance(value, mod.Module)


def _arg_names(func: Any) -> tuple[str, ...]:
    """#Code labels for ``func``'s arguments; variadic ones keep their star, as in a bundle."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return ()
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return tuple(stars.get(p.kind, "") + p.name for p in params)


def param(
    value: Any,
    name: str | None = None,
    description: str | None = None,
    constraint: str | None = None,
) -> ParameterNode:
    """Mark ``value`` as a trainable parameter.

    Inside a ``%%trace`` cell the parameter belongs to the cell's session, so re-running
    the cell keeps its approved value (``x = param(3.0)`` is named ``x``). Outside a cell
    it simply makes a :class:`~trace_nb.graph.ParameterNode`.
    """
    tracer = current.get()
    if tracer is None:
        from ..graph import node

        made = node(
            value, name=name, trainable=True, description=description, constraint=constraint
        )
        assert isinstance(made, ParameterNode)  # trainable=True: a new one, or value if one
        return made
    if name is None:
        raise ValueError(
            "param() inside %%trace needs a name: write `x = param(...)` or param(..., name='x')"
        )
    return tracer.param(name, value, description, constraint)
