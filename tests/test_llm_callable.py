"""An LLM is callable as the reference Trace's models are: llm(messages=[...])."""

from __future__ import annotations

import json

import pytest
from conftest import make_llm

from trace_nb import OptoPrime, node
from trace_nb.testing import FakeOpenAIServer


def test_llm_called_with_messages_returns_an_openai_style_response():
    with FakeOpenAIServer(replies=["Paris", "Lyon"]) as srv:
        llm = make_llm(srv)
        r = llm(
            messages=[{"role": "user", "content": "Capital of France?"}],
            max_tokens=5,
            temperature=0.3,
        )
        assert r.choices[0].message.content == "Paris" and r.usage.total_tokens > 0
        assert srv.requests[0]["max_tokens"] == 5 and srv.requests[0]["temperature"] == 0.3
        with pytest.raises(TypeError, match="does not take 'top_k'"):
            llm(messages=[{"role": "user", "content": "x"}], top_k=3)
        assert len(srv.requests) == 1  # refused before any call


def test_optoprime_accepts_a_plain_callable_wrapping_it():
    x = node(1.0, name="cx", trainable=True)
    (x * 2).backward("bigger")
    reply = json.dumps({"reasoning": "r", "suggestion": {"cx": 3.0}})
    with FakeOpenAIServer(replies=[reply]) as srv:
        llm = make_llm(srv)
        props = OptoPrime([x], llm=lambda messages, **kw: llm(messages=messages, **kw)).propose()
    assert props[0].new == 3.0
