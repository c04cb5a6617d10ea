"""Optimizers: the propose -> review -> apply flow, and OptoPrime itself."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..graph import ParameterNode
from . import prompts
from .parse import parse_reply
from .problem import ProblemInstance, build_problem, feedback_text
from .proposal import Proposal, proposals_from_reply


@dataclass
class StepLog:
    """What one ``propose()`` sent and got back (for inspection and the history table)."""

    messages: list[dict]
    reply: str
    proposals: list[Proposal]
    usage: Any = None
    json_mode: str | None = None
    problem: ProblemInstance | None = field(default=None, repr=False)


class Optimizer:
    """Base optimizer over a list of trainable nodes.

    Subclasses implement :meth:`propose`. :meth:`apply` changes only valid proposals, so
    an invalid suggestion never touches a parameter.
    """

    def __init__(self, parameters: Iterable[ParameterNode]):
        params = list(parameters)
        for p in params:
            if not getattr(p, "trainable", False):
                raise TypeError(f"{p!r} is not trainable; make it with node(..., trainable=True)")
        names = [p.name for p in params]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"parameter names must be unique, repeated: {sorted(dupes)}")
        self.parameters = params
        self.log: list[StepLog] = []

    @property
    def by_name(self) -> dict[str, ParameterNode]:
        return {p.name: p for p in self.parameters}

    def zero_feedback(self) -> None:
        """Forget the feedback every parameter received (call before the next forward pass)."""
        for p in self.parameters:
            p.zero_feedback()

    def propose(self) -> list[Proposal]:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, proposals: Iterable[Proposal], decided_by: str = "auto") -> list[Proposal]:
        """Apply the valid, pending proposals; return those applied."""
        applied = []
        for prop in proposals:
            if not prop.valid or prop.parameter is None or prop.status != "pending":
                continue
            if prop.parameter not in self.parameters:
                raise ValueError(f"{prop.name!r} is not a parameter of this optimizer")
            prop.parameter._set(prop.new)
            prop.status = "approved"
            prop.decided_by = decided_by
            applied.append(prop)
        return applied

    def step(self) -> list[Proposal]:
        """Propose and apply at once, with no human review: calling it is the approval, and
        valid code suggestions run on the function's next call. Use :meth:`propose` and
        :meth:`apply` (or the panel) to review first."""
        proposals = self.propose()
        self.apply(proposals)
        return proposals

    # -- shared by LLM optimizers ------------------------------------------------------
    def _ask(self, messages: list[dict]) -> tuple[str, Any, str | None]:
        types = {p.name: prompts.json_type(p._data, p.is_code) for p in self.parameters}
        reply = self.llm.chat(messages, json_schema=prompts.reply_schema(types))
        return reply.text, reply.usage, reply.json_mode

    def _llm_or_default(self, llm: Any) -> Any:
        if llm is not None:
            return llm
        from ..llm import LLM

        return LLM()


class OptoPrime(Optimizer):
    """The OptoPrime optimizer: the LLM reads the trace subgraph and the feedback.

    Parameters
    ----------
    parameters
        Trainable nodes to optimize.
    llm
        A :class:`trace_nb.llm.LLM` (or anything with the same ``chat`` method); defaults
        to ``LLM()`` configured from the environment, created on first use.
    memory_size
        How many past (variables, feedback) pairs to show the LLM.
    objective
        Replaces the default #Instruction text.
    prompt_budget
        Maximum characters of the problem instance (None: no limit). Variables,
        constraints, outputs and feedback are always kept.
    """

    def __init__(self, parameters: Iterable[ParameterNode], llm: Any = None, memory_size: int = 0,
                 objective: str | None = None, prompt_budget: int | None = 30_000):
        super().__init__(parameters)
        self._llm = llm
        self.memory: deque[dict] = deque(maxlen=memory_size or None)
        self.memory_size = memory_size
        self.objective = objective or prompts.OPTOPRIME_INSTRUCTION
        self.prompt_budget = prompt_budget

    @property
    def llm(self) -> Any:
        if self._llm is None:
            self._llm = self._llm_or_default(None)
        return self._llm

    def problem(self) -> ProblemInstance:
        """The problem instance for the parameters that received feedback."""
        params = [p for p in self.parameters if p._feedback]
        return build_problem(params, self.prompt_budget, self.objective)

    def messages(self, problem: ProblemInstance | None = None) -> list[dict]:
        """The chat messages ``propose()`` would send now."""
        problem = problem or self.problem()
        user = problem.render()
        if self.memory_size and self.memory:
            past = "\n".join(json.dumps(m, default=repr) for m in self.memory)
            user = f"{prompts.MEMORY_HEADER}\n{past}\n\nNow the current problem:\n\n{user}"
        return [{"role": "system", "content": prompts.OPTOPRIME_SYSTEM},
                {"role": "user", "content": user}]

    def propose(self) -> list[Proposal]:
        """Ask the LLM for new values; every suggestion comes back checked, nothing changes.

        Malformed replies give invalid proposals with a reason; LLM access errors
        (after retries) raise :class:`trace_nb.llm.LLMError` and change nothing.
        """
        problem = self.problem()
        messages = self.messages(problem)
        params = {p.name: p for p in self.parameters}
        text, usage, mode = self._ask(messages)
        parsed = parse_reply(text, list(params))
        proposals = proposals_from_reply(parsed, params, text)
        if self.memory_size:
            variables = {p.name: p._data for p in self.parameters if p._feedback}
            self.memory.append({"variables": variables, "feedback": problem.feedback})
        self.log.append(StepLog(messages, text, proposals, usage, mode, problem))
        return proposals

    def state(self) -> dict:
        """JSON-ready optimizer state (memory), for checkpoints."""
        return {"memory": list(self.memory)}

    def load_state(self, state: dict) -> None:
        self.memory.clear()
        self.memory.extend(state.get("memory", []))


class OPRO(Optimizer):
    """OPRO baseline: the LLM sees only the history of values and their feedback/scores."""

    def __init__(self, parameters: Iterable[ParameterNode], llm: Any = None,
                 objective: str | None = None, history_size: int = 20):
        super().__init__(parameters)
        self._llm = llm
        self.objective = objective or prompts.OPRO_DEFAULT_OBJECTIVE
        self.history: deque[dict] = deque(maxlen=history_size)

    @property
    def llm(self) -> Any:
        if self._llm is None:
            self._llm = self._llm_or_default(None)
        return self._llm

    def messages(self) -> list[dict]:
        params = [p for p in self.parameters if p._feedback]
        if not params:
            raise ValueError("no parameter has feedback: call output.backward(feedback) first")
        _, feedback = feedback_text(params)
        current = {p.name: p._data for p in self.parameters}
        self._pending = {"variables": current, "feedback": feedback}
        lines = [f"#Objective\n{self.objective}", "#History"]
        lines += [json.dumps(h, default=repr) for h in self.history] or ["(none yet)"]
        lines += ["#Current values", json.dumps(current, default=repr),
                  "#Feedback on the current values", feedback]
        return [{"role": "system", "content": prompts.OPRO_SYSTEM},
                {"role": "user", "content": "\n".join(lines)}]

    def propose(self) -> list[Proposal]:
        messages = self.messages()
        params = {p.name: p for p in self.parameters}
        text, usage, mode = self._ask(messages)
        proposals = proposals_from_reply(parse_reply(text, list(params)), params, text)
        self.history.append(self._pending)
        self.log.append(StepLog(messages, text, proposals, usage, mode))
        return proposals

    def state(self) -> dict:
        return {"history": list(self.history)}

    def load_state(self, state: dict) -> None:
        self.history.clear()
        self.history.extend(state.get("history", []))
