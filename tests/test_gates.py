"""Review gates for Auto (issue 17 §5): a rule decides what waits for a human; waiting
proposals queue (with a count) while the run goes on, or the run pauses."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import ipython_shell, make_llm

import trace_nb
from trace_nb.notebook import session as sessions
from trace_nb.notebook.ui.panel import Panel
from trace_nb.optim.gates import GateContext, resolve
from trace_nb.testing import FakeOpenAIServer


def reply(**suggestion):
    return json.dumps({"reasoning": "r", "suggestion": suggestion})


@pytest.fixture
def panel():
    ip = ipython_shell()
    ip.run_cell(
        textwrap.dedent("""
        def gate_grade(out):
            return (1.0 if out.endswith("!") else 0.0, "end with an exclamation mark")
        """)
    )
    replies = [
        reply(tone="calm!", style="Long\nmulti\nline\nstyle"),
        reply(tone="calmer!"),
        reply(tone="calmest!"),
    ]
    with FakeOpenAIServer(replies=replies) as srv:
        sessions.set_default_llm(make_llm(srv))
        ip.run_cell_magic(
            "trace",
            "--name gates --param tone --param style --feedback gate_grade --no-panel --reset",
            "tone = 'calm'\nstyle = 'Short'\nout = style + tone\nout\n",
        )
        p = Panel(trace_nb.session("gates"))
        try:
            yield p
        finally:
            p.close()
            sessions.set_default_llm(None)


def test_waiting_proposals_queue_while_the_run_goes_on(panel):
    s = panel.session
    panel.auto(2, review="diff>2")  # the 4-line style change waits; the tone applies
    assert panel.wait(60)
    assert "auto run finished after 2 of 2" in panel.status.value
    assert s.parameters["style"] == "Short" and s.parameters["tone"] == "calmer!"
    assert [p.name for p in s.waiting] == [
        "style"
    ] and "1 waiting for review" in panel.proposals_heading.value
    panel.approve("style")  # a human decides later
    assert (
        s.parameters["style"].startswith("Long") and "waiting" not in panel.proposals_heading.value
    )


def test_pause_when_the_rule_says_so(panel):
    s = panel.session
    panel.auto(2, review="diff>2", pause=True)
    assert panel.wait(60)
    assert "paused at step 1/2" in panel.status.value and "style" in panel.status.value
    assert s.parameters["tone"] == "calm!" and s.parameters["style"] == "Short"


def test_rules_and_presets():
    class P:
        is_code, old, new = False, "a", "a\nb\nc"

    ctx = GateContext(round=3)
    assert resolve("diff>1")(P(), ctx) and not resolve("diff>2")(P(), ctx)
    assert resolve("every:3")(P(), ctx) and not resolve("every:2")(P(), ctx)
    assert not resolve("code")(P(), ctx) and resolve(["code", "diff>1"])(P(), ctx)
    assert resolve(lambda p, c: c.round == 3)(P(), ctx)
    with pytest.raises(ValueError, match="unknown review rule"):
        resolve("sometimes")


def test_gate_no_regression_keeps_a_value_that_previews_worse(panel):
    s = panel.session
    s.shell.user_ns["gate_grade"] = lambda out: (0.0 if "calm!" in out else 1.0, "no calm")
    panel.auto(1, gate="no_regression")  # "calm!" would score 0 where "calm" scores 1
    assert panel.wait(60)
    waiting = {p.name for p in s.waiting}
    assert "tone" in waiting and s.parameters["tone"] == "calm"
    tone = next(p for p in s.waiting if p.name == "tone")
    assert tone.preview.regressions == 1 and tone.preview.mean_after == 0.0


def test_train_keeps_what_the_review_rule_or_the_gate_holds():
    """trace_nb.train(review=..., gate="no_regression"): held proposals are not applied but
    returned in result.waiting; the gate previews on the step's minibatch."""
    from trace_nb import node
    from trace_nb.training import train

    offset = node(0, name="gate_offset", trainable=True)
    examples = [{"x": i, "target": i + 5} for i in range(4)]

    def workflow(example):
        return node(example["x"], name="x") + offset

    def feedback(example, output):
        diff = example["target"] - output
        return 1.0 / (1.0 + abs(diff)), f"off by {diff}"

    bad = json.dumps({"reasoning": "r", "suggestion": {"gate_offset": -20}})  # much worse
    good = json.dumps({"reasoning": "r", "suggestion": {"gate_offset": 5}})
    with FakeOpenAIServer(replies=[bad, good]) as srv:
        opt = trace_nb.OptoPrime([offset], llm=make_llm(srv))
        result = train(
            workflow,
            examples,
            feedback,
            opt,
            batch_size=4,
            epochs=2,
            progress=False,
            max_workers=1,
            gate="no_regression",
        )
    assert offset.data == 5  # the good value applied, the bad one held
    assert [p.new for p in result.waiting] == [-20] and result.waiting[0].preview.regressions == 4
    with FakeOpenAIServer(replies=[good]) as srv:
        offset.set_value(0)
        opt = trace_nb.OptoPrime([offset], llm=make_llm(srv))
        result = train(
            workflow,
            examples,
            feedback,
            opt,
            batch_size=4,
            epochs=1,
            progress=False,
            max_workers=1,
            review=lambda p, ctx: ctx.round == 1,
        )
    assert offset.data == 0 and [p.new for p in result.waiting] == [5]


