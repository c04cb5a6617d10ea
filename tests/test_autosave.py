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


# -- issue 23: nothing is lost silently ------------------------------------------------------


def saved_rows(path: pathlib.Path) -> list[dict]:
    return json.loads(path.read_text())["history"]


def test_feedback_and_its_score_are_saved(ip, servers, state_dir):
    # Item 9: the --feedback function scores the run after its row was written; feedback
    # given later (the panel, %trace_feedback) changes the row too. Both reach the file.
    servers([])
    panel = trace(ip, GREETING)
    path = panel.session.autosave_path
    assert path == state_dir / f"{panel.session.name}.json"
    row = saved_rows(path)[-1]
    assert row["score"] == 0.0 and row["feedback"] == "it should start with A"
    ip.run_line_magic("trace_feedback", f'--name {panel.session.name} --score 0.5 "too plain"')
    row = saved_rows(path)[-1]
    assert row["score"] == 0.5 and row["feedback"] == "too plain"
    panel.feedback_text.value, panel.score_text.value = "better", "0.75"
    panel.send_button.click()
    assert panel.errors == [] and saved_rows(path)[-1]["score"] == 0.75


def test_work_done_while_an_offer_is_pending_is_saved_and_the_offer_kept(ip, servers, state_dir):
    # Item 8: ignore the banner, approve, restart: the work is there, and so are the
    # values the first offer would have restored.
    name = approved_panel(ip, servers).session.name
    path = state_dir / f"{name}.json"
    restart(name)
    fresh = rerun(ip, name)  # offers salutation='Ahoy'
    s = fresh.session
    assert "salutation='Ahoy'" in html.unescape(fresh.restore_note.value)
    offered = s.restorable.path
    assert offered != path and offered.parent == path.parent and offered.is_file()
    assert json.loads(offered.read_text())["parameters"]["salutation"]["value"] == "Ahoy"
    note = html.unescape(fresh.restore_note.value)
    assert f"offered values stay in {offered}" in note and f"saved to {path}" in note
    # The live work is saved while the offer waits.
    servers([reply({"salutation": "Avast"})])
    fresh.propose()
    assert fresh.wait(30)
    fresh.approve("salutation")
    assert json.loads(path.read_text())["parameters"]["salutation"]["value"] == "Avast"
    # Restoring still gives the offered values.
    fresh.restore_button.click()
    assert fresh.errors == [] and s.parameters["salutation"] == "Ahoy"
    # After a restart the newest work is offered (kept aside as soon as the new kernel's
    # run is saved); the earlier file is still on disk.
    restart(name)
    again = rerun(ip, name)
    newest = again.session.restorable
    assert newest.kept_aside and newest.path not in (path, offered) and offered.is_file()
    assert json.loads(newest.path.read_text())["history"][-1]["salutation"] == "Ahoy"
    assert saved_rows(path)[-1]["salutation"] == "hello"  # the new kernel's own run


def test_a_damaged_file_does_not_stop_autosave(ip, servers, state_dir):
    name = approved_panel(ip, servers).session.name
    path = state_dir / f"{name}.json"
    path.write_text('{"format": "trace_nb", "kind": "session", "version": 2, "name": ')
    restart(name)
    fresh = rerun(ip, name)
    note = html.unescape(fresh.restore_note.value)
    assert "the saved file cannot be read" in note and "work is saved to" in note
    damaged = fresh.session.restorable.path
    assert damaged != path and damaged.read_text().endswith('"name": ')  # kept as it was
    assert saved_rows(path)[-1]["salutation"] == "hello"  # the live run was saved
    with pytest.raises(SessionFileError):
        fresh.restore()
    fresh.run()
    assert len(saved_rows(path)) == 2 and fresh.session.autosave_error is None


def test_two_notebooks_in_one_folder_keep_their_own_files(ip, servers, state_dir, monkeypatch):
    # Item 10: the default session name in two notebooks: B is not offered A's state, and
    # B's saves do not touch A's file.
    monkeypatch.setitem(ip.user_ns, "__session__", "/home/u/work/a.ipynb")
    name = approved_panel(ip, servers).session.name
    a_files = list(state_dir.glob(f"a-*/{name}.json"))
    assert len(a_files) == 1
    a_text = a_files[0].read_text()
    restart(name)
    monkeypatch.setitem(ip.user_ns, "__session__", "/home/u/work/b.ipynb")
    b = rerun(ip, name)
    assert b.session.restorable is None and b.restore_box.layout.display == "none"
    b.run()
    assert a_files[0].read_text() == a_text
    assert len(saved_rows(next(state_dir.glob(f"b-*/{name}.json")))) == 2
    restart(name)
    monkeypatch.setitem(ip.user_ns, "__session__", "/home/u/work/a.ipynb")
    a = rerun(ip, name)
    assert a.session.restorable.path.parent == a_files[0].parent
    assert a.session.restorable.path.read_text() == a_text  # kept aside, then A saves
    assert "salutation='Ahoy'" in html.unescape(a.restore_note.value)


