"""OptoPrime and OPRO against a real loopback OpenAI-compatible server."""

from __future__ import annotations

import gc
import json
import re

import pytest
from conftest import make_llm

from trace_nb import bundle, node
from trace_nb.llm import LLMError
from trace_nb.optim import OPRO, OptoPrime
from trace_nb.optim.prompts import SECTIONS
from trace_nb.testing import FakeOpenAIServer


def reply(suggestion: dict, reasoning: str = "because") -> str:
    return json.dumps({"reasoning": reasoning, "answer": "", "suggestion": suggestion})


def user_prompt(request: dict) -> str:
    return request["messages"][-1]["content"]


def section(prompt: str, name: str) -> str:
    m = re.search(rf"#{name}\n(.*?)(?:\n\n#|\Z)", prompt, re.S)
    return m.group(1) if m else ""


@bundle()
def scale(v, factor):
    """Multiplies v by factor."""
    return v * factor


def test_prompt_has_every_section_and_exact_names():
    x = node(-1.0, name="opt_x", trainable=True, constraint="must be negative")
    c = node(3.0, name="opt_c")
    y = scale(x, c) + 1
    y.backward("The output should be larger.")
    with FakeOpenAIServer(replies=[reply({"opt_x": -0.5})]) as srv:
        opt = OptoPrime([x], llm=make_llm(srv))
        props = opt.propose()
        prompt = user_prompt(srv.requests[0])
        system = srv.requests[0]["messages"][0]["content"]
    for name in SECTIONS:
        assert f"#{name}\n" in prompt
    assert "(float) opt_x=-1.0" in section(prompt, "Variables")
    assert "opt_x: must be negative" in section(prompt, "Constraints")
    assert "(float) opt_c=3.0" in section(prompt, "Inputs")
    code = section(prompt, "Code")
    # names are numbered within this graph, whatever else is alive in the process
    assert "scale_1 = scale(v=opt_x, factor=opt_c)" in code
    assert "add_1 = add(a=scale_1, b=1)" in code
    assert "[scale] Multiplies v by factor." in section(prompt, "Documentation")
    assert "(float) add_1=-2.0" in section(prompt, "Outputs")
    assert section(prompt, "Feedback") == "The output should be larger."
    assert '"suggestion"' in system
    assert [(p.name, p.valid, p.new) for p in props] == [("opt_x", True, -0.5)]
    assert x.data == -1.0  # propose never changes a parameter
    opt.apply(props)
    assert x.data == -0.5 and props[0].status == "approved"


def test_numeric_problem_reaches_its_target():
    """y = 2x + 1 must reach 11; the reply function reads the feedback and moves x."""
    x = node(0.0, name="num_x", trainable=True)

    def answer(request):
        prompt = user_prompt(request)
        cur = float(re.search(r"num_x=([-\d.]+)", prompt).group(1))
        gap = float(re.search(r"off by ([-\d.]+)", prompt).group(1))
        return reply({"num_x": cur + gap / 2})

    with FakeOpenAIServer(replies=answer) as srv:
        opt = OptoPrime([x], llm=make_llm(srv))
        for _ in range(5):
            opt.zero_feedback()
            y = x * 2 + 1
            if y.data == 11:
                break
            y.backward(f"The output should be 11; it is off by {11 - y.data}")
            opt.step()
    assert (x * 2 + 1).data == 11 and len(srv.requests) == 1


def test_memory_appears_in_prompt():
    x = node(1, name="mem_x", trainable=True)
    replies = [reply({"mem_x": 2}), reply({"mem_x": 3}), reply({"mem_x": 4})]
    with FakeOpenAIServer(replies=replies) as srv:
        opt = OptoPrime([x], llm=make_llm(srv), memory_size=1)
        for i in range(3):
            opt.zero_feedback()
            (x + 0).backward(f"feedback number {i}")
            opt.step()
        prompts = [user_prompt(r) for r in srv.requests]
    assert "Earlier values" not in prompts[0]
    assert '{"variables": {"mem_x": 1}, "feedback": "feedback number 0"}' in prompts[1]
    memory2 = prompts[2].split("Now the current problem")[0]
    assert "feedback number 0" not in memory2  # a FIFO of size 1 keeps only the last pair
    assert '{"variables": {"mem_x": 2}, "feedback": "feedback number 1"}' in memory2
    assert x.data == 4


