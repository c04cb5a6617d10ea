"""LLM spending during training: usage snapshots, the projection, and the budget.

A training run spends LLM calls in two places: one optimizer call per step, and whatever
the workflow itself calls (``calls_per_example`` per example, when the user says so).
:class:`UsageMeter` reads the running totals of the LLM clients involved,
:func:`project` estimates what a run will cost before it starts, and :class:`Budget`
decides whether the next step still fits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..llm.usage import (
    CHARS_PER_TOKEN,  # one rule of thumb for the whole library
    Usage,
    UsageTotals,
    non_negative,
)

__all__ = ["Budget", "Projection", "UsageMeter", "estimate_next_step", "project"]

COMPLETION_BASE_TOKENS = 200  # reasoning text of an OptoPrime reply, roughly


def snapshot(llm: Any) -> Usage:
    """The running totals of one LLM client (anything with a ``usage`` like :class:`~trace_nb.llm.LLM`)."""
    u = getattr(llm, "usage", None)
    if u is None:
        return Usage()
    if isinstance(u, UsageTotals):
        return u.total()
    # Any other client that counts calls the same way (a user's own LLM wrapper).
    return Usage(
        int(u.calls),
        int(u.prompt_tokens),
        int(u.completion_tokens),
        float(u.cost),
        int(getattr(u, "cached_calls", 0)),
    )


class UsageMeter:
    """Usage of a set of LLM clients since the meter was made, plus what earlier runs spent.

    Parameters
    ----------
    llms
        The clients to watch (``None`` entries are skipped, one client given twice counts once).
    carried
        Usage recorded by an earlier session (from a checkpoint) to add to the totals.
    """

    def __init__(self, llms: Iterable[Any], carried: Usage | None = None):
        unique: dict[int, Any] = {}
        for llm in llms:
            if llm is not None:
                unique.setdefault(id(llm), llm)
        self.llms = list(unique.values())
        self.carried = carried or Usage()
        self.remote = Usage()  # reported back by remote workers (see training.remote)
        self._baseline = self._now()

    def _now(self) -> Usage:
        total = Usage()
        for llm in self.llms:
            total = total + snapshot(llm)
        return total

    def total(self) -> Usage:
        """Everything spent so far, earlier sessions included."""
        return self.carried + self.remote + (self._now() - self._baseline)

    def add_remote(self, usage: Usage) -> None:
        """Count usage that LLM clients on a remote worker reported back."""
        self.remote = self.remote + usage


@dataclass
class Budget:
    """Limits for a training run; ``None`` means no limit.

    The loop stops *before* a step whose estimated usage would take the totals past a
    limit, so the totals end at or below every limit (as far as the estimate holds).
    """

    calls: int | None = None
    tokens: int | None = None
    cost: float | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "tokens", "cost"):
            limit = getattr(self, name)
            if limit is None:
                continue
            if (
                isinstance(limit, bool)
                or not isinstance(limit, (int, float))
                or not (math.isfinite(limit) and limit >= 0)
            ):
                raise ValueError(
                    f"budget {name} must be a number >= 0 (or None for no limit), got {limit!r}"
                )

    @classmethod
    def coerce(cls, value: Budget | Mapping[str, Any] | None) -> Budget | None:
        """Accept a :class:`Budget`, a dict with the same keys, or None."""
        if value is None or isinstance(value, Budget):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"calls", "tokens", "cost"}
            if unknown:
                raise ValueError(f"unknown budget keys {sorted(unknown)}; use calls, tokens, cost")
            return cls(**value)
        raise TypeError(f"budget must be a Budget or a dict, got {type(value).__name__}")

    def would_exceed(self, used: Usage, next_step: Usage) -> str | None:
        """The first limit that ``used + next_step`` goes past (``"calls"``...), or None."""
        after = used + next_step
        for name, spent in (("calls", after.calls), ("tokens", after.tokens), ("cost", after.cost)):
            limit = getattr(self, name)
            if limit is not None and spent > limit:
                return name
        return None


def estimate_next_step(history: Iterable[Mapping[str, Any]]) -> Usage | None:
    """Usage of the next step judged from the history rows: the larger of the last and the mean.

    None before any step has run (row 0, the first validation, does not count).
    """
    seen = [
        Usage(
            non_negative(r.get("step_calls")),
            non_negative(r.get("step_tokens")),
            0,
            non_negative(r.get("step_cost"), float),
        )
        for r in history
        if isinstance(r, Mapping) and non_negative(r.get("step")) > 0
    ]
    if not seen:
        return None
    n = len(seen)
    last = seen[-1]
    return Usage(
        max(last.calls, math.ceil(sum(u.calls for u in seen) / n)),
        max(last.prompt_tokens, math.ceil(sum(u.prompt_tokens for u in seen) / n)),
        0,
        max(last.cost, sum(u.cost for u in seen) / n),
    )


@dataclass
class Projection:
    """What a run is expected to spend, estimated before the first optimizer call.

    ``optimizer_call`` is one optimizer call (tokens from the first prompt's size, or
    ``tokens_per_call``); ``workflow_call`` is one workflow LLM call (measured so far, or
    None when unknown). Totals are upper bounds: early stopping or the budget may end
    the run sooner.
    """

    steps: int
    optimizer_calls: int
    workflow_calls: int | None
    optimizer_call: Usage
    workflow_call: Usage | None
    calls_per_example: int | None
    basis: str
    cost_known: bool = True

    @property
    def calls(self) -> int:
        return self.optimizer_calls + (self.workflow_calls or 0)

    @property
    def total(self) -> Usage:
        """Projected usage of the whole run (workflow tokens only when known)."""
        total = self.optimizer_call.scaled(self.optimizer_calls)
        if self.workflow_calls:
            if self.workflow_call is not None:
                total = total + self.workflow_call.scaled(self.workflow_calls)
            else:
                total = total + Usage(calls=self.workflow_calls)
        return total

    def step_usage(self, examples: int) -> Usage:
        """Estimated usage of one step that runs the workflow on ``examples`` examples."""
        usage = self.optimizer_call
        n = (self.calls_per_example or 0) * examples
        if n:
            usage = usage + (
                self.workflow_call.scaled(n) if self.workflow_call is not None else Usage(calls=n)
            )
        return usage

    def describe(self) -> str:
        """One line for the progress output."""
        t = self.total
        calls = f"{self.optimizer_calls} optimizer call{'s' if self.optimizer_calls != 1 else ''}"
        if self.workflow_calls is not None:
            calls += f" + {self.workflow_calls} workflow calls"
        tokens = f"~{_k(t.tokens)} tokens"
        if self.workflow_calls and self.workflow_call is None:
            tokens += " (workflow tokens not included)"
        cost = f"~${t.cost:.4f}" if self.cost_known else "cost unknown (no price for the model)"
        return f"projected for {self.steps} steps: {calls}, {tokens}, {cost} [{self.basis}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "optimizer_calls": self.optimizer_calls,
            "workflow_calls": self.workflow_calls,
            "basis": self.basis,
            **{k: v for k, v in self.total.to_dict().items() if k != "calls"},
            "calls": self.calls,
            "cost_known": self.cost_known,
        }


def _k(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _price(llm: Any, prompt: int, completion: int) -> tuple[float, bool]:
    from ..llm.usage import compute_cost

    model = getattr(llm, "model", None)
    if model is None:
        return 0.0, False
    return compute_cost([str(model)], prompt, completion, getattr(llm, "prices", None))


def project(
    *,
    steps: int,
    batch_size: int,
    n_validation: int,
    initial_validation: bool,
    calls_per_example: int | None,
    optimizer_llm: Any,
    workflow_llm: Any = None,
    prompt_chars: int | None = None,
    parameter_chars: int = 0,
    tokens_per_call: int | None = None,
) -> Projection:
    """Estimate the LLM usage of ``steps`` training steps.

    Parameters
    ----------
    steps
        Steps still to run.
    batch_size, n_validation
        Examples the workflow runs on per step (minibatch) and per validation.
    initial_validation
        Whether a validation pass runs before the first step.
    calls_per_example
        Workflow LLM calls per example, if the user said; None leaves them out.
    optimizer_llm, workflow_llm
        Clients used for prices (and, for the workflow, measured tokens per call).
    prompt_chars, parameter_chars
        Size of the first optimizer prompt and of the parameter values (the reply
        repeats the values it changes), in characters.
    tokens_per_call
        Tokens (prompt + completion) of one optimizer call, when the user knows better.
    """
    if tokens_per_call is not None:
        prompt = int(tokens_per_call * 0.8)
        completion = int(tokens_per_call) - prompt
        basis = "tokens_per_call"
    else:
        prompt = math.ceil((prompt_chars or 0) / CHARS_PER_TOKEN)
        completion = COMPLETION_BASE_TOKENS + math.ceil(parameter_chars / CHARS_PER_TOKEN)
        basis = "first prompt size"
    cost, known = _price(optimizer_llm, prompt, completion)
    opt_call = Usage(1, prompt, completion, cost)

    workflow_calls = None
    wf_call = None
    if calls_per_example is not None:
        examples = steps * batch_size + (steps + int(initial_validation)) * n_validation
        workflow_calls = calls_per_example * examples
        measured = snapshot(workflow_llm)
        if measured.calls:
            wf_call = measured.scaled(1 / measured.calls)
            wf_call = Usage(1, wf_call.prompt_tokens, wf_call.completion_tokens, wf_call.cost)
            known = known and all(
                getattr(r, "cost_known", True) for r in getattr(workflow_llm.usage, "records", ())
            )
    return Projection(
        steps, steps, workflow_calls, opt_call, wf_call, calls_per_example, basis, known
    )