def _train_two_candidates(name: str, start: int, values: dict[float, int]):
    """One training step of ``offset + x`` towards ``x + 5`` with two candidates; ``values``
    maps each candidate's temperature to the offset it suggests."""
    from trace_nb import node
    from trace_nb.training import train

    offset = node(start, name=name, trainable=True)
    examples = [{"x": i, "target": i + 5} for i in range(4)]

    def workflow(example):
        return node(example["x"], name="x") + offset

    def feedback(example, output):
        return 1.0 / (1.0 + abs(example["target"] - output)), "off"

    def reply(request):
        value = values[request.get("temperature", 0.0)]
        return json.dumps({"reasoning": "r", "suggestion": {name: value}})

    with FakeOpenAIServer(replies=reply) as srv:
        opt = trace_nb.OptoPrime([offset], llm=make_llm(srv), candidates=2)
        result = train(
            workflow, examples, feedback, opt, batch_size=4, epochs=1, progress=False, max_workers=1
        )
    statuses = [p["status"] for e in opt.log_json()[-2:] for p in e["proposals"]]
    row = result.history[-1]
    assert row["kept"] is (row["changed"] == [] and "not_chosen" in statuses)
    return offset.data, row["candidate"], statuses


def test_train_picks_the_best_candidate_on_the_minibatch():
    value, candidate, statuses = _train_two_candidates("cand_offset", 0, {0.0: 2, 1.0: 5})
    assert value == 5 and candidate == 1  # 5 is right
    # The candidate that lost is recorded as not chosen, not applied and not deleted.
    assert sorted(statuses) == ["approved", "not_chosen"]


def test_train_keeps_the_values_when_every_candidate_is_worse_on_the_minibatch():
    # Both suggestions are further from 5 than the current 4 is: neither is applied.
    value, candidate, statuses = _train_two_candidates("keep_offset", 4, {0.0: 1, 1.0: 9})
    assert value == 4 and candidate is None
    assert statuses == ["not_chosen", "not_chosen"]


def test_auto_on_a_paused_run_takes_new_settings_or_says_why(panel):
    s = panel.session
    panel.auto(2, review="diff>2", pause=True)
    assert panel.wait(60) and "paused at step 1/2" in panel.status.value
    # Rules that are not rules, and too few steps, are refused; the run stays paused.
    with pytest.raises(ValueError, match=r"unknown review rule 'bogus'.*'diff>N', 'every:K'"):
        panel.auto(review="bogus")
    with pytest.raises(TypeError, match=r"review rule 42 \(int\) is not a rule.*'regression'"):
        panel.auto(review=42)
    assert "not a rule" in panel.error_area.value
    # New settings apply to the paused run: no rule now, and three steps in all.
    panel.auto(3, review="none")
    assert panel.wait(60)
    assert "auto run finished after 3 of 3" in panel.status.value
    assert s.parameters["style"].startswith("Long") and s.parameters["tone"] == "calmest!"
    assert panel.progress.max == 3


def test_steps_that_would_end_a_paused_run_early_are_refused(panel):
    panel.auto(2, review="diff>2", pause=True)
    assert panel.wait(60) and "paused at step 1/2" in panel.status.value
    with pytest.raises(ValueError, match=r"paused in step 1 of 2: steps=0 would end it"):
        panel.auto(0)
    panel.auto()  # resumes as it was: still paused on the rule
    assert panel.wait(60) and "paused at step 1/2" in panel.status.value


def test_a_rule_that_is_not_one_names_the_valid_rules():
    with pytest.raises(TypeError, match=r"review rule 42 \(int\) is not a rule: use a callable"):
        resolve(42)
    with pytest.raises(TypeError, match="is not a rule"):
        resolve(["code", 3.5])


def test_train_refuses_a_rule_that_is_not_one_before_running_anything():
    from trace_nb import node
    from trace_nb.training import train

    offset = node(0, name="rule_offset", trainable=True)
    ran = []

    def workflow(example):
        ran.append(example)
        return offset + example

    opt = trace_nb.OptoPrime([offset], llm=object())
    with pytest.raises(TypeError, match=r"review rule 42 \(int\) is not a rule"):
        train(workflow, [1, 2], lambda e, o: 1.0, opt, review=42, progress=False)
    with pytest.raises(ValueError, match=r"unknown review rule 'bogus'"):
        train(workflow, [1, 2], lambda e, o: 1.0, opt, gate="bogus", progress=False)
    assert ran == []


def test_training_counts_an_invalid_candidate_when_only_one_candidate_is_valid():
    """With ``candidates=2`` and one candidate's suggestion invalid there is no choice to
    make: the valid one is applied and the history row still counts the invalid one."""
    from trace_nb import node
    from trace_nb.training import train

    offset = node(0, name="cand_offset_bad", trainable=True)
    examples = [{"x": i, "target": i + 5} for i in range(4)]

    def workflow(example):
        return node(example["x"], name="x") + offset

    def feedback(example, output):
        return 1.0 / (1.0 + abs(example["target"] - output)), "off"

    values = {0.0: 5, 1.0: "five"}  # temperature -> suggested offset; "five" is invalid

    def reply(request):
        value = values[request.get("temperature", 0.0)]
        return json.dumps({"reasoning": "r", "suggestion": {"cand_offset_bad": value}})

    with FakeOpenAIServer(replies=reply) as srv:
        # repair=0: one reply per candidate (a repair turn would add its own refusals; see
        # tests/test_repair.py), so exactly one invalid proposal is there to count.
        opt = trace_nb.OptoPrime([offset], llm=make_llm(srv), candidates=2, repair=0)
        result = train(
            workflow,
            examples,
            feedback,
            opt,
            batch_size=4,
            epochs=1,
            progress=False,
            max_workers=1,
            max_steps=1,
        )
    row = result.history[-1]
    assert offset.data == 5 and row["changed"] == ["cand_offset_bad"]
    assert row["invalid"] == 1, row
