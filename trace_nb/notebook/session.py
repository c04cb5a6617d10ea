"""A traced cell's session, composed of the parts it owns.

:class:`TraceSession` holds its :class:`~.parameters.ParameterSet` (``params``), its
history table :class:`~.run_log.RunLog` (``run_log``), its
:class:`~.review.ReviewQueue` (``review``), its :class:`~.lineage.Lineage` (``lineage``) and
its :class:`~.optimizer_slot.OptimizerSlot`; it keeps the last run's output and feedback
itself. Sessions outlive re-runs of their cell, and everything the panel does is a method
here (``run``, ``feedback``, ``propose``, ``approve``, ``reject``, ``edit``, ``step``...),
so it can be scripted and tested. :meth:`TraceSession.to_state` and
:meth:`TraceSession.from_state` are how files are written and read (see :mod:`.persist`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ..graph import ExceptionNode, Node, ParameterNode
from ..graph.data import find, graph_data
from ..llm.default import set_default_llm  # noqa: F401 - set_default_llm is public here
from ..optim import Proposal
from ..optim.policy import Decision, decide
from ..optim.states import DecisionSource
from ..text import cut, preview
from . import persist, registry
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

    A new session is found by its name from then on (see :mod:`.registry`); with
    ``register=False`` it is not (a copy read from a file, say). The name must be a valid
    session name (:func:`~.registry.check_name`; ValueError otherwise): it also names the
    session's autosave file. The magic sets ``spec``, ``shell``, ``compiled`` and
    ``runner``; autosave keeps ``restorable``, ``autosave_path``, ``autosave_error`` and
    ``autosave_kept`` here (see :mod:`.autosave`).
    """

    def __init__(self, name: str, *, register: bool = True):
        from ..optim.llm_call import prewarm_openai  # so the first Propose need not import it

        self.name = registry.check_name(name)
        prewarm_openai()
        self.spec: Any = None  # the magic's CellSpec
        self.shell: Any = None
        self.runner: Callable[[], None] | None = None  # re-executes the cell (set by the magic)
        self.compiled: Any = None  # the rewritten cell, for training over a dataset
        self.last_training: Any = None
        self.lock = threading.RLock()  # see locking.serialized
        self._slot = OptimizerSlot()
        self.params = ParameterSet(on_change=self._slot.forget)
        self.run_log = RunLog()
        self.lineage = Lineage()  # every accepted value of every parameter
        # The queue calls back weakly: a dropped session is freed at once, as before.
        self.review = ReviewQueue(
            self.params, self.run_log, self.lineage, _weakly(self._make_optimizer),
            _weakly(self._publish), _weakly(self._notify), self.name,
        )  # fmt: skip
        self.examples: list[Any] = []  # inputs a preview runs the cell on (see preview.py)
        # The last run: its output, what feedback it got, and the cell's own values.
        self.cell_values: dict[str, Any] = {}
        self.output_node: Node | None = None
        self.output_value: Any = None
        self.exception: ExceptionNode | None = None
        self.last_feedback: tuple[str, float | None] | None = None
        self.feedback_error: Any = None  # why --feedback gave none (a FeedbackError)
        # node name -> (node, text, score): feedback on intermediate values of the last run
        self.node_feedback: dict[str, tuple[Node, str, float | None]] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._panel: Any = None
        self.restorable: Any = None  # an autosave.SavedState this session may restore
        self.autosave_error: str | None = None
        self.autosave_path: Any = None  # the file autosave writes (see autosave.py)
        self.autosave_kept: Any = None  # where the last restore kept the replaced live work
        if register:
            registry.register(self)

    # -- the parts' contents, as before --------------------------------------------------
    proposals = property(lambda self: self.review.proposals, doc="Proposals on offer.")
    waiting = property(lambda self: self.review.waiting, doc="Proposals kept for a human.")
    parameter_nodes = property(lambda self: self.params.nodes(), doc="Every trainable node.")
    modules = property(lambda self: self.params.modules, doc="Trained modules by name.")
    parameters = property(lambda self: self.params.values(), doc="Current value by name.")

    @proposals.setter
    def proposals(self, value: list[Proposal]) -> None:
        self.review.proposals = list(value)

    @property
    def rows(self) -> list[dict]:
        """The history table's rows (see :attr:`history`)."""
        return self.run_log.rows

    @rows.setter
    def rows(self, value: list[dict]) -> None:
        self.run_log.replace(value)

    @property
    def llm(self) -> Any:
        """The LLM this session was given (or made for ``--model``), or None."""
        return self._slot.llm

    @llm.setter
    def llm(self, value: Any) -> None:
        self._slot.llm = value

    @property
    def optimizer(self) -> Any:
        """The session's optimizer, made on first use from the magic's options (set it to
        use another; None makes a new one on next use)."""
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
        """A block whose cell runs change no parameter set (see :meth:`ParameterSet.trial_runs`)."""
        return self.params.trial_runs()

    def differences(self) -> dict[str, tuple[Any, Any]]:
        """Parameters whose current value differs from the cell's: name -> (cell, current)."""
        current = self.parameters
        return {k: (v, current[k]) for k, v in self.cell_values.items() if k in current and v != current[k]}  # fmt: skip

    @property
    def output(self) -> Any:
        """The last run's output value (the exception, if the run raised)."""
        return self.exception.peek() if self.exception is not None else self.output_value

    # -- running and feedback ---------------------------------------------------------
    @_serialized
    def run(self) -> Any:
        """Run the traced cell again with the current values; give feedback if a
        ``--feedback`` function was named. Returns the output value.

        When the ``--feedback`` function fails, the run is still recorded and the
        :class:`~trace_nb.feedback.FeedbackError` (also :attr:`feedback_error`) is raised.
        """
        if self.runner is None:
            raise RuntimeError(f"session {self.name!r} has no cell to run; run its %%trace cell")
        self.runner()
        if self.feedback_error is not None:
            raise self.feedback_error
        return self.output

    def record_run(self, value: Any, exception: ExceptionNode | None) -> None:
        """Record a run of the cell (the runner calls this): its output or exception, a
        history row, and version 0 of new parameters. Views get ``"run"``."""
        self.output_node = value if isinstance(value, Node) else None
        self.output_value = value.peek() if isinstance(value, Node) else value
        self.exception = exception
        self.last_feedback, self.feedback_error, self.node_feedback = None, None, {}
        self.review.new_run()
        values = self.parameters
        for k, v in values.items():
            self.lineage.start(k, v)  # version 0: the cell's value
        self.run_log.start_run(values, _output_text(self.output, exception))
        self._notify("run")

    def feedback_failed(self, error: Exception) -> None:
        """Record that ``--feedback`` gave no feedback on the last run (event ``"feedback_error"``)."""
        self.feedback_error = error
        self._notify("feedback_error")

    def record_training(self, result: Any) -> None:
        """Keep what ``train`` returned (event ``"train"``)."""
        self.last_training = result
        self._notify("train")

    @_serialized
    def feedback(self, text: str | None = None, score: float | None = None) -> None:
        """Give feedback on the last output (text, a score, or both)."""
        target = self._target()
        if target is None:
            raise ValueError(
                "the last output does not depend on any parameter, so feedback cannot reach "
                "one: make sure the cell's last expression uses a --param value"
                if self.rows
                else "nothing to give feedback on yet: run the %%trace cell first"
            )
        if text is None and score is None:
            raise ValueError("give feedback text, a score, or both")
        for p in self.parameter_nodes:
            p.zero_feedback()
        target.zero_feedback()
        target.backward(text or "", score)
        self.lineage.score(self.parameters, len(self.rows) - 1, score)  # the values this run used
        for node, node_text, node_score in self.node_feedback.values():
            node.backward(node_text, node_score)  # node feedback of this run stays
        self.last_feedback = (text or "", score)
        self.run_log.note_feedback(text, score)
        self._notify("feedback")

    @_serialized
    def feedback_on(self, node_name: str, text: str, score: float | None = None) -> None:
        """Feedback about the node of the last run's DAG named ``node_name``: only
        parameters upstream of it receive it; it lasts until the next run; giving it
        again for the same node replaces it."""
        root = self._target()
        node = find([root], node_name) if root is not None else None
        if node is None:
            names = [n["name"] for n in self.graph(max_nodes=None)["nodes"]]
            raise KeyError(
                f"no node named {node_name!r} in the last run's trace "
                f"(nodes: {', '.join(names) or 'none'})"
            )
        if not (text or "").strip() and score is None:
            raise ValueError("give feedback text, a score, or both")
        if node is root:
            self.feedback(text, score)
            return
        if node_name in self.node_feedback:  # replace: clear what it sent, send the rest again
            for p in self.parameter_nodes:
                p.zero_feedback()
            if root is not None and self.last_feedback is not None:
                root.zero_feedback()
                root.backward(*self.last_feedback)
            for other, (n, t, sc) in self.node_feedback.items():
                if other != node_name:
                    n.backward(t, sc)
        node.backward(text or "", score)
        self.node_feedback[node_name] = (node, text or "", score)
        self.run_log.note_node_feedback("; ".join(f"{k}: {v[1]}" for k, v in self.node_feedback.items()))  # fmt: skip
        self._notify("feedback")

    def default_feedback(self) -> str | None:
        """Feedback the run implies by itself: the exception, when there was one."""
        if self.exception is None:
            return None
        return "The code raised an exception:\n" + self.exception.describe()

    def _target(self) -> Node | None:
        return self.exception if self.exception is not None else self.output_node

    # -- review (see review.py) -------------------------------------------------------
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
        """Apply pending proposals (all valid ones when ``names`` is None). With ``value``
        the proposal for ``names`` is edited first. An invalid proposal asked for by name
        is a ValueError; with ``decided_by="auto"`` code stays pending unless
        ``approve_code=True`` (:mod:`trace_nb.optim.approval`); code that does not load
        becomes invalid with the reason, and nothing changes."""
        return self.review.approve(names, value, decided_by, approve_code)

    @_serialized
    def reject(self, names: str | Iterable[str] | None = None, decided_by: str = HUMAN, candidate: int | None = None) -> list[Proposal]:  # fmt: skip
        """Reject pending proposals (all when ``names`` is None; only ``candidate``'s)."""
        return self.review.reject(names, decided_by, candidate)

    @_serialized
    def edit(self, name: str, value: Any, candidate: int | None = None) -> Proposal:
        """Replace the proposal for ``name`` with ``value``, checked like any suggestion."""
        return self.review.edit(name, value, candidate)

    @_serialized
    def choose(self, candidate: int, decided_by: str = HUMAN, approve_code: bool = False) -> list[Proposal]:  # fmt: skip
        """Apply candidate ``candidate`` (``OptoPrime(candidates=k)``); the others' become
        ``"not_chosen"``; the history records the winner."""
        return self.review.choose(candidate, decided_by, approve_code)

    @_serialized
    def apply_decision(self, decision: Decision, decided_by: str = AUTO, approve_code: bool = False) -> list[Proposal]:  # fmt: skip
        """Carry out an automatic step's :class:`~trace_nb.optim.policy.Decision`."""
        return self.review.apply_decision(decision, decided_by, approve_code)

    @_serialized
    def step(self, auto_approve: bool = False, approve_code: bool = False) -> list[Proposal]:
        """Propose; with ``auto_approve`` also apply what :func:`trace_nb.optim.policy.decide`
        allows (code only with ``approve_code=True``, of several candidates the first)."""
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

    # -- lineage ----------------------------------------------------------------------
    def versions(self, name: str) -> Any:
        """Every accepted value of parameter ``name`` as a DataFrame (see :meth:`Lineage.table`)."""
        import pandas as pd

        rows = self.lineage.table(self._readable(name))
        if not rows:
            raise KeyError(f"no versions of {name!r} yet (parameters: {', '.join(self.parameters)})")  # fmt: skip
        return pd.DataFrame(rows)

    def diff(self, name: str, a: int, b: int | None = None) -> str:
        """Unified diff of version ``a`` → ``b`` (the current one by default) of ``name``."""
        return self.lineage.diff(self._readable(name), a, b)

    def blame(self, name: str, limit: int | None = None) -> list[dict]:
        """Where each line of ``name``'s current value came from (see :func:`.lineage.blame`)."""
        return blame(self.lineage, self._readable(name), limit)

    @_serialized
    def restore_version(self, name: str, number: int) -> Any:
        """Make version ``number`` of ``name`` current again (a new version records it);
        code is checked and must load first. ``%trace_writeback NAME`` puts it in the cell."""
        readable = self._readable(name)
        node = self.params.find(readable, self.name)
        value = self.lineage.restore(readable, number, node, len(self.rows) - 1)
        self.params.publish_code(self.shell.user_ns, node) if self.shell is not None else None
        self._notify("restore")
        return value

    def _readable(self, name: str) -> str:
        return self.params.display_name(self.params.find(name, self.name))

    # -- state ------------------------------------------------------------------------
    def to_state(self) -> dict:
        """JSON-ready state: the fields of a ``session`` save file (:mod:`trace_nb.savefile`)."""
        return {
            "name": self.name,
            **self.params.to_state(),
            "history": self.run_log.to_state(),
            "optimizer": self._slot.state(),
            "spec": vars(self.spec).copy() if self.spec is not None else None,
            "lineage": self.lineage.to_data(),
        }

    @classmethod
    def from_state(cls, state: dict, functions: dict[str, tuple[Callable, str]]) -> TraceSession:
        """A session (found by no name) from checked state (:func:`.persist.read_state`)
        and its code compiled (:func:`.persist.check_against`): name -> (function, source)."""
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
        """Take parameter values, code, module values, history and optimizer memory from
        ``loaded`` (a session read from a file); return the names that were set. Code is
        recompiled in the notebook's namespace; all or nothing."""
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
        self.node_feedback = {}
        self.lineage.clear()

    # -- views ------------------------------------------------------------------------
    @property
    def history(self) -> Any:
        """One row per run as a DataFrame: values used, output, feedback, score,
        decisions, tokens, cost. No feedback text is ``""``, no score NaN; a run that
        raised shows ``"ZeroDivisionError: division by zero"`` as its output."""
        return self.run_log.frame()

    def graph(self, max_nodes: int | None = 300) -> dict:
        """The last run's trace as plain data (see :func:`trace_nb.graph.graph_data`)."""
        target = self._target()
        return {"nodes": [], "edges": [], "hidden": 0} if target is None else graph_data([target], max_nodes=max_nodes)  # fmt: skip

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
        """Close this session's panel and stop finding it by name; its shell stops keeping
        it, so it is freed once nothing else holds it."""
        if self._panel is not None:
            self._panel.close()  # the panel detaches itself
        self._panel = None
        registry.forget(self)

    # -- elsewhere: preview, training, tracking, files --------------------------------------
    @_serialized
    def preview(self, name: str, value: Any = None, *, input: str = "example", candidate: int | None = None) -> Any:  # fmt: skip
        """Run the cell with the pending proposal for ``name`` (or ``value``, or candidate
        ``candidate``'s) on :attr:`examples`, before → after, changing nothing (see
        :mod:`trace_nb.notebook.preview`); the result is also kept on the proposal."""
        from .preview import preview_proposal

        return preview_proposal(self, name, value, input=input, candidate=candidate)

    @_serialized
    def train(self, dataset: Any, feedback: Callable | None = None, *, input: str = "example", **kwargs: Any) -> Any:  # fmt: skip
        """Optimize over a dataset, the example in the variable ``input`` (see
        :func:`.cell_training.train_session`). Holds the session lock throughout, so no
        decision from the panel can reach the examples being scored."""
        from .cell_training import train_session

        return train_session(self, dataset, feedback, input=input, **kwargs)

    def log_to_mlflow(self, experiment: str = "trace_nb", run_name: str | None = None, *, tracking_uri: str | None = None, live: bool = True, log_messages: bool = False) -> Any:  # fmt: skip
        """Log this session to an MLflow run (see :func:`trace_nb.tracking.log_session`;
        needs ``pip install 'trace_nb[mlflow]'``); with ``live=True`` until ``.stop()``."""
        from ..tracking.session_log import log_session

        return log_session(self, experiment, run_name, tracking_uri=tracking_uri, live=live, log_messages=log_messages)  # fmt: skip

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
        return f"<TraceSession {self.name!r}: {len(self.parameters)} parameters, {len(self.rows)} runs>"


def read_session(path: str, like: TraceSession | None = None) -> TraceSession:
    """The session saved at ``path``, checked completely, as a new session that nothing
    finds by name yet: values must have the types of ``like``'s (by default the live
    session of the file's name, if any) and saved code passes the checks of an LLM
    proposal against ``like``'s.

    Raises
    ------
    SessionFileError
        When the file is not a readable session, a value has the wrong type, or saved
        code fails validation.
    FileNotFoundError
        When there is no such file.
    """
    state = persist.read_state(path)
    live = like if like is not None else registry.find(state["name"])
    functions = persist.check_against(state, live, path)
    return TraceSession.from_state(state, functions)


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
