"""A recursive function rewritten by the LLM: its recursive calls run the new code."""

from __future__ import annotations

import json
import textwrap

from conftest import ipython_shell, make_llm

import trace_nb
from trace_nb import bundle
from trace_nb.notebook import session as sessions
from trace_nb.testing import FakeOpenAIServer

FIXED = textwrap.dedent("""\
    def fact(n):
        if n <= 1:
            return 1
        return n * fact(n - 1)
""")


def test_a_notebook_code_function_recurses_into_new_code_during_training():
    ip = ipython_shell()
    ip.run_cell(
        textwrap.dedent("""
        example = 4
        def fact(n):
            if n <= 1:
                return 1
            return n * fact(n - 1) + 1000
        def check(example, out):
            want = {3: 6, 4: 24}[example]
            return (1.0, "right") if out == want else (0.0, f"fact({example}) must be {want}, got {out}")
        """)
    )
    reply = {"reasoning": "drop the + 1000", "suggestion": {"code_fact": FIXED}}
    with FakeOpenAIServer(replies=[json.dumps(reply)]) as srv:
        sessions.set_default_llm(make_llm(srv))
        try:
            ip.run_cell_magic(
                "trace", "--name rec --code fact --no-panel", "out = fact(example)\nout\n"
            )
            s = trace_nb.session("rec")
            # Training applies the LLM's code itself (the notebook's `fact` is still the old
            # function until it ends): validation after the step must run the new code at
            # every level of the recursion.
            result = s.train(
                [4],
                ip.user_ns["check"],
                batch_size=1,
                validation=[3, 4],
                approve_code=True,
                progress=False,
            )
        finally:
            sessions.set_default_llm(None)
    assert result.history[0]["val_score"] == 0.0
    assert result.history[1]["val_score"] == 1.0 and result.best_score == 1.0
    assert ip.user_ns["fact"](5) == 120  # after training the notebook's name runs it too


def test_a_module_level_trainable_bundle_still_recurses_through_the_bundle():
    calls = []

    @bundle(trainable=True)
    def count(n):
        calls.append(n)
        return 0 if n == 0 else 1 + count(n - 1)

    # The name refers to the bundle, so recursive calls keep going through it (traced).
    count.parameter.set_value(
        textwrap.dedent("""\
        def count(n):
            calls.append(n)
            return 0 if n == 0 else 2 + count(n - 1)
    """)
    )
    globals()["calls"] = calls
    try:
        assert count(3).peek() == 6 and calls == [3, 2, 1, 0]
    finally:
        del globals()["calls"]


def test_a_method_does_not_capture_a_global_of_its_own_name():
    def step(x):  # a global function that a method of the same name calls
        return x + 100

    globals()["step"] = step
    try:

        class Agent:
            @bundle(trainable=True)
            def step(self, x):
                return step(x)

        agent = Agent()
        agent.step.parameter.set_value("def step(self, x):\n    return step(x) + 1\n")
        assert agent.step(1).peek() == 102  # the global, not the method itself
    finally:
        del globals()["step"]


def flatten(nested):
    """A module-level function that a bundle wraps without rebinding its name (as the
    benchmark's code-debugging tasks do)."""
    return list(nested)


def test_a_wrapped_module_function_recurses_into_its_new_code():
    fixer = bundle(trainable=True)(flatten)  # the module's name still holds the plain one
    fixer.parameter.set_value(
        textwrap.dedent("""\
        def flatten(nested):
            out = []
            for item in nested:
                out.extend(flatten(item) if isinstance(item, list) else [item])
            return out
    """)
    )
    assert fixer([1, [2, [3, [4]]]]).peek() == [1, 2, 3, 4]
