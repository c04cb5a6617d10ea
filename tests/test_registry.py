"""Sessions are found by name but kept alive only by their owner: the user's variable, or
the IPython shell whose ``%%trace`` cell made them; a dropped session is freed."""

from __future__ import annotations

import gc
import textwrap
import weakref

import pytest
from conftest import ipython_shell

import trace_nb
from trace_nb.notebook import registry
from trace_nb.notebook.session import TraceSession


@pytest.fixture(scope="module")
def ip():
    shell = ipython_shell()
    shell.run_cell("def exclaim(text):\n    return text + '!'\n")
    return shell


def freed(ref: weakref.ref) -> bool:
    gc.collect()
    return ref() is None


def test_a_session_made_in_python_is_freed_when_dropped():
    s = TraceSession("reg_plain")
    s.params.parameter("level", 1)
    assert trace_nb.session("reg_plain") is s and "reg_plain" in registry.names()
    ref = weakref.ref(s)
    del s
    assert freed(ref)
    assert "reg_plain" not in registry.names()
    with pytest.raises(KeyError, match="no trace session named 'reg_plain'"):
        trace_nb.session("reg_plain")


def test_an_owner_keeps_its_sessions_until_it_goes():
    class Shell:  # any object can own sessions; IPython's shell is the usual one
        pass

    shell = Shell()
    s = TraceSession("reg_owned")
    s.shell = shell  # as the magic sets it: the session refers to its shell (a cycle)
    registry.register(s, shell)
    ref = weakref.ref(s)
    del s
    assert not freed(ref) and trace_nb.session("reg_owned") is ref()
    del shell
    assert freed(ref)


def test_a_new_session_of_the_same_name_replaces_the_owned_one():
    class Shell:
        pass

    shell = Shell()
    old = TraceSession("reg_twice")
    old.shell = shell
    registry.register(old, shell)
    ref = weakref.ref(old)
    del old
    new = TraceSession("reg_twice")
    assert trace_nb.session("reg_twice") is new and freed(ref)
    new.close()


def test_a_cell_session_lives_with_its_shell_and_is_freed_with_its_panel_on_close(ip):
    cell = "word = 'hi'\nexclaim(word)\n"
    panel = ip.run_cell_magic("trace", "--name reg_cell --param word", cell)
    s = trace_nb.session("reg_cell")
    assert panel.session is s and s.shell is ip
    refs = weakref.ref(s), weakref.ref(panel), weakref.ref(s.output_node)
    del s, panel
    ip.displayhook.flush()  # IPython's Out/_ history must not hold them either
    ip.run_cell("pass")
    assert not any(freed(r) for r in refs)  # the shell keeps its cell's session
    assert trace_nb.session("reg_cell").parameters == {"word": "hi"}
    trace_nb.session("reg_cell").close()
    assert all(freed(r) for r in refs)  # session, panel and graph
    with pytest.raises(KeyError):
        trace_nb.session("reg_cell")


def test_a_session_loaded_in_ipython_is_kept_by_the_shell(ip, tmp_path):
    s = TraceSession("reg_loaded")
    s.params.parameter("level", 3)
    s.save(str(tmp_path / "s.json"))
    del s
    ref = weakref.ref(trace_nb.load_session(str(tmp_path / "s.json")))
    assert not freed(ref) and trace_nb.session("reg_loaded").parameters == {"level": 3}
    ref().close()
    assert freed(ref)


def test_the_magic_reuses_the_live_session_of_its_name(ip):
    cell = textwrap.dedent("""
        word = 'yo'
        exclaim(word)
        """)
    ip.run_cell_magic("trace", "--name reg_again --param word --no-panel", cell)
    first = trace_nb.session("reg_again")
    first.parameter_nodes[0].set_value("hey")
    ip.run_cell_magic("trace", "--name reg_again --param word --no-panel", cell)
    assert trace_nb.session("reg_again") is first and first.output == "hey!"
    first.close()
