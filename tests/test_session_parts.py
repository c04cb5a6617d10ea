"""The parts a session is made of (issue 24, item 1) and its state API: ``to_state`` /
``read_session`` round-trip, the parameter set's change signal, and that the parts hold no
strong reference back to the session (a dropped session is freed without the collector)."""

from __future__ import annotations

import gc
import weakref

from trace_nb.notebook.parameters import ParameterSet
from trace_nb.notebook.session import TraceSession, read_session


def test_state_round_trips_through_a_file(tmp_path):
    s = TraceSession("parts_state", register=False)
    s.params.parameter("level", 3, "how high", "positive")
    s.rows = [{"step": 0, "score": 0.5, "output": "x"}]
    s.lineage.start("level", 3)
    s.lineage.accept("level", 4, source="proposal", step=0, reasoning="higher", decided_by="human")
    s.save(str(tmp_path / "s.json"))
    loaded = read_session(str(tmp_path / "s.json"), like=s)
    assert loaded is not s and loaded.to_state() == s.to_state()
    assert loaded.parameters == {"level": 3}
    assert loaded.params.find("level").constraint == "positive"
    assert loaded.versions("level")["value"].tolist() == [3, 4]


def test_the_parameter_set_signals_only_real_changes():
    changes = []
    params = ParameterSet(on_change=lambda: changes.append(1))
    params.parameter("a", 1)
    params.parameter("a", 2, "described")  # the same parameter again: no change of set
    assert len(changes) == 1 and params.values() == {"a": 1}
    assert params.find("a").description == "described"

    def shout(text):
        return text.upper()

    assert params.code_bundle(shout, ["other"]) is None and len(changes) == 1
    bundle = params.code_bundle(shout, ["shout"])
    assert params.code_bundle(shout, ["shout"]) is bundle and len(changes) == 2
    ns: dict = {}
    params.publish_code(ns)
    assert ns["shout"]("a") == "A"


def test_module_values_from_a_file_are_kept_until_the_module_comes():
    params = ParameterSet()
    params.load({}, {}, {"agent": {"parameters": {"tone": "calm"}}})
    assert params.to_state()["modules"] == {"agent": {"parameters": {"tone": "calm"}}}
    assert params.names() == ({"agent"}, set())


def test_a_dropped_session_is_freed_without_the_garbage_collector():
    gc.disable()
    try:
        s = TraceSession("parts_drop", register=False)
        s.params.parameter("level", 1)
        ref = weakref.ref(s)
        del s
        assert ref() is None  # no cycle through the parts' callbacks
    finally:
        gc.enable()
