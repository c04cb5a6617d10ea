"""One :func:`~trace_nb.training.loop.train` call's state and steps (see that module)."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..files import plain_copy
from ..optim.policy import decide
from .budget import Budget, Projection, Usage, UsageMeter, estimate_next_step, project
from .checkpoint import epoch_order, open_run, save_checkpoint, set_parameter_values
from .checkpoint import parameter_values as _values
from .choosing import preview_on_batch, score_on_batch
from .config import TrainConfig
from .engines import engine_for
from .evaluate import EvalReport, ExampleResult, evaluate
from .inprocess import Traced, forward, mean_score
from .progress import ProgressListener, RunInfo, TqdmProgress
from .remote import RemoteRunner
from .result import TrainResult

__all__ = ["Trainer"]


class Trainer:
    """The state and steps of one :func:`train` call."""

    def __init__(
        self,
        workflow: Callable,
        data: list,
        feedback: Callable,
        optimizer: Any,
        val: list | None,
        opts: TrainConfig,
    ):
        self.workflow, self.data, self.feedback, self.opt, self.val = (
            workflow,
            data,
            feedback,
            optimizer,
            val,
        )
        self.o = opts
        self.params = list(optimizer.parameters)
        self.bs = opts.batch_size
        self.spe = math.ceil(len(data) / self.bs)
        self.total = self.spe * opts.epochs
        self.budget = Budget.coerce(opts.budget)
        self.projection: Projection | None = None
        self.last_val: EvalReport | None = None
        self.shown: list[ExampleResult] = []
        self.steps_here = 0
        config = {
            "batch_size": self.bs,
            "dataset_size": len(data),
            "validation_size": len(val) if val is not None else None,
            "shuffle_seed": opts.shuffle_seed,
            "parameters": [p.name for p in self.params],
        }
        self.state, self.resumed = open_run(opts.checkpoint, opts.resume, config, optimizer)
        self.meter = UsageMeter(
            [getattr(optimizer, "llm", None), opts.workflow_llm], Usage.from_dict(self.state.usage)
        )
        engine = engine_for(opts.executor)
        # A remote engine runs minibatches (traces shipped back) and validation examples.
        self.remote = RemoteRunner(engine, workflow, feedback, self.params) if engine else None
        self.own_pool = None
        if opts.executor is None and opts.max_workers > 1:
            self.own_pool = ThreadPoolExecutor(
                opts.max_workers, thread_name_prefix="trace_nb-train"
            )
        self.pool = opts.executor if engine is None and opts.executor is not None else self.own_pool
        self.listeners: list[ProgressListener] = []
        self.waiting: list = []  # proposals a review rule kept for a human
        self.chosen_candidate: int | None = None  # the candidate this step applied, if several
        if opts.progress:
            self.listeners.append(TqdmProgress())
        if opts.view is not None:
            self.listeners.append(opts.view)
        from ..tracking.training import listeners_for, spans_for  # MLflow, OpenTelemetry

        self.listeners.extend(listeners_for(opts.tracking, optimizer, opts))
        self.spans = spans_for(opts.tracking, optimizer, opts)  # None: no spans

    # -- the run ------------------------------------------------------------------------
    def run(self) -> TrainResult:
        try:
            if self.spans is None:
                return self._run()
            with self.spans.run():
                result = self._run()
                self.spans.result(result)
                return result
        except BaseException as e:  # a tracker ends its run as failed (see trace_nb.tracking)
            for listener in self.listeners:
                abort = getattr(listener, "abort", None)
                if abort is not None:
                    abort(e)
            raise

    def _run(self) -> TrainResult:
        st = self.state
        reason: str | None = None
        try:
            info = RunInfo(self.total, st.step, self.spe, self.o.epochs, self.resumed)
            for listener in self.listeners:
                listener.start(info, st.history)
            if self.o.tokens_per_call is not None:
                self._project(None)
            if self.val is not None and not st.history:
                self._initial_validation()
            while (reason := self._stop_reason()) is None:
                if self.spans is None:
                    stepped = self._step()
                else:
                    with self.spans.step(st.step + 1) as span:
                        stepped = self._step()
                        if stepped:
                            span.done(st.history[-1])
                if not stepped:
                    reason = "budget"
                    break
                self.steps_here += 1
                self._announce()
        except KeyboardInterrupt:  # Jupyter's stop button: keep what was learned so far
            reason = "interrupted"
            self.opt.zero_feedback()
        finally:
            if self.own_pool is not None:
                self.own_pool.shutdown(wait=True)
        result = TrainResult(
            list(st.history),
            plain_copy(st.best_parameters) or _values(self.params),
            st.best_score,
            st.best_step,
            reason,
            _values(self.params),
            self._usage(),
            self.projection,
            self.shown,
            self.opt,
            [p for p in self.waiting if p.status == "pending"],
        )
        if self.o.restore_best:
            result.restore()
        for listener in self.listeners:
            listener.end(result)
        return result

    def _usage(self) -> dict[str, Any]:
        usage = self.meter.total().as_dict()
        if self.remote is not None:  # per worker: examples run and LLM usage reported
            usage["engine"] = self.remote.engine.name
            usage["workers"] = self.remote.usage_by_worker()
        return usage

    def _stop_reason(self) -> str | None:
        st, patience, max_steps = self.state, self.o.patience, self.o.max_steps
        if st.step >= self.total:
            return "completed"
        if patience is not None and st.stale >= patience:
            return "patience"
        if max_steps is not None and self.steps_here >= max_steps:
            return "max_steps"
        measured = estimate_next_step(st.history)
        if self.budget and measured and self.budget.would_exceed(self.meter.total(), measured):
            return "budget"
        return None

    def _project(self, prompt_chars: int | None) -> None:
        remaining = self.total - self.state.step
        if self.o.max_steps is not None:
            remaining = min(remaining, self.o.max_steps - self.steps_here)
        self.projection = project(
            steps=remaining,
            batch_size=self.bs,
            n_validation=len(self.val or ()),
            initial_validation=self.val is not None and not self.state.history,
            calls_per_example=self.o.calls_per_example,
            optimizer_llm=getattr(self.opt, "llm", None),
            workflow_llm=self.o.workflow_llm,
            prompt_chars=prompt_chars,
            parameter_chars=sum(len(repr(p.peek())) for p in self.params),
            tokens_per_call=self.o.tokens_per_call,
        )
        for listener in self.listeners:
            listener.projection(self.projection)

    def _validate(self) -> EvalReport:
        if self.remote is None:
            return evaluate(
                self.workflow,
                self.val,
                self.feedback,
                executor=self.pool,
                max_workers=1,
                parameters=self.params,
            )
        start = time.perf_counter()
        results, usage = self.remote.evaluate(list(enumerate(self.val)))
        self.meter.add_remote(usage)
        return EvalReport(results, time.perf_counter() - start, usage)

    def forward_batch(self, batch: list[int]) -> list[Traced]:
        """Traced runs of the examples ``batch`` with the current values: here or remotely."""
        items = [(i, self.data[i]) for i in batch]
        if self.remote is None:
            return forward(self.workflow, self.feedback, items, self.pool, self.params)
        traced, usage = self.remote.forward(items)
        self.meter.add_remote(usage)
        return traced

    def _initial_validation(self) -> None:
        st = self.state
        self.last_val = self._validate()
        self.shown = self.last_val.results
        score = self.last_val.mean_score
        st.best_score, st.best_step, st.best_parameters = score, 0, _values(self.params)
        st.history.append(
            self._row(0, [], None, score, True, [], [], Usage(), self.last_val.seconds)
        )
        self._save()

    def _step(self) -> bool:
        """One optimization step; False when the budget stops it before the LLM call."""
        st, opt, start = self.state, self.opt, time.perf_counter()
        epoch, pos = divmod(st.step, self.spe)
        if st.epoch != epoch or not st.order:
            st.epoch, st.order = epoch, epoch_order(len(self.data), self.o.shuffle_seed, epoch)
        batch = st.order[pos * self.bs : (pos + 1) * self.bs]
        used_before = self.meter.total()
        opt.zero_feedback()
        traced = self.forward_batch(batch)
        for t in traced:
            if t.node is not None:
                t.node.backward(t.result.feedback, t.result.score)
        if not any(p._feedback for p in self.params):
            opt.zero_feedback()
            raise ValueError(
                "no parameter of the optimizer received feedback: the workflow's "
                "outputs must be nodes computed from the optimizer's parameters"
            )
        if self.projection is None:
            messages = getattr(opt, "messages", None)
            chars = sum(len(str(m.get("content", ""))) for m in messages()) if messages else None
            self._project(chars)
        if self.budget and estimate_next_step(st.history) is None:
            rest = self.projection.step_usage(len(self.val or ()))
            if self.budget.would_exceed(self.meter.total(), rest):
                opt.zero_feedback()
                return False
        train_results = [t.result for t in traced]
        del traced
        train_score = mean_score(train_results)
        before = _values(self.params)
        undo = self._undo_point()
        proposals = opt.propose()
        try:
            return self._commit(
                st, epoch, batch, start, used_before, train_results, train_score, before, proposals
            )
        except BaseException:
            # A step is recorded or rolled back, never half: parameters, optimizer state
            # and run state go back to what they were before propose().
            self._roll_back(undo)
            raise

    def _undo_point(self) -> dict[str, Any]:
        st = self.state
        opt_state = self.opt.state() if hasattr(self.opt, "state") else None
        return {
            "values": _values(self.params),
            "fields": dataclasses.replace(st),
            "history": len(st.history),
            "optimizer": plain_copy(opt_state),
            "last_val": self.last_val,
            "shown": self.shown,
        }

    def _roll_back(self, undo: dict[str, Any]) -> None:
        st = self.state
        set_parameter_values(self.params, undo["values"])
        for f in dataclasses.fields(st):
            if f.name != "history":
                setattr(st, f.name, getattr(undo["fields"], f.name))
        del st.history[undo["history"] :]
        if undo["optimizer"] is not None and hasattr(self.opt, "load_state"):
            self.opt.load_state(undo["optimizer"])
        self.last_val, self.shown = undo["last_val"], undo["shown"]
        self.opt.zero_feedback()

    def _commit(
        self,
        st: Any,
        epoch: int,
        batch: list[int],
        start: float,
        used_before: Usage,
        train_results: list,
        train_score: float | None,
        before: dict[str, Any],
        proposals: list,
    ) -> bool:
        """Apply the proposals, validate, record the row and write the checkpoint."""
        opt = self.opt
        # The one step policy: code only with approve_code (never run to score or preview
        # otherwise), one candidate (the best on the minibatch), the review rule's holds.
        decision = decide(
            proposals,
            self.o.review,
            self.o.approve_code,
            lambda group: score_on_batch(self, group, batch),
            round=st.step + 1,
            previewer=lambda p: preview_on_batch(self, p, batch, train_results),
        )
        decision.mark_not_chosen()
        self.chosen_candidate = decision.candidate
        self.waiting.extend(decision.held())  # kept for a human
        if decision.candidate is not None:  # the row counts the chosen candidate's proposals
            proposals = [p for p in proposals if p.candidate in (None, decision.candidate)]
        applied = opt.apply(decision.apply, approve_code=self.o.approve_code)
        opt.zero_feedback()
        val_score, self.shown = None, train_results
        if self.val is not None:
            if applied or self.last_val is None:  # unchanged parameters keep their score
                self.last_val = self._validate()
            val_score, self.shown = self.last_val.mean_score, self.last_val.results
        # Without validation the minibatch score judges the values it was measured with.
        monitored, candidate, at = (
            (val_score, None, st.step + 1)
            if self.val is not None
            else (train_score, before, st.step)
        )
        improved = monitored is not None and (st.best_score is None or monitored > st.best_score)
        if improved:
            st.best_score, st.best_step = monitored, at
            st.best_parameters = candidate if candidate is not None else _values(self.params)
            st.stale = 0
        else:
            st.stale += 1
        st.step += 1
        row = self._row(
            epoch + 1,
            batch,
            train_score,
            val_score,
            improved,
            applied,
            proposals,
            used_before,
            time.perf_counter() - start,
        )
        st.history.append(row)
        st.parameters = _values(self.params)
        st.optimizer_state = opt.state() if hasattr(opt, "state") else {}
        st.usage = self.meter.total().as_dict()
        self._save()
        return True

    def _announce(self) -> None:
        """Tell listeners and the callback about the step just recorded (after its checkpoint:
        an error here leaves the step recorded)."""
        row = self.state.history[-1]
        for listener in self.listeners:
            listener.step(row, self.shown, self.meter.total())
        if self.o.callback is not None:
            self.o.callback(row)

    def _row(
        self,
        epoch: int,
        batch: list[int],
        train_score: float | None,
        val_score: float | None,
        improved: bool,
        applied: list,
        proposals: list,
        used_before: Usage,
        seconds: float,
    ) -> dict[str, Any]:
        """One history row: scores, what changed, and usage (running totals and this step's)."""
        used = self.meter.total()
        spent = used - used_before
        return {
            "step": self.state.step,
            "epoch": epoch,
            "batch": list(batch),
            "train_score": train_score,
            "val_score": val_score,
            "best_score": self.state.best_score,
            "improved": improved,
            "changed": [p.name for p in applied],
            "invalid": sum(not p.valid for p in proposals),
            "calls": used.calls,
            "tokens": used.tokens,
            "cost": used.cost,
            "step_calls": spent.calls,
            "step_tokens": spent.tokens,
            "step_cost": spent.cost,
            "seconds": seconds,
            "candidate": self.chosen_candidate,
        }

    def _save(self) -> None:
        if self.o.checkpoint is not None:
            save_checkpoint(self.o.checkpoint, self.state)
