"""Numerical optimization on random computational graphs (the paper's section 5.1).

A seeded generator draws 1-3 trainable parameters (floats or ints), 1-2 fixed inputs and
3-5 traced arithmetic operations combining them. A hidden solution fixes the target: the
graph's output at the solution. The feedback is text only, as in the paper: the output, the
target and whether the output should be larger or smaller. The score is one minus the
normalized regret ``|y - target| / |y0 - target|`` (1 only when solved); a run succeeds when the regret is
within 1% of ``max(1, |target|)``.
"""

from __future__ import annotations

import math
import operator
import random
import re
from typing import Any

from ...graph import node
from .base import (
    NO_VALUES,
    Score,
    TaskInstance,
    current_problem,
    current_values,
    feedback_of,
    is_student,
    reply,
    section,
    typed_values,
    user_text,
)

_OPS = ("add", "sub", "mul", "square_add")


def _apply(op: str, a: Any, b: Any) -> Any:
    # The same code runs on floats (to compute the target) and on nodes (traced).
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    return a * a + b  # square_add


class NumericalTask(TaskInstance):
    """One random graph. ``steps_ops`` lists ``(op, i, j)`` over a growing pool of values."""

    def __init__(self, seed: int):
        rng = random.Random(f"numerical-{seed}")
        self.name, self.seed = "numerical", seed
        n_params = rng.randint(1, 3)
        self.kinds = [rng.choice(("float", "int")) for _ in range(n_params)]
        self.solution = [self._draw(rng, k) for k in self.kinds]
        self.start = [self._draw(rng, k) for k in self.kinds]
        while any(s == t for s, t in zip(self.start, self.solution, strict=True)):
            self.start = [self._draw(rng, k) for k in self.kinds]
        self.inputs = [round(rng.uniform(-3, 3), 2) for _ in range(rng.randint(1, 2))]
        self.ops = self._graph(rng, n_params)
        while not self._uses_all(n_params):  # an algebraic cancellation: draw another graph
            self.ops = self._graph(rng, n_params)
        self.target = float(self.compute(self.solution))
        self.tolerance = 0.01 * max(1.0, abs(self.target))
        self.initial_regret = abs(self.compute(self.start) - self.target)
        if self.initial_regret <= self.tolerance:  # the start must not already solve it
            self.start = list(self.solution)
            self.start[0] += 3
            self.initial_regret = abs(self.compute(self.start) - self.target) or 1.0
        self.params = [node(v, trainable=True, name=f"x{k}") for k, v in enumerate(self.start)]
        self.objective = (
            "Change the values in #Variables so that the output in #Outputs equals the target "
            "given in #Feedback."
        )

    def _graph(self, rng: random.Random, n_params: int) -> list[tuple[str, int, int]]:
        # A chain: each operation reads the previous result, and takes the parameters first.
        pool, last, ops = n_params + len(self.inputs), 0, []
        unused = list(range(1, n_params))
        for k in range(max(n_params, rng.randint(3, 5))):
            other = unused.pop(0) if unused else rng.choice([i for i in range(pool) if i != last])
            first = k % 2 == 0 or not other
            ops.append(
                (rng.choice(_OPS), last, other) if first else (rng.choice(_OPS), other, last)
            )
            last, pool = pool, pool + 1
        return ops

    def _uses_all(self, n_params: int) -> bool:
        """Whether moving any one parameter moves the output (no term cancels out)."""
        base = [0.37 * (k + 1) for k in range(n_params)]
        y = self.compute(base)
        return all(
            abs(self.compute(base[:k] + [base[k] + d] + base[k + 1 :]) - y) > 1e-9
            for k in range(n_params)
            for d in (0.731, -1.37)
        )

    @staticmethod
    def _draw(rng: random.Random, kind: str) -> float | int:
        return rng.randint(-5, 5) if kind == "int" else round(rng.uniform(-5, 5), 2)

    def compute(self, values: list[Any], inputs: list[Any] | None = None) -> Any:
        pool = list(values) + list(self.inputs if inputs is None else inputs)
        for op, i, j in self.ops:
            pool.append(_apply(op, pool[i], pool[j]))
        return pool[-1]

    def parameters(self) -> list:
        return list(self.params)

    def _feedback(self, y: float) -> str:
        if abs(y - self.target) <= self.tolerance:
            return f"The output is {y:.6g}, which matches the target {self.target:.6g}."
        direction = "larger" if y < self.target else "smaller"
        return (
            f"The output is {y:.6g}; the target is {self.target:.6g}. Make the output {direction}."
        )

    def train_step(self, step: int, llm: Any) -> None:
        inputs = [node(v, name=f"c{k}") for k, v in enumerate(self.inputs)]
        y = self.compute(self.params, inputs)
        y.backward(self._feedback(float(y.data)))

    def regret(self) -> float:
        return abs(float(self.compute([p.data for p in self.params])) - self.target)

    def score_examples(self, step: int, llm: Any) -> float:
        return self.evaluate(llm).score  # the one training example is the objective itself

    def evaluate(self, llm: Any) -> Score:
        regret = self.regret()
        if regret <= self.tolerance:
            return Score(1.0, True, {"regret": regret})
        score = min(0.99, max(0.0, 1.0 - regret / self.initial_regret))  # 1 only when solved
        return Score(score, False, {"regret": regret})

    def oracle(self, request: dict) -> Any:
        """Reads the prompt like a careful analyst would, with no knowledge of the solution.

        With #Code (OptoPrime unmasked) it re-runs the listed operations on the #Inputs and
        #Variables, estimates how the output moves with each variable, and takes a Newton
        step towards the target. Without the graph (masked, OPRO) it only knows whether the
        output should go up or down, and nudges every variable by 1 in that direction.
        """
        if is_student(request):
            return "This task has no student model."
        values = current_values(request)
        names = [p.name for p in self.params]
        feedback = feedback_of(request)
        if not all(n in values for n in names) or not feedback:
            return NO_VALUES
        wanted = re.search(r"target is (\S+?)\. Make the output (larger|smaller)", feedback)
        if wanted is None:
            return reply("The output matches the target.", {})
        target, direction = float(wanted.group(1)), wanted.group(2)
        problem = current_problem(user_text(request))
        step = _newton(
            section(problem, "Code"),
            typed_values(section(problem, "Inputs")),
            {n: values[n] for n in names},
            target,
        )
        if step is None:
            sign = 1 if direction == "larger" else -1
            step = {n: sign for n in names}
            reasoning = f"Without the computation I can only push the variables {direction}."
        else:
            reasoning = "From the #Code, a Newton step on the output towards the target."
        suggestion = {}
        for name, kind in zip(names, self.kinds, strict=True):
            new = values[name] + step[name]
            new = int(round(new)) if kind == "int" else round(float(new), 4)
            if new != values[name]:
                suggestion[name] = new
        return reply(reasoning, suggestion)


_BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "pow": operator.pow,
    "truediv": operator.truediv,
}


def _newton(code: str, inputs: dict, values: dict, target: float) -> dict | None:
    """The step ``(target - y) * g / |g|^2`` (norm at most 5) from the #Code lines, or None
    when there is no usable code (masked, OPRO) or no slope."""
    found = [re.fullmatch(r"(\w+) = (\w+)\((.*)\)", line.strip()) for line in code.splitlines()]
    lines = [m for m in found if m is not None and m.group(2) in _BINARY]
    if not found or len(lines) != len(found):  # no code, or a line that is not a known op
        return None

    def output(point: dict) -> float:
        env = {**inputs, **point}
        for m in lines:
            # "op(x, y)", or "op(a=x, b=y)" as older prompts wrote it
            args = [part.split("=", 1)[-1].strip() for part in m.group(3).split(",")]
            a, b = (env[v] if v in env else float(v) for v in args)
            env[m.group(1)] = _BINARY[m.group(2)](a, b)
        return float(env[lines[-1].group(1)])

    try:
        y, h = output(values), 1e-4
        grad = {
            n: (output({**values, n: v + h}) - output({**values, n: v - h})) / (2 * h)
            for n, v in values.items()
        }
    except (KeyError, ValueError, TypeError, ArithmeticError):
        return None
    norm2 = sum(g * g for g in grad.values())
    if not norm2 or not math.isfinite(norm2):
        return None
    step = {n: (target - y) * g / norm2 for n, g in grad.items()}
    size = math.sqrt(sum(d * d for d in step.values()))
    return {n: d * min(1.0, 5.0 / size) for n, d in step.items()} if size else None


def make(seed: int) -> NumericalTask:
    return NumericalTask(seed)
