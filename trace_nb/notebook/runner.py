"""Run a ``%%trace`` cell the way IPython's ``%%time`` runs code.

Transform, parse, rewrite, compile, then ``exec`` in the user's namespace: names the cell
defines land there, errors propagate, and tracebacks point at the user's lines.
"""

from __future__ import annotations

import ast
import inspect
import traceback
from dataclasses import dataclass
from typing import Any, Protocol

from IPython.core.error import UsageError

from ..errors import FeedbackError
from ..feedback import call_feedback
from ..graph import ExecutionError
from ..graph.errors import make_exception_node
from ..graph.ops import Op
from .optimizer_slot import OPTIMIZERS, optimizer_kind
from .parameters import ParameterSet
from .run_log import RunLog
from .tracer import CellTracer, _is_module, current
from .transform import RUNTIME, rewrite, scan


class RunnableSession(Protocol):
    """What running a cell needs of its session: its parameters (where the cell's values
    and modules are registered), the magic's options, its history table, and the methods
    that record a run and its feedback."""

    name: str
    params: ParameterSet
    spec: Any
    shell: Any
    run_log: RunLog

    @property
    def output_node(self) -> Any: ...

    @property
    def output_value(self) -> Any: ...

    @property
    def parameters(self) -> dict[str, Any]: ...

    @property
    def parameter_nodes(self) -> list: ...

    def record_run(self, value: Any, exception: Any, cell_values: dict) -> None: ...

    def feedback(self, text: str | None = None, score: float | None = None) -> None: ...

    def feedback_failed(self, error: Exception) -> None: ...

    def default_feedback(self) -> str | None: ...


_CELL_OP = Op("cell", "the traced cell's own code (not inside a function).", (), base_name="cell")


@dataclass
class CompiledCell:
    body: Any
    last: Any
    filename: str
    #: every name the cell's code binds (assignments, imports, def, class, loop targets)
    binds: frozenset[str] = frozenset()


def prepare(shell: Any, spec: Any) -> CompiledCell:
    """Check the magic's arguments against the cell and compile it; UsageError on misuse."""
    __tracebackhide__ = True
    source = shell.transform_cell(spec.source)
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise UsageError(f"the cell does not parse: {e.msg} (line {e.lineno})") from None
    info = scan(tree)
    for name in spec.params:
        if not name.isidentifier():
            raise UsageError(f"--param {name!r} is not a valid Python name")
        if name not in info.assigned and not _is_module(shell.user_ns.get(name)):
            raise UsageError(
                f"--param {name}: the cell never assigns {name!r}. Write `{name} = <initial value>` "
                f"in the cell, or use `{name} = param(<value>)`."
            )
    ns = shell.user_ns
    for name in spec.code:
        if name in info.functions:
            continue
        obj = ns.get(name)
        if obj is None:
            raise UsageError(
                f"--code {name}: no function {name!r} is defined in this cell or the "
                "notebook; define it with `def` first"
            )
        if not inspect.isfunction(obj):
            raise UsageError(
                f"--code {name}: {name!r} is a {type(obj).__name__}, not a function "
                "defined with `def`"
            )
    binds = _binds(tree)
    _check_optimizer_and_llm(spec, binds, ns)
    if spec.feedback and spec.feedback not in info.functions:
        fb = ns.get(spec.feedback)
        if not callable(fb):
            raise UsageError(
                f"--feedback {spec.feedback}: no function of that name; define "
                f"`def {spec.feedback}(output): return 'text' or score or (score, text)`"
            )
    from .tracer import param as trace_param

    ours = (
        "param" not in info.functions
        and "param" not in info.assigned
        and ns.get("param", trace_param) is trace_param
    )
    tree, last = rewrite(tree, set(spec.params), param_calls=ours)
    # Register the cell text so tracebacks and inspect.getsource can read its lines.
    filename = shell.compile.cache(source, shell.execution_count)
    body = compile(tree, filename, "exec")
    last_code = compile(last, filename, "eval") if last is not None else None
    return CompiledCell(body, last_code, filename, frozenset(binds))


