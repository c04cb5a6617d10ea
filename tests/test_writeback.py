"""``%trace_writeback`` (issue 23 item 15): values land where ``ast`` says whatever the
line breaks, the ``%%trace`` line keeps every option, and ``--name`` works."""

from __future__ import annotations

import pytest
import test_magics
from IPython.core.error import UsageError
from test_magics import reply

import trace_nb

# test_magics' fixtures: one shell with ask/shout defined, a default LLM per test.
ip, server = test_magics.ip, test_magics.server


def next_input(ip) -> str:
    text = getattr(ip, "rl_next_input", None) or ip.payload_manager.read_payload()[-1]["text"]
    ip.rl_next_input = None
    return text


@pytest.mark.parametrize("odd", ["\u2028", "\x0c", "\x0b", "\x1c", "\x85"])
def test_writeback_puts_the_value_in_place_whatever_the_line_breaks(ip, server, odd):
    # str.splitlines breaks at these, ast does not: the value must land where ast says.
    # (inside a comment and a string; a form feed may also stand alone as whitespace)
    alone = "\x0c\n" if odd == "\x0c" else ""
    cell = (
        f'note = "x{odd}y"  # a{odd}b\n{alone}greeting = "hello"  # kept\n'
        "out = greeting + note\nout\n"
    )
    name = f"wbodd{ord(odd)}"
    ip.run_cell_magic("trace", f"--name {name} --param greeting --no-panel", cell)
    s = trace_nb.session(name)
    s.feedback("warmer")
    server.add_replies(reply({"greeting": "héllo"}))
    s.step(auto_approve=True)
    text = s.writeback_source()
    assert text == cell.replace('greeting = "hello"', "greeting = 'héllo'")
    compile(text, "<cell>", "exec")
    s.close()


def test_writeback_keeps_every_option_and_takes_name(ip, server):
    ip.user_ns["my_llm"] = trace_nb.session  # any object: only the variable's name is kept
    line = (
        "--name wbflags --param greeting --code shout --llm my_llm --candidates 2 "
        "--optimizer OPRO --model my-model --memory 3 --raise"
    )
    cell = 'greeting = "hello"\nshout(greeting)\n'
    ip.run_cell_magic("trace", line + " --no-panel", cell)
    ip.run_line_magic("trace_writeback", "--name wbflags")
    header, body = next_input(ip).split("\n", 1)
    assert body == trace_nb.session("wbflags").writeback_source()
    for flag in line.split(" --")[1:]:
        assert f"--{flag}" in header, flag
    before = vars(trace_nb.session("wbflags").spec).copy()
    # The written cell makes the same session again (its source has the written values).
    ip.run_cell_magic("trace", header.removeprefix("%%trace ") + " --no-panel", body)
    assert vars(trace_nb.session("wbflags").spec) == {**before, "source": body}
    ip.run_line_magic("trace_writeback", "wbflags")  # the positional name still works
    assert next_input(ip).split("\n", 1)[0] == header
    with pytest.raises(UsageError, match="two session names"):
        ip.run_line_magic("trace_writeback", "--name wbflags other")
    trace_nb.session("wbflags").close()
    del ip.user_ns["my_llm"]
