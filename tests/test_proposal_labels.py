"""Replies that copy the #Variables label into a value ("(str) def f(...)", "(float) x=2.5"):
the label goes when the value would otherwise be refused, and only then."""

from __future__ import annotations

import json

from conftest import make_llm

from trace_nb import bundle, node
from trace_nb.optim import OptoPrime
from trace_nb.optim.proposal import check
from trace_nb.testing import FakeOpenAIServer


def running_total(xs):
    """Sum of xs."""
    return 0


CODE = "def running_total(xs):\n    return sum(xs)\n"


def _code_param():
    return bundle(trainable=True)(running_total).parameter


def test_a_copied_label_before_code_is_removed():
    param = _code_param()
    for copied in (f"(str) {CODE}", f"(code) {param.name}:\n{CODE}", f"(code)\n{CODE}"):
        proposal = check(param, copied)
        assert proposal.valid, (copied, proposal.reason)
        assert proposal.new.startswith("def running_total(xs):")


def test_a_copied_label_before_a_number_is_removed():
    x = node(1.5, name="x", trainable=True)
    assert check(x, "(float) x=2.5").new == 2.5
    assert check(x, "(float) 2.5").new == 2.5
    same = check(x, "(float) x=1.5")
    assert not same.valid and same.reason == "the suggested value is the same as the current one"
    n = node(3, name="n", trainable=True)
    assert check(n, "(int) n=4").new == 4


def test_a_label_with_another_name_or_no_label_is_refused_as_before():
    x = node(1.5, name="x", trainable=True)
    other = check(x, "(float) y=2.5")
    assert not other.valid and "y=2.5" in repr(other.new)
    broken = check(_code_param(), "(str) this is not code")
    assert not broken.valid and broken.new == "(str) this is not code"  # the reply as sent


def test_a_string_keeps_a_bare_label_but_loses_a_copied_name():
    prompt = node("Answer briefly.", name="prompt", trainable=True)
    assert check(prompt, "(str) Answer in one word.").new == "(str) Answer in one word."
    assert check(prompt, "(str) prompt=Answer in one word.").new == "Answer in one word."


def test_through_optoprime_and_the_http_client():
    """The label arrives over HTTP in a real reply and the code is applied without it."""
    fn = bundle(trainable=True)(running_total)
    out = fn(node([1, 2, 3], name="xs"))
    out.backward("Should be 6.")
    reply = json.dumps(
        {"reasoning": "sum them", "suggestion": {fn.parameter.name: f"(str) {CODE}"}}
    )
    with FakeOpenAIServer(replies=[reply]) as server:
        opt = OptoPrime([fn.parameter], llm=make_llm(server))
        proposals = opt.step(approve_code=True)
    assert [p.status for p in proposals] == ["approved"]
    assert fn.parameter.data == CODE and fn(node([1, 2, 3])).data == 6


# -- the default cap on a reply's tokens ----------------------------------------------------


def test_replies_are_capped_by_default_and_more_for_long_code():
    from trace_nb.optim import OPRO
    from trace_nb.optim.base import MAX_REPLY_TOKENS, MIN_REPLY_TOKENS

    def sent_max_tokens(make_optimizer, param):
        out = param + "!" if isinstance(param.data, str) else param * 2
        out.backward("better")
        with FakeOpenAIServer(replies=['{"reasoning": "", "suggestion": {}}']) as server:
            make_optimizer([param], llm=make_llm(server)).propose()
            return server.requests[-1].get("max_tokens")

    short = node("Answer briefly.", name="short", trainable=True)
    assert sent_max_tokens(OptoPrime, short) == MIN_REPLY_TOKENS
    assert sent_max_tokens(OPRO, node(1.0, name="w", trainable=True)) == MIN_REPLY_TOKENS
    long_text = node("line of code\n" * 600, name="long_text", trainable=True)  # 7,800 chars
    assert sent_max_tokens(OptoPrime, long_text) == 512 + 7_800 // 3
    huge = node("x" * 100_000, name="huge", trainable=True)
    assert sent_max_tokens(OptoPrime, huge) == MAX_REPLY_TOKENS

    def uncapped(params, llm):
        return OptoPrime(params, llm=llm, max_tokens=None)

    assert sent_max_tokens(uncapped, node(2.0, name="v", trainable=True)) is None

    def fixed(params, llm):
        return OPRO(params, llm=llm, max_tokens=300)

    assert sent_max_tokens(fixed, node(2.0, name="u", trainable=True)) == 300
