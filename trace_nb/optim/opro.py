"""OPRO, the baseline: the LLM sees only the history of values and their feedback."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import Any

from ..graph import ParameterNode
from . import prompts
from .base import AUTO, Optimizer, StepLog
from .problem import feedback_text
from .proposal import Proposal, proposals_from_reply
from .reply import parse_reply


class OPRO(Optimizer):
    """OPRO baseline: the LLM sees only the history of values and their feedback/scores."""

    def __init__(
        self,
        parameters: Iterable[ParameterNode],
        llm: Any = None,
        objective: str | None = None,
        history_size: int = 20,
        max_tokens: int | str | None = AUTO,
    ):
        super().__init__(parameters)
        self._setup_llm(llm)
        self.max_tokens = max_tokens  # as OptoPrime's
        self.objective = objective or prompts.OPRO_DEFAULT_OBJECTIVE
        self.history: deque[dict] = deque(maxlen=history_size)

    def messages(self) -> list[dict]:
        params = [p for p in self.parameters if p.feedback]
        if not params:
            raise ValueError("no parameter has feedback: call output.backward(feedback) first")
        _, feedback = feedback_text(params)
        current = {p.name: p.peek() for p in self.parameters}
        self._pending = {"variables": current, "feedback": feedback}
        lines = [f"#Objective\n{self.objective}", "#History"]
        lines += [json.dumps(h, default=repr) for h in self.history] or ["(none yet)"]
        lines += [
            "#Current values",
            json.dumps(current, default=repr),
            "#Feedback on the current values",
            feedback,
        ]
        return [
            {"role": "system", "content": prompts.OPRO_SYSTEM},
            {"role": "user", "content": "\n".join(lines)},
        ]

    def propose(self) -> list[Proposal]:
        messages = self.messages()
        params = {p.name: p for p in self.parameters}
        text, usage, mode = self._ask(messages, self.max_tokens)
        proposals = proposals_from_reply(parse_reply(text, list(params)), params, text)
        self.history.append(self._pending)
        self.log.append(StepLog(messages, text, proposals, usage, mode))
        return proposals

    def state(self) -> dict:
        return {"history": list(self.history)}

    def load_state(self, state: dict) -> None:
        self.history.clear()
        self.history.extend(state.get("history", []))
