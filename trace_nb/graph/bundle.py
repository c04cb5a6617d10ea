"""``bundle``: turn a Python function into a traced operator.

A bundled function runs on the raw values of its arguments (nodes inside lists, tuples,
dicts and sets included) and returns a :class:`~.node.MessageNode` whose parents are the
node arguments. With ``trainable=True`` its source code is a :class:`~.node.ParameterNode`;
when the optimizer (or the user) changes that source, the next call compiles and runs the
new code. ``async def`` functions give an awaitable resolving to the node.

Calls inside a bundled call
---------------------------
A bundled function may call other bundled functions, itself (recursion), trainable
methods, or a trainable bundle it was given. By default the inner graph is hidden: the
output's parents are the call's own inputs, plus every *trainable* node the inner calls
used (their code, a parameter they were handed), so that those parameters still receive
feedback. With ``traceable_code=True`` the function runs on the nodes themselves, so its
inner operations are traced and the optimizer sees them.

``allow_external_dependencies`` is about nodes that existed before the call and were not
passed in (a global node read with ``.data``, a node returned from elsewhere): they raise
:class:`ExternalDependencyError` by default, or become parents when allowed. Nodes made
during the call, and results of inner operations, are never external.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import warnings
from collections.abc import Callable
from typing import Any, cast

from ..errors import CodeCompileError, ExternalDependencyError
from .compiling import compile_function, function_source
from .deps import classify
from .errors import execution_error, make_exception_node
from .frames import CallFrame, pop_frame, push_frame
from .names import sanitize
from .node import MessageNode, Node, ParameterNode
from .ops import CONTAINERS, Op, unwrap_deep


class BundledFunction:
    """A traced operator made from a function by :func:`bundle`.

    ``parameter`` is the code parameter of a trainable function (None otherwise) and
    :meth:`parameters` lists it, like a module's.
    """

    def __init__(
        self,
        fn: Callable,
        description: str | None = None,
        trainable: bool = False,
        catch_execution_error: bool = True,
        allow_external_dependencies: bool = False,
        code_name: str | None = None,
        traceable_code: bool = False,
    ):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self.catch_execution_error = catch_execution_error
        self.allow_external_dependencies = allow_external_dependencies
        self.traceable_code = traceable_code
        self.trainable = trainable
        self.is_async = inspect.iscoroutinefunction(fn)
        fname = fn.__name__
        doc = inspect.getdoc(fn) or ""
        try:
            sig = inspect.signature(fn)
            arg_names = tuple(sig.parameters)
            # #Code labels arguments by these; variadic ones keep their star (``*rest``).
            stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
            labels = tuple(stars.get(p.kind, "") + p.name for p in sig.parameters.values())
        except (TypeError, ValueError):
            arg_names = labels = ()
        self.signature_names = arg_names
        self.op = Op(
            fname, description or doc or f"the function {fname}.", labels, base_name=sanitize(fname)
        )
        self.parameter: ParameterNode | None = None
        self._compiled: tuple[str, Callable] | None = None
        self.compile_error: str | None = None
        if trainable:
            source = function_source(fn)
            self.parameter = ParameterNode(
                source,
                name=code_name or f"code_{fname}",
                description=f"the source code of the function {fname}",
                constraint=f"Python source of one function that keeps the name and call signature of {fname}.",
                is_code=True,
            )
            self.parameter.loader = self.load  # lets an optimizer check code before applying it
            self._compiled = (source, fn)

    def parameters(self) -> list[ParameterNode]:
        """The trainable code parameter, in a list (empty when not trainable)."""
        return [self.parameter] if self.parameter is not None else []

    # -- code parameter -------------------------------------------------------------
    def load(self, source: str) -> Callable:
        """Compile ``source`` as this function's new code, without adopting it.

        Raises :class:`CodeCompileError` saying why when it does not compile or load (an
        import that fails, no function of the right name); changes nothing either way.
        """
        return compile_function(
            source,
            self._fn.__name__,
            self._namespace(),
            filename=f"<trace_nb code {self.parameter.name if self.parameter else ''}>",
        )

    @property
    def function(self) -> Callable:
        """The plain function that the next call runs (compiled from the code parameter)."""
        if self.parameter is None:
            return self._fn
        source = self.parameter._data
        if self._compiled is not None and self._compiled[0] == source:
            return self._compiled[1]
        namespace = self._namespace()
        name = self._fn.__name__
        # A notebook --code function calls itself through the notebook's name, which still
        # holds the old function: let the new code's recursive calls run the new code.
        current = namespace.get(name)
        previous = self._compiled[1] if self._compiled else None
        own = current is not None and (current is self._fn or current is previous)
        try:
            fn = compile_function(
                source,
                name,
                namespace,
                bind_name=own,
                filename=f"<trace_nb code {self.parameter.name}>",
            )
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
                    self._fn,
                    description=self.op.description,
                    trainable=True,
                    catch_execution_error=self.catch_execution_error,
                    allow_external_dependencies=self.allow_external_dependencies,
                    code_name=f"{type(instance).__name__.lower()}_{self._fn.__name__}",
                    traceable_code=self.traceable_code,
                )
                instance.__dict__[key] = bound
            return BoundBundle(bound, instance)
        return BoundBundle(self, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return self._acall(args, kwargs)
        fn = self.function
        call_args, call_kw, inputs = self._prepare(args, kwargs)
        frame, token = push_frame()
        try:
            result = fn(*call_args, **call_kw)
        except Exception as exc:
            pop_frame(frame, token)
            self._fail(exc, fn, args, inputs)
        pop_frame(frame, token)
        return self._finish(result, frame, args, kwargs, inputs)

    async def _acall(self, args: tuple, kwargs: dict) -> MessageNode:
        fn = self.function
        call_args, call_kw, inputs = self._prepare(args, kwargs)
        # The frame lives in this task's context, so concurrent awaits never share one.
        frame, token = push_frame()
        try:
            result = await fn(*call_args, **call_kw)
        except Exception as exc:
            pop_frame(frame, token)
            self._fail(exc, fn, args, inputs)
        pop_frame(frame, token)
        return self._finish(result, frame, args, kwargs, inputs)

    def _prepare(self, args: tuple, kwargs: dict) -> tuple[tuple, dict, dict[int, Node]]:
        """The arguments to call with (values, or nodes with ``traceable_code``) and the inputs."""
        inputs: dict[int, Node] = {}
        raw = tuple(unwrap_deep(a, inputs) for a in args)
        raw_kw = {k: unwrap_deep(v, inputs) for k, v in kwargs.items()}
        if self.traceable_code:
            return args, kwargs, inputs
        return raw, raw_kw, inputs

    def _fail(self, exc: Exception, fn: Callable, args: tuple, inputs: dict[int, Node]) -> None:
        if not self.catch_execution_error:
            raise exc
        parents = tuple(inputs.values()) + tuple(self.parameters())
        code = getattr(fn, "__code__", None)
        filenames = {code.co_filename} if code is not None else set()
        node = make_exception_node(exc, self.op, tuple(args), parents, filenames)
        if self.parameter is not None and fn is self._fn:
            self._line_in_source(node, exc, fn)
        raise execution_error(node).with_traceback(exc.__traceback__) from exc

    def _line_in_source(self, node: MessageNode, exc: BaseException, fn: Callable) -> None:
        """Number the failing line within the source the LLM sees, not the defining file.

        Until its code is changed, a trainable function runs as defined (in a .py file or a
        cell), where its ``def`` is not line 1; the code parameter shows the source from the
        ``def`` line (decorators dropped), so the line number is translated to that.
        """
        lineno = None
        tb = exc.__traceback__
        while tb is not None:  # the innermost frame of this very function
            if tb.tb_frame.f_code is fn.__code__:
                lineno = tb.tb_lineno
            tb = tb.tb_next
        try:
            lines, start = inspect.getsourcelines(fn)
            tree = ast.parse(textwrap.dedent("".join(lines)))
        except (OSError, TypeError, SyntaxError):
            return
        first = next(
            (s for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)), None
        )
        if lineno is None or first is None or self.parameter is None:
            return
        source = self.parameter.peek().splitlines()
        shown = lineno - (start + first.lineno - 1) + 1  # the def line is line 1
        if 1 <= shown <= len(source) and node.info is not None:
            node.info["lineno"] = shown
            node.info["line"] = source[shown - 1]

    def _finish(
        self, result: Any, frame: CallFrame, args: tuple, kwargs: dict, inputs: dict[int, Node]
    ) -> MessageNode:
        result_nodes: dict[int, Node] = {}
        if isinstance(result, Node) or type(result) in CONTAINERS:
            result = unwrap_deep(result, result_nodes)
        if not result_nodes and not frame.used:  # the common case: plain values in and out
            parents = (
                (*inputs.values(), self.parameter)
                if self.parameter is not None
                else tuple(inputs.values())
            )
            return MessageNode(result, self.op, tuple(args), parents, kwargs or None)
        given = dict(inputs)
        if self.parameter is not None:
            given[id(self.parameter)] = self.parameter
        if self.traceable_code:
            # The inner operations are in the graph: the result nodes become parents, and
            # the walk below only looks for what they depend on outside the inputs.
            body = [n for k, n in result_nodes.items() if k not in given]
        else:
            body = []
        hidden, external = classify(frame, given, result_nodes)
        if external and not self.allow_external_dependencies:
            names = ", ".join(n.name for n in external)
            raise ExternalDependencyError(
                f"{self.op.name}() used node(s) {names} that were not passed to it as arguments, "
                "so the trace would miss them. Pass them as arguments, or decorate with "
                "bundle(allow_external_dependencies=True) to record them as dependencies."
            )
        parents = list(inputs.values()) + self.parameters() + body
        have = {id(n) for n in parents}
        for n in (*hidden, *external):
            if id(n) not in have:
                have.add(id(n))
                parents.append(n)
        return MessageNode(result, self.op, tuple(args), tuple(parents), kwargs or None)

    def __repr__(self) -> str:
        kind = "trainable " if self.trainable else ""
        return f"<{kind}bundled function {self.op.name}>"


class BoundBundle(functools.partial):
    """A bundled method bound to an instance: ``agent.act``.

    Calling it calls the bundled function with the instance first. ``parameter`` is the
    instance's own code parameter (the same object the module's ``parameters()`` lists).
    It is a ``functools.partial`` (``func`` is the bundled function, ``args[0]`` the
    instance), so code that recognises bound bundles that way keeps working.
    """

    @property
    def parameter(self) -> ParameterNode | None:
        return self.func.parameter

    def parameters(self) -> list[ParameterNode]:
        """The instance's code parameter, in a list (empty when not trainable)."""
        return self.func.parameters()

    @property
    def __self__(self) -> Any:
        return self.args[0]

    @property
    def __func__(self) -> BundledFunction:
        return cast(BundledFunction, self.func)  # made by BundledFunction.__get__ only

    def __repr__(self) -> str:
        return f"<bound {self.func!r} of {type(self.args[0]).__name__}>"


def bundle(
    description: str | Callable | None = None,
    trainable: bool = False,
    catch_execution_error: bool = True,
    allow_external_dependencies: bool = False,
    traceable_code: bool = False,
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
        Record nodes that existed before the call and that the function reads or returns
        without receiving them as extra parents (True), or raise
        :class:`ExternalDependencyError` (False). See the module docstring.
    traceable_code
        Run the function on the nodes themselves, so the operations inside it (nested
        bundled calls included) are traced and shown to the optimizer.

    Usable as ``@bundle()``, ``@bundle(trainable=True)``, ``bundle()(f)`` and ``@bundle``.
    """
    if callable(description):  # bare @bundle
        return BundledFunction(description)

    def decorate(fn: Callable) -> BundledFunction:
        return BundledFunction(
            fn,
            description,
            trainable,
            catch_execution_error,
            allow_external_dependencies,
            traceable_code=traceable_code,
        )

    return decorate


__all__ = ["bundle", "BoundBundle", "BundledFunction"]
