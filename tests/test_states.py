"""Typed states (issue 24, item 4): a proposal's status and who decided it are enums that
equal the old strings; behaviour follows reason *codes*, never the wording of a message."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ipython_shell

import trace_nb
from trace_nb.optim import Proposal, proposal
from trace_nb.optim.policy import NOT_CHOSEN
from trace_nb.optim.states import DecisionSource, ProposalStatus


def test_states_are_enums_equal_to_the_old_strings():
    p = Proposal("x", None, 1, 2)
    assert p.status is ProposalStatus.PENDING and p.status == "pending"
    assert p.decided_by is None
    p.status, p.decided_by = "approved", "human"  # what an old caller or file gives
    assert p.status is ProposalStatus.APPROVED and p.decided_by is DecisionSource.HUMAN
    assert str(p.status) == "approved" and f"{p.decided_by}" == "human"
    assert json.dumps({"status": p.status, "by": p.decided_by}) == (
        '{"status": "approved", "by": "human"}'
    )
    assert NOT_CHOSEN is ProposalStatus.NOT_CHOSEN
    assert Proposal("x", None, 1, 2, status="rejected").status is ProposalStatus.REJECTED
    # A repr (the console, a list of proposals, a DataFrame of objects) shows the value.
    assert "status='approved'" in repr(p) and "decided_by='human'" in repr(p)


def test_an_unknown_state_is_refused_with_the_known_ones():
    p = Proposal("x", None, 1, 2)
    with pytest.raises(ValueError, match=r"'approvd' is not a ProposalStatus \(one of 'pending'"):
        p.status = "approvd"
    with pytest.raises(ValueError, match="is not a DecisionSource"):
        p.decided_by = "robot"
    assert p.status is ProposalStatus.PENDING and p.decided_by is None  # nothing changed


def test_restoring_the_current_value_does_not_depend_on_the_message(monkeypatch):
    # Restoring the version that is current is allowed (its check says "same value");
    # rewording that message must not change it.
    ip = ipython_shell()
    ip.run_cell_magic(
        "trace", "--name states_restore --param level --no-panel --reset", "level = 3\nlevel\n"
    )
    s = trace_nb.session("states_restore")
    monkeypatch.setattr(proposal, "SAME_VALUE", "the value did not change (reworded)")
    assert s.restore_version("level", 0) == 3
    assert s.versions("level")["source"].tolist() == ["cell", "restore"]
    s.close()


@pytest.mark.parametrize("decide", ["approve", "reject", "choose", "optimizer"])
def test_an_unknown_decided_by_changes_nothing(fake_server, decide):
    # The check comes before any value, status, version or history cell changes (it used
    # to come after the parameter was set, leaving an approved value with no version).
    from conftest import make_llm

    ip = ipython_shell()

    def reply(request):  # keyed by the node's name, whatever suffix it got
        name = re.search(r"by_level\d*", request["messages"][-1]["content"]).group()
        return json.dumps({"reasoning": "r", "suggestion": {name: 5}})

    fake_server.set_replies(reply)
    trace_nb.set_default_llm(make_llm(fake_server))
    try:
        ip.run_cell("def states_grade(out):\n    return ('higher', 0.5)\n")
        ip.run_cell_magic(
            "trace",
            "--name states_by --param by_level --feedback states_grade --no-panel --reset",
            "by_level = 3\nby_level\n",
        )
        s = trace_nb.session("states_by")
        (p,) = s.propose()
        with pytest.raises(ValueError, match=r"'Human' is not a DecisionSource \(one of 'human'"):
            if decide == "approve":
                s.approve(decided_by="Human")
            elif decide == "reject":
                s.reject(decided_by="Human")
            elif decide == "choose":
                p.candidate = 0
                s.choose(0, decided_by="Human")
            else:
                s.optimizer.apply([p], decided_by="Human")
        assert s.parameters == {"by_level": 3}
        assert p.status is ProposalStatus.PENDING and p.decided_by is None
        assert len(s.versions("by_level")) == 1
        assert (s.rows[-1]["approved"], s.rows[-1]["rejected"]) == ("", "")
        assert s.approve(decided_by="human") == [p] and s.parameters == {"by_level": 5}
        s.close()
    finally:
        trace_nb.set_default_llm(None)
        ip.user_ns.pop("by_level", None)