def test_the_notebook_comes_from_the_frontend_or_from_nowhere(ip, monkeypatch, state_dir):
    from trace_nb.notebook import autosave

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delitem(ip.user_ns, "__session__", raising=False)
    assert autosave.notebook_path(ip) is None
    assert autosave.state_path("qa", ip) == state_dir / "qa.json"  # a script: name only
    monkeypatch.setenv("JPY_SESSION_NAME", "work/b.ipynb")
    assert autosave.state_path("qa", ip).parent.name.startswith("b-")
    monkeypatch.setitem(ip.user_ns, "__vsc_ipynb_file__", "/x/c.ipynb")
    assert autosave.notebook_path(ip) == "/x/c.ipynb"
    monkeypatch.setitem(ip.user_ns, "__session__", "/x/d.ipynb")
    assert autosave.notebook_path(ip) == "/x/d.ipynb"
    # Same file name in two folders: two keys.
    assert autosave.notebook_key("/x/a.ipynb") != autosave.notebook_key("/y/a.ipynb")


def test_a_file_from_before_per_notebook_keys_is_offered_and_kept(
    ip, servers, state_dir, monkeypatch
):
    name = approved_panel(ip, servers).session.name  # no notebook known: the old layout
    old = state_dir / f"{name}.json"
    old_text = old.read_text()
    restart(name)
    monkeypatch.setitem(ip.user_ns, "__session__", "/home/u/work/a.ipynb")
    fresh = rerun(ip, name)
    assert fresh.session.restorable.path == old and fresh.session.restorable.legacy
    assert "another notebook" in html.unescape(fresh.restore_note.value)
    fresh.run()
    assert old.read_text() == old_text  # never overwritten
    fresh.restore_button.click()
    assert fresh.errors == [] and fresh.session.parameters["salutation"] == "Ahoy"
    assert fresh.session.autosave_path.parent.name.startswith("a-")


def test_a_loaded_session_keeps_autosaving(ip, servers, state_dir, tmp_path):
    # Item 11: a session made by load_session is saved on each run of its cell.
    import trace_nb

    name = approved_panel(ip, servers).session.name
    kept = tmp_path / "kept.json"
    sessions.session(name).save(str(kept))
    restart(name)
    (state_dir / f"{name}.json").unlink()
    loaded = trace_nb.load_session(str(kept))
    again = rerun(ip, name)
    assert again.session is loaded and loaded.parameters["salutation"] == "Ahoy"
    assert len(saved_rows(state_dir / f"{name}.json")) == 3


def test_load_session_with_other_parameters_is_refused(ip, servers, state_dir, tmp_path):
    # Item 12: the file has `prompt`, the cell `salutation`: refused, nothing changes.
    from trace_nb.notebook.loading import load_session

    servers([])
    panel = trace(ip, GREETING)
    s = panel.session
    other = sessions.TraceSession("other_params", register=False)

    other.params.parameter("prompt", "be brief")
    other.rows = [{"step": 0}]
    state = json.loads(json.dumps(other.to_state()))
    state["name"] = s.name
    path = tmp_path / "other.json"
    from trace_nb import savefile

    savefile.save(path, "session", state)
    before = json.loads(s.autosave_path.read_text())
    with pytest.raises(
        SessionFileError, match=r"file has \['prompt'\].*live session \['salutation'\]"
    ):
        load_session(str(path))
    assert sessions.session(s.name) is s and len(s.rows) == 1 and "prompt" not in s.parameters
    assert json.loads(s.autosave_path.read_text()) == before
    # Same parameters: the file goes into the live session (variables keep driving it).
    state["parameters"] = {"salutation": {"value": "Ahoy"}}
    savefile.save(path, "session", state)
    assert load_session(str(path)) is s and s.parameters["salutation"] == "Ahoy"
    panel.run()
    assert (
        panel.errors == []
        and json.loads(s.autosave_path.read_text())["parameters"]["salutation"]["value"] == "Ahoy"
    )


@pytest.mark.parametrize("bad", ["../evil", "a/b", "'qa'", '"qa"', "x" * 101, "a\\b", ".qa"])
def test_session_names_are_checked(ip, bad, state_dir):
    # Item 18: a name that is not identifier-like is refused before anything runs.
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="not a valid session name"):
        ip.run_cell_magic("trace", f"--name {bad} --param salutation", "salutation = 'x'")
    assert not any(state_dir.parent.rglob("*evil*")) and not any(state_dir.parent.rglob("*.json"))
    for name in (bad, "qa  b", " qa", "qa ", "", None, "qa\n"):
        with pytest.raises(ValueError, match="not a valid session name"):
            sessions.TraceSession(name)


