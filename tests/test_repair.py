"""Issue 22: proposals that land. A repair turn within the step, values in their own form,
no prompt sent twice unchanged, candidates with an LLM that takes no temperature, and
best-of-k in the benchmark. Every LLM call goes over real HTTP to the loopback fake server.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request

import pytest
from conftest import make_llm

from trace_nb import OptoPrime, bundle, node
from trace_nb.errors import CoercionError
from trace_nb.graph.errors import ExecutionError
from trace_nb.optim.refusal import Refusal
from trace_nb.optim.repair import ATTEMPTS_HEADER
from trace_nb.testing import FakeOpenAIServer


def reply(suggestion: dict, reasoning: str = "r") -> str:
    return json.dumps({"reasoning": reasoning, "answer": "", "suggestion": suggestion})


def user_prompts(srv: FakeOpenAIServer) -> list[str]:
    return [r["messages"][-1]["content"] for r in srv.requests]


def greeting():
    g = node("hello there", name="greeting", trainable=True)
    (g + "!").backward("The output must be in capital letters.")
    return g


# -- 1. the repair turn -------------------------------------------------------------------


def test_a_same_value_reply_is_repaired_in_the_same_conversation():
    g = greeting()
    with FakeOpenAIServer(
        replies=[reply({"greeting": "hello there"}), reply({"greeting": "HELLO THERE"})]
    ) as srv:
        opt = OptoPrime([g], llm=make_llm(srv))
        props = opt.step()
        first, second = srv.requests
    assert g.data == "HELLO THERE"
    assert [p.attempt for p in props] == [2] and props[0].repaired
    # The follow-up continues the conversation: the first reply, then what was refused.
    assert second["messages"][:2] == first["messages"]
    assert second["messages"][2] == {
        "role": "assistant",
        "content": reply({"greeting": "hello there"}),
    }
    follow_up = second["messages"][3]["content"]
    assert "greeting" in follow_up and "the same as the current one" in follow_up
    assert "the new text itself" in follow_up  # what a valid suggestion looks like
    # Both calls are in the log and in the usage.
    assert [e.attempt for e in opt.log] == [1, 2]
    assert opt.llm.usage.calls == 2
    assert [d["attempt"] for d in opt.log_json()] == [1, 2]


@pytest.mark.parametrize(
    ("default", "option", "sent"),
    [(0.0, 0.7, [0.0, 0.7]), (0.9, 0.7, [0.9, 0.9]), (0.0, None, [0.0, 0.0])],
)
def test_the_repair_turn_samples_at_the_repair_temperature(default, option, sent):
    # At temperature 0 a model asked again mostly repeats itself: the repair turn samples at
    # repair_temperature unless the step's own temperature is higher (None: the step's).
    g = greeting()
    with FakeOpenAIServer(
        replies=[reply({"greeting": "hello there"}), reply({"greeting": "HELLO THERE"})]
    ) as srv:
        opt = OptoPrime([g], llm=make_llm(srv, temperature=default), repair_temperature=option)
        opt.step()
    assert [r["temperature"] for r in srv.requests] == sent
    assert g.data == "HELLO THERE"


def test_a_no_change_reply_is_repaired():
    g = greeting()
    with FakeOpenAIServer(
        replies=[reply({}, "no change is needed"), reply({"greeting": "HELLO"})]
    ) as srv:
        props = OptoPrime([g], llm=make_llm(srv)).step()
        assert len(srv.requests) == 2
        assert "your answer: the reply suggests no changes" in user_prompts(srv)[1]
    assert g.data == "HELLO" and props[0].attempt == 2


@pytest.mark.parametrize("score, calls", [(1.0, 1), (0.5, 2), (None, 2)])
def test_keeping_the_value_is_accepted_only_when_every_feedback_scored_right(score, calls):
    g = node("HELLO", name="greeting", trainable=True)
    (g + "!").backward("The grader's verdict.", score=score)
    with FakeOpenAIServer(replies=[reply({}), reply({"greeting": "HI"})]) as srv:
        OptoPrime([g], llm=make_llm(srv)).step()
        assert len(srv.requests) == calls


def test_repair_zero_makes_one_call_and_keeps_the_refusal():
    g = greeting()
    with FakeOpenAIServer(replies=[reply({"greeting": "hello there"})]) as srv:
        props = OptoPrime([g], llm=make_llm(srv), repair=0).step()
        assert len(srv.requests) == 1
    assert props[0].code is Refusal.SAME_VALUE and g.data == "hello there"


def test_a_model_that_keeps_failing_ends_with_a_clear_status_and_nothing_applied():
    g = greeting()
    with FakeOpenAIServer(
        replies=[
            reply({"greeting": "hello there"}),
            "I cannot help with that.",
            "Still no JSON.",
        ]
    ) as srv:
        opt = OptoPrime([g], llm=make_llm(srv), repair=2)
        props = opt.step()  # no exception
        assert len(srv.requests) == 3  # the bound: 1 + repair
    summary = props[0]
    assert summary.code is Refusal.REPAIR_FAILED and summary.name is None
    assert summary.reason.startswith("3 attempts refused: ")
    assert "the same as the current one" in summary.reason  # the reasons of every attempt
    assert not any(p.valid for p in props) and g.data == "hello there"
    assert all(p.status == "pending" for p in props)


def test_repair_bound_validation():
    g = greeting()
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="repair must be"):
            OptoPrime([g], llm=lambda **kw: "", repair=bad)


def test_a_failing_repair_call_keeps_the_first_reply():
    g = greeting()
    with FakeOpenAIServer(replies=[reply({"greeting": "hello there"})]) as srv:
        props = OptoPrime([g], llm=make_llm(srv, max_retries=0)).step()  # 2nd call: HTTP 500
        assert len(srv.requests) == 2
    assert [p.code for p in props] == [Refusal.SAME_VALUE] and g.data == "hello there"


def test_candidates_are_each_repaired():
    g = greeting()

    def answer(request):
        if len(request["messages"]) > 2:  # a repair turn: this candidate's second try
            return reply({"greeting": f"HELLO {request['temperature']}"})
        return reply({"greeting": "hello there"})  # every first try repeats the value

    with FakeOpenAIServer(replies=answer) as srv:
        opt = OptoPrime([g], llm=make_llm(srv), candidates=2)
        props = opt.propose()
        assert len(srv.requests) == 4
    assert sorted((p.candidate, p.new, p.attempt) for p in props) == [
        (0, "HELLO 0.7", 2),  # its repair at repair_temperature
        (1, "HELLO 1.0", 2),
    ]
    assert sorted(e.attempt for e in opt.log) == [1, 1, 2, 2]


# -- the next prompt records what was tried -----------------------------------------------


def test_a_prompt_is_never_sent_twice_unchanged_after_a_step_that_changed_nothing():
    g = greeting()
    same = reply({"greeting": "hello there"})
    with FakeOpenAIServer(replies=[same] * 6) as srv:
        opt = OptoPrime([g], llm=make_llm(srv, cache=True), repair=0)
        for _ in range(3):
            opt.propose()  # Propose pressed again and again, nothing applied
        prompts = user_prompts(srv)
        assert len(srv.requests) == 3  # the response cache never served a repeated request
    assert len(set(prompts)) == 3
    assert ATTEMPTS_HEADER not in prompts[0]
    assert "1 suggestion(s)" in prompts[1] and "2 suggestion(s)" in prompts[2]
    assert 'greeting = "hello there": refused (the suggested value is the same' in prompts[1]


def test_the_record_starts_over_once_a_value_changes():
    g = greeting()
    with FakeOpenAIServer(
        replies=[reply({"greeting": "hello there"}), reply({"greeting": "HI"}), reply({})]
    ) as srv:
        opt = OptoPrime([g], llm=make_llm(srv), repair=0)
        opt.step()  # refused: same value
        opt.step()  # applied
        opt.step()
        prompts = user_prompts(srv)
    assert ATTEMPTS_HEADER in prompts[1] and ATTEMPTS_HEADER not in prompts[2]


@contextlib.contextmanager
def graded_session(fake_server, name: str, replies: list[str]):
    """A %%trace session on ``level = 3`` (parameter ``{name}_level``) whose --feedback
    always asks for higher, its Propose answered by ``replies``; closed afterwards."""
    from conftest import ipython_shell

    import trace_nb

    ip = ipython_shell()
    fake_server.set_replies(replies)
    trace_nb.set_default_llm(make_llm(fake_server))
    try:
        ip.run_cell(f"def {name}_grade(out):\n    return ('higher', 0.5)\n")
        ip.run_cell_magic(
            "trace",
            f"--name {name}_s --param {name}_level --feedback {name}_grade --no-panel --reset",
            f"{name}_level = 3\n{name}_level\n",
        )
        s = trace_nb.session(f"{name}_s")
        try:
            yield s
        finally:
            s.close()
    finally:
        trace_nb.set_default_llm(None)


def test_a_proposal_the_reviewer_rejected_is_named_so_in_the_next_prompt(fake_server):
    replies = [reply({"rejected_level": 5}), reply({"rejected_level": 6})]
    with graded_session(fake_server, "rejected", replies) as s:
        s.propose()
        s.reject()
        s.propose()  # Propose pressed again after Reject
    second = user_prompts(fake_server)[1]
    assert "- rejected_level = 5: valid, rejected by the reviewer" in second


def test_a_proposal_approved_then_restored_is_named_so_in_the_next_prompt(fake_server):
    # Approve, then restore the old version, then Propose: the values are as they were,
    # so the record is shown again, and it must not call the applied value "not applied".
    replies = [reply({"restored_level": 5}), reply({"restored_level": 6})]
    with graded_session(fake_server, "restored", replies) as s:
        s.propose()
        s.approve()
        s.restore_version("restored_level", 0)
        s.propose()
    second = user_prompts(fake_server)[1]
    assert "(int) restored_level=3" in second
    assert "1 suggestion(s) were made and none is in effect now" in second
    assert "- restored_level = 5: applied, then undone (the earlier values were restored)" in (
        second
    )


# -- 2. values in their own form ----------------------------------------------------------


def test_a_string_in_its_repr_quotes_is_unwrapped():
    g = greeting()
    with FakeOpenAIServer(replies=[reply({"greeting": "'HELLO THERE'"})]) as srv:
        props = OptoPrime([g], llm=make_llm(srv)).step()
    assert g.data == "HELLO THERE" and props[0].unwrapped


def test_quotes_the_current_value_has_are_kept():
    g = node("'quoted'", name="q", trainable=True)
    (g + "!").backward("change it")
    with FakeOpenAIServer(replies=[reply({"q": "'other'"})]) as srv:
        props = OptoPrime([g], llm=make_llm(srv)).step()
    assert g.data == "'other'" and not props[0].unwrapped


def test_a_human_edit_is_taken_as_typed():
    g = greeting()
    with FakeOpenAIServer(replies=[reply({"greeting": "HI"})]) as srv:
        props = OptoPrime([g], llm=make_llm(srv)).propose()
    assert props[0].revalidate("'hi'").new == "'hi'"


def parse_price(text):
    return float(text)


def failing_parse_price():
    """A fresh trainable ``parse_price`` whose call on "$3" failed, with that feedback."""
    fn = bundle(trainable=True)(parse_price)
    try:
        fn("$3")
    except ExecutionError as e:
        e.exception_node.backward("parse_price('$3') raised ValueError; expected 3.0")
    return fn


def test_a_label_form_code_suggestion_is_refused_with_what_to_send_then_repaired():
    fn = failing_parse_price()
    name = fn.parameter.name
    fixed = "def parse_price(text):\n    return float(text.strip('$'))\n"
    with FakeOpenAIServer(
        replies=[reply({name: "(float) text=text.lstrip()"}), reply({name: fixed})]
    ) as srv:
        opt = OptoPrime([fn.parameter], llm=make_llm(srv))
        props = opt.step(approve_code=True)
        follow_up = user_prompts(srv)[1]
    first = opt.log[0].proposals[0]
    assert first.code is Refusal.CODE_FORM
    assert "not a definition of the function" in first.reason
    assert "starts with `def parse_price(text):`" in first.reason
    assert "starts with `def parse_price(text):`" in follow_up
    assert props[0].valid and props[0].attempt == 2
    assert fn("$3").data == 3.0


def test_a_definition_in_one_pair_of_parentheses_is_used_without_them():
    fn = failing_parse_price()
    name = fn.parameter.name
    wrapped = "(def parse_price(text):\n    return float(text.strip('$')))"
    with FakeOpenAIServer(replies=[reply({name: wrapped})]) as srv:
        props = OptoPrime([fn.parameter], llm=make_llm(srv)).propose()
    assert props[0].valid and props[0].new.startswith("def parse_price(text):")
    assert props[0].new.rstrip().endswith("float(text.strip('$'))")


# -- issue 23 item 23: candidates with an LLM object that takes no temperature -------------


class PlainChat:
    """The documented interface: chat(messages, json_schema=, max_tokens=), over HTTP."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def chat(self, messages, json_schema=None, max_tokens=None):
        body = json.dumps({"model": "m", "messages": messages}).encode()
        request = urllib.request.Request(
            self.base_url + "/chat/completions",
            body,
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as f:
            text = json.load(f)["choices"][0]["message"]["content"]
        return type("Reply", (), {"text": text, "usage": None})()


def test_candidates_work_with_an_llm_whose_chat_takes_no_temperature():
    g = greeting()
    with FakeOpenAIServer(
        replies=[reply({"greeting": "HI"}), reply({"greeting": "HEY"}), reply({"greeting": "HI"})]
    ) as srv:
        opt = OptoPrime([g], llm=PlainChat(srv.base_url), candidates=3)
        with pytest.warns(UserWarning, match="takes no temperature"):
            props = opt.propose()
        assert len(srv.requests) == 3
        assert all("temperature" not in r for r in srv.requests)
    # The repeat is dropped; the two different suggestions remain as candidates 0 and 1.
    assert sorted(p.new for p in props) == ["HEY", "HI"]
    assert sorted(p.candidate for p in props) == [0, 1]


# -- 3. best of k in the benchmark ---------------------------------------------------------


def test_optoprime_k3_applies_the_candidate_that_scores_best_and_not_the_others():
    from trace_nb.bench.methods import get_method

    x = node(1, name="k3_x", trainable=True)
    (x * 2).backward("The output should be 14.")
    by_temperature = {0.0: 3, 0.5: 7, 1.0: 9}
    seen = []

    def scorer():
        seen.append(x.data)
        return -abs(x.data - 7)

    with FakeOpenAIServer(
        replies=lambda r: reply({"k3_x": by_temperature[r["temperature"]]})
    ) as srv:
        method = get_method("optoprime_k3")
        opt = method.build([x], make_llm(srv), "", 400)
        props = method.step(opt, scorer)
    assert x.data == 7 and sorted(seen) == [1, 3, 7, 9]  # each candidate once, and the values
    status = {p.new: p.status for p in props}
    assert status == {3: "not_chosen", 7: "approved", 9: "not_chosen"}  # as decide() marks them


def k3_step(x, scorer):
    """One optoprime_k3 step on ``x`` whose candidates are 2, 3 and 4 (temperatures 0, 0.5,
    1): the optimizer, the step's proposals and the next step's prompt."""
    from trace_nb.bench.methods import get_method

    with FakeOpenAIServer(replies=lambda r: reply({x.name: 2 + int(2 * r["temperature"])})) as srv:
        method = get_method("optoprime_k3")
        opt = method.build([x], make_llm(srv), "", 400)
        props = method.step(opt, scorer)
        return opt, props, opt.messages()[-1]["content"]


def test_optoprime_k3_keeps_the_values_when_every_candidate_scores_worse():
    from trace_nb.bench import counters

    x = node(6, name="k3_keep", trainable=True)
    (x * 2).backward("The output should be 14.")
    seen = []

    def scorer():
        seen.append(x.data)
        return -abs(x.data - 7)

    opt, props, nxt = k3_step(x, scorer)  # candidates 2, 3, 4
    # The next step's prompt says how each candidate did, not just "not applied".
    assert x.data == 6  # 2, 3 and 4 are all further from 7 than 6 is
    assert sorted(seen) == [2, 3, 4, 6]  # each candidate once, and the current values
    assert [p.status for p in props] == ["not_chosen"] * 3
    assert ATTEMPTS_HEADER in nxt and "3 suggestion(s)" in nxt
    for value, score in ((2, -5), (3, -4), (4, -3)):
        assert (
            f"k3_keep = {value}: valid, but it scored {score:.2f} on the examples where the "
            "current values scored -1.00, so it was not applied"
        ) in nxt
    counts = counters.empty()
    counters.count_step(counts, opt, 0, props, [])
    assert (counts["kept_steps"], counts["wasted_steps"]) == (1, 0)


def test_a_candidate_that_breaks_the_program_is_not_applied_and_the_next_prompt_says_why():

    x = node(6, name="k3_broken", trainable=True)
    (x * 2).backward("The output should be 14.")

    def scorer():
        if x.data != 6:
            raise ZeroDivisionError("the candidate's value broke the program")
        return 0.5

    _, props, nxt = k3_step(x, scorer)  # candidates 2, 3, 4
    assert x.data == 6 and [p.status for p in props] == ["not_chosen"] * 3
    assert (
        "k3_broken = 3: valid, but the program failed on the examples with it, so it was not "
        "applied"
    ) in nxt


def test_best_of_k_without_a_scorer_takes_the_first_candidate():
    from trace_nb.bench.methods import get_method

    x = node(1, name="k3_y", trainable=True)
    (x * 2).backward("bigger")
    with FakeOpenAIServer(replies=lambda r: reply({"k3_y": 2 + int(2 * r["temperature"])})) as srv:
        method = get_method("optoprime_k3")
        props = method.step(method.build([x], make_llm(srv), "", 400), None)
    assert x.data == 2 and sum(p.status == "approved" for p in props) == 1


def test_the_repair_message_spells_out_the_variables_the_feedback_reached():
    g = greeting()
    other = node(3, name="untouched", trainable=True)
    with FakeOpenAIServer(
        replies=[reply({"greeting": "hello there"}), reply({"greeting": "HI"})]
    ) as srv:
        OptoPrime([g, other], llm=make_llm(srv)).step()
        follow_up = user_prompts(srv)[1]
    assert "- greeting: the new text itself" in follow_up and "untouched" not in follow_up


def test_the_repair_message_names_the_number_to_move_away_from_not_an_example():
    # Qwen2.5-Coder-0.5B answered "a number, e.g. 2.5" with x0 = 2.5: no example value is
    # given, the current value is.
    x, n, flag = (
        node(3.97, name="x0", trainable=True),
        node(4, name="n", trainable=True),
        node(True, name="flag", trainable=True),
    )
    (x * n + flag).backward("Make the output larger.")
    same = reply({"x0": 3.97, "n": 4, "flag": True})
    with FakeOpenAIServer(replies=[same, same]) as srv:
        OptoPrime([x, n, flag], llm=make_llm(srv)).step()
        follow_up = user_prompts(srv)[1]
    assert "- x0: a number other than its current value 3.97" in follow_up
    assert "- n: a whole number other than its current value 4" in follow_up
    assert "- flag: true or false (not true, its current value)" in follow_up
    assert "e.g." not in follow_up


def test_code_whose_newlines_were_dropped_is_read_back_from_its_indentation():
    from trace_nb.optim.codecheck import validate_code

    current = "def running_max(xs):\n    return xs\n"
    one_line = (
        "def running_max(xs):    out, best = [], 0    for x in xs:        if x > best:"
        "            best = x        out.append(best)    return out"
    )
    code = validate_code(current, one_line)
    namespace: dict = {}
    exec(code, namespace)  # the rebuilt function runs right
    assert namespace["running_max"]([1, 3, 2, 5]) == [1, 3, 3, 5]
    two = "def running_max(xs):  out = []  for x in xs:    out.append(x)  return out"
    assert validate_code(current, two).splitlines()[2] == "  for x in xs:"


def test_code_whose_string_escapes_the_json_reader_decoded_is_read_back():
    """``split('\\n')`` written in a JSON string as ``split('\\n')`` arrives with a real
    newline inside the literal (20 refusals on bbh_word_sorting with the 1.5B model)."""
    from trace_nb.optim.codecheck import validate_code
    from trace_nb.optim.codeparse import decoded_escapes

    def extract_answer(response):
        """Return the final answer contained in the model's response."""
        return response

    fn = bundle(trainable=True)(extract_answer)
    name = fn.parameter.name
    fn("Let me think.\nAnswer: 7").backward("Wrong: the expected answer is '7'.")
    sent = r"""{"reasoning": "take the last line", "suggestion": {"NAME": "def extract_answer(response):\n    lines = response.strip().split('\n')  # the last line's answer\n    return lines[-1].replace(\"Answer:\", \"\").strip()\n"}}"""
    with FakeOpenAIServer(replies=[sent.replace("NAME", name)]) as srv:
        (p,) = OptoPrime(fn.parameters(), llm=make_llm(srv), repair=0).propose()
    assert p.valid, p.reason
    assert "split('\\n')" in p.new and "# the last line's answer" in p.new
    namespace: dict = {}
    exec(p.new, namespace)
    assert namespace["extract_answer"]("Let me think.\nAnswer: 7") == "7"
    # Nothing to rescue, and code that still does not parse keeps its own error.
    assert decoded_escapes("def f():\n    return 'a'  # it's\n") == []
    with pytest.raises(CoercionError, match="unterminated string literal"):
        validate_code(p.new, "def extract_answer(response):\n    return f('\n\n")
    # With the escape read back, the error that is left is the one reported (seen on the
    # 0.5B model: a stray brace after the code).
    with pytest.raises(CoercionError, match=r"unmatched '\}'"):
        validate_code(p.new, "def extract_answer(response): return response.split('\n')}")
