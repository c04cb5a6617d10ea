"""The optimizers compared, by name, each built the same way for every task.

* ``optoprime``: OptoPrime, no memory.
* ``optoprime_memory``: OptoPrime with the last 5 (variables, feedback) pairs in the prompt.
* ``optoprime_masked``: OptoPrime with #Code and #Documentation blanked, the paper's
  "Trace Masked" ablation (the optimizer sees values and feedback, not the graph).
* ``opro``: OPRO, which sees only the history of values and feedback.
* ``trace_opt``: the reference implementation (``trace-opt``) through an adapter
  (:mod:`.reference`); reported as unavailable unless ``opto`` imports here or
  ``$TRACE_NB_REFERENCE_PYTHON`` names an interpreter that has it.

Every method applies code proposals without review (``approve_code=True``): a benchmark
has no human in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..optim import OPRO, OptoPrime

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
        )

    def step(self, optimizer: Any) -> list:
        """One propose-and-apply; code proposals are applied (approve_code=True)."""
        if self.kind == "opro":
            return optimizer.step(approve_code=True)
        return optimizer.step(approve_code=True, mask=self.mask)


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

    def step(self, optimizer: Any) -> list:
        return optimizer.step()


METHODS: dict[str, Method] = {
    "optoprime": Method("optoprime", "optoprime"),
    "optoprime_memory": Method("optoprime_memory", "optoprime", memory_size=MEMORY),
    "optoprime_masked": Method("optoprime_masked", "optoprime", mask=MASK),
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
