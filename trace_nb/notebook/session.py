"""A traced cell's session: its parameters, last run, feedback, proposals and history.

Sessions outlive re-runs of their cell: the parameters keep their approved values, and
everything the panel does is a method here (``run``, ``feedback``, ``propose``,
``approve``, ``reject``, ``edit``, ``step``), so it can be scripted and tested.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..graph import BundledFunction, ExceptionNode, Node, ParameterNode
from ..graph.data import graph_data, preview
from ..llm.default import default_llm, set_default_llm  # noqa: F401 - set_default_llm is public here
from ..optim import Proposal

_SESSIONS: dict[str, TraceSession] = {}


def session(name: str = "default") -> TraceSession:
    """The session of the ``%%trace --name NAME`` cell."""
    try:
        return _SESSIONS[name]
    except KeyError:
        known = ", ".join(sorted(_SESSIONS)) or "none yet"
        raise KeyError(f"no trace session named {name!r} (sessions: {known}); run a "
                       f"%%trace --name {name} cell first") from None


def _serialized(method: Callable) -> Callable:
    """Run ``method`` holding the session's lock: changes from the panel (on any thread),
    from background follow-ups and from the notebook never interleave."""
    @functools.wraps(method)
    def locked(self: TraceSession, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)
    return locked





class TraceSession:
    """State of one traced cell. Get it with ``trace_nb.session(name)``."""

    def __init__(self, name: str):
        from ..optim.llm_call import prewarm_openai  # so the first Propose need not import it

        prewarm_openai()
        self.name = name
        self.spec: Any = None  # the magic's CellSpec
        self.shell: Any = None
        self.runner: Callable[[], None] | None = None  # re-executes the cell (set by the magic)
        self.compiled: Any = None  # the rewritten cell, for training over a dataset
        self.last_training: Any = None
        self._params: dict[str, ParameterNode] = {}
        self._code: dict[str, BundledFunction] = {}
        self._modules: dict[str, Any] = {}  # --param NAME holding a trace_nb.Module
        self._saved_modules: dict[str, dict] = {}  # from load_session, until the cell runs
        self.cell_values: dict[str, Any] = {}
        self.output_node: Node | None = None
        self.output_value: Any = None
        self.exception: ExceptionNode | None = None
        self.last_feedback: tuple[str, float | None] | None = None
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
        _SESSIONS[name] = self

    # -- parameters ---------------------------------------------------------------------
    @property
    def parameter_nodes(self) -> list[ParameterNode]:
        """Every trainable node: value parameters, code parameters, then modules' parameters."""
        return list(self.named_parameter_nodes().values())

    def named_parameter_nodes(self) -> dict[str, ParameterNode]:
        """Readable name -> parameter node (``agent.act`` for a module's method)."""
        nodes = dict(self._params)
        nodes.update({k: b.parameter for k, b in self._code.items()})
        for name, obj in self._modules.items():
            from ..modules import module_parameters

            nodes.update(module_parameters(obj, prefix=name))
        return nodes

    @property
    def modules(self) -> dict[str, Any]:
        """The modules (``trace_nb.Module`` / ``@model`` instances) whose parameters this
        session trains, by their notebook variable names."""
        return dict(self._modules)

    @property
    def parameters(self) -> dict[str, Any]:
        """Current (approved) value of each parameter, by the name used in the cell."""
        return {k: p._data for k, p in self.named_parameter_nodes().items()}

    def display_name(self, node: ParameterNode) -> str:
        """The readable name of a parameter node (``agent.act``), or its own name."""
        for k, p in self.named_parameter_nodes().items():
            if p is node:
                return k
        return node.name

    @property
    def output(self) -> Any:
        """The last run's output value (the exception, if the run raised)."""
        return self.exception._data if self.exception is not None else self.output_value

    def _parameter(self, name: str, value: Any, description: str | None,
                   constraint: str | None) -> ParameterNode:
        p = self._params.get(name)
        if p is None:
            p = ParameterNode(value, name=name, description=description, constraint=constraint)
            self._params[name] = p
            self._optimizer = None  # the parameter set changed
        else:
            p.description = description or p.description
            p.constraint = constraint or p.constraint
        return p

    def _register_module(self, name: str, obj: Any) -> Any:
        if self._modules.get(name) is not obj:
            from ..modules import load_state_dict, state_dict

            old = self._modules.get(name)
            if old is not None:
                # Re-running the cell made a new instance: keep the approved values.
                load_state_dict(obj, state_dict(old))
            elif name in self._saved_modules:  # values from a saved session
                load_state_dict(obj, self._saved_modules.pop(name))
            self._modules[name] = obj
            self._optimizer = None
        return obj

    def _code_bundle(self, func: Any) -> BundledFunction | None:
        name = getattr(func, "__name__", None)
        if self.spec is None or name not in self.spec.code:
            return None
        b = self._code.get(name)
        if b is None:
            b = BundledFunction(func, trainable=True, allow_external_dependencies=True)
            self._code[name] = b
            self._optimizer = None
        return b

    @_serialized
    def adopt_state(self, loaded: TraceSession, shell: Any = None) -> list[str]:
        """Take parameter values, code, module values, history and optimizer memory from
        ``loaded`` (a session read from a file); return the names that were set.

        Code is recompiled in the notebook's namespace (``shell.user_ns``) so it sees the
        notebook's helpers, as the cell's own functions do.
        """
        from ..graph import compile_function

        shell = shell or self.shell
        ns = shell.user_ns if shell is not None else {"__name__": "__main__"}
        names = []
        for k, p in loaded._params.items():
            mine = self._params.get(k)
            if mine is None:
                self._params[k] = mine = ParameterNode(p._data, name=k, description=p.description,
                                                       constraint=p.constraint)
            mine._set(p._data)
            names.append(k)
        for k, b in loaded._code.items():
            source = b.parameter._data
            fn = compile_function(source, k, ns)
            mine_b = self._code.get(k)
            if mine_b is None:
                self._code[k] = mine_b = BundledFunction(fn, trainable=True, allow_external_dependencies=True)
            mine_b.parameter._set(source)
            if shell is not None:
                shell.user_ns[k] = mine_b.function
            names.append(k)
        saved_modules = dict(loaded._saved_modules)
        if saved_modules:
            from ..modules import load_state_dict

            for k, state in saved_modules.items():
                if k in self._modules:
                    load_state_dict(self._modules[k], state)
                else:
                    self._saved_modules[k] = state
                names.append(k)
        self.rows = list(loaded.rows)
        self._pending_optimizer_state = loaded._pending_optimizer_state
        self._optimizer = None
        self.restorable = None
        self._notify("restore")
        return names

    def differences(self) -> dict[str, tuple[Any, Any]]:
        """Parameters whose current value differs from the cell's source: name -> (cell, current)."""
        current = self.parameters
        return {k: (v, current[k]) for k, v in self.cell_values.items()
                if k in current and v != current[k]}

    @_serialized
    def reset(self) -> None:
        """Forget parameters, proposals and history (``%%trace --reset``)."""
        self._params.clear()
        self._code.clear()
        self._modules.clear()
        self.proposals = []
        self.rows = []
        self._optimizer = None

    def _find(self, name: str) -> ParameterNode:
        if name in self._params:
            return self._params[name]
        if name in self._code:
            return self._code[name].parameter
        named = self.named_parameter_nodes()
        if name in named:
            return named[name]
        for p in named.values():
            if p.name == name:
                return p
        raise KeyError(f"{name!r} is not a parameter of session {self.name!r} "
                       f"(parameters: {', '.join(self.parameters) or 'none'})")

    # -- running ----------------------------------------------------------------------
    @_serialized
    def run(self) -> Any:
        """Run the traced cell again with the current values; give feedback if a
        ``--feedback`` function was named. Returns the output value."""
        if self.runner is None:
            raise RuntimeError(f"session {self.name!r} has no cell to run; run its %%trace cell")
        self.runner()
        return self.output

    def _record_run(self, value: Any, exception: ExceptionNode | None) -> None:
        self.output_node = value if isinstance(value, Node) else None
        self.output_value = value._data if isinstance(value, Node) else value
        self.exception = exception
        self.last_feedback = None
        self.proposals = []
        row = {"step": len(self.rows), "time": time.strftime("%H:%M:%S")}
        row.update({k: _cell(v) for k, v in self.parameters.items()})
        row.update({"output": preview(self.output, 200), "feedback": None, "score": None,
                    "approved": "", "rejected": "", "decided_by": "", "calls": 0,
                    "tokens": 0, "cost": 0.0})
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
                if self.rows else "nothing to give feedback on yet: run the %%trace cell first")
        if text is None and score is None:
            raise ValueError("give feedback text, a score, or both")
        for p in self.parameter_nodes:
            p.zero_feedback()
        target.zero_feedback()
        target.backward(text or "", score)
        self.last_feedback = (text or "", score)
        if self.rows:
            self.rows[-1].update(feedback=text or "", score=score)
        self._notify("feedback")

    def default_feedback(self) -> str | None:
        """Feedback the run implies by itself: the exception, when there was one."""
        if self.exception is None:
            return None
        return "The code raised an exception:\n" + self.exception.describe()

    # -- optimizing -------------------------------------------------------------------
    @property
    def optimizer(self) -> Any:
        """The session's optimizer, made on first use from the magic's options."""
        if self._optimizer is None:
            from ..optim import OPRO, OptoPrime

            spec = self.spec
            kind = (spec.optimizer if spec else None) or "OptoPrime"
            llm = self._resolve_llm()
            if kind.lower() == "opro":
                self._optimizer = OPRO(self.parameter_nodes, llm=llm)
            elif kind.lower() == "optoprime":
                self._optimizer = OptoPrime(self.parameter_nodes, llm=llm,
                                            memory_size=(spec.memory if spec else 0) or 0)
            else:
                raise ValueError(f"unknown optimizer {kind!r}; use OptoPrime or OPRO")
            if self._pending_optimizer_state:
                self._optimizer.load_state(self._pending_optimizer_state)
                self._pending_optimizer_state = None
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value: Any) -> None:
        self._optimizer = value

    def _resolve_llm(self) -> Any:
        if self.llm is not None:
            return self.llm
        spec = self.spec
        if spec is not None and spec.llm_var:
            ns = self.shell.user_ns if self.shell is not None else {}
            if spec.llm_var not in ns:
                raise NameError(f"--llm {spec.llm_var}: no variable of that name in the notebook")
            return ns[spec.llm_var]
        if default_llm() is not None:
            return default_llm()
        from ..llm import LLM

        self.llm = LLM(model=spec.model if spec else None)
        return self.llm

    @_serialized
    def propose(self) -> list[Proposal]:
        """Ask the optimizer for proposals; nothing changes until they are approved."""
        return self.adopt(*self.request_proposals())

    def request_proposals(self) -> tuple[list[Proposal], Any]:
        """The LLM call of :meth:`propose` (safe in a worker thread): proposals and usage.

        The session is not changed; :meth:`adopt` makes the proposals its own, so a
        cancelled request leaves everything as it was.
        """
        if self.last_feedback is None:
            raise ValueError("no feedback yet: give feedback on the output first "
                             "(session.feedback(...), %trace_feedback, or the panel)")
        opt = self.optimizer
        before = len(opt.log)
        proposals = opt.propose()
        usage = opt.log[-1].usage if len(opt.log) > before else None
        return proposals, usage

    @_serialized
    def adopt(self, proposals: list[Proposal], usage: Any = None) -> list[Proposal]:
        """Make ``proposals`` the pending ones and count the LLM call in the history."""
        self.proposals = proposals
        if self.rows and usage is not None:
            row = self.rows[-1]
            row["calls"] += 1
            row["tokens"] += usage.prompt_tokens + usage.completion_tokens
            row["cost"] += usage.cost
        self._notify("propose")
        return proposals

    def _pending(self, names: str | Iterable[str] | None) -> list[Proposal]:
        if names is None:
            return [p for p in self.proposals if p.status == "pending"]
        wanted = [names] if isinstance(names, str) else list(names)
        found = []
        for w in wanted:
            pending = [p for p in self.proposals if p.status == "pending"]
            if any(p.parameter is None and p.name == w for p in pending):
                found.extend(p for p in pending if p.parameter is None and p.name == w)
                continue  # a suggestion for an unknown name: it can only be rejected
            node = self._find(w)
            match = [p for p in pending if p.parameter is node]
            if not match:
                raise KeyError(f"there is no pending proposal for {w!r}")
            found.extend(match)
        return found

    @_serialized
    def approve(self, names: str | Iterable[str] | None = None, value: Any = None,
                decided_by: str = "human", approve_code: bool = False) -> list[Proposal]:
        """Apply pending proposals (all valid ones when ``names`` is None).

        With ``value``, the proposal for ``names`` is edited first (and checked again).
        An invalid proposal cannot be approved: asking for it by name raises ValueError.
        With ``decided_by="auto"`` code proposals stay pending unless ``approve_code=True``
        (:mod:`trace_nb.optim.approval`). Code that does not load (a failing import)
        becomes invalid with the reason, and nothing changes.
        """
        if value is not None:
            if not isinstance(names, str):
                raise ValueError("approve(name, value=...) edits one proposal: give one name")
            self.edit(names, value)
        chosen = self._pending(names)
        if names is not None:
            bad = [p for p in chosen if not p.valid]
            if bad:
                raise ValueError(f"cannot approve {bad[0].name!r}: {bad[0].reason}")
        applied = self.optimizer.apply([p for p in chosen if p.valid], decided_by=decided_by,
                                       approve_code=approve_code)
        for p in applied:
            self._after_apply(p)
        self._mark_row(applied, "approved", decided_by)
        self._notify("approve")
        broken = [p for p in chosen if not p.valid and p.status == "pending" and p.is_code
                  and (p.reason or "").startswith("the code cannot be applied")]
        if names is not None and broken:
            raise ValueError(f"cannot approve {broken[0].name!r}: {broken[0].reason}")
        return applied

    @_serialized
    def reject(self, names: str | Iterable[str] | None = None, decided_by: str = "human") -> list[Proposal]:
        """Reject pending proposals (all when ``names`` is None)."""
        chosen = self._pending(names)
        for p in chosen:
            p.status, p.decided_by = "rejected", decided_by
        self._mark_row([p for p in chosen if p.parameter is not None], "rejected", decided_by)
        self._notify("reject")
        return chosen

    @_serialized
    def edit(self, name: str, value: Any) -> Proposal:
        """Replace the proposal for ``name`` with ``value``, checked like any suggestion."""
        old = self._pending(name)[0]
        new = old.revalidate(value)
        self.proposals[self.proposals.index(old)] = new
        self._notify("edit")
        return new

    @_serialized
    def step(self, auto_approve: bool = False, approve_code: bool = False) -> list[Proposal]:
        """Propose; with ``auto_approve`` also apply every valid value proposal, and code
        proposals too only with ``approve_code=True`` (the one opt-in for unreviewed code)."""
        proposals = self.propose()
        if auto_approve:
            self.approve(decided_by="auto", approve_code=approve_code)
        return proposals

    def _after_apply(self, prop: Proposal) -> None:
        # An approved code proposal redefines the function in the user's namespace.
        for fname, b in self._code.items():
            if b.parameter is prop.parameter and self.shell is not None:
                self.shell.user_ns[fname] = b.function

    def _mark_row(self, props: list[Proposal], column: str, who: str) -> None:
        if not self.rows or not props:
            return
        row = self.rows[-1]
        names = [self.display_name(p.parameter) if p.parameter is not None else p.name for p in props]
        row[column] = ", ".join(filter(None, [row[column], *names]))
        row["decided_by"] = who

    def train(self, dataset: Any, feedback: Callable | None = None, *, input: str = "example",
              **kwargs: Any) -> Any:
        """Optimize over a dataset: the cell runs once per example, with the example in
        the variable ``input``. See :func:`.cell_training.train_session`."""
        from .cell_training import train_session

        return train_session(self, dataset, feedback, input=input, **kwargs)

    # -- views ------------------------------------------------------------------------
    @property
    def history(self):
        """One row per run: values used, output, feedback, score, decisions, tokens, cost."""
        import pandas as pd

        return pd.DataFrame(self.rows)

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
        """The review panel for this session (made on first use)."""
        if self._panel is None:
            from .ui.panel import Panel

            self._panel = Panel(self)
        return self._panel

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
        from .persist import writeback

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
