"""What every benchmark task provides, and helpers to read an optimizer's request.

A task *instance* is one seeded problem: its trainable parameters, how one training step
produces feedback, how it is scored, and an *oracle*: scripted replies for the offline mode
(see :mod:`trace_nb.bench.offline`). Oracles know the answer; they exercise the plumbing
(prompt -> reply -> parse -> apply -> score), not a model's skill.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

# The system prompt of every "student model" call: it also lets the offline oracle tell a
# student request from an optimizer request.
STUDENT_SYSTEM = "You are a helpful assistant. Follow the user's instructions."


class Student:
    """The "student" language model a task's workflow asks, as a traced operator: its reply
    text for a prompt, from the LLM the runner gives the task for this step."""

    def __init__(self, max_tokens: int):
        from ...graph import bundle

        self.max_tokens = max_tokens
        self.llm: Any = None
        self.ask = bundle(
            description="[ask_llm] Send the prompt to a language model and return its reply text."
        )(self.reply)

    def reply(self, prompt: str) -> str:
        """The model's reply to ``prompt`` (untraced; :attr:`ask` is the traced form)."""
        messages = [
            {"role": "system", "content": STUDENT_SYSTEM},
            {"role": "user", "content": prompt},
        ]
        return self.llm.chat(messages, max_tokens=self.max_tokens).text


@dataclass
class Score:
    """One evaluation: ``score`` in [0, 1] (higher is better) and whether it counts as solved."""

    score: float
    success: bool
    detail: dict[str, Any] = field(default_factory=dict)


class TaskInstance:
    """One seeded problem. Subclasses set ``name``/``seed``/``objective`` and implement the rest."""

    name: str = "task"
    seed: int = 0
    objective: str = ""

    def parameters(self) -> list:  # pragma: no cover - abstract
        """The trainable nodes the optimizer may change."""
        raise NotImplementedError

    def train_step(self, step: int, llm: Any) -> None:  # pragma: no cover - abstract
        """Run the traced program on training data and call ``backward`` with feedback."""
        raise NotImplementedError

    def evaluate(self, llm: Any) -> Score:  # pragma: no cover - abstract
        """Score the current parameters (held-out data where the task has a split)."""
        raise NotImplementedError

    def score_examples(self, step: int, llm: Any) -> float | None:
        """The current parameters' score in [0, 1] on training step ``step``'s examples
        (untraced, no feedback), for choosing among candidates; None when the task cannot
        say (then the first candidate is taken)."""
        return None

    def oracle(self, request: dict) -> Any:  # pragma: no cover - abstract
        """Offline reply to one chat request (an optimizer's or the student model's)."""
        raise NotImplementedError


# -- reading requests (used by the oracles) ---------------------------------------------


def user_text(request: dict) -> str:
    """The last user message of a chat request."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def is_student(request: dict) -> bool:
    messages = request.get("messages") or []
    return bool(messages) and messages[0].get("content") == STUDENT_SYSTEM


def section(text: str, name: str) -> str:
    """The body of ``#name`` in a problem (OptoPrime) or OPRO prompt."""
    pattern = rf"^#{re.escape(name)}\n(.*?)(?=^#[A-Z][\w ]*\n|\Z)"
    match = re.search(pattern, text, re.S | re.M)
    return match.group(1).strip() if match else ""


def current_values(request: dict) -> dict[str, Any]:
    """The variables' current values as the request shows them, or {} when it shows none.

    OptoPrime lists ``(type) name=value`` (code as ``(code) name:`` and the source) under
    #Variables; OPRO prints one JSON object under "#Current values".
    """
    text = user_text(request)
    opro = section(text, "Current values")
    if opro:
        try:
            return dict(json.loads(opro.splitlines()[0]))
        except (ValueError, TypeError):
            return {}
    return typed_values(section(current_problem(text), "Variables"))


def current_problem(text: str) -> str:
    """The problem part of an OptoPrime prompt (after the memory of earlier steps, if any)."""
    return text.rsplit("Now the current problem:", 1)[-1]


def typed_values(body: str) -> dict[str, Any]:
    """``{name: value}`` from a section's ``(type) name=value`` lines (code: ``name:`` + source)."""
    values: dict[str, Any] = {}
    for block in re.split(r"^(?=\(\w+\) \w+[=:])", body, flags=re.M):
        match = re.match(r"\((\w+)\) (\w+)([=:])(.*)", block, re.S)
        if not match:
            continue
        kind, name, sep, rest = match.groups()
        if kind == "code" or sep == ":":
            values[name] = rest.strip("\n")
        elif kind == "str":
            values[name] = _string(rest.rstrip("\n"))
        else:
            try:
                values[name] = ast.literal_eval(rest.strip())
            except (ValueError, SyntaxError):
                values[name] = rest.strip()
    return values


def _string(text: str) -> str:
    """A string value as shown: quoted (repr, e.g. when it spans lines) or plain."""
    if text[:1] in "'\"":
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, str):
            return value
    return text


def feedback_of(request: dict) -> str:
    """The feedback on the current values (OptoPrime's #Feedback or OPRO's)."""
    text = current_problem(user_text(request))
    return section(text, "Feedback on the current values") or section(text, "Feedback")


def reply(reasoning: str, suggestion: dict[str, Any]) -> str:
    """An optimizer reply in the JSON shape both optimizers ask for."""
    return json.dumps({"reasoning": reasoning, "answer": "", "suggestion": suggestion})


NO_VALUES = "I cannot see the variables in this request."  # a reply with no JSON on purpose
