"""Every reply of the corpus, served over HTTP, through OptoPrime.propose() and apply().

Each must give valid proposals or rejected ones with a reason; no exception escapes
propose(); a parameter changes only through a valid proposal.
"""

from __future__ import annotations

import gc
import json

import pytest
from conftest import make_llm
from reply_corpus import CASES, F_SRC

from trace_nb import node
from trace_nb.optim import OptoPrime
from trace_nb.testing import FakeOpenAIServer

# Typed starting values, so coercion runs too (x: int, y: str); code cases use a function.
START = {"x": 1, "y": "start", "z": 0.5, "prompt": "Be brief.", "flag": True}


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(replies=[]) as srv:
        yield srv


@pytest.mark.parametrize("case_id,text,names,expected", CASES, ids=[c[0] for c in CASES])
def test_corpus_reply_through_propose(server, case_id, text, names, expected):
    gc.collect()  # an output and its feedback record refer to each other: free the last case
    nodes = []
    for n in names:
        if n.startswith("__code"):
            p = node(F_SRC, name=n, trainable=True)
            p.is_code = True
        else:
            p = node(START.get(n, 1), name=n, trainable=True)
        nodes.append(p)
    # A corpus name that is not an identifier ("str:0") gives the node another name: the
    # reply then uses that name, so the case still runs through propose().
    for p, n in zip(nodes, names, strict=True):
        if p.name != n:
            assert not n.isidentifier(), (p.name, n)
            text = text.replace(json.dumps(n), json.dumps(p.name))
    out = nodes[0]
    for p in nodes[1:]:
        out = out.call(lambda a, b: (a, b), p)
    out.backward("improve it")
    server.add_replies(text)
    before = {p.name: p.data for p in nodes}
    opt = OptoPrime(nodes, llm=make_llm(server))
    props = opt.propose()  # must not raise
    assert props
    for prop in props:
        assert prop.valid or (prop.reason and len(prop.reason) > 10), prop
    applied = opt.apply(props)
    changed = {
        p.name
        for p in nodes
        if p.data != before[p.name] or type(p.data) is not type(before[p.name])
    }
    assert changed == {a.name for a in applied}
    for a in applied:
        assert a.valid and a.parameter.data == a.new
    if "error" in expected:
        assert not applied
