"""A traced cell's session: its parameters, last run, feedback, proposals and history.

Sessions outlive re-runs of their cell: the parameters keep their approved values, and
everything the panel does is a method here (``run``, ``feedback``, ``propose``,
``approve``, ``reject``, ``edit``, ``step``), so it can be scripted and tested.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..graph import BundledFunction, ExceptionNode, Node, ParameterNode
from ..graph.data import graph_data
from ..llm.default import set_default_llm  # noqa: F401 - set_default_llm is public here
from ..optim import Proposal
from ..text import cut, preview
from .lineage import Lineage
from .locking import serialized as _serialized
from .params import ParamsMixin
from .registry import check_name
from .registry import forget as _forget
from .registry import register as _register
from .registry import session as session  # public: trace_nb.session(name)
from .review import ReviewMixin
from .versions import VersionsMixin


class TraceSession(ParamsMixin, ReviewMixin, VersionsMixin):
    """State of one traced cell. Get it with ``trace_nb.session(name)``.

    A new session is found by its name from then on (see :mod:`.registry`); with
    ``register=False`` it is not (a copy read from a file, say). The name must be a
    valid session name (:func:`~.registry.check_name`; ValueError otherwise): it also names
    the session's autosave file.
    """

    def __init__(self, name: str, *, register: bool = True):
        from ..optim.llm_call import prewarm_openai  # so the first Propose need not import it

        self.name = check_name(name)
        prewarm_openai()
        self.spec: Any = None  # the magic's CellSpec
        self.shell: Any = None
        self.runner: Callable[[], None] | None = None  # re-executes the cell (set by the magic)
        self.compiled: Any = None  # the rewritten cell, for training over a dataset
        self.last_training: Any = None
        self._params: dict[str, ParameterNode] = {}
        self._code: dict[str, BundledFunction] = {}
        self._modules: dict[str, Any] = {}  # --param NAME holding a trace_nb.Module
        self._saved_modules: dict[str, dict] = {}  # from load_session, until the cell runs
        self._trial_depth = 0  # see trial_runs(): previews adopt no module
        self.cell_values: dict[str, Any] = {}
        self.output_node: Node | None = None
        self.output_value: Any = None
        self.exception: ExceptionNode | None = None
        self.last_feedback: tuple[str, float | None] | None = None
        # Why the --feedback function gave no feedback on the last run (a FeedbackError).
        self.feedback_error: Any = None
        self.lineage = Lineage()  # every accepted value of every parameter (see lineage.py)
        self.examples: list[Any] = []  # inputs a preview runs the cell on (see preview.py)
        self.waiting: list[Proposal] = []  # proposals a review rule kept for a human
        # node name -> (node, text, score): feedback on intermediate values of the last run
        self.node_feedback: dict[str, tuple[Node, str, float | None]] = {}
        self.proposals: list[Proposal] = []
        self.rows: list[dict] = []
        self.llm: Any = None
        self._optimizer: Any = None
        self._pending_optimizer_state: dict | None = None
        self._listeners: list[Callable[[str], None]] = []
        self._panel: Any = None
        self.lock = threading.RLock()  # see _serialized
        self.restorable: Any = None  # an autosave.SavedState this session may restore
        self.autosave_error: str | None = None
        self.autosave_path: Any = None  # the file autosave writes (see autosave.py)
        self.autosave_kept: Any = None  # where the last restore kept the replaced live work
        if register:
            _register(self)

    @property
    def output(self) -> Any:
        """The last run's output value (the exception, if the run raised)."""
        return self.exception.peek() if self.exception is not None else self.output_value

    # -- running ----------------------------------------------------------------------
    @_serialized
    def run(self) -> Any:
        """Run the traced cell again with the current values; give feedback if a
        ``--feedback`` function was named. Returns the output value.

        When the ``--feedback`` function fails (raises, cannot take the output, returns
        something that is not feedback), the run is still recorded and the
        :class:`~trace_nb.feedback.FeedbackError` (also kept as :attr:`feedback_error`) is
        raised after it.
        """
        if self.runner is None:
            raise RuntimeError(f"session {self.name!r} has no cell to run; run its %%trace cell")
        self.runner()
        if self.feedback_error is not None:
            raise self.feedback_error
        return self.output

    def feedback_failed(self, error: Exception) -> None:
        """Record that the ``--feedback`` function gave no feedback on the last run (the
        run itself is kept); views are told with the event ``"feedback_error"``."""
        self.feedback_error = error
        self._notify("feedback_error")

    def _record_run(self, value: Any, exception: ExceptionNode | None) -> None:
        self.output_node = value if isinstance(value, Node) else None
        self.output_value = value.peek() if isinstance(value, Node) else value
        self.exception = exception
        self.last_feedback = None
        self.feedback_error = None
        self.node_feedback = {}
        self.waiting = [p for p in self.waiting if p.status == "pending"]
        self.proposals = list(self.waiting)  # proposals kept for a human stay on offer
        for k, v in self.parameters.items():
            self.lineage.start(k, v)  # version 0: the cell's value
        row = {"step": len(self.rows), "time": time.strftime("%H:%M:%S")}
        row.update({k: _cell(v) for k, v in self.parameters.items()})
        row.update(
            {
                "output": _output_text(self.output, exception),
                "feedback": "",  # no feedback: "" here and NaN under score, in every row
                "score": None,
                "approved": "",
                "rejected": "",
                "decided_by": "",
                "calls": 0,
                "tokens": 0,
                "cost": 0.0,
            }
        )
        self.rows.append(row)
        self._notify("run")

    # -- feedback ---------------------------------------------------------------------
    @_serialized
    def feedback(self, text: str | None = None, score: float | None = None) -> None:
        """Give feedback on the last output (text, a score, or both)."""
        target = self.exception if self.exception is not None else self.output_node
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
        if self.rows:
            self.rows[-1].update(feedback=text or "", score=score)
        self._notify("feedback")

    @_serialized
    def feedback_on(self, node_name: str, text: str, score: float | None = None) -> None:
        """Feedback about an intermediate value of the last run: the node of the DAG named
        ``node_name`` (the name the DAG and the prompt show).

        Only parameters upstream of that node receive it; the prompt's #Feedback lists it
        under the node's name, beside the output's feedback. It lasts until the next run;
        giving it again for the same node replaces it.
        """
        from ..graph.data import find

        root = self.exception if self.exception is not None else self.output_node
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
        old = self.node_feedback.get(node_name)
        if old is not None:  # replace: clear what it sent, then send the new text
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
        if self.rows:
            notes = "; ".join(f"{k}: {v[1]}" for k, v in self.node_feedback.items())
            self.rows[-1]["node_feedback"] = notes
        self._notify("feedback")

    @_serialized
    def queue_for_review(self, proposals: list[Proposal]) -> None:
        """Keep ``proposals`` pending for a human across runs (a review rule chose them)."""
        self.waiting.extend(p for p in proposals if p not in self.waiting)
        self._notify("propose")

    # -- preview ----------------------------------------------------------------------
    @_serialized
    def preview(
        self, name: str, value: Any = None, *, input: str = "example", candidate: int | None = None
    ) -> Any:
        """Run the cell with the pending proposal for ``name`` (or ``value``) on
        :attr:`examples` and score it before → after, changing nothing; see
        :mod:`trace_nb.notebook.preview`. The result is also kept on the proposal."""
        from .preview import preview

        node = self._find(name)
        mine = [
            p
            for p in self.proposals
            if p.parameter is node
            and p.status == "pending"
            and (candidate is None or p.candidate == candidate)
        ]
        if value is None and candidate is not None:
            if not mine:
                raise KeyError(f"candidate {candidate} proposes nothing for {name!r}")
            if not mine[0].valid:  # never previewed: its code could run in the loader
                raise ValueError(
                    f"candidate {candidate}'s proposal for {name!r} is invalid, so it is not "
                    f"previewed: {mine[0].reason}"
                )
            value = mine[0].new
        result = preview(self, name, value, input=input)
        for p in mine:
            if value is None or p.new == value:
                p.preview = result
        return result

    def default_feedback(self) -> str | None:
        """Feedback the run implies by itself: the exception, when there was one."""
        if self.exception is None:
            return None
        return "The code raised an exception:\n" + self.exception.describe()

    @_serialized
    def train(
        self,
        dataset: Any,
        feedback: Callable | None = None,
        *,
        input: str = "example",
        **kwargs: Any,
    ) -> Any:
        """Optimize over a dataset: the cell runs once per example, with the example in
        the variable ``input``. See :func:`.cell_training.train_session`.

        Holds the session lock throughout: a Preview or a decision from the panel (the
        widget thread) waits until training ends, so no value that nobody approved can
        reach the examples being scored."""
        from .cell_training import train_session

        return train_session(self, dataset, feedback, input=input, **kwargs)

    # -- views ------------------------------------------------------------------------
    @property
    def history(self):
        """One row per run: values used, output, feedback, score, decisions, tokens, cost.

        A run without feedback text has ``feedback == ""`` and one without a score has
        ``score`` NaN (the text columns are never NaN). A run that raised shows
        ``"ZeroDivisionError: division by zero"`` as its output.
        """
        import pandas as pd

        frame = pd.DataFrame(self.rows)
        if "feedback" in frame:  # rows saved before "" meant "no feedback text" held None
            frame["feedback"] = frame["feedback"].fillna("")
        return frame

    def graph(self, max_nodes: int | None = 300) -> dict:
        """The last run's trace as plain data (see :func:`trace_nb.graph.graph_data`)."""
        target = self.exception if self.exception is not None else self.output_node
        if target is None:
            return {"nodes": [], "edges": [], "hidden": 0}
        return graph_data([target], max_nodes=max_nodes)

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
        """The review panel showing this session (the one its ``%%trace`` cell shows), or
        None. The session knows its panel only as a view that attached itself."""
        return self._panel

    def attach_view(self, view: Any) -> None:
        """Make ``view`` this session's panel (the panel calls this when it is made)."""
        self._panel = view

    def detach_view(self, view: Any) -> None:
        """Forget ``view`` if it is this session's panel (the panel calls this on close)."""
        if self._panel is view:
            self._panel = None

    def close(self) -> None:
        """Close this session's panel and stop finding it by name (``trace_nb.session``);
        its shell stops keeping it, so it is freed once nothing else holds it."""
        panel = self._panel
        if panel is not None:
            panel.close()  # the panel detaches itself
        self._panel = None
        _forget(self)

    # -- tracking (see trace_nb.tracking) -------------------------------------------------
    def log_to_mlflow(
        self,
        experiment: str = "trace_nb",
        run_name: str | None = None,
        *,
        tracking_uri: str | None = None,
        live: bool = True,
        log_messages: bool = False,
    ) -> Any:
        """Log this session to an MLflow run: params, a step of metrics per run, every
        accepted version with its diff and reasoning, the history, the final prompt and
        the DAG; with ``live=True`` go on logging (and log the LLM calls as traces) until
        ``.stop()`` on the returned :class:`~trace_nb.tracking.session_log.SessionLog`.
        Needs ``pip install 'trace_nb[mlflow]'``; see :func:`trace_nb.tracking.log_session`.
        """
        from ..tracking.session_log import log_session

        return log_session(
            self,
            experiment,
            run_name,
            tracking_uri=tracking_uri,
            live=live,
            log_messages=log_messages,
        )

    # -- persistence (see persist.py) ---------------------------------------------------
    def save(self, path: str) -> None:
        """Write parameters, history and optimizer memory as JSON (atomically)."""
        from .persist import save_session

        save_session(self, path)

    def export(self, path: str) -> None:
        """Write the current values (and approved code) as a Python file."""
        from .persist import export_session

        export_session(self, path)

    def writeback_source(self) -> str:
        """The cell's source with the current values written in."""
        from .writeback import writeback

        return writeback(self)

    def __repr__(self) -> str:
        return f"<TraceSession {self.name!r}: {len(self.parameters)} parameters, {len(self.rows)} runs>"


def _cell(value: Any) -> Any:
    """A history-table cell: scalars as they are, anything else as short text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return preview(value, 200) if not isinstance(value, str) else value


def load_session(path: str) -> TraceSession:
    """Load a session saved with :meth:`TraceSession.save` (registers it under its name)."""
    from .persist import load_session as load

    return load(path)


def _output_text(value: Any, exception: ExceptionNode | None) -> str:
    """The history's ``output`` cell: the value's preview, or ``Type: message`` for an error."""
    if exception is None:
        return preview(value, 200)
    message = str(value)
    return cut(f"{type(value).__name__}: {message}" if message else type(value).__name__, 200)
