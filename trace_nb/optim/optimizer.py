"""OptoPrime: the LLM reads the trace subgraph and the feedback (see :mod:`.base` for the
propose -> review -> apply flow every optimizer shares)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import Any

from ..errors import ExtractionError
from ..graph import ParameterNode
from . import prompts
from .base import (
    AUTO,
    Optimizer,
)
from .problem import ProblemInstance, build_problem, normalize_mask
from .proposal import Proposal
from .repair import Attempts, ask_with_repair


class OptoPrime(Optimizer):
    """The OptoPrime optimizer: the LLM reads the trace subgraph and the feedback.

    Parameters
    ----------
    parameters
        Trainable nodes to optimize.
    llm
        A :class:`trace_nb.llm.LLM`, anything with its ``chat`` method, or any callable
        taking ``messages=[...]`` and returning an OpenAI-style response (see
        :mod:`.llm_call`); defaults to ``LLM()`` configured from the environment, created
        on first use.
    memory_size
        How many past (variables, feedback) pairs to show the LLM.
    objective
        Replaces the default #Instruction text.
    prompt_budget
        Maximum characters of the problem instance (None: no limit). Variables,
        constraints, outputs and feedback are always kept.
    max_tokens
        Cap on the reply's tokens, per call: ``"auto"`` (default) is 1,024, more when the
        variables are long (see :func:`reply_token_cap`); None: no cap (the LLM's default).
    ignore_extraction_error
        True: a reply with no readable suggestion gives an invalid proposal saying why.
        False: it raises :class:`ExtractionError`.
    include_example
        Show the LLM one worked example problem and answer in the system prompt.
    candidates
        Ask for this many alternative proposals at once (parallel calls, temperatures spread
        over ``temperatures``); each proposal carries its ``candidate`` number and a person
        (or a review rule) picks one, as with the reference's OptoPrimeMulti.
    repair
        Extra calls within a step when a reply gives nothing usable (every suggestion
        refused, the current value again, or no change): the same conversation continues
        with what was refused, why, and what a valid suggestion looks like (see
        :mod:`.repair`). Default 1; 0 turns it off. With ``candidates``, per candidate.
        Every call is logged (``StepLog.attempt``) and counted in the usage.
    repair_temperature
        Sampling temperature of the repair turns when the step's own is lower (default
        0.7; None: the step's temperature). Asked again at temperature 0, a small model
        mostly sends the same reply again (7 of 8 repair turns on the benchmark's
        ``format_constraints`` with Qwen2.5-Coder-1.5B, docs/benchmark.md).
    """

    def __init__(
        self,
        parameters: Iterable[ParameterNode],
        llm: Any = None,
        memory_size: int = 0,
        objective: str | None = None,
        prompt_budget: int | None = 30_000,
        max_tokens: int | str | None = AUTO,
        ignore_extraction_error: bool = True,
        include_example: bool = False,
        candidates: int = 1,
        temperatures: tuple[float, float] = (0.0, 1.0),
        repair: int = 1,
        repair_temperature: float | None = 0.7,
        **reference_options: Any,
    ):
        _refuse_reference_options(reference_options)
        super().__init__(parameters)
        self._setup_llm(llm)
        self.memory: deque[dict] = deque(maxlen=memory_size or None)
        self.memory_size = memory_size
        self.objective = objective or prompts.OPTOPRIME_INSTRUCTION
        self.prompt_budget = prompt_budget
        self.max_tokens = max_tokens
        self.ignore_extraction_error = ignore_extraction_error
        self.include_example = include_example
        if int(candidates) < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.candidates, self.temperatures = int(candidates), temperatures
        if isinstance(repair, bool) or not isinstance(repair, int) or repair < 0:
            raise ValueError(
                f"repair must be a whole number of extra calls, 0 or more; got {repair!r}"
            )
        self.repair = repair
        self.repair_temperature = repair_temperature
        self.attempts = Attempts()

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("repair", 1)  # saved before repair turns existed
        self.__dict__.setdefault("repair_temperature", 0.7)
        self.__dict__.setdefault("attempts", Attempts())

    def problem(self) -> ProblemInstance:
        """The problem instance for the parameters that received feedback."""
        params = [p for p in self.parameters if p.feedback]
        return build_problem(params, self.prompt_budget, self.objective, first=self.parameters)

    def messages(
        self, problem: ProblemInstance | None = None, mask: Iterable[str] | None = None
    ) -> list[dict]:
        """The chat messages ``propose()`` would send now; ``mask`` blanks sections."""
        problem = problem or self.problem()
        user = problem.render(mask)
        tried = self.attempts.section(self.parameters)
        if tried:
            user = f"{user}\n\n{tried}"
        if self.memory_size and self.memory:
            past = "\n".join(json.dumps(m, default=repr) for m in self.memory)
            user = f"{prompts.MEMORY_HEADER}\n{past}\n\nNow the current problem:\n\n{user}"
        system = prompts.OPTOPRIME_SYSTEM
        if self.include_example:
            system = f"{system}\n\n{prompts.OPTOPRIME_EXAMPLE}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def propose(self, mask: Iterable[str] | None = None) -> list[Proposal]:
        """Ask the LLM for new values; every suggestion comes back checked, nothing changes.

        ``mask`` names sections to leave empty (``["#Code", "#Documentation"]``), as in the
        paper's "Trace masked" ablation. Malformed replies give invalid proposals with a
        reason (or raise :class:`ExtractionError` when ``ignore_extraction_error`` is
        False); LLM access errors (after retries) raise :class:`trace_nb.llm.LLMError`
        and change nothing.
        """
        mask = normalize_mask(mask)
        problem = self.problem()
        messages = self.messages(problem, mask)
        params = {p.name: p for p in self.parameters}
        if self.candidates > 1:
            from .candidates import propose_candidates

            proposals, attempts = propose_candidates(self, messages, problem, params)
            parsed = None
        else:
            answered = ask_with_repair(self, messages, params, problem, self.repair)
            self.log.extend(answered.logs)
            proposals, parsed, attempts = answered.proposals, answered.parsed, answered.attempts
        self.attempts.note(self.parameters, attempts)
        if self.memory_size:
            variables = {p.name: p.peek() for p in self.parameters if p.feedback}
            self.memory.append({"variables": variables, "feedback": problem.feedback})
        if not self.ignore_extraction_error and parsed and parsed.error and not parsed.suggestion:
            raise ExtractionError(f"no suggestion could be read from the reply: {parsed.error}")
        return proposals

    def state(self) -> dict:
        """JSON-ready optimizer state (memory), for checkpoints."""
        return {"memory": list(self.memory)}

    def load_state(self, state: dict) -> None:
        self.memory.clear()
        self.memory.extend(state.get("memory", []))
        self.attempts.clear()


_REFERENCE_OPTIONS = {
    "propagator": "trace_nb has one propagation (the minimal subgraph from each parameter "
    "to the outputs); leave propagator out",
    "prompt_symbols": "the section names are fixed; blank sections with step(mask=[...])",
    "log": "the log is always kept: optimizer.log, or optimizer.log_json() as plain data",
}


def _refuse_reference_options(options: dict) -> None:
    """Unknown keyword arguments: say what trace_nb offers instead of a bare TypeError."""
    for key in options:
        hint = _REFERENCE_OPTIONS.get(key, "see help(trace_nb.OptoPrime) for the options")
        raise TypeError(f"OptoPrime got an unexpected option {key!r}: {hint}")
