"""Workflows, feedback functions and fake-LLM reply functions for tests/test_train.py.

Defined at module level of an importable module: a remote engine's payload pickles this
module's functions by value together with its ``OFFSET`` parameter (see
trace_nb.training.remote), so the worker's workflow uses the parameter that gets the values.
"""

from __future__ import annotations

import json
import math
import os
import re

from trace_nb import bundle, node

OFFSET = node(0, name="th_offset", trainable=True, description="added to every input")


def make_examples(n: int, delta: int = 5, start: int = 0) -> list[dict]:
    """Examples ``x -> x + delta``."""
    return [{"x": start + i, "target": start + i + delta} for i in range(n)]


def offset_workflow(example: dict):
    """The module-level workflow: input plus the module's ``OFFSET`` parameter."""
    return node(example["x"], name="x") + OFFSET


def offset_feedback(example: dict, output: int):
    """Score 1 when right, less the further off; the text says which way and by how much."""
    diff = example["target"] - output
    if diff == 0:
        return 1.0, "correct"
    word = "small" if diff > 0 else "large"
    return 1.0 / (1.0 + abs(diff)), f"output too {word} by {abs(diff)}"


def pid_workflow(example: int):
    """Returns the id of the process it ran in."""
    return node(os.getpid())


def pid_feedback(example: int, output: int):
    return {"score": 1.0, "feedback": f"ran in {output}"}


@bundle()
def check_positive(value):
    """Raises ValueError when value is negative."""
    if value < 0:
        raise ValueError(f"negative value {value}")
    return value


def section(text: str, name: str) -> str:
    """The body of ``#name`` in an OptoPrime prompt."""
    m = re.search(rf"#{name}\n(.*?)(?:\n\n#[A-Z][a-z]+\n|\Z)", text, re.S)
    return m.group(1) if m else ""


def _variable(text: str) -> tuple[str, float]:
    m = re.search(r"\((?:int|float)\) (\w+)=(-?[\d.]+)", section(text, "Variables"))
    assert m, text
    return m.group(1), float(m.group(2))


def _diffs(text: str) -> list[int]:
    fb = section(text, "Feedback")
    return [
        int(n) * (1 if w == "small" else -1)
        for w, n in re.findall(r"too (small|large) by (\d+)", fb)
    ]


def _reply(name: str, value: float) -> str:
    value = int(value) if float(value).is_integer() else value
    return json.dumps(
        {"reasoning": "follow the feedback", "answer": "", "suggestion": {name: value}}
    )


def fixer(request: dict) -> str:
    """Moves the variable by the mean correction the feedback asks for."""
    text = request["messages"][-1]["content"]
    name, value = _variable(text)
    diffs = _diffs(text)
    return _reply(name, value + (round(sum(diffs) / len(diffs)) if diffs else 0))


def saboteur(request: dict) -> str:
    """Fixes the variable when the feedback complains, breaks it (+50) when all is correct."""
    text = request["messages"][-1]["content"]
    name, value = _variable(text)
    diffs = _diffs(text)
    return _reply(name, value + (round(sum(diffs) / len(diffs)) if diffs else 50))


def half_stepper(request: dict) -> str:
    """Moves halfway (rounded up), so the variable changes over several steps."""
    text = request["messages"][-1]["content"]
    name, value = _variable(text)
    diffs = _diffs(text)
    mean = sum(diffs) / len(diffs) if diffs else 0
    return _reply(name, value + (math.ceil(mean / 2) if mean > 0 else math.floor(mean / 2)))
