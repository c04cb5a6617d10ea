"""Classes for tests/test_modules.py, defined in an importable module (pickling, export)."""

from __future__ import annotations

import math

import trace_nb
from trace_nb import Module, bundle, node

SCALE = 3


def clip(v):
    """Clamp to [-100, 100] (a helper that trainable code may call)."""
    return max(-100, min(100, v))


@trace_nb.model
class Agent:
    """Two trainable methods and one trainable value."""

    def __init__(self, greeting="hello"):
        self.greeting = node(greeting, trainable=True)

    @bundle(trainable=True)
    def reason(self, x):
        """Turn an observation into a plan."""
        return x + 1

    @bundle(trainable=True)
    def act(self, plan):
        """Turn a plan into an action."""
        return plan * 2

    def forward(self, x):
        return self.act(self.reason(x))

    def describe(self, x):
        return f"{self.greeting.data}: {self.forward(x).data}"


class Tool(Module):
    def __init__(self, prompt):
        self.prompt = node(prompt, trainable=True)

    @bundle(trainable=True)
    def run(self, x):
        return clip(x * SCALE)


class Planner(Module):
    def __init__(self):
        self.steps = node(2, trainable=True)
        self.weights = node((1.0, 0.5), trainable=True)

    @bundle(trainable=True)
    def plan(self, x):
        return math.floor(x / 2)


@trace_nb.model
class Team:
    """Nested modules: a sub-module, a list and a dict of modules, plus a value."""

    def __init__(self):
        self.planner = Planner()
        self.tools = [Tool("search"), Tool("calc")]
        self.by_name = {"lookup": Tool("lookup")}
        self.bias = node(1.0, trainable=True)
        self.label = "not a parameter"

    def forward(self, x):
        y = self.planner.plan(x).data
        total = sum(t.run(y).data for t in self.tools) + self.by_name["lookup"].run(y).data
        return total + self.bias.data + self.planner.steps.data


class _PlainGreeter:
    """Decorated by a call, so the module attribute keeps the undecorated class."""

    def __init__(self):
        self.word = node("hi", trainable=True)

    @bundle(trainable=True)
    def greet(self, name):
        return f"hello {name}"


Greeter = trace_nb.model(_PlainGreeter)
