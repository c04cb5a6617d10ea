"""The IPython magics: ``%%trace``, ``%trace_feedback``, ``%trace_step``, ``%trace_writeback``,
``%trace_log``.

Thin on purpose: they parse arguments and delegate to :mod:`.session` and :mod:`.runner`.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Integer, Unicode

from . import registry
from . import session as sessions
from .spec import CellSpec

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell


@magics_class
class TraceMagics(Magics):
    """Magics for tracing notebook code and optimizing its parameters.

    Defaults can be set with ``%config``, e.g. ``%config TraceMagics.model = "gpt-4o-mini"``.
    """

    model = Unicode(None, allow_none=True, help="Default model for new sessions.").tag(config=True)
    optimizer = Unicode("OptoPrime", help="Default optimizer: OptoPrime or OPRO.").tag(config=True)
    memory = Integer(0, help="Default number of past steps OptoPrime remembers.").tag(config=True)

    @magic_arguments()
    @argument("--name", default="default", help="Session name (default: 'default').")
    @argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME",
        help="A variable assigned in the cell that the optimizer may change (repeatable).",
    )
    @argument(
        "--code",
        action="append",
        default=[],
        metavar="FUNC",
        help="A function (of this or an earlier cell) whose source the optimizer may rewrite.",
    )
    @argument(
        "--feedback",
        default=None,
        metavar="FUNC",
        help="Function of the output returning text, a score, or (score, text).",
    )
    @argument("--optimizer", default=None, help="OptoPrime (default) or OPRO.")
    @argument("--model", default=None, help="Model name for the optimizer's LLM.")
    @argument("--memory", type=int, default=None, help="Past steps OptoPrime remembers.")
    @argument("--llm", default=None, metavar="VAR", help="Variable holding a trace_nb.LLM to use.")
    @argument(
        "--candidates",
        type=int,
        default=1,
        metavar="K",
        help="Ask for K alternative proposals per step and pick one (OptoPrime).",
    )
    @argument(
        "--repair",
        type=int,
        default=1,
        metavar="N",
        help="Extra calls within a step when a reply gives nothing usable (OptoPrime; "
        "default 1, 0 turns repair turns off).",
    )
    @argument("--reset", action="store_true", help="Start over from the cell's values.")
    @argument(
        "--restore",
        action="store_true",
        help="In a new kernel, restore the values this session autosaved (the panel "
        "otherwise offers it).",
    )
    @argument(
        "--raise",
        dest="raise_errors",
        action="store_true",
        help="Re-raise an exception from the traced code instead of recording it.",
    )
    @argument(
        "--no-panel",
        dest="no_panel",
        action="store_true",
        help="Show a static summary instead of the review panel.",
    )
    @cell_magic
    def trace(self, line: str, cell: str) -> Any:
        """Trace this cell and register its trainable parameters.

        Example::

            %%trace --name qa --param system_prompt --code postprocess --feedback grade
            system_prompt = "Answer in one word."
            answer = postprocess(ask(system_prompt, question))
            answer

        The cell's last expression is the output. On re-runs, parameters keep their
        approved values (``--reset`` starts over). Shows the review panel; the session is
        ``trace_nb.session(NAME)``.
        """
        __tracebackhide__ = True
        from .runner import prepare, run_cell

        args = parse_argstring(self.trace, line)
        shell = self._shell()
        _check_name(args.name)
        if args.repair < 0:
            raise UsageError(
                f"--repair {args.repair}: give the number of extra calls a step may make when "
                "a reply gives nothing usable, 0 or more (0 turns repair turns off)"
            )
        spec = CellSpec(
            source=cell,
            params=list(args.param),
            code=list(args.code),
            feedback=args.feedback,
            optimizer=args.optimizer or self.optimizer,
            model=args.model or self.model,
            memory=args.memory if args.memory is not None else self.memory,
            llm_var=args.llm,
            raise_errors=args.raise_errors,
            candidates=max(1, args.candidates),
            repair=args.repair,
        )
        compiled = prepare(shell, spec)  # raises UsageError on misuse, before running
        from . import autosave

        s = registry.find(args.name)
        if s is None:  # a new kernel: offer (or, with --restore, apply) what was autosaved
            s = sessions.TraceSession(args.name)
            s.restorable = None if args.reset else autosave.find_saved(args.name, shell)
            autosave.enable(s, shell)
        with s.lock:  # a Preview on the widget thread runs this cell too: never both at once
            if args.reset:
                s.reset()
                s.restorable = None
            if s.spec is not None and (
                s.spec.params != spec.params
                or s.spec.code != spec.code
                or s.spec.candidates != spec.candidates
                or s.spec.repair != spec.repair
            ):
                s.optimizer = None  # different parameters: a new optimizer
            s.spec, s.shell = spec, shell
            registry.register(s, shell)  # the shell keeps its cells' sessions alive
            s.compiled = compiled
            s.runner = lambda: run_cell(shell, s, compiled)
            if args.restore and s.restorable is not None:
                autosave.restore(s, shell)
            s.runner()
        if args.no_panel:
            from .summary import Summary

            return Summary(s)
        return _panel(s)

    @magic_arguments()
    @argument("--name", default="default")
    @argument("--score", type=float, default=None)
    @argument("text", nargs="*")
    @line_magic
    def trace_feedback(self, line: str) -> None:
        """Give feedback on a session's last output: ``%trace_feedback [--name N] [--score S] "text"``."""
        args = parse_argstring(self.trace_feedback, line)
        text = " ".join(_unquote(t) for t in args.text) or None
        _get(args.name).feedback(text, args.score)

    @magic_arguments()
    @argument("--name", default="default")
    @argument(
        "--auto",
        action="store_true",
        help="Approve every valid value proposal at once (code waits for review).",
    )
    @argument(
        "--approve-code",
        dest="approve_code",
        action="store_true",
        help="With --auto, also apply code proposals without review.",
    )
    @line_magic
    def trace_step(self, line: str) -> Any:
        """Ask the optimizer for proposals: ``%trace_step [--name N] [--auto [--approve-code]]``;
        shows the panel."""
        args = parse_argstring(self.trace_step, line)
        if args.approve_code and not args.auto:
            raise UsageError(
                "%trace_step --approve-code only means something with --auto (it lets the "
                "automatic approval apply code too): use `%trace_step --auto --approve-code`, "
                "or `%trace_step` and approve the code yourself. Nothing was asked."
            )
        s = _get(args.name)
        s.step(auto_approve=args.auto, approve_code=args.approve_code)
        return _panel(s)

    @magic_arguments()
    @argument("--name", default=None, help="Session name (default: 'default').")
    @argument("session", nargs="?", default=None, metavar="NAME", help="The same as --name.")
    @line_magic
    def trace_writeback(self, line: str) -> None:
        """Put a copy of the cell with the current values in as the next cell:
        ``%trace_writeback [--name NAME]`` (or ``%trace_writeback NAME``). The new cell's
        ``%%trace`` line keeps every option the cell ran with."""
        args = parse_argstring(self.trace_writeback, line)
        if args.name and args.session and args.name != args.session:
            raise UsageError(
                f"two session names ({args.session!r} and --name {args.name}): give one"
            )
        shell = self._shell()
        s = _get(args.name or args.session or "default")
        header = "%%trace " + self._magic_line(s)
        shell.set_next_input(header + "\n" + s.writeback_source(), replace=False)

    def _shell(self) -> InteractiveShell:
        """The shell these magics belong to: IPython gives one when it registers them
        (``%load_ext trace_nb``); only a ``TraceMagics()`` made by hand has none."""
        if self.shell is None:
            raise UsageError(
                "these TraceMagics belong to no IPython shell: run `%load_ext trace_nb` in "
                "the notebook and use the magics there"
            )
        return self.shell

    def _magic_line(self, s: sessions.TraceSession) -> str:
        """The ``%%trace`` options that make ``s``'s cell again (those the configured
        defaults do not already give)."""
        spec = s.spec
        parts = (
            [f"--name {s.name}"]
            + [f"--param {p}" for p in spec.params]
            + [f"--code {c}" for c in spec.code]
        )
        if spec.feedback:
            parts.append(f"--feedback {spec.feedback}")
        if spec.optimizer and spec.optimizer != self.optimizer:
            parts.append(f"--optimizer {spec.optimizer}")
        if spec.model and spec.model != self.model:
            parts.append(f"--model {spec.model}")  # the magic line keeps quotes as text
        if spec.memory != self.memory:
            parts.append(f"--memory {spec.memory}")
        if spec.llm_var:
            parts.append(f"--llm {spec.llm_var}")
        if spec.candidates > 1:
            parts.append(f"--candidates {spec.candidates}")
        if spec.repair != 1:
            parts.append(f"--repair {spec.repair}")
        if spec.raise_errors:
            parts.append("--raise")
        return " ".join(parts)

    @magic_arguments()
    @argument("name", nargs="?", default="default", help="Session name (default: 'default').")
    @argument("--experiment", default="trace_nb", help="MLflow experiment (default: trace_nb).")
    @argument("--uri", default=None, help="MLflow tracking URI (default: MLflow's setting).")
    @argument("--run-name", dest="run_name", default=None, help="Run name (default: NAME).")
    @argument("--once", action="store_true", help="Log the state now and end the run.")
    @argument("--messages", action="store_true", help="Put LLM message texts into traces.")
    @argument("--stop", action="store_true", help="Stop logging NAME and end its run.")
    @argument("--otel", action="store_true", help="OpenTelemetry spans instead of an MLflow run.")
    @line_magic
    def trace_log(self, line: str) -> Any:
        """Log a session to MLflow: ``%trace_log [NAME] [--experiment E] [--uri URI] [--once]``.

        Logs params, per-run metrics, every accepted version (text and code files), diffs,
        reasoning, the history, the final prompt and the DAG, then goes on logging live
        until ``%trace_log NAME --stop``. ``--otel`` emits OpenTelemetry spans to the
        configured tracer provider instead. Needs ``pip install 'trace_nb[mlflow]'``
        (``trace_nb[otel]``). Returns the log (``.run_id``, ``.stop()``).
        """
        args = parse_argstring(self.trace_log, line)
        s = _get(args.name)
        followers = _FOLLOWING
        key = (args.name, "otel" if args.otel else "mlflow")
        if args.stop:
            log = followers.pop(key, None)
            if log is None:
                raise UsageError(f"session {args.name!r} is not being logged; nothing to stop")
            log.stop()
            return None
        if key in followers:
            raise UsageError(
                f"session {args.name!r} is already being logged; "
                f"%trace_log {args.name} --stop first"
            )
        if args.otel:
            from ..tracking.session_spans import trace_session

            try:
                log = trace_session(s)
            except RuntimeError as e:
                raise UsageError(str(e)) from None
        else:
            try:
                log = s.log_to_mlflow(
                    args.experiment,
                    args.run_name,
                    tracking_uri=args.uri,
                    live=not args.once,
                    log_messages=args.messages,
                )
            except ImportError as e:  # MLflow is missing: say what to install, no traceback
                raise UsageError(str(e)) from None
        if args.otel or not args.once:
            followers[key] = log
        return log


#: (session name, "mlflow" | "otel") -> the log that %trace_log started and --stop ends
_FOLLOWING: dict[tuple[str, str], Any] = {}


def _panel(s: sessions.TraceSession) -> Any:
    """The session's panel, made (and attached) the first time it is shown."""
    from .ui.panel import Panel

    return s.panel if s.panel is not None else Panel(s)


def _check_name(name: str) -> None:
    try:
        registry.check_name(name)
    except ValueError as e:
        raise UsageError(f"--name {e}") from None


def _get(name: str) -> sessions.TraceSession:
    try:
        return sessions.session(name)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None


def _unquote(text: str) -> str:
    try:
        parts = shlex.split(text)
        return " ".join(parts)
    except ValueError:
        return text
