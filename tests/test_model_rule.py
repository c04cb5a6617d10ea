"""One model rule for ``LLM()``, ``%%trace`` and the tutorials (trace_nb.llm.models).

No model named -> ask the server's ``/v1/models`` (real HTTP to FakeOpenAIServer); exactly one
-> use it and say so once; none or several -> an error naming how to choose.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import ipython_shell

from trace_nb.llm import LLM, LLMConfigError
from trace_nb.llm.default import default_llm, set_default_llm
from trace_nb.testing import FakeOpenAIServer, tutorial_llm

HOW = ("TRACE_NB_MODEL", "%%trace --llm", "LLM(model=")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("TRACE_NB_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "TRACE_NB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRACE_NB_CACHE_DIR", str(tmp_path / "cache"))
    previous = default_llm()
    yield
    set_default_llm(previous)


def reply(suggestion):
    return json.dumps({"reasoning": "shorter", "suggestion": suggestion})


def test_one_served_model_is_used_and_said_once(monkeypatch, capsys):
    with FakeOpenAIServer(replies=['{"ok": 1}'], models=["qwen-local-1"]) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        llm = LLM(cache=False)
        assert llm.model == "qwen-local-1" and llm.model_source == "server"
        assert srv.model_list_requests == 1
        said = capsys.readouterr().err.strip().splitlines()
        assert len(said) == 1 and "'qwen-local-1'" in said[0] and srv.base_url in said[0]
        LLM(cache=False)  # the same server and model again: not said twice
        assert capsys.readouterr().err == ""
        llm.chat([{"role": "user", "content": "hi"}])
        assert srv.requests[-1]["model"] == "qwen-local-1"


@pytest.mark.parametrize(
    "models, found",
    [
        (["a-model", "b-model", "c-model"], "serves 3 models (a-model, b-model, c-model)"),
        ([], "no model"),
    ],
)
def test_several_or_no_served_models_is_an_error_that_says_how_to_choose(models, found):
    with FakeOpenAIServer(models=models) as srv:
        url = srv.base_url
        with pytest.raises(LLMConfigError) as info:
            LLM(base_url=url, cache=False)
    message = str(info.value)
    assert found in message and url in message
    for hint in HOW:
        assert hint in message


def test_a_named_model_asks_the_server_nothing(monkeypatch):
    with FakeOpenAIServer(models=["a", "b"]) as srv:
        assert LLM(model="mine", base_url=srv.base_url, cache=False).model_source == "argument"
        monkeypatch.setenv("TRACE_NB_MODEL", "from-env")
        llm = LLM(base_url=srv.base_url, cache=False)
        assert (llm.model, llm.model_source) == ("from-env", "TRACE_NB_MODEL")
        assert srv.model_list_requests == 0


def test_openai_with_only_a_key_is_an_error_without_a_network_call():
    key = "sk-proj-NotARealKey1234567890abcd"
    with pytest.raises(LLMConfigError) as info:
        LLM(api_key=key)  # api.openai.com is never asked: the test has no network
    message = str(info.value)
    assert "OpenAI serves many models" in message and key not in message
    for hint in HOW:
        assert hint in message


def test_a_server_that_cannot_be_asked_is_a_clear_error():
    with FakeOpenAIServer() as srv:
        url = srv.base_url
    with pytest.raises(LLMConfigError, match="could not be reached") as info:
        LLM(base_url=url, cache=False, timeout=2)
    assert "/models" in str(info.value) and "TRACE_NB_MODEL" in str(info.value)


def test_tutorials_use_the_same_rule_with_one_line(monkeypatch, capsys):
    with FakeOpenAIServer(models=["llama3.1"]) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        llm = tutorial_llm([], set_default=False)
        out, err = capsys.readouterr()
        assert llm.model == "llama3.1"
        assert (
            out.strip() == f"Using a real model: llama3.1 (the only model {srv.base_url} serves)."
        )
        assert err == ""  # one line, not two
        srv.models = ["llama3.1", "qwen2.5"]
        with pytest.raises(LLMConfigError, match="serves 2 models"):
            tutorial_llm([], set_default=False)
        monkeypatch.setenv("TRACE_NB_MODEL", "qwen2.5")
        assert tutorial_llm([], set_default=False).model == "qwen2.5"
        assert "from TRACE_NB_MODEL" in capsys.readouterr().out


def test_tutorials_offline_say_which_model_answers(capsys):
    llm = tutorial_llm([], set_default=False)
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert llm.model == "scripted-offline" and "'scripted-offline'" in line and "OFFLINE" in line


def test_trace_cell_without_a_model_uses_the_one_the_server_serves(monkeypatch):
    ip = ipython_shell()
    set_default_llm(None)
    with FakeOpenAIServer(replies=[reply({"tone": "Be brief."})], models=["solo-model"]) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        ip.run_cell_magic(
            "trace",
            "--name model_rule --param tone --no-panel",
            textwrap.dedent("""
            tone = "Say a lot."
            tone + "!"
            """),
        )
        from trace_nb import session

        s = session("model_rule")
        s.feedback("too long")
        (proposal,) = s.propose()
        assert proposal.new == "Be brief."
        assert srv.requests[-1]["model"] == "solo-model" and srv.model_list_requests == 1
        srv.models = ["x", "y"]
        s.llm = None
        ip.run_cell_magic("trace", "--name model_rule2 --param tone --no-panel", 'tone = "a"\ntone')
        s2 = session("model_rule2")
        s2.feedback("more")
        with pytest.raises(LLMConfigError) as info:
            s2.propose()
        for hint in HOW:
            assert hint in str(info.value)