def test_cache_makes_second_run_free(tmp_path):
    def run(srv):
        x = node("hello", name="cache_x", trainable=True)
        x.upper().backward("shorter please")
        opt = OptoPrime([x], llm=make_llm(srv, cache=tmp_path / "cache.sqlite"))
        props = opt.propose()
        return props, opt

    with FakeOpenAIServer(replies=[reply({"cache_x": "hi"})]) as srv:
        first, opt1 = run(srv)
        first_value = first[0].new
        del first, opt1  # names never depend on live nodes; this only frees the first run
        gc.collect()
        second, opt2 = run(srv)
        assert len(srv.requests) == 1
    assert first_value == second[0].new == "hi"
    assert opt2.llm.usage.cached_calls == 1 and opt2.llm.usage.cost == 0


def test_terminate_in_reasoning_does_not_cancel():
    x = node(5, name="term_x", trainable=True)
    (x + 1).backward("smaller")
    text = reply({"term_x": 3}, reasoning="Do not TERMINATE yet; lower it.")
    with FakeOpenAIServer(replies=[text]) as srv:
        opt = OptoPrime([x], llm=make_llm(srv))
        opt.step()
    assert x.data == 3


def test_multi_output_feedback_is_labelled_per_output():
    p = node(2, name="mo_p", trainable=True)
    a, b = p + 1, p * 10
    a.backward("too small")
    b.backward("too large", score=0.1)
    with FakeOpenAIServer(replies=[reply({"mo_p": 3})]) as srv:
        OptoPrime([p], llm=make_llm(srv)).propose()
        fb = section(user_prompt(srv.requests[0]), "Feedback")
    assert "add_1: too small" in fb and "mul_1: too large (score: 0.1)" in fb


def test_code_parameter_proposal_changes_behaviour():
    @bundle(trainable=True)
    def clip(v):
        return v

    x = node(12, name="code_in")
    clip(x).backward("values above 10 must be clipped to 10")
    new_code = "def clip(v):\n    return min(v, 10)\n"
    bad_code = "def clip(v):\n    return min(v,\n"
    renamed = "def clamp(v):\n    return min(v, 10)\n"
    with FakeOpenAIServer(
        replies=[
            reply({clip.parameter.name: bad_code}),
            reply({clip.parameter.name: renamed}),
            reply({clip.parameter.name: new_code}),
        ]
    ) as srv:
        opt = OptoPrime([clip.parameter], llm=make_llm(srv), repair=0)  # one reply a step
        bad = opt.step()
        assert not bad[0].valid and "line" in bad[0].reason
        wrong = opt.step()
        assert not wrong[0].valid and "clamp" in wrong[0].reason
        assert clip(x).data == 12  # nothing applied yet
        with pytest.warns(UserWarning, match="did not apply the LLM's code for code_clip"):
            good = opt.step()  # code waits for review unless approve_code=True
        assert good[0].valid and good[0].status == "pending" and clip(x).data == 12
        assert opt.apply(good, decided_by="human") == good
    assert clip(x).data == 10


