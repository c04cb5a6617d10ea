"""Code debugging: fix a buggy function from the outcome of its visible tests.

The seed picks one of the functions in :mod:`.buggy` (``seed % 12``). The function's source
is a code parameter (``bundle(trainable=True)``); each step runs the visible tests through
the traced function and sends one feedback per test (what it returned or raised, and what
was expected). The score is the fraction of *hidden* tests passed; success is all of them.
"""

from __future__ import annotations

from typing import Any

from ...graph import ExecutionError, bundle
from .base import NO_VALUES, Score, TaskInstance, current_values, feedback_of, is_student, reply
from .buggy import FIXES, FUNCTIONS, TESTS


def _call(args: tuple) -> str:
    return "(" + ", ".join(repr(a) for a in args) + ")"


class CodeDebugTask(TaskInstance):
    def __init__(self, seed: int):
        fn = FUNCTIONS[seed % len(FUNCTIONS)]
        self.name, self.seed, self.function_name = "code_debug", seed, fn.__name__
        self.fn = bundle(trainable=True)(fn)
        self.visible, self.hidden = TESTS[fn.__name__]
        self.objective = (
            f"The function {fn.__name__} in #Variables has a bug. Change its code so that it "
            "does what its docstring says and passes the tests described in #Feedback."
        )

    def parameters(self) -> list:
        return self.fn.parameters()

    def train_step(self, step: int, llm: Any) -> None:
        name = self.function_name
        for args, expected in self.visible:
            try:
                out = self.fn(*args)
            except ExecutionError as e:
                e.exception_node.backward(
                    f"Test failed: {name}{_call(args)} raised {e}; expected {expected!r}."
                )
                continue
            if out.data == expected:
                out.backward(f"Test passed: {name}{_call(args)} returned {expected!r}.")
            else:
                out.backward(
                    f"Test failed: {name}{_call(args)} returned {out.data!r}; "
                    f"expected {expected!r}."
                )

    def _passes(self, cases: list) -> int:
        fn = self.fn.function
        passed = 0
        for args, expected in cases:
            try:
                passed += fn(*args) == expected
            except Exception:  # noqa: BLE001 - a crash is a failed test
                pass
        return passed

    def score_examples(self, step: int, llm: Any) -> float:
        return self._passes(self.visible) / len(self.visible)  # the tests the feedback shows

    def evaluate(self, llm: Any) -> Score:
        hidden = self._passes(self.hidden)
        visible = self._passes(self.visible)
        total = len(self.hidden)
        return Score(
            hidden / total,
            hidden == total and visible == len(self.visible),
            {"hidden_passed": hidden, "visible_passed": visible},
        )

    def oracle(self, request: dict) -> Any:
        """Returns the known fix whenever the feedback reports a failed test."""
        if is_student(request):
            return "This task has no student model."
        name = self.fn.parameter.name
        values = current_values(request)
        if name not in values:
            return NO_VALUES
        if "Test failed" not in feedback_of(request):
            return reply("All visible tests pass.", {})
        return reply(
            "The failing tests show the bug; here is the corrected function.",
            {name: FIXES[self.function_name]},
        )


def make(seed: int) -> CodeDebugTask:
    return CodeDebugTask(seed)
