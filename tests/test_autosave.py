"""Autosave and restore: approved values survive a kernel restart, offered (not forced)."""

from __future__ import annotations

import html
import json
import os
import pathlib

import pytest
import test_panel
from test_panel import GREETING, reply, trace

from trace_nb.notebook import session as sessions
from trace_nb.notebook.persist import SessionFileError

# The panel tests' fixtures: one shell, a default LLM per test, sessions freed after each.
ip, isolate, servers = test_panel.ip, test_panel.isolate, test_panel.servers


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACE_NB_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def restart(name: str) -> None:
    """What a kernel restart does to the registry: the live session is gone."""
    sessions.session(name).close()


def approved_panel(ip, servers):
    servers([reply({"salutation": "Ahoy"})])
    panel = trace(ip, GREETING)
    panel.propose()
    assert panel.wait(30)
    panel.approve("salutation")
    panel.run()
    return panel


def rerun(ip, name: str, extra: str = ""):
    cell = "salutation = 'hello'\nout = salutation.upper()\nout"
    return ip.run_cell_magic("trace", f"--name {name} {GREETING} {extra}", cell)


def test_every_decision_is_saved_and_offered_after_a_restart(ip, servers, state_dir):
    panel = approved_panel(ip, servers)
    name = panel.session.name
    saved = json.loads((state_dir / f"{name}.json").read_text())
    assert saved["parameters"]["salutation"]["value"] == "Ahoy" and len(saved["history"]) == 2
    assert "key" not in json.dumps(saved).lower()
    restart(name)
    fresh = rerun(ip, name)
    s = fresh.session
    # Nothing changes by itself (Run All after a restart gives the first results again)...
    assert s.parameters["salutation"] == "hello" and "HELLO" in fresh.output_view.value
    # ...but the panel says what was saved and offers it.
    assert fresh.restore_box.layout.display == ""
    assert "salutation='Ahoy'" in html.unescape(fresh.restore_note.value)
    fresh.restore_button.click()
    assert fresh.errors == []
    assert s.parameters["salutation"] == "Ahoy" and "AHOY" in fresh.output_view.value
    assert (
        "restored salutation" in fresh.status.value and fresh.restore_box.layout.display == "none"
    )
    assert [r["salutation"] for r in s.rows] == ["hello", "Ahoy", "Ahoy"]
    assert fresh.errors == []


def test_restore_flag_and_reset(ip, servers, state_dir):
    name = approved_panel(ip, servers).session.name
    restart(name)
    assert rerun(ip, name, "--restore").session.parameters["salutation"] == "Ahoy"
    restart(name)
    p = rerun(ip, name, "--reset")
    assert p.session.parameters["salutation"] == "hello" and p.restore_box.layout.display == "none"


def test_a_corrupt_autosave_is_refused_and_changes_nothing(ip, servers, state_dir):
    name = approved_panel(ip, servers).session.name
    path = state_dir / f"{name}.json"
    state = json.loads(path.read_text())
    state["parameters"]["salutation"]["value"] = 42  # a str parameter given a number
    path.write_text(json.dumps(state))
    restart(name)
    fresh = rerun(ip, name)
    with pytest.raises(SessionFileError):
        fresh.restore()
    assert "SessionFileError" in fresh.error_area.value
    assert fresh.session.parameters["salutation"] == "hello" and len(fresh.session.rows) == 1


def test_autosave_can_be_turned_off(ip, servers, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACE_NB_STATE_DIR", "off")
    approved_panel(ip, servers)
    assert not any(pathlib.Path(tmp_path).rglob("*.json"))
    assert os.listdir(tmp_path) == []
