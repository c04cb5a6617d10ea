"""A traced cell's session, composed of the parts it owns.

:class:`TraceSession` holds its parameters (:class:`~.parameters.ParameterSet`,
``params``), its last run (:class:`~.last_run.LastRun`, ``last_run``), its history table
(:class:`~.run_log.RunLog`, ``run_log``), its review (:class:`~.review.ReviewQueue`,
``review``), its versions (:class:`~.lineage.Lineage`, ``lineage``) and its optimizer
(:class:`~.optimizer_slot.OptimizerSlot`). Each part changes only through its own
methods; the session wires them and takes the lock (:mod:`.locking`). Everything the panel
does is a method here, so it can be scripted and tested. :meth:`TraceSession.to_state` and
:meth:`TraceSession.from_state` are how files are written and read (:mod:`.persist`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ..graph import ExceptionNode, Node, ParameterNode
from ..llm.default import set_default_llm  # noqa: F401 - set_default_llm is public here
from ..optim import Proposal
from ..optim.policy import Decision, decide
from ..optim.states import DecisionSource
from ..text import cut, preview
from . import persist, registry
from .last_run import LastRun
from .lineage import Lineage, blame
from .locking import serialized as _serialized
from .optimizer_slot import OptimizerSlot
from .parameters import ParameterSet
from .registry import session as session  # public: trace_nb.session(name)
from .review import ReviewQueue
from .run_log import RunLog

HUMAN, AUTO = DecisionSource.HUMAN, DecisionSource.AUTO


class TraceSession:
    """State of one traced cell. Get it with ``trace_nb.session(name)``.

    A new session is found by its name (:mod:`.registry`; not with ``register=False``).
    The name must pass :func:`~.registry.check_name`: it also names the autosave file.
    The magic sets ``spec``, ``shell``, ``compiled`` and ``runner``; :mod:`.autosave`
    keeps ``restorable``, ``autosave_path``, ``autosave_error`` and ``autosave_kept``.
    """

    def __init__(self, name: str, *, register: bool = True):
        from ..optim.llm_call import prewarm_openai  # so the first Propose need not import it

        self.name = registry.check_name(name)
        prewarm_openai()
        self.spec: Any = None  # the magic's CellSpec
        self.shell: Any = None
        self.runner: Callable[[], None] | None = None  # re-executes the cell (set by the magic)
        self.compiled: Any = None  # the rewritten cell, for previews and training
        self.last_training: Any = None
        self.examples: list[Any] = []  # inputs a preview runs the cell on (see preview.py)
        self.lock = threading.RLock()  # see locking.serialized
        self._slot = OptimizerSlot()
        self.params = ParameterSet(on_change=self._slot.forget)
        self.last_run = LastRun()
        self.run_log = RunLog()
        self._lineage = Lineage()
        # The queue calls back weakly, so a dropped session is freed at once.
        self.review = ReviewQueue(
            self.params,
            self.run_log,
            self._lineage,
            _weakly(self._make_optimizer),
            _weakly(self._publish),
            _weakly(self._notify),
            self.name,
        )
        self._listeners: list[Callable[[str], None]] = []
        self._panel: Any = None
        self.restorable: Any = None  # an autosave.SavedState this session may restore
        self.autosave_error: str | None = None
        self.autosave_path: Any = None  # the file autosave writes
        self.autosave_kept: Any = None  # where the last restore kept the replaced live work
        if register:
            registry.register(self)

    # -- what the parts hold ------------------------------------------------------------
    @property
    def waiting(self) -> list[Proposal]:
        """Proposals a review rule kept for a human."""
        return self.review.waiting

    @property
    def modules(self) -> dict[str, Any]:
        """The trained modules by notebook name (a copy)."""
        return self.params.modules

    @property
    def cell_values(self) -> dict[str, Any]:
        """The values the cell itself assigned."""
        return self.last_run.cell_values

    @property
    def output_node(self) -> Node | None:
        """The last output's node, or None."""
        return self.last_run.output_node

    @property
    def output_value(self) -> Any:
        """The last output's value."""
        return self.last_run.output_value

    @property
    def output(self) -> Any:
        """The last output (the exception, if it raised)."""
        return self.last_run.output

    @property
    def exception(self) -> ExceptionNode | None:
        """The last run's exception node, or None."""
        return self.last_run.exception

    @property
    def last_feedback(self) -> tuple[str, float | None] | None:
        """(text, score) on the output, or None."""
        return self.last_run.last_feedback

    @property
    def feedback_error(self) -> Any:
        """Why --feedback gave none, or None."""
        return self.last_run.feedback_error

    @property
    def node_feedback(self) -> dict[str, tuple[Node, str, float | None]]:
        """Node name -> (node, text, score)."""
        return self.last_run.node_feedback

    @property
    def parameter_nodes(self) -> list[ParameterNode]:
        """Every trainable node."""
        return self.params.nodes()

    @property
    def parameters(self) -> dict[str, Any]:
        """Current value by name."""
        return self.params.values()

    @property
    def proposals(self) -> list[Proposal]:
        """The proposals on offer."""
        return self.review.proposals

    @proposals.setter
    def proposals(self, value: list[Proposal]) -> None:
        self.review.proposals = list(value)

    @property
    def rows(self) -> list[dict]:
        """The history table's rows (:attr:`history` shows them as a DataFrame)."""
        return self.run_log.rows

    @rows.setter
    def rows(self, value: list[dict]) -> None:
        self.run_log.replace(value)

    @property
    def lineage(self) -> Lineage:
        """Every accepted value of every parameter (:class:`~.lineage.Lineage`); setting it
        takes the given lineage's versions in place."""
        return self._lineage

    @lineage.setter
    def lineage(self, value: Lineage) -> None:
        self._lineage.replace_with(value)

    @property
    def llm(self) -> Any:
        """The LLM this session was given (or made for ``--model``), or None."""
        return self._slot.llm

    @llm.setter
    def llm(self, value: Any) -> None:
        self._slot.llm = value

    @property
    def optimizer(self) -> Any:
        """The optimizer, made on first use from the magic's options (None: a new one)."""
        return self._slot.get(self.parameter_nodes, self.spec, self.shell)

    @optimizer.setter
    def optimizer(self, value: Any) -> None:
        self._slot.set(value)

    def _make_optimizer(self) -> Any:
        return self.optimizer

    def named_parameter_nodes(self) -> dict[str, ParameterNode]:
        """Readable name -> parameter node (``agent.act`` for a module's method)."""
        return self.params.named_nodes()

    def display_name(self, node: ParameterNode) -> str:
        """The readable name of a parameter node (``agent.act``), or its own name."""
        return self.params.display_name(node)

    def trial_runs(self) -> Any:
        """A block whose runs change no parameter set (:meth:`.ParameterSet.trial_runs`)."""
        return self.params.trial_runs()

    def differences(self) -> dict[str, tuple[Any, Any]]:
        """Parameters whose value differs from the cell's source: name -> (cell, current)."""
        now = self.parameters
        return {k: (v, now[k]) for k, v in self.cell_values.items() if k in now and v != now[k]}

    # -- running and feedback -------------------------------------------------------------
    @_serialized
    def run(self) -> Any:
        """Run the cell again with the current values (and its ``--feedback``); return the
        output. A failing ``--feedback`` raises its FeedbackError after the run is recorded."""
        if self.runner is None:
            raise RuntimeError(f"session {self.name!r} has no cell to run; run its %%trace cell")
        self.runner()
        if self.feedback_error is not None:
            raise self.feedback_error
        return self.output

    def record_run(self, value: Any, exception: ExceptionNode | None, cell_values: dict) -> None:
        """Record a run (the runner calls this): output or exception, the values the cell
        assigned, a history row, version 0 of new parameters. Views get ``"run"``."""
        self.last_run.record(value, exception, cell_values)
        self.review.new_run()
        values = self.parameters
        for k, v in values.items():
            self.lineage.start(k, v)  # version 0: the cell's value
        self.run_log.start_run(values, _output_text(self.output, exception))
        self._notify("run")

    def feedback_failed(self, error: Exception) -> None:
        """Record that ``--feedback`` gave no feedback on the last run (``"feedback_error"``)."""
        self.last_run.feedback_error = error
        self._notify("feedback_error")

    def record_training(self, result: Any) -> None:
        """Keep what ``train`` returned (views get ``"train"``)."""
        self.last_training = result
        self._notify("train")

    @_serialized
    def feedback(self, text: str | None = None, score: float | None = None) -> None:
        """Give feedback on the last output (text, a score, or both)."""
        if self.last_run.target is None and not self.rows:
            raise ValueError("nothing to give feedback on yet: run the %%trace cell first")
        self.last_run.give(text, score, self.parameter_nodes)
        self.lineage.score(self.parameters, len(self.rows) - 1, score)  # the values this run used
        self.run_log.note_feedback(text, score)
        self._notify("feedback")

    @_serialized
    def feedback_on(self, node_name: str, text: str, score: float | None = None) -> None:
        """Feedback on the node of the last run's DAG named ``node_name``: it reaches only
        the parameters upstream of it, lasts until the next run, and replaces earlier."""
        if not self.last_run.give_on(node_name, text, score, self.parameter_nodes):
            self.feedback(text, score)  # the node is the output itself
            return
        self.run_log.note_node_feedback(self.last_run.node_notes())
        self._notify("feedback")

    def default_feedback(self) -> str | None:
        """Feedback the run implies by itself: the exception, when there was one."""
        return self.last_run.default_feedback()

    # -- review (see review.py) -----------------------------------------------------------
    @_serialized
    def propose(self) -> list[Proposal]:
        """Ask the optimizer for proposals; nothing changes until they are approved."""
        return self.adopt(*self.request_proposals())

    def request_proposals(self) -> tuple[list[Proposal], Any]:
        """The LLM call of :meth:`propose` (safe in a worker thread): proposals and usage;
        :meth:`adopt` makes them the session's (a cancelled request changes nothing)."""
        if self.last_feedback is None and not self.node_feedback:
            raise ValueError(
                "no feedback yet: give feedback on the output first "
                "(session.feedback(...), %trace_feedback, or the panel)"
            )
        return self.review.request()

    @_serialized
    def adopt(self, proposals: list[Proposal], usage: Any = None) -> list[Proposal]:
        """Make ``proposals`` the pending ones and count the LLM call in the history."""
        return self.review.offer(proposals, usage)

    @_serialized
    def queue_for_review(self, proposals: list[Proposal]) -> None:
        """Keep ``proposals`` pending for a human across runs (a review rule chose them)."""
        self.review.keep_for_review(proposals)

    @_serialized
    def approve(
        self,
        names: str | Iterable[str] | None = None,
        value: Any = None,
        decided_by: str = HUMAN,
        approve_code: bool = False,
    ) -> list[Proposal]:
        """Apply pending proposals (all valid ones when ``names`` is None); ``value`` edits
        the one for ``names`` first. Asking for an invalid one by name is a ValueError; with
        ``decided_by="auto"`` code waits unless ``approve_code=True``
        (:mod:`trace_nb.optim.approval`); code that does not load becomes invalid."""
        return self.review.approve(names, value, decided_by, approve_code)

    @_serialized
    def reject(
        self,
        names: str | Iterable[str] | None = None,
        decided_by: str = HUMAN,
        candidate: int | None = None,
    ) -> list[Proposal]:
        """Reject pending proposals (all when ``names`` is None; only ``candidate``'s)."""
        return self.review.reject(names, decided_by, candidate)

    @_serialized
    def edit(self, name: str, value: Any, candidate: int | None = None) -> Proposal:
        """Replace the proposal for ``name`` with ``value``, checked like any suggestion."""
        return self.review.edit(name, value, candidate)

    @_serialized
    def choose(
        self, candidate: int, decided_by: str = HUMAN, approve_code: bool = False
    ) -> list[Proposal]:
        """Apply candidate ``candidate``; the other candidates' become ``"not_chosen"``."""
        return self.review.choose(candidate, decided_by, approve_code)

    @_serialized
    def apply_decision(
        self, decision: Decision, decided_by: str = AUTO, approve_code: bool = False
    ) -> list[Proposal]:
        """Carry out an automatic step's :class:`~trace_nb.optim.policy.Decision`."""
        return self.review.apply_decision(decision, decided_by, approve_code)

    @_serialized
    def step(self, auto_approve: bool = False, approve_code: bool = False) -> list[Proposal]:
        """Propose; with ``auto_approve`` also apply what :func:`trace_nb.optim.policy.decide`
        allows (code only with ``approve_code=True``; of several candidates the first)."""
        if approve_code and not auto_approve:
            raise ValueError(
                "step(approve_code=True) only means something with auto_approve=True: pass "
                "both to apply code unreviewed, or neither and approve the code yourself"
            )
        proposals = self.propose()
        if auto_approve:
            self.apply_decision(decide(proposals, approve_code=approve_code), AUTO, approve_code)
        return proposals

    def _publish(self, prop: Proposal) -> None:
        # An approved code proposal redefines the function in the user's namespace.
        if self.shell is not None and prop.parameter is not None:
            self.params.publish_code(self.shell.user_ns, prop.parameter)

    # -- lineage --------------------------------------------------------------------------
    def versions(self, name: str) -> Any:
        """Every accepted value of ``name`` as a DataFrame (see :meth:`.Lineage.table`)."""
        import pandas as pd

        rows = self.lineage.table(self._readable(name))
        if not rows:
            known = ", ".join(self.parameters)
            raise KeyError(f"no versions of {name!r} yet (parameters: {known})")
        return pd.DataFrame(rows)

    def diff(self, name: str, a: int, b: int | None = None) -> str:
        """Unified diff of version ``a`` → ``b`` (the current one by default) of ``name``."""
        return self.lineage.diff(self._readable(name), a, b)

    def blame(self, name: str, limit: int | None = None) -> list[dict]:
        """Where each line of ``name``'s current value came from (:func:`.lineage.blame`)."""
        return blame(self.lineage, self._readable(name), limit)

    @_serialized
    def restore_version(self, name: str, number: int) -> Any:
        """Make version ``number`` of ``name`` current again, as a new version (code is
        checked and must load first); ``%trace_writeback NAME`` puts it in the cell."""
        readable = self._readable(name)
        node = self.params.find(readable, self.name)
        value = self.lineage.restore(readable, number, node, len(self.rows) - 1)
        if self.shell is not None:
            self.params.publish_code(self.shell.user_ns, node)
        self._notify("restore")
        return value

    def _readable(self, name: str) -> str:
        return self.params.display_name(self.params.find(name, self.name))

    # -- state ----------------------------------------------------------------------------
    def to_state(self) -> dict:
        """JSON-ready state: the fields of a ``session`` file (:mod:`trace_nb.savefile`)."""
        return {
            "name": self.name,
            **self.params.to_state(),
            "history": self.run_log.to_state(),
            "optimizer": self.optimizer_state(),
            "spec": vars(self.spec).copy() if self.spec is not None else None,
            "lineage": self.lineage.to_data(),
        }

    @classmethod
    def from_state(cls, state: dict, functions: dict[str, tuple[Callable, str]]) -> TraceSession:
        """A session found by no name, from checked state (:func:`.persist.read_state`) and
        its compiled code, name -> (function, source) (:func:`.persist.check_against`)."""
        s = cls(state["name"], register=False)
        s.spec = state["spec"]
        s.params.load(state["parameters"], functions, state["modules"])
        s.run_log.replace(state["history"])
        s.lineage.replace_with(state["lineage"])
        s._slot.keep_state(state["optimizer"])  # given to the optimizer when it is made
        return s

    def optimizer_state(self) -> dict | None:
        """The optimizer's memory (or memory loaded and not yet given to one), or None."""
        return self._slot.state()

    def parameter_names(self) -> tuple[set[str], set[str]]:
        """(value parameters and modules, code parameters) this session has or will have."""
        values, code = self.params.names()
        if self.spec is not None:
            values, code = values | set(self.spec.params), code | set(self.spec.code)
        return values, code

    @_serialized
    def adopt_state(self, loaded: TraceSession, shell: Any = None) -> list[str]:
        """Take values, code, module values, history, lineage and optimizer memory from
        ``loaded`` (read from a file); return the names set. Code is recompiled in the
        notebook's namespace; all or nothing."""
        shell = shell or self.shell
        names = self.params.adopt(loaded.params, shell.user_ns if shell is not None else None)
        self.run_log.replace(loaded.rows)
        self.lineage.replace_with(loaded.lineage)
        self._slot.keep_state(loaded.optimizer_state())
        self.restorable = None
        self._notify("restore")
        return names

    @_serialized
    def reset(self) -> None:
        """Forget parameters, proposals, history and lineage (``%%trace --reset``)."""
        self.params.clear()
        self.review.clear()
        self.run_log.replace([])
        self.last_run.node_feedback = {}
        self.lineage.clear()

    # -- views ----------------------------------------------------------------------------
    @property
    def history(self) -> Any:
        """One row per run as a DataFrame (:meth:`.RunLog.frame`): values, output,
        feedback (``""`` for none), score (NaN for none), decisions, tokens, cost."""
        return self.run_log.frame()

    def graph(self, max_nodes: int | None = 300) -> dict:
        """The last run's trace as plain data (see :func:`trace_nb.graph.graph_data`)."""
        return self.last_run.graph(max_nodes)

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(event)`` after each run, feedback, proposal and decision."""
        self._listeners.append(callback)

    def off_change(self, callback: Callable[[str], None]) -> None:
        """Stop calling ``callback`` (registered with :meth:`on_change`)."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _notify(self, event: str) -> None:
        for cb in list(self._listeners):
            cb(event)

    @property
    def panel(self) -> Any:
        """The review panel showing this session (one that attached itself), or None."""
        return self._panel

    def attach_view(self, view: Any) -> None:
        """Make ``view`` this session's panel (the panel calls this when it is made)."""
        self._panel = view

    def detach_view(self, view: Any) -> None:
        """Forget ``view`` if it is this session's panel (the panel calls this on close)."""
        if self._panel is view:
            self._panel = None

    def close(self) -> None:
        """Close the panel and stop finding this session by name (its shell lets go)."""
        if self._panel is not None:
            self._panel.close()  # the panel detaches itself
        self._panel = None
        registry.forget(self)

    # -- done elsewhere -------------------------------------------------------------------
    @_serialized
    def preview(
        self, name: str, value: Any = None, *, input: str = "example", candidate: int | None = None
    ) -> Any:
        """Run the cell with the proposal for ``name`` (``value``, or ``candidate``'s) on
        :attr:`examples`, before → after, changing nothing (:mod:`.preview`)."""
        from .preview import preview_proposal

        return preview_proposal(self, name, value, input=input, candidate=candidate)

    @_serialized
    def train(
        self, dataset: Any, feedback: Callable | None = None, *, input: str = "example", **kw: Any
    ) -> Any:
        """Optimize over a dataset (:func:`.cell_training.train_session`), holding the lock
        throughout so no decision from the panel reaches the examples being scored."""
        from .cell_training import train_session

        return train_session(self, dataset, feedback, input=input, **kw)

    def log_to_mlflow(
        self,
        experiment: str = "trace_nb",
        run_name: str | None = None,
        *,
        tracking_uri: str | None = None,
        live: bool = True,
        log_messages: bool = False,
    ) -> Any:
        """Log this session to an MLflow run (:func:`trace_nb.tracking.log_session`); with
        ``live=True`` go on logging until ``.stop()``. Needs ``trace_nb[mlflow]``."""
        from ..tracking.session_log import log_session

        return log_session(
            self,
            experiment,
            run_name,
            tracking_uri=tracking_uri,
            live=live,
            log_messages=log_messages,
        )

    def save(self, path: str) -> None:
        """Write parameters, history and optimizer memory as JSON (atomically)."""
        persist.save_session(self, path)

    def export(self, path: str) -> None:
        """Write the current values (and approved code) as a Python file."""
        persist.export_session(self, path)

    def writeback_source(self) -> str:
        """The cell's source with the current values written in."""
        from .writeback import writeback

        return writeback(self)

    def __repr__(self) -> str:
        n, runs = len(self.parameters), len(self.rows)
        return f"<TraceSession {self.name!r}: {n} parameters, {runs} runs>"


def read_session(path: str, like: TraceSession | None = None) -> TraceSession:
    """The session saved at ``path``, checked completely (values of ``like``'s types, by
    default the live session of the file's name; code through the checks of an LLM
    proposal), as a new session nothing finds by name yet. Raises SessionFileError (or
    FileNotFoundError), changing nothing."""
    state = persist.read_state(path)
    live = like if like is not None else registry.find(state["name"])
    return TraceSession.from_state(state, persist.check_against(state, live, path))


def _weakly(method: Callable) -> Callable:
    """``method`` (bound to a session) called through a weak reference to its session."""
    ref = weakref.WeakMethod(method)
    return lambda *args: ref()(*args)  # type: ignore[misc]


def _output_text(value: Any, exception: ExceptionNode | None) -> str:
    """The history's ``output`` cell: the value's preview, or ``Type: message`` for an error."""
    if exception is None:
        return preview(value, 200)
    message = str(value)
    return cut(f"{type(value).__name__}: {message}" if message else type(value).__name__, 200)