@pytest.mark.parametrize("good", ["café", "qa v2", "1st", "run-2.b"])
def test_names_older_versions_took_still_work(good):
    # Names of any script, a leading digit and single inner spaces (older versions wrote
    # sessions with such names; they name a file without any path or quote in it).
    s = sessions.TraceSession(good)
    assert s.name == good
    s.close()


def test_quotes_around_a_name_are_explained(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="the quotes are part of it"):
        ip.run_cell_magic("trace", "--name 'qa' --param salutation", "salutation = 'x'")


def test_a_file_with_a_bad_session_name_is_refused(tmp_path):
    from trace_nb import savefile
    from trace_nb.notebook.loading import load_session

    path = tmp_path / "evil.json"
    savefile.save(path, "session", {"name": "../evil", "parameters": {}})
    with pytest.raises(SessionFileError, match="session name is refused"):
        load_session(str(path))


def test_restoring_keeps_the_work_it_replaces(ip, servers, state_dir):
    # Work approved while the offer waited (Avast) is replaced by Restore: its file is kept
    # aside, not overwritten, and the panel says where.
    name = approved_panel(ip, servers).session.name
    path = state_dir / f"{name}.json"
    restart(name)
    fresh = rerun(ip, name)
    servers([reply({"salutation": "Avast"})])
    fresh.propose()
    assert fresh.wait(30)
    fresh.approve("salutation")
    fresh.restore_button.click()
    assert fresh.errors == [] and fresh.session.parameters["salutation"] == "Ahoy"
    kept = fresh.session.autosave_kept
    assert kept is not None and kept.name.startswith(f"{name}.before-restore-")
    assert json.loads(kept.read_text())["parameters"]["salutation"]["value"] == "Avast"
    assert str(kept) in fresh.status.value
    assert json.loads(path.read_text())["parameters"]["salutation"]["value"] == "Ahoy"


def test_an_offer_left_pending_twice_is_still_named(ip, servers, state_dir):
    # Restart, Run All (the offer waits, ignored), restart, Run All: the second kernel's
    # run is offered now, and the first kernel's approved values are still named.
    name = approved_panel(ip, servers).session.name
    restart(name)
    first = rerun(ip, name).session.restorable.path
    restart(name)
    again = rerun(ip, name)
    assert again.session.restorable.path != first
    note = html.unescape(again.restore_note.value)
    assert "Earlier saves kept aside" in note and str(first) in note
    assert json.loads(first.read_text())["parameters"]["salutation"]["value"] == "Ahoy"


def test_load_session_into_a_live_session_keeps_the_work_it_replaces(
    ip, servers, state_dir, tmp_path
):
    import trace_nb

    panel = approved_panel(ip, servers)  # Ahoy approved, two runs: in the autosave file
    s = panel.session
    kept = tmp_path / "early.json"
    s.save(str(kept))
    panel.run()  # a third run, live only
    assert trace_nb.load_session(str(kept)) is s and len(s.rows) == 2
    aside = s.autosave_kept
    assert aside is not None and aside.name.startswith(f"{s.name}.before-restore-")
    assert len(saved_rows(aside)) == 3
    # Loading the session's own autosave file moves nothing.
    assert trace_nb.load_session(str(s.autosave_path)) is s and s.autosave_kept is None


def test_a_closed_session_no_longer_writes_the_file_of_its_name(ip, servers, state_dir):
    # A variable still holding a closed session must not overwrite the autosave of the
    # session that now has its name; it says why it did not save.
    old = approved_panel(ip, servers).session
    name = old.name
    restart(name)  # closes it
    new = rerun(ip, name).session
    path = new.autosave_path
    mine = path.read_text()
    old.feedback("from a stale variable", 0.1)
    assert path.read_text() == mine
    assert "closed" in old.autosave_error and new.autosave_error is None


def test_values_learned_by_session_train_are_autosaved(ip, state_dir):
    # A kernel restart after training must not lose what it learned: the training's end
    # is saved as a run or a decision is.
    from conftest import make_llm

    from trace_nb.testing import FakeOpenAIServer

    ip.run_cell(
        "example = 1\n"
        "def exact(example, out):\n"
        "    return (1.0 if out == example + 5 else 0.0, 'add five')\n"
    )
    answer = json.dumps({"reasoning": "shift", "suggestion": {"offset": 5}})
    with FakeOpenAIServer(replies=[answer]) as srv:
        sessions.set_default_llm(make_llm(srv))
        ip.run_cell_magic(
            "trace", "--name ctsaved --param offset --no-panel", "offset = 0\nexample + offset\n"
        )
        s = sessions.session("ctsaved")
        s.train(list(range(4)), ip.user_ns["exact"], batch_size=4, progress=False)
    assert s.parameters["offset"] == 5
    assert json.loads(s.autosave_path.read_text())["parameters"]["offset"]["value"] == 5