@pytest.mark.parametrize("fault", ["timeout", "429", "500", "refused", "truncated"])
def test_faults_leave_parameters_and_history_unchanged(fault):
    x = node(1.0, name="fault_x", trainable=True)
    (x * 2).backward("bigger")
    with FakeOpenAIServer(replies=[reply({x.name: 9.0})]) as srv:
        kw = {"max_retries": 1}
        if fault == "timeout":
            srv.fault("delay", seconds=2.0, times=5)
            kw["timeout"] = 0.3
        elif fault == "429":
            srv.fault("status", code=429, times=1)
        elif fault == "500":
            srv.fault("status", code=500, times=5)
        elif fault == "truncated":
            srv.fault("truncated", times=5)
        llm = make_llm(srv, **kw)
        if fault == "refused":
            srv.close()
        opt = OptoPrime([x], llm=llm, memory_size=3)
        if fault == "429":  # retried, then success
            opt.step()
            assert x.data == 9.0 and len(opt.log) == 1
            return
        with pytest.raises(LLMError) as info:
            opt.step()
    assert "attempt" in str(info.value) and "test-key" not in str(info.value)
    assert x.data == 1.0 and opt.log == [] and list(opt.memory) == []


def test_no_feedback_is_a_clear_error():
    x = node(1, name="nofb_x", trainable=True)
    with FakeOpenAIServer(replies=[]) as srv:
        with pytest.raises(ValueError, match="backward"):
            OptoPrime([x], llm=make_llm(srv)).propose()
        assert srv.requests == []


def test_opro_shares_the_proposal_flow():
    x = node(1, name="opro_x", trainable=True)
    with FakeOpenAIServer(replies=[reply({"opro_x": 2}), reply({"opro_x": "three"})]) as srv:
        opt = OPRO([x], llm=make_llm(srv))
        (x * 1).backward("higher", score=0.1)
        opt.step()
        opt.zero_feedback()
        (x * 1).backward("higher still", score=0.2)
        props = opt.step()
        second = user_prompt(srv.requests[1])
    assert x.data == 2 and not props[0].valid and "int" in props[0].reason
    assert "#History" in second and '"opro_x": 1' in second and "higher (score: 0.1)" in second


def test_reply_schema_types_each_variable():
    @bundle(trainable=True)
    def f(v):
        return v

    n, s, b = (
        node(1, name="sch_n", trainable=True),
        node("a", name="sch_s", trainable=True),
        node(True, name="sch_b", trainable=True),
    )
    f(n + len(s.data) + int(b.data)).backward("more")
    for p in (s, b):
        (p * 1).backward("more")
    with FakeOpenAIServer(replies=[reply({})]) as srv:
        OptoPrime([n, s, b, f.parameter], llm=make_llm(srv)).propose()
        fmt = srv.requests[0]["response_format"]
    props = fmt["schema"]["properties"]["suggestion"]["properties"]
    assert props == {
        "sch_n": {"type": "integer"},
        "sch_s": {"type": "string"},
        "sch_b": {"type": "boolean"},
        f.parameter.name: {"type": "string"},
    }


def test_only_replies_the_optimizer_can_read_are_cached(tmp_path):
    x = node(1.0, name="cached_x", trainable=True)
    (x * 2).backward("bigger")
    good = reply({"cached_x": 5.0})
    unreadable = json.dumps({"reasoning": "r", "suggestion": "none"})  # JSON, but no suggestion
    with FakeOpenAIServer(replies=[unreadable, good, good]) as srv:
        llm = make_llm(srv, cache=str(tmp_path / "cache.sqlite"))
        first = OptoPrime([x], llm=llm, repair=0).propose()  # one call per propose
        assert not first[0].valid  # unreadable: not cached, so asking again asks the server
        second = OptoPrime([x], llm=llm).propose()
        assert second[0].valid and second[0].new == 5.0 and len(srv.requests) == 2
        third = OptoPrime([x], llm=llm).propose()  # readable: replayed from the cache
        assert third[0].new == 5.0 and len(srv.requests) == 2


def test_a_max_tokens_text_other_than_auto_is_refused_before_any_call():
    from trace_nb.testing import FakeOpenAIServer

    with FakeOpenAIServer(replies=['{"suggestion": {"x": 2}}']) as srv:
        x = node(1, name="x", trainable=True)
        opt = OptoPrime([x], llm=make_llm(srv), max_tokens="512")
        (x + 1).backward("make it bigger")
        with pytest.raises(ValueError, match="max_tokens must be a number of tokens"):
            opt.propose()
        assert srv.requests == []
