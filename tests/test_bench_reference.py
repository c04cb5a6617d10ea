"""The trace_opt method: the reference OptoPrime (``opto``) on a trace_nb task.

Needs ``trace-opt`` in its own venv (``$TRACE_NB_REFERENCE_PYTHON``, or ``build/venv-ref``
in this checkout); skipped without it. The reference talks over real HTTP to a scripted
FakeOpenAIServer in this process.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import make_llm

from trace_nb.bench import reference
from trace_nb.bench.methods import METHODS
from trace_nb.bench.runner import run_one
from trace_nb.bench.tasks.buggy import FIXES
from trace_nb.testing import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "build" / "venv-ref" / "bin" / "python"


@pytest.fixture
def reference_python(monkeypatch):
    python = os.environ.get(reference.PYTHON_ENV) or (str(LOCAL) if LOCAL.exists() else None)
    if python is None:
        pytest.skip("trace-opt is not installed in a venv here (see docs/benchmark.md)")
    monkeypatch.setenv(reference.PYTHON_ENV, python)
    return python


def test_without_the_reference_the_method_says_how_to_get_it(monkeypatch):
    monkeypatch.delenv(reference.PYTHON_ENV, raising=False)
    if reference.in_process():
        pytest.skip("opto is importable here")
    record = run_one("numerical", "trace_opt", 0, 1, offline=True)
    assert record["status"].startswith("unavailable: trace-opt is not installed")
    assert reference.PYTHON_ENV in record["status"] and record["llm_calls"] == 0


def test_a_subprocess_run_without_the_reference_says_how_to_get_it(monkeypatch):
    # run_one asks unavailable() first; a direct call must still say what is missing.
    monkeypatch.delenv(reference.PYTHON_ENV, raising=False)
    if reference.in_process():
        pytest.skip("opto is importable here")
    with pytest.raises(RuntimeError, match="trace-opt is not installed") as raised:
        reference.run_in_subprocess(
            "numerical",
            METHODS["trace_opt"],
            0,
            1,
            None,
            offline=True,
            max_tokens=None,
            deadline=None,
        )
    assert reference.PYTHON_ENV in str(raised.value)


def test_the_reference_fixes_code_from_the_same_feedback(reference_python):
    seen = []

    def reply(request):
        seen.append(request)
        text = request["messages"][-1]["content"]
        key = re.search(r"\(code\) (__code_\w+):", text).group(1)
        name = re.search(r"def (\w+)\(", text[text.index(key) :]).group(1)
        return json.dumps({"reasoning": "fix it", "suggestion": {key: FIXES[name]}})

    with FakeOpenAIServer(replies=reply) as server:
        record = run_one("code_debug", "trace_opt", 3, 2, make_llm(server), max_tokens=321)
    assert record["status"] == "ok", record["status"]
    assert record["success"] and record["steps_to_success"] == 1
    assert record["applied"] == 1 and record["llm_calls"] == 1 and record["prompt_tokens"] > 0
    (request,) = seen
    # The reference's own request: its JSON mode and our cap, its names (opto's ":0" suffix
    # dropped), and the visible tests' feedback joined into one numbered batch.
    assert request["response_format"] == {"type": "json_object"}
    assert request["max_tokens"] == 321
    prompt = request["messages"][-1]["content"]
    assert "#Variables" in prompt and "(code) __code_code_" in prompt
    assert "[batchify]" in prompt and "ID [0]:" in prompt and "ID [1]:" in prompt
    assert "expected" in prompt  # the task's feedback text reached the reference's prompt


def test_a_reference_reply_without_json_counts_as_a_parse_failure(reference_python):
    with FakeOpenAIServer(replies=lambda request: "I would change the code.") as server:
        record = run_one("code_debug", "trace_opt", 0, 2, make_llm(server))
    assert record["status"] == "ok" and not record["success"]
    assert record["parse_failures"] == 2 and record["applied"] == 0 and record["llm_calls"] == 2


def test_a_reference_suggestion_for_an_unknown_name_counts_as_invalid(reference_python):
    reply = json.dumps({"reasoning": "", "suggestion": {"running_max": "def running_max(xs): ..."}})
    with FakeOpenAIServer(replies=lambda request: reply) as server:
        record = run_one("code_debug", "trace_opt", 0, 1, make_llm(server))
    assert record["status"] == "ok" and record["invalid_proposals"] == 1
    assert record["applied"] == 0 and record["parse_failures"] == 0
    assert any("no variable named 'running_max'" in r for r in record["reasons"])


def test_a_reference_subprocess_that_crashes_is_one_failed_run_not_a_failed_benchmark(
    monkeypatch, tmp_path
):
    # An interpreter without opto: the subprocess dies on its import. The other runs go on.
    if reference.in_process():
        pytest.skip("opto is importable here")
    import sys

    import trace_nb.bench as bench

    monkeypatch.setenv(reference.PYTHON_ENV, sys.executable)
    frame = bench.run(
        tasks=["numerical"],
        methods=["trace_opt", "optoprime"],
        seeds=1,
        steps=1,
        out=tmp_path,
        progress=False,
    ).set_index("method")
    assert frame.loc["trace_opt", "status"].startswith("error: RuntimeError: the reference run")
    assert "cannot import opto" in frame.loc["trace_opt", "status"]  # what the subprocess said
    assert frame.loc["optoprime", "status"] == "ok"
    saved = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert {r["method"]: r["status"][:5] for r in saved} == {
        "trace_opt": "error",
        "optoprime": "ok",
    }
