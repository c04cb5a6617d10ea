"""The real path: openai client -> llama.cpp server -> SmolLM2-135M -> parse -> proposals.

Needs `make local-llm` (CI runs it). The model is far too small to optimize well, so these
tests check the plumbing, never the quality of a suggestion.
"""

from __future__ import annotations

import json
import os
import textwrap
import time

import pytest

from trace_nb import node
from trace_nb.llm import LLMConfigError
from trace_nb.optim import OptoPrime

pytestmark = pytest.mark.local_llm


@pytest.fixture(scope="module")
def server():
    from trace_nb.llm.local import local_server

    try:
        srv = local_server(log_path="test-output/llama-server.log")
    except LLMConfigError as e:
        if os.environ.get("CI"):
            raise  # CI builds the server first (`make local-llm`); missing it is a failure there
        pytest.skip(f"local LLM stage not built (run `make local-llm`): {e}")
    yield srv
    srv.stop()
    assert srv.process.poll() is not None


STATS: dict = {"steps": []}


def record_step(kind, llm, props, seconds):
    STATS["steps"].append({
        "workflow": kind, "seconds": round(seconds, 2), "json_mode": llm.describe()["json_mode_in_use"],
        "proposals": [{"name": p.name, "valid": p.valid, "reason": p.reason} for p in props]})
    os.makedirs("test-output", exist_ok=True)
    with open("test-output/local_llm.json", "w") as f:
        json.dump(STATS, f, indent=1)


def check_proposals(props, params):
    assert props, "propose() always returns at least one proposal"
    for p in props:
        assert p.valid or p.reason, f"an invalid proposal must say why: {p}"
        if p.valid:
            assert p.parameter in params


def test_numeric_workflow_steps(server):
    llm = server.llm(max_retries=1, timeout=120, seed=0, temperature=0.7)
    x = node(3.0, name="local_x", trainable=True, constraint="a number between -10 and 10")
    opt = OptoPrime([x], llm=llm, prompt_budget=6000)
    for _ in range(2):
        opt.zero_feedback()
        y = (x - 5) ** 2
        y.backward(f"The output {y.data} should be 0; change local_x.")
        before = x.data
        t0 = time.perf_counter()
        props = opt.propose()
        record_step("numeric", llm, props, time.perf_counter() - t0)
        check_proposals(props, [x])
        applied = opt.apply(props)
        if applied:
            assert x.data == applied[0].new and isinstance(x.data, float)
        else:
            assert x.data == before
    assert llm.usage.calls == 2 and llm.usage.prompt_tokens > 0 and llm.usage.completion_tokens > 0
    assert llm.describe()["json_mode_in_use"]  # the JSON path used was recorded


def test_prompt_workflow_through_trace_magic(server):
    from conftest import ipython_shell

    from trace_nb.notebook import session as sessions

    ip = ipython_shell()
    llm = server.llm(max_retries=1, timeout=120, seed=1, temperature=0.7)
    sessions.set_default_llm(llm)
    try:
        ip.run_cell(textwrap.dedent('''
            def reply_to(instruction, question):
                """A canned assistant: follows the instruction's length rule."""
                return instruction.upper() + " " + question
            def grade(out):
                return (0.0, "The answer must be one short word; the instruction should say so.")
            '''))
        ip.run_cell_magic("trace", "--name local_qa --param instruction --feedback grade --no-panel",
                          'instruction = "Answer at length."\nreply_to(instruction, "Sky colour?")\n')
        s = sessions.session("local_qa")
        t0 = time.perf_counter()
        props = s.propose()
        record_step("prompt", llm, props, time.perf_counter() - t0)
        check_proposals(props, s.parameter_nodes)
        valid = [p for p in props if p.valid]
        if valid:
            s.approve(valid[0].name)
            assert s.parameters["instruction"] == valid[0].new
            s.run()
            assert s.output.startswith(valid[0].new.upper())
        else:
            s.reject()
            assert s.parameters["instruction"] == "Answer at length."
        assert s.rows[-1]["tokens"] > 0 or len(s.rows) > 1
    finally:
        sessions.set_default_llm(None)