def _binds(tree: ast.Module) -> set[str]:
    """Every name the cell binds anywhere: assignments, imports, ``def``, ``class``, loop
    and ``with`` targets."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _check_optimizer_and_llm(spec: Any, cell_binds: set[str], ns: dict) -> None:
    """``--optimizer`` must name one we have, ``--llm`` a variable holding an LLM (one the
    cell itself binds, by assignment, import or ``def``, is checked when Propose uses it)."""
    from ..optim.llm_call import is_llm

    try:
        optimizer_kind(spec.optimizer)
    except ValueError:
        raise UsageError(
            f"--optimizer {spec.optimizer}: no such optimizer; use {' or '.join(OPTIMIZERS)}"
        ) from None
    name = spec.llm_var
    if not name or name in cell_binds:
        return
    if name not in ns:
        raise UsageError(
            f"--llm {name}: no variable {name!r} in the notebook; make the LLM first, e.g. "
            f"`{name} = trace_nb.LLM(model=..., base_url=...)`, or leave --llm out to use "
            "the default"
        )
    if not is_llm(ns[name]):
        raise UsageError(
            f"--llm {name}: {name!r} is a {type(ns[name]).__name__}, not an LLM; use a "
            "trace_nb.LLM, an object with a chat() method, or a callable taking messages=[...]"
        )


def execute(shell: Any, session: RunnableSession, cell: CompiledCell) -> tuple[Any, CellTracer]:
    """Run ``cell`` once with a fresh tracer; return the last expression's value.

    Exceptions propagate (an :class:`ExecutionError` when a traced call raised).
    """
    __tracebackhide__ = True
    tracer = CellTracer(session, shell.user_module.__name__)
    ns = shell.user_ns
    ns[RUNTIME] = tracer
    for name in session.spec.params:  # modules made in an earlier cell
        if _is_module(ns.get(name)):
            session.params.register_module(name, ns[name])
    token = current.set(tracer)
    try:
        exec(cell.body, ns)
        return (eval(cell.last, ns) if cell.last is not None else None), tracer
    finally:
        current.reset(token)


def run_cell(shell: Any, session: RunnableSession, cell: CompiledCell) -> None:
    """Execute ``cell`` for ``session``: record the output, exception and feedback."""
    __tracebackhide__ = True
    spec = session.spec
    ns = shell.user_ns
    for p in session.parameter_nodes:
        p.zero_feedback()  # the previous run's graph can now be freed
    value, exception, tracer = None, None, None
    try:
        value, tracer = execute(shell, session, cell)
    except ExecutionError as e:
        if spec.raise_errors:  # the user's own exception, not our wrapper
            raise (e.__cause__ or e) from None
        exception = e.exception_node
        _add_cell_line(exception, e, cell.filename)
    except Exception as e:
        if spec.raise_errors:
            raise
        exception = make_exception_node(e, _CELL_OP, (), (), {cell.filename})
    tracer = tracer or ns[RUNTIME]
    if exception is None:
        _check_assigned(session, tracer, ns)
    publish_code(session, ns)
    session.record_run(value, exception, tracer.cell_values)
    if exception is not None:
        # The error is the feedback: it reaches the parameters the failing call used.
        session.feedback(session.default_feedback())
        return
    if spec.feedback:
        try:
            score, text = call_feedback(ns.get(spec.feedback), session.output_value, spec.feedback)
        except FeedbackError as e:
            # The run stays recorded; the panel shows the error, session.run() raises it.
            session.feedback_failed(e)
            return
        if session.output_node is not None:
            session.feedback(text, score)
        else:
            session.run_log.note_feedback(text, score)


def _check_assigned(session: RunnableSession, tracer: CellTracer, ns: dict) -> None:
    """Every ``--param`` must have been assigned while the cell ran: one assigned only in a
    branch or loop that did not run is an error when the session has no value for it yet
    (there would be nothing to optimize), and a warning when it keeps the one it has."""
    known = session.parameters
    missing = [
        name
        for name in session.spec.params
        if name not in tracer.cell_values
        and name not in session.params.modules
        and not _is_module(ns.get(name))
    ]
    new = [name for name in missing if name not in known]
    if new:
        names = ", ".join(repr(n) for n in new)
        raise UsageError(
            f"--param {new[0]}: the cell ran without assigning {names}: the assignment is "
            "in a branch or loop that did not run (`if False:`, say), so there is nothing to "
            f"optimize. Assign it where it always runs: `{new[0]} = <initial value>`."
        )
    if missing:
        import warnings

        warnings.warn(
            f"this run of the cell did not assign {', '.join(repr(n) for n in missing)} "
            "(a branch or loop that did not run); the session kept the current value",
            UserWarning,
            stacklevel=2,
        )


def publish_code(session: RunnableSession, ns: dict) -> None:
    """After a run the notebook sees the approved code of each ``--code`` function."""
    session.params.publish_code(ns)


def _add_cell_line(node: Any, error: BaseException, filename: str) -> None:
    """Also note which line of the cell made the failing call."""
    for fr in reversed(traceback.extract_tb(error.__traceback__)):
        if fr.filename == filename:
            node.info["cell_line"] = fr.line
            node.info["cell_lineno"] = fr.lineno
            return
