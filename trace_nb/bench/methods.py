"""The optimizers compared, by name, each built the same way for every task.

* ``optoprime``: OptoPrime, no memory.
* ``optoprime_memory``: OptoPrime with the last 5 (variables, feedback) pairs in the prompt.
* ``optoprime_masked``: OptoPrime with #Code and #Documentation blanked, the paper's
  "Trace Masked" ablation (the optimizer sees values and feedback, not the graph).
* ``optoprime_k3``: OptoPrime asking for 3 candidates at once (temperatures 0, 0.5, 1),
  applying the one that scores best on the step's training examples
  (:meth:`~trace_nb.bench.tasks.base.TaskInstance.score_examples`; the first candidate
  when the task cannot score), unless it scores below the current values there. Choosing
  runs every candidate, code included, on the examples: as everywhere in the benchmark, the
  LLM's code is approved unreviewed.
* ``opro``: OPRO, which sees only the history of values and feedback.
* ``trace_opt``: the reference implementation (``trace-opt``) through an adapter
  (:mod:`.reference`); reported as unavailable unless ``opto`` imports here or
  ``$TRACE_NB_REFERENCE_PYTHON`` names an interpreter that has it.

Every method applies code proposals without review (``approve_code=True``): a benchmark
has no human in the loop.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ..optim import OPRO, OptoPrime
from ..optim.policy import decide

MASK = ["#Code", "#Documentation"]
MEMORY = 5


@dataclass
class Method:
    """How to build one optimizer and how to step it."""

    name: str
    kind: str  # "optoprime" or "opro"
    memory_size: int = 0
    mask: list[str] | None = None
    step_options: dict[str, Any] = field(default_factory=dict)
    candidates: int = 1

    def unavailable(self) -> str | None:
        """None when the method can run here, else why not."""
        return None

    def build(self, parameters: list, llm: Any, objective: str, max_tokens: int | None) -> Any:
        if self.kind == "opro":
            return OPRO(parameters, llm=llm, objective=objective, max_tokens=max_tokens)
        return OptoPrime(
            parameters,
            llm=llm,
            objective=objective,
            memory_size=self.memory_size,
            max_tokens=max_tokens,
            candidates=self.candidates,
        )

    def step(self, optimizer: Any, scorer: Any = None) -> list:
        """One propose-and-apply; code proposals are applied (approve_code=True).

        ``scorer()`` scores the current parameters on the step's examples (None: cannot);
        a method with candidates uses it to choose one (:func:`best_candidate`).
        """
        if self.kind == "opro":
            return optimizer.step(approve_code=True)
        if self.candidates > 1:
            proposals = optimizer.propose(mask=self.mask)
            return best_candidate(optimizer, proposals, scorer)
        return optimizer.step(approve_code=True, mask=self.mask)


def best_candidate(optimizer: Any, proposals: list, scorer: Any) -> list:
    """Apply the candidate whose values score best under ``scorer()`` (the one step policy,
    :func:`trace_nb.optim.policy.decide`); the others are marked not chosen.

    Each candidate's valid values are set, scored and undone in turn (code runs: the
    benchmark approves code unreviewed); ties and an unscorable task keep the lowest
    candidate number. The current values are scored too: when the best candidate scores
    below them, nothing is applied and every candidate is not chosen. Returns every
    proposal, with the chosen ones approved.
    """
    score = None if scorer is None else (lambda group: _score_with(group, scorer))
    # The current values' score on the same examples: a candidate that scores below it is
    # not applied (the policy keeps the values, every candidate is not chosen).
    current = None if scorer is None else (lambda: _score_with([], scorer))  # asked if needed
    decision = decide(proposals, approve_code=True, scorer=score, current_score=current)
    decision.mark_not_chosen()
    optimizer.apply(decision.apply, approve_code=True)
    return proposals


def _score_with(group: list, scorer: Any) -> float | None:
    """``scorer()`` with ``group``'s values set, then the old values back (whatever happens)."""
    try:
        with contextlib.ExitStack() as trials:
            for p in group:
                trials.enter_context(p.parameter.trial(p.new))
            return scorer()
    except Exception:  # noqa: BLE001 - a candidate that breaks the program has no score
        return None  # ranked last; never applied over current values that ran


class ReferenceMethod(Method):
    """The reference Trace's OptoPrime through :mod:`.reference` (same task, feedback, model).

    Runs in this process when ``opto`` imports here, else in a subprocess under
    ``$TRACE_NB_REFERENCE_PYTHON``; unavailable when neither works.
    """

    def unavailable(self) -> str | None:
        from . import reference

        return reference.unavailable()

    def build(self, parameters: list, llm: Any, objective: str, max_tokens: int | None) -> Any:
        from .reference import ReferenceOptimizer

        return ReferenceOptimizer(parameters, llm, objective, max_tokens, self.memory_size)

    def step(self, optimizer: Any, scorer: Any = None) -> list:
        return optimizer.step()


METHODS: dict[str, Method] = {
    "optoprime": Method("optoprime", "optoprime"),
    "optoprime_memory": Method("optoprime_memory", "optoprime", memory_size=MEMORY),
    "optoprime_masked": Method("optoprime_masked", "optoprime", mask=MASK),
    "optoprime_k3": Method("optoprime_k3", "optoprime", candidates=3),
    "opro": Method("opro", "opro"),
    "trace_opt": ReferenceMethod("trace_opt", "reference"),
}


def get_method(name: str) -> Method:
    """The method called ``name``, in any letter case (``OPRO`` is ``opro``, as in ``%%trace``)."""
    try:
        return METHODS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; the methods are: {', '.join(METHODS)}"
        ) from None
