"""One :func:`~trace_nb.training.loop.train` call's state and steps (see that module)."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..files import plain_copy
from ..llm.usage import Usage
from ..optim.policy import decide
from .budget import Budget, Projection, UsageMeter, estimate_next_step, project
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
from .run_usage import RunUsage

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
        config: TrainConfig,
    ):
        self.workflow = workflow
        self.data = data  # the training examples
        self.feedback = feedback
        self.optimizer = optimizer
        self.val = val  # the validation examples, or None
        self.config = config
        self.params = list(optimizer.parameters)
        self.batch_size = config.batch_size
        self.steps_per_epoch = math.ceil(len(data) / self.batch_size)
        self.total = self.steps_per_epoch * config.epochs
        self.budget = Budget.coerce(config.budget)
        self.projection: Projection | None = None
        self.last_val: EvalReport | None = None
        self.shown: list[ExampleResult] = []
        self.steps_here = 0
        run_identity = {  # a checkpoint continues only a run with the same of these
            "batch_size": self.batch_size,
            "dataset_size": len(data),
            "validation_size": len(val) if val is not None else None,
            "shuffle_seed": config.shuffle_seed,
            "parameters": [p.name for p in self.params],
        }
        self.state, self.resumed = open_run(
            config.checkpoint, config.resume, run_identity, optimizer
        )
        self.meter = UsageMeter(
            [getattr(optimizer, "llm", None), config.workflow_llm],
            self.state.usage,
        )
        engine = engine_for(config.executor)
        # A remote engine runs minibatches (traces shipped back) and validation examples.
        self.remote = RemoteRunner(engine, workflow, feedback, self.params) if engine else None
        self.own_pool = None
        if config.executor is None and config.max_workers > 1:
            self.own_pool = ThreadPoolExecutor(
                config.max_workers, thread_name_prefix="trace_nb-train"
            )
        self.pool = (
            config.executor if engine is None and config.executor is not None else self.own_pool
        )
        self.listeners: list[ProgressListener] = []
        self.waiting: list = []  # proposals a review rule kept for a human
        self.chosen_candidate: int | None = None  # the candidate this step applied, if several
        self.kept_values = False  # every candidate scored below the values on the minibatch
        if config.progress:
            self.listeners.append(TqdmProgress())
        if config.view is not None:
            self.listeners.append(config.view)
        from ..tracking.training import listeners_for, spans_for  # MLflow, OpenTelemetry

        self.listeners.extend(listeners_for(config.tracking, optimizer, config))
        self.spans = spans_for(config.tracking, optimizer, config)  # None: no spans

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
        state = self.state
        reason: str | None = None
        try:
            info = RunInfo(
                self.total, state.step, self.steps_per_epoch, self.config.epochs, self.resumed
            )
            for listener in self.listeners:
                listener.start(info, state.history)
            if self.config.tokens_per_call is not None:
                self._project(None)
            if self.val is not None and not state.history:
                self._initial_validation()
            while (reason := self._stop_reason()) is None:
                if self.spans is None:
                    stepped = self._step()
                else:
                    with self.spans.step(state.step + 1) as span:
                        stepped = self._step()
                        if stepped:
                            span.done(state.history[-1])
                if not stepped:
                    reason = "budget"
                    break
                self.steps_here += 1
                self._announce()
        except KeyboardInterrupt:  # Jupyter's stop button: keep what was learned so far
            reason = "interrupted"
            self.optimizer.zero_feedback()
        finally:
            if self.own_pool is not None:
                self.own_pool.shutdown(wait=True)
        result = TrainResult(
            list(state.history),
            plain_copy(state.best_parameters) or _values(self.params),
            state.best_score,
            state.best_step,
            reason,
            _values(self.params),
            self._usage(),
            self.projection,
            self.shown,
            self.optimizer,
            [p for p in self.waiting if p.status == "pending"],
        )
        if self.config.restore_best:
            result.restore()
        for listener in self.listeners:
            listener.end(result)
        return result

    def _usage(self) -> RunUsage:
        if self.remote is None:
            return RunUsage.of(self.meter.total())
        # per worker: examples run and LLM usage reported
        return RunUsage.of(
            self.meter.total(), self.remote.engine.name, self.remote.usage_by_worker()
        )

    def _stop_reason(self) -> str | None:
        state, patience, max_steps = self.state, self.config.patience, self.config.max_steps
        if state.step >= self.total:
            return "completed"
        if patience is not None and state.stale >= patience:
            return "patience"
        if max_steps is not None and self.steps_here >= max_steps:
            return "max_steps"
        measured = estimate_next_step(state.history)
        if self.budget and measured and self.budget.would_exceed(self.meter.total(), measured):
            return "budget"
        return None

    def _project(self, prompt_chars: int | None) -> None:
        remaining = self.total - self.state.step
        if self.config.max_steps is not None:
            remaining = min(remaining, self.config.max_steps - self.steps_here)
        self.projection = project(
            steps=remaining,
            batch_size=self.batch_size,
            n_validation=len(self.val or ()),
            initial_validation=self.val is not None and not self.state.history,
            calls_per_example=self.config.calls_per_example,
            optimizer_llm=getattr(self.optimizer, "llm", None),
            workflow_llm=self.config.workflow_llm,
            prompt_chars=prompt_chars,
            parameter_chars=sum(len(repr(p.peek())) for p in self.params),
            tokens_per_call=self.config.tokens_per_call,
        )
        for listener in self.listeners:
            listener.projection(self.projection)

    def _validate(self) -> EvalReport:
        assert self.val is not None  # called only when there is a validation set
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
        state = self.state
        self.last_val = self._validate()
        self.shown = self.last_val.results
        score = self.last_val.mean_score
        state.best_score, state.best_step, state.best_parameters = score, 0, _values(self.params)
        state.history.append(
            self._row(0, [], None, score, True, [], [], Usage(), self.last_val.seconds)
        )
        self._save()

    def _step(self) -> bool:
        """One optimization step; False when the budget stops it before the LLM call."""
        state, optimizer, start = self.state, self.optimizer, time.perf_counter()
        epoch, pos = divmod(state.step, self.steps_per_epoch)
        if state.epoch != epoch or not state.order:
            state.epoch, state.order = (
                epoch,
                epoch_order(len(self.data), self.config.shuffle_seed, epoch),
            )
        batch = state.order[pos * self.batch_size : (pos + 1) * self.batch_size]
        used_before = self.meter.total()
        optimizer.zero_feedback()
        traced = self.forward_batch(batch)
        for t in traced:
            if t.node is not None:
                t.node.backward(t.result.feedback, t.result.score)
        if not any(p.feedback for p in self.params):
            optimizer.zero_feedback()
            raise ValueError(
                "no parameter of the optimizer received feedback: the workflow's "
                "outputs must be nodes computed from the optimizer's parameters"
            )
        if self.projection is None:
            messages = getattr(optimizer, "messages", None)
            chars = sum(len(str(m.get("content", ""))) for m in messages()) if messages else None
            self._project(chars)
        if self.budget and estimate_next_step(state.history) is None:
            assert self.projection is not None  # made just above
            rest = self.projection.step_usage(len(self.val or ()))
            if self.budget.would_exceed(self.meter.total(), rest):
                optimizer.zero_feedback()
                return False
        train_results = [t.result for t in traced]
        del traced
        train_score = mean_score(train_results)
        before = _values(self.params)
        undo = self._undo_point()
        proposals = optimizer.propose()
        try:
            return self._commit(
                state,
                epoch,
                batch,
                start,
                used_before,
                train_results,
                train_score,
                before,
                proposals,
            )
        except BaseException:
            # A step is recorded or rolled back, never half: parameters, optimizer state
            # and run state go back to what they were before propose().
            self._roll_back(undo)
            raise

    def _undo_point(self) -> dict[str, Any]:
        state = self.state
        opt_state = self.optimizer.state() if hasattr(self.optimizer, "state") else None
        return {
            "values": _values(self.params),
            "fields": dataclasses.replace(state),
            "history": len(state.history),
            "optimizer": plain_copy(opt_state),
            "last_val": self.last_val,
            "shown": self.shown,
        }

    def _roll_back(self, undo: dict[str, Any]) -> None:
        state = self.state
        set_parameter_values(self.params, undo["values"])
        for f in dataclasses.fields(state):
            if f.name != "history":
                setattr(state, f.name, getattr(undo["fields"], f.name))
        del state.history[undo["history"] :]
        if undo["optimizer"] is not None and hasattr(self.optimizer, "load_state"):
            self.optimizer.load_state(undo["optimizer"])
        self.last_val, self.shown = undo["last_val"], undo["shown"]
        self.optimizer.zero_feedback()

    def _commit(
        self,
        state: Any,
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
        optimizer = self.optimizer
        # The one step policy: code only with approve_code (never run to score or preview
        # otherwise), one candidate (the best on the minibatch), the review rule's holds.
        decision = decide(
            proposals,
            self.config.review,
            self.config.approve_code,
            lambda group: score_on_batch(self, group, batch),
            round=state.step + 1,
            previewer=lambda p: preview_on_batch(self, p, batch, train_results),
            current_score=train_score,  # a candidate worse on the minibatch is not applied
        )
        decision.mark_not_chosen()
        self.chosen_candidate, self.kept_values = decision.candidate, decision.kept
        self.waiting.extend(decision.held())  # kept for a human
        if decision.candidate is not None:  # the row counts the chosen candidate's proposals
            proposals = [p for p in proposals if p.candidate in (None, decision.candidate)]
        applied = optimizer.apply(decision.apply, approve_code=self.config.approve_code)
        optimizer.zero_feedback()
        val_score, self.shown = None, train_results
        if self.val is not None:
            if applied or self.last_val is None:  # unchanged parameters keep their score
                self.last_val = self._validate()
            val_score, self.shown = self.last_val.mean_score, self.last_val.results
        # Without validation the minibatch score judges the values it was measured with.
        monitored, candidate, at = (
            (val_score, None, state.step + 1)
            if self.val is not None
            else (train_score, before, state.step)
        )
        improved = monitored is not None and (
            state.best_score is None or monitored > state.best_score
        )
        if improved:
            state.best_score, state.best_step = monitored, at
            state.best_parameters = candidate if candidate is not None else _values(self.params)
            state.stale = 0
        else:
            state.stale += 1
        state.step += 1
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
        state.history.append(row)
        state.parameters = _values(self.params)
        state.optimizer_state = optimizer.state() if hasattr(optimizer, "state") else {}
        state.usage = self.meter.total()
        self._save()
        return True

    def _announce(self) -> None:
        """Tell listeners and the callback about the step just recorded (after its checkpoint:
        an error here leaves the step recorded)."""
        row = self.state.history[-1]
        for listener in self.listeners:
            listener.step(row, self.shown, self.meter.total())
        if self.config.callback is not None:
            self.config.callback(row)

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
        """One history row: scores, what changed, and usage (running totals and this step's);
        ``candidate`` is the candidate applied (None: no choice), ``kept`` True when every
        candidate scored below the current values on the minibatch and none was applied."""
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
            "kept": self.kept_values,
        }

    def _save(self) -> None:
        if self.config.checkpoint is not None:
            save_checkpoint(self.config.checkpoint, self.state)
