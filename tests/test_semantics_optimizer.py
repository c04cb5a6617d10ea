"""Optimizer semantics a reference Trace user relies on (issue 13): ownership by identity,
atomic and idempotent apply, copies and pickles, the reference's spellings and options."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import threading
import time

import pytest
from conftest import make_llm

from trace_nb import node
from trace_nb.errors import ExtractionError
from trace_nb.graph import ParameterNode
from trace_nb.optim import OptoPrime, Proposal
from trace_nb.testing import FakeOpenAIServer


def reply(suggestion: dict, reasoning: str = "because") -> str:
    return json.dumps({"reasoning": reasoning, "answer": "", "suggestion": suggestion})


class ScriptedLLM:
    """A reference-style LLM: called with messages=[...], returns an OpenAI-shaped dict.

    Module-level and free of locks, so an optimizer holding it pickles.
    """

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def __call__(self, messages, max_tokens=None, **kwargs):
        self.calls.append({"messages": messages, "max_tokens": max_tokens})
        return {"choices": [{"message": {"content": self.replies.pop(0)}}]}


class Unequal:
    """A value whose == raises, like a numpy array in a boolean context."""

    def __eq__(self, other):
        raise RuntimeError("ambiguous comparison")

    __hash__ = object.__hash__


# -- apply: identity, atomicity, idempotence ------------------------------------------------


def test_apply_refuses_an_outside_node_with_an_equal_value():
    owned = node(1.0, name="own_a", trainable=True)
    stranger = node(1.0, name="stranger_a", trainable=True)  # == owned by value
    opt = OptoPrime([owned], llm=ScriptedLLM([]))
    with pytest.raises(ValueError, match="not a parameter of this optimizer"):
        opt.apply([Proposal("stranger_a", stranger, 1.0, 5.0)])
    assert owned.data == 1.0 and stranger.data == 1.0


def test_apply_never_compares_values():
    p = node(Unequal(), name="uneq_p", trainable=True)
    q = node(Unequal(), name="uneq_q", trainable=True)
    opt = OptoPrime([q, p], llm=ScriptedLLM([]))
    new = Unequal()
    applied = opt.apply([Proposal("uneq_p", p, p.peek(), new)])
    assert p.data is new and applied[0].status == "approved"


def test_apply_is_all_or_nothing_when_one_proposal_is_foreign():
    a = node(1, name="aon_a", trainable=True)
    b = node(2, name="aon_b", trainable=True)
    opt = OptoPrime([a], llm=ScriptedLLM([]))
    good = Proposal("aon_a", a, 1, 10)
    with pytest.raises(ValueError):
        opt.apply([good, Proposal("aon_b", b, 2, 20)])
    assert a.data == 1 and good.status == "pending"


class SlowSet(ParameterNode):
    """Counts and slows writes so that two racing approvals overlap."""

    __slots__ = ("writes",)

    def set_value(self, value):
        self.writes = getattr(self, "writes", 0) + 1
        time.sleep(0.02)
        super().set_value(value)


def test_two_threads_approving_one_proposal_apply_it_once():
    p = SlowSet(1, name="race_p")
    opt = OptoPrime([p], llm=ScriptedLLM([]))
    prop = Proposal("race_p", p, 1, 2)
    barrier = threading.Barrier(2)
    results = []

    def approve(who):
        barrier.wait()
        results.append((who, opt.apply([prop], decided_by=who)))

    threads = [threading.Thread(target=approve, args=(w,)) for w in ("human", "auto")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.writes == 1 and p.data == 2
    winners = [who for who, applied in results if applied]
    assert len(winners) == 1 and prop.decided_by == winners[0]


def test_same_node_twice_is_one_parameter_and_names_must_be_unique():
    p = node(1, name="twice_p", trainable=True)
    params = OptoPrime([p, p], llm=ScriptedLLM([])).parameters
    assert len(params) == 1 and params[0] is p


# -- openai is imported in the background when an optimizer is made -------------------------


def test_creating_an_optimizer_starts_importing_openai():
    code = (
        "import sys\n"
        "from trace_nb import node\n"
        "from trace_nb.optim import OptoPrime\n"
        "from trace_nb.optim import llm_call\n"
        "assert 'openai' not in sys.modules\n"
        "OptoPrime([node(1.0, trainable=True)])\n"
        "t = llm_call._prewarm_thread\n"
        "assert t is not None and t.daemon\n"
        "t.join()\n"
        "print('openai' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_custom_llm_does_not_import_openai():
    code = (
        "import sys\n"
        "from trace_nb import node\n"
        "from trace_nb.optim import OptoPrime, llm_call\n"
        "OptoPrime([node(1.0, trainable=True)], llm=lambda messages: 'x')\n"
        "print(llm_call._prewarm_thread is None, 'openai' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


# -- the reference's spellings and options -------------------------------------------------


def fresh_problem(name: str, value: float = 1.0):
    x = node(value, name=name, trainable=True)
    y = x * 2
    return x, y


def test_any_callable_llm_and_optimizer_backward_and_step():
    x, y = fresh_problem("call_x")
    llm = ScriptedLLM([reply({"call_x": 4.0})])
    opt = OptoPrime([x], llm=llm, max_tokens=77)
    opt.zero_feedback()
    opt.backward(y, "make it 8")
    assert [f.text for f in x.feedback] == ["make it 8"]
    opt.step()
    assert x.data == 4.0
    assert llm.calls[0]["max_tokens"] == 77
    assert "(float) call_x=1.0" in llm.calls[0]["messages"][-1]["content"]


def test_an_openai_style_object_response_works():
    class Message:
        content = reply({"obj_x": 2.0})

    class Choice:
        message = Message()

    class Response:
        choices = [Choice()]

    x, y = fresh_problem("obj_x")
    y.backward("double it")
    OptoPrime([x], llm=lambda messages: Response()).step()
    assert x.data == 2.0


def test_max_tokens_reaches_the_server():
    x, y = fresh_problem("mt_x")
    y.backward("more")
    with FakeOpenAIServer(replies=[reply({"mt_x": 3.0})]) as srv:
        OptoPrime([x], llm=make_llm(srv), max_tokens=123).step()
        assert srv.requests[0]["max_tokens"] == 123
    assert x.data == 3.0


def test_step_mask_blanks_sections():
    x, y = fresh_problem("mask_x")
    y.backward("larger")
    llm = ScriptedLLM([reply({"mask_x": 2.0}), reply({"mask_x": 3.0})])
    opt = OptoPrime([x], llm=llm)
    opt.step(mask=["#Code", "documentation"])
    prompt = llm.calls[0]["messages"][-1]["content"]
    assert "#Code\n\n\n#Documentation\n\n\n#Variables\n(float) mask_x=1.0" in prompt
    opt.step()
    assert "= mul(a=mask_x, b=2)" in llm.calls[1]["messages"][-1]["content"]
    with pytest.raises(ValueError, match="#Feedback"):
        opt.propose(mask=["#Nonsense"])


def test_verbose_step_prints(capsys):
    x, y = fresh_problem("verb_x")
    y.backward("larger")
    opt = OptoPrime([x], llm=ScriptedLLM([reply({"verb_x": 2.0}), reply({"verb_x": 3.0})]))
    opt.step(verbose=True)
    out = capsys.readouterr().out
    assert "#Variables" in out and '"verb_x": 2.0' in out
    opt.step(verbose="output")
    out = capsys.readouterr().out
    assert "#Variables" not in out and '"verb_x": 3.0' in out


def test_include_example_and_extraction_errors():
    x, y = fresh_problem("ex_x")
    y.backward("larger")
    llm = ScriptedLLM(["no json here", "no json here either"])
    lenient = OptoPrime([x], llm=llm, include_example=True, repair=0)  # one call each
    props = lenient.propose()
    assert "Example answer" in llm.calls[0]["messages"][0]["content"]
    assert len(props) == 1 and not props[0].valid
    strict = OptoPrime([x], llm=llm, ignore_extraction_error=False, repair=0)
    with pytest.raises(ExtractionError, match="no suggestion"):
        strict.propose()
    assert "Example answer" not in llm.calls[1]["messages"][0]["content"]
    assert x.data == 1.0


def test_reference_only_options_get_a_clear_error():
    x, _ = fresh_problem("refopt_x")
    with pytest.raises(TypeError, match="mask"):
        OptoPrime([x], llm=ScriptedLLM([]), prompt_symbols={"code": "#Code"})
    with pytest.raises(TypeError, match="propagation"):
        OptoPrime([x], llm=ScriptedLLM([]), propagator=object())


def test_log_is_json_serializable():
    x, y = fresh_problem("log_x")
    y.backward("larger")
    opt = OptoPrime([x], llm=ScriptedLLM([reply({"log_x": 2.0})]))
    opt.step()
    data = json.loads(json.dumps(opt.log_json()))
    assert data[0]["response"] == reply({"log_x": 2.0})
    assert "#Variables" in data[0]["user_prompt"] and data[0]["system_prompt"]
    assert data[0]["proposals"] == [
        {
            "name": "log_x",
            "old": 1.0,
            "new": 2.0,
            "valid": True,
            "reason": None,
            "status": "approved",
            "decided_by": "auto",
            "code": None,
            "attempt": 1,
        }
    ]
    assert data[0]["attempt"] == 1


# -- copies and pickles ---------------------------------------------------------------------


def test_deepcopy_and_pickle_of_an_optimizer():
    x, y = fresh_problem("cp_x")
    y.backward("larger")
    opt = OptoPrime([x], llm=ScriptedLLM([reply({"cp_x": 2.0})]), memory_size=2)
    twin = copy.deepcopy(opt)
    assert twin.parameters[0] is not x and twin.parameters[0].data == 1.0
    assert twin._lock is not opt._lock
    twin.parameters[0].backward("larger")
    assert twin.parameters[0].name == "cp_x"  # a copy keeps the name the LLM sees
    twin.step()
    assert twin.parameters[0].data == 2.0 and x.data == 1.0  # the copy trains its own values
    loaded = pickle.loads(pickle.dumps(opt))
    assert loaded.llm.replies == [reply({"cp_x": 2.0})] and loaded.memory_size == 2
    p = loaded.parameters[0]
    assert loaded.apply([Proposal(p.name, p, 1.0, 5.0)])[0].status == "approved"
    assert p.data == 5.0 and x.data == 1.0


def test_optoprime_with_a_real_llm_copies_and_pickles(fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")  # keys never travel in a pickle
    x, y = fresh_problem("real_cp_x")
    y.backward("larger")
    opt = OptoPrime([x], llm=make_llm(fake_server))
    twin = copy.deepcopy(opt)
    loaded = pickle.loads(pickle.dumps(opt))
    for clone in (twin, loaded):
        assert clone.llm is not opt.llm and clone.llm.base_url == opt.llm.base_url
        p = clone.parameters[0]
        p.backward("larger")
        fake_server.set_replies([reply({p.name: 2.0})])
        clone.step()
        assert p.data == 2.0
    assert x.data == 1.0 and len(fake_server.requests) == 2


def test_creating_a_session_starts_importing_openai():
    code = (
        "import sys\n"
        "from trace_nb.notebook.session import TraceSession\n"
        "from trace_nb.optim import llm_call\n"
        "assert 'openai' not in sys.modules and llm_call._prewarm_thread is None\n"
        "TraceSession('prewarm_probe')\n"
        "llm_call._prewarm_thread.join()\n"
        "print('openai' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
