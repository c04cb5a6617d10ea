"""The one step policy (issue 23 items 1-3 and 5, issue 24 item 3): no automatic path runs
LLM code nobody approved (not to preview it, not to score a candidate), an invalid
proposal is never previewed, and at most one candidate is applied.

The LLM's code here records every call in ``RAN`` (a list in the notebook): a test that
finds it empty knows the code never ran. Panels run in a real InteractiveShell against
the loopback LLM server and are driven by their Python methods."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import ipython_shell, make_llm

import trace_nb
from trace_nb import node
from trace_nb.graph import ParameterNode
from trace_nb.notebook import session as sessions
from trace_nb.notebook.ui.panel import Panel
from trace_nb.optim.policy import Decision, HoldReason, decide
from trace_nb.optim.proposal import check
from trace_nb.testing import FakeOpenAIServer

SPY_CODE = textwrap.dedent('''\
    def shout(text):
        """Upper-case the text."""
        RAN.append(text)
        return text.upper() + "!"
    ''')


def reply(**suggestion):
    return json.dumps({"reasoning": "r", "suggestion": suggestion})


def _code_param():
    # No loader: nothing can run this code here; decide() must not even try.
    return ParameterNode(SPY_CODE.replace("RAN.append(text)\n    ", ""), "shout", is_code=True)


# -- decide(), on its own ----------------------------------------------------------------


def test_code_is_held_never_previewed_or_scored_without_approve_code():
    code, tone = _code_param(), node("calm", name="tone", trainable=True)
    props = [check(code, SPY_CODE), check(tone, "calm!")]
    looked = []
    d = decide(props, "regression", previewer=lambda p: looked.append(p.name) or _Clean())
    assert d.held(HoldReason.CODE) == [props[0]] and d.apply == [props[1]]
    assert looked == ["tone"]  # the rule previewed only what may run
    assert "approves it" in d.hold[0].text
    d = decide(props, "regression", True, previewer=lambda p: looked.append(p.name) or _Clean())
    assert d.apply == props and looked == ["tone", "shout"]  # tone's preview was kept


def test_invalid_proposals_are_never_previewed_held_or_applied():
    tone = node(3, name="tone_n", trainable=True)
    bad = check(tone, "not a number")
    assert not bad.valid
    d = decide([bad], "regression", previewer=lambda p: pytest.fail("previewed"))
    assert d == Decision()


def test_one_candidate_is_chosen_by_score_and_the_others_are_not_chosen():
    tone = node("calm", name="tone_c", trainable=True)
    props = [check(tone, v) for v in ("a", "bb", "c")]
    for k, p in enumerate(props):
        p.candidate = k
    d = decide(props, scorer=lambda group: len(group[0].new))
    assert d.candidate == 1 and d.apply == [props[1]] and d.not_chosen == [props[0], props[2]]
    assert d.scores == {0: 1, 1: 2, 2: 1}
    d.mark_not_chosen()
    assert [p.status for p in props] == ["not_chosen", "pending", "not_chosen"]
    # Without a scorer the first candidate (the lowest temperature) wins.
    for p in props:
        p.status = "pending"
    assert decide(props).apply == [props[0]]


def test_candidates_that_all_score_below_the_current_values_are_not_applied():
    tone = node("calm", name="tone_k", trainable=True)
    props = [check(tone, v) for v in ("a", "bb", "c")]
    for k, p in enumerate(props):
        p.candidate = k
    d = decide(props, scorer=lambda group: len(group[0].new), current_score=3)
    assert d.kept and d.apply == [] and d.candidate is None and d.not_chosen == props
    assert d.scores == {0: 1, 1: 2, 2: 1}  # measured, and shown why
    d.mark_not_chosen()
    assert [p.status for p in props] == ["not_chosen"] * 3
    for p in props:
        p.status = "pending"
    # A tie applies the best candidate; so does a current score that is unknown.
    for current in (2, None):
        d = decide(props, scorer=lambda group: len(group[0].new), current_score=current)
        assert not d.kept and d.apply == [props[1]]
    # One candidate left (the others repeated it) is measured against the values too.
    d = decide(props[:1], scorer=lambda group: 1, current_score=2)
    assert d.kept and d.apply == [] and d.not_chosen == props[:1]
    assert decide(props[:1], scorer=lambda group: 1).apply == props[:1]
    # ...but never by running code nobody approved: the code waits, the value goes on.
    code = _code_param()
    mixed = [check(code, SPY_CODE), check(tone, "calm!")]
    for p in mixed:
        p.candidate = 0
    d = decide(mixed, scorer=lambda group: pytest.fail("scored"), current_score=1)
    assert d.held(HoldReason.CODE) == mixed[:1] and d.apply == mixed[1:] and not d.kept


def test_candidates_that_cannot_be_scored_where_the_values_can_are_not_applied():
    tone = node("calm", name="tone_u", trainable=True)
    props = [check(tone, v) for v in ("a", "b")]
    for k, p in enumerate(props):
        p.candidate = k
    d = decide(props, scorer=lambda group: None, current_score=0.5)
    assert d.kept and d.apply == [] and d.not_chosen == props
    # Nothing scored on either side (no scorer's scale to compare): the first is applied.
    assert decide(props, scorer=lambda group: None, current_score=None).apply == props[:1]


def test_candidates_with_code_are_left_to_a_human_unscored():
    code, tone = _code_param(), node("calm", name="tone_d", trainable=True)
    props = [check(code, SPY_CODE), check(tone, "calm!"), check(tone, "calm?")]
    props[0].candidate = props[1].candidate = 0
    props[2].candidate = 1
    d = decide(props, scorer=lambda group: pytest.fail("scored"))
    assert d.apply == [] and d.held(HoldReason.CODE) == props and d.candidate is None
    d = decide(props, approve_code=True, scorer=lambda group: group[0].candidate)
    assert d.candidate == 1 and d.apply == [props[2]]


class _Clean:
    regressions = 0


# -- the panel's Auto --------------------------------------------------------------------


@pytest.fixture
def ip():
    shell = ipython_shell()
    shell.run_cell(
        textwrap.dedent('''
        RAN = []
        def shout(text):
            """Upper-case the text."""
            return text.upper()
        def loud(out):
            return (1.0 if out.endswith("!") else 0.0, "end with an exclamation mark")
        ''')
    )
    yield shell
    sessions.set_default_llm(None)


def _panel(ip, srv, line, name):
    sessions.set_default_llm(make_llm(srv))
    ip.run_cell_magic(
        "trace",
        f"--name {name} --param tone --code shout --feedback loud --no-panel --reset {line}",
        "tone = 'calm'\nout = shout(tone)\nout\n",
    )
    return Panel(trace_nb.session(name))


def test_auto_with_a_regression_gate_never_previews_unapproved_code(ip):
    with FakeOpenAIServer(replies=[reply(code_shout=SPY_CODE, tone="calmer")]) as srv:
        panel = _panel(ip, srv, "", "policy_gate")
        try:
            panel.auto(1, review="regression", gate="no_regression")
            assert panel.wait(60)
            s = panel.session
            assert ip.user_ns["RAN"] == []  # the LLM's code never ran
            assert "paused" in panel.status.value and "shout" in panel.status.value
            code = panel.proposal_view("code_shout").proposal
            assert code.status == "pending" and getattr(code, "preview", None) is None
            assert s.parameters["tone"] == "calmer"  # the value was previewed and applied
        finally:
            panel.close()


def test_auto_with_code_candidates_runs_none_of_them(ip):
    def by_temperature(request):
        t = request.get("temperature", 0.0)
        return reply(code_shout=SPY_CODE.replace("!", "?" if t else "!"), tone=f"calm{t}")

    with FakeOpenAIServer(replies=by_temperature) as srv:
        panel = _panel(ip, srv, "--candidates 2", "policy_cands")
        try:
            panel.auto(1)
            assert panel.wait(60)
            s = panel.session
            assert ip.user_ns["RAN"] == []  # no candidate's code ran to score it
            assert "paused" in panel.status.value
            assert {p.status for p in s.proposals} == {"pending"}
            assert s.parameters["tone"] == "calm"  # nothing applied: a human chooses
            s.choose(1)  # the human's pick is the approval
            assert s.parameters["tone"] == "calm0.5" or s.parameters["tone"].startswith("calm")
            assert sorted(p.status for p in s.proposals) == [
                "approved",
                "approved",
                "not_chosen",
                "not_chosen",
            ]
        finally:
            panel.close()


def test_preview_of_an_invalid_candidate_is_refused_and_runs_nothing(ip):
    # Refused by the checker (a statement beside the function), yet it would run if loaded.
    refused = "RAN.append('top-level')\n" + SPY_CODE
    replies = [reply(code_shout=SPY_CODE), reply(code_shout=refused)]
    seq = iter(replies)
    with FakeOpenAIServer(replies=lambda request: next(seq)) as srv:
        panel = _panel(ip, srv, "--candidates 2", "policy_invalid")
        try:
            s = panel.session
            s.feedback("end with !")
            s.propose()
            bad = [p for p in s.proposals if not p.valid]
            assert bad, [p.reason for p in s.proposals]
            with pytest.raises(ValueError, match=r"candidate \d's proposal for 'shout' is invalid"):
                s.preview("shout", candidate=bad[0].candidate)
            with pytest.raises(ValueError, match=r"the code given for 'shout' is refused"):
                s.preview("shout", refused)  # the same code, given by hand
            assert ip.user_ns["RAN"] == []
        finally:
            panel.close()


def test_a_candidates_value_card_says_its_approve_also_applies_that_candidates_code(ip):
    """Approve on a candidate's card picks the whole candidate (``choose``), code included:
    on a value card that click must say so, or code would run that nobody knew they
    approved (the card offered to "apply this value")."""

    def by_temperature(request):
        t = request.get("temperature", 0.0)
        return reply(code_shout=SPY_CODE, tone=f"calm{t}")

    with FakeOpenAIServer(replies=by_temperature) as srv:
        panel = _panel(ip, srv, "--candidates 2", "policy_card")
        try:
            panel.session.feedback("end with !")
            panel.propose()
            assert panel.wait(60)
            tone = [v for v in panel.proposal_views if v.proposal.name == "tone"]
            code = [v for v in panel.proposal_views if v.proposal.is_code]
            assert len(tone) == 2 and len(code) == 2
            for view in tone:
                button = view.approve_button
                assert "code" in button.description, button.description
                assert "shout" in button.tooltip and "runs" in button.tooltip
            assert {v.approve_button.description for v in code} == {"Approve"}
        finally:
            panel.close()


def test_a_value_only_candidates_card_keeps_its_plain_approve(ip):
    def by_temperature(request):
        return reply(tone=f"calm{request.get('temperature', 0.0)}")

    with FakeOpenAIServer(replies=by_temperature) as srv:
        panel = _panel(ip, srv, "--candidates 2", "policy_card_values")
        try:
            panel.session.feedback("end with !")
            panel.propose()
            assert panel.wait(60)
            assert {v.approve_button.description for v in panel.proposal_views} == {"Approve"}
        finally:
            panel.close()
