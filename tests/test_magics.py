"""%%trace and friends in a real InteractiveShell, with LLM calls to a loopback server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import ipython_shell, make_llm
from IPython.core.error import UsageError

import trace_nb
from trace_nb.notebook import session as sessions
from trace_nb.testing import FakeOpenAIServer


@pytest.fixture(scope="module")
def ip():
    shell = ipython_shell()
    shell.run_cell(
        textwrap.dedent('''
        def ask(prompt, question):
            """Pretend model: answers with the prompt's style."""
            return f"{prompt} -> {question}"

        def shout(text):
            return text.upper()
        ''')
    )
    return shell


@pytest.fixture
def server():
    with FakeOpenAIServer(replies=[]) as srv:
        sessions.set_default_llm(make_llm(srv))
        yield srv
    sessions.set_default_llm(None)


def reply(suggestion, reasoning="ok"):
    return json.dumps({"reasoning": reasoning, "suggestion": suggestion})


def trace(ip, line, cell):
    return ip.run_cell_magic("trace", line + " --no-panel", textwrap.dedent(cell))


def test_parameters_persist_across_reruns_and_reset(ip, server):
    cell = """
        style = "Be brief."
        temperature = 0.2
        out = ask(style, "why?")
        out
        """
    trace(ip, "--name persist --param style --param temperature", cell)
    s = trace_nb.session("persist")
    assert s.parameters == {"style": "Be brief.", "temperature": 0.2}
    assert s.output == "Be brief. -> why?"
    s.feedback("Use pirate speech.")
    server.add_replies(reply({"style": "Arr, be brief.", "temperature": "0.5"}))
    props = s.propose()
    assert {p.name: p.new for p in props} == {"style": "Arr, be brief.", "temperature": 0.5}
    s.approve()
    trace(ip, "--name persist --param style --param temperature", cell)
    assert s.output == "Arr, be brief. -> why?"  # the approved value, not the cell's literal
    assert s.differences() == {"style": ("Be brief.", "Arr, be brief."), "temperature": (0.2, 0.5)}
    assert "differs from the cell" in repr(
        trace(ip, "--name persist --param style --param temperature", cell)
    )
    trace(ip, "--name persist --param style --param temperature --reset", cell)
    assert s.parameters["style"] == "Be brief."
    assert len(s.rows) == 1


def test_traced_calls_make_expected_dag(ip, server):
    trace(
        ip,
        "--name dag --param topic",
        """
        topic = "  tides "
        clean = topic.strip()
        n = len(clean)
        answer = shout(ask(clean, "explain"))
        summary = f"{answer} ({n})"
        plain = sum([1, 2, 3])  # touches no parameter: runs as usual
        summary
        """,
    )
    s = trace_nb.session("dag")
    data = s.graph()
    ops = sorted(n["op"] for n in data["nodes"] if n["op"])
    assert ops == ["ask", "format", "len", "shout", "str.strip"]
    kinds = {n["id"]: n["kind"] for n in data["nodes"]}
    assert kinds["topic"] == "parameter"
    ask_node = next(n for n in data["nodes"] if n["op"] == "ask")
    assert ask_node["description"] == "Pretend model: answers with the prompt's style."
    assert s.output == "TIDES -> EXPLAIN (5)"
    assert ip.user_ns["plain"] == 6 and isinstance(ip.user_ns["plain"], int)
    edges = {(a, b) for a, b in data["edges"]}
    strip = next(n["id"] for n in data["nodes"] if n["op"] == "str.strip")
    assert ("topic", strip) in edges


@pytest.mark.parametrize(
    "expr",
    [
        'f"{x!r}|"',
        'f"{x:>6}|"',
        'f"{x:<{w}}|"',  # a format spec computed when the cell runs
        'f"{x!r:<{w}}|"',  # a conversion, then a computed spec: was the node's repr
        'f"{x:{fill}^{w + 2}}|{x!a}"',  # a fill character str.format cannot spell
    ],
)
def test_f_strings_give_what_python_gives_and_stay_traced(ip, expr):
    cell = f'x = "ab"\nw = 6\nfill = "{{"\nout = {expr}\nout\n'
    expected: dict = {}
    exec(cell, {}, expected)  # plain Python
    trace(ip, "--name fmt --param x --reset", cell)
    s = trace_nb.session("fmt")
    assert s.output == expected["out"]
    graph = s.graph()
    fmt = next(n["id"] for n in graph["nodes"] if n["op"] == "format")
    assert ("x", fmt) in {(a, b) for a, b in graph["edges"]}  # the output depends on x
    s.close()


def test_exception_becomes_node_and_default_feedback(ip, server):
    ip.run_cell(
        textwrap.dedent("""
        def parse_number(text):
            value = int(text)
            return value * 2
        """)
    )
    trace(
        ip,
        "--name boom --param raw",
        """
        raw = "twelve"
        result = parse_number(raw)
        result
        """,
    )
    s = trace_nb.session("boom")
    assert s.exception is not None
    info = s.exception.info
    assert info["type"] == "ValueError" and "value = int(text)" in info["line"]
    assert info["cell_line"].strip() == "result = parse_number(raw)"
    assert "ValueError" in s.last_feedback[0] and "int(text)" in s.last_feedback[0]
    assert [n["kind"] for n in s.graph()["nodes"]].count("exception") == 1
    server.add_replies(reply({"raw": "12"}))
    s.step(auto_approve=True, approve_code=True)
    trace(ip, "--name boom --param raw", "raw = 'twelve'\nresult = parse_number(raw)\nresult\n")
    assert s.exception is None and s.output == 24
    with pytest.raises(ValueError, match="invalid literal"):
        trace(ip, "--name boom2 --param raw --raise", "raw = 'x'\nparse_number(raw)\n")


def test_code_parameter_update_changes_behaviour(ip, server):
    trace(
        ip,
        "--name code --param word --code fmt",
        '''
        def fmt(text):
            """Formats the word."""
            return text + "!"
        word = "hi"
        fmt(word)
        ''',
    )
    s = trace_nb.session("code")
    assert s.output == "hi!"
    s.feedback("Use three exclamation marks.")
    new = 'def fmt(text):\n    """Formats the word."""\n    return text + "!!!"\n'
    server.add_replies(reply({"code_fmt": new}))
    props = s.propose()
    assert props[0].valid and props[0].is_code
    s.approve("fmt")
    assert ip.user_ns["fmt"]("x") == "x!!!"  # redefined in the user's namespace
    trace(
        ip,
        "--name code --param word --code fmt",
        '''
        def fmt(text):
            """Formats the word."""
            return text + "!"
        word = "hi"
        fmt(word)
        ''',
    )
    assert s.output == "hi!!!" and ip.user_ns["fmt"]("y") == "y!!!"


@pytest.mark.parametrize(
    "ret,expected",
    [
        ("'too long'", ("too long", None)),
        ("0.25", ("", 0.25)),
        ("(0.5, 'almost')", ("almost", 0.5)),
        ("('almost', 0.5)", ("almost", 0.5)),
        ("{'score': 1.0, 'feedback': 'great'}", ("great", 1.0)),
    ],
)
def test_feedback_function_shapes(ip, server, ret, expected):
    ip.run_cell(f"def grade(out):\n    return {ret}\n")
    trace(ip, "--name fb --param x --feedback grade", "x = 3\ny = x + 1\ny\n")
    assert trace_nb.session("fb").last_feedback == expected


def test_feedback_function_bad_shape(ip, server):
    """The run is kept and the summary says why there is no feedback (issue 23, item 19;
    the panel's side is in tests/test_feedback_errors.py)."""
    ip.run_cell("def grade_bad(out):\n    return [1, 2]\n")
    shown = trace(ip, "--name fbbad --param x --feedback grade_bad", "x = 3\nx + 1\n")
    s = trace_nb.session("fbbad")
    assert len(s.rows) == 1 and s.output == 4 and s.last_feedback is None
    assert "no feedback: --feedback grade_bad: feedback must return text, a score" in repr(shown)
    with pytest.raises(TypeError, match="--feedback grade_bad: feedback must return text"):
        s.run()
    assert len(s.rows) == 2


@pytest.mark.parametrize(("repair", "calls"), [(0, 1), (2, 3)])
def test_repair_option_bounds_the_calls_of_a_stalled_step(ip, server, repair, calls):
    trace(
        ip,
        f"--name rep{repair} --param greeting --repair {repair} --reset",
        "greeting = 'hi'\ngreeting\n",
    )
    ip.run_line_magic("trace_feedback", f'--name rep{repair} "shout it"')
    server.add_replies(*[reply({"greeting": "hi"})] * calls)  # the current value, every time
    before = len(server.requests)
    props = trace_nb.session(f"rep{repair}").propose()
    assert len(server.requests) - before == calls
    assert not any(p.valid for p in props)


def test_a_negative_repair_count_is_a_usage_error(ip, server):
    with pytest.raises(UsageError, match="--repair -1: give the number of extra calls"):
        trace(ip, "--name repneg --param greeting --repair -1", "greeting = 'hi'\ngreeting\n")


def test_trace_feedback_magic_and_writeback(ip, server):
    ip.user_ns["wb_llm"] = make_llm(server)
    ip.run_cell("def wb_grade(out):\n    return 0.5, 'fine'\n")
    # Every option that changes how the cell runs, beside the ones each cell has. The
    # written-back header must give back each one (order aside): the oracle is this line.
    line = (
        "--name wb --param greeting --param n --code shout --feedback wb_grade "
        "--memory 3 --llm wb_llm --candidates 2 --repair 0 --raise"
    )
    trace(
        ip,
        line,
        """
        greeting = "hello"   # the greeting
        n = param(2, constraint="positive")
        out = shout(greeting * n)
        out
        """,
    )
    ip.run_line_magic("trace_feedback", '--name wb --score 0.3 "shorter, please"')
    s = trace_nb.session("wb")
    assert s.last_feedback == ("shorter, please", 0.3)
    assert s.parameters["n"] == 2
    server.add_replies(*[reply({"greeting": "héllo", "n": 1})] * 2)  # the two candidates
    s.step(auto_approve=True, approve_code=True)
    text = s.writeback_source()
    assert text == (
        "\ngreeting = 'héllo'   # the greeting\n"
        'n = param(1, constraint="positive")\n'
        "out = shout(greeting * n)\nout\n"
    )
    ip.run_line_magic("trace_writeback", "wb")
    # The terminal shell keeps the next input itself; a kernel sends it as a payload.
    nxt = getattr(ip, "rl_next_input", None) or ip.payload_manager.read_payload()[-1]["text"]
    header, body = nxt.split("\n", 1)
    assert header.startswith("%%trace ")
    assert sorted(_options(header.removeprefix("%%trace "))) == sorted(_options(line))
    assert body == text


def test_magics_made_by_hand_without_a_shell_say_how_to_load_them(ip):
    """IPython registers the magics with its shell; a ``TraceMagics()`` made by hand has
    none, and says so instead of failing on None."""
    from trace_nb.notebook.magics import TraceMagics

    ip.run_cell_magic("trace", "--name byhand --param x --no-panel --reset", "x = 1\nx\n")
    loose = TraceMagics()
    for call in (
        lambda: loose.trace_writeback("byhand"),
        lambda: loose.trace("--name byhand --param x --no-panel", "x = 2\nx\n"),
    ):
        with pytest.raises(UsageError, match=r"belong to no IPython shell: run `%load_ext"):
            call()
    assert trace_nb.session("byhand").parameters == {"x": 1}  # nothing ran or changed


def _options(line: str) -> list[tuple[str, str | None]]:
    """``--flag value`` pairs of a magic line (a flag followed by a flag has no value)."""
    words = line.split()
    return [
        (w, words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else None)
        for i, w in enumerate(words)
        if w.startswith("--")
    ]


@pytest.mark.parametrize(
    "cell, written",
    [
        ('prompt, other = "a", "b"\nprompt + other\n', "prompt, other = 'NEW', \"b\"\n"),
        ('prompt: str = "a"\nprompt\n', "prompt: str = 'NEW'\n"),
        ('other = prompt = "a"\nprompt\n', None),
        ('if True:\n    prompt = "a"\nprompt\n', None),
        (
            'prompt = "a"\nprompt = prompt + "!"\nprompt\n',
            "prompt = 'NEW'\nprompt = prompt + \"!\"\n",
        ),
    ],
    ids=["tuple", "annotated", "chained", "nested", "reassigned"],
)
def test_writeback_of_each_kind_of_assignment_writes_the_value_or_says_why_not(
    ip, server, cell, written
):
    # Issue 23 item 20 made these assignments parameters: writeback must not drop the value.
    trace(ip, "--name wbkinds --param prompt --reset", cell)
    s = trace_nb.session("wbkinds")
    s.feedback("x")
    server.add_replies(reply({"prompt": "NEW"}))
    s.propose()
    s.approve("prompt")
    if written is None:
        with pytest.raises(ValueError, match="cannot write 'prompt' back into the cell"):
            s.writeback_source()
    else:
        assert s.writeback_source().startswith(written)


def test_save_load_roundtrip_in_a_new_shell(ip, server, tmp_path):
    trace(ip, "--name saved --param level", "level = 1\nout = level * 10\nout\n")
    s = trace_nb.session("saved")
    s.feedback("higher")
    server.add_replies(reply({"level": 5}))
    s.step(auto_approve=True, approve_code=True)
    path = tmp_path / "s.json"
    s.save(str(path))
    script = textwrap.dedent(f"""
        import json
        from IPython.testing.globalipapp import start_ipython
        ip = start_ipython()
        ip.extension_manager.load_extension("trace_nb")
        import trace_nb
        s = trace_nb.load_session({str(path)!r})
        print(json.dumps({{"params": s.parameters, "history": s.rows, "same": trace_nb.session("saved") is s}}))
        """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["params"] == s.parameters == {"level": 5}
    assert loaded["history"] == json.loads(json.dumps(s.rows)) and loaded["same"]


def test_save_is_atomic(ip, server, tmp_path):
    trace(ip, "--name atomic --param a", "a = 1\na + 1\n")
    s = trace_nb.session("atomic")
    path = tmp_path / "atomic.json"
    s.save(str(path))
    before = path.read_text()
    s.params.find("a").set_value(object())  # not JSON: the save fails...
    with pytest.raises(TypeError, match="JSON"):
        s.save(str(path))
    assert path.read_text() == before  # ...and the previous file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["atomic.json"]
    s.params.find("a").set_value(1)


def test_export_writes_python(ip, server, tmp_path):
    trace(
        ip,
        "--name exp --param a --code twice",
        "def twice(v):\n    return v * 2\na = 4\ntwice(a)\n",
    )
    path = tmp_path / "learned.py"
    trace_nb.session("exp").export(str(path))
    ns: dict = {}
    exec(path.read_text(), ns)
    assert ns["a"] == 4 and ns["twice"](3) == 6


@pytest.mark.parametrize(
    "line,cell,message",
    [
        ("--bogus", "x = 1\nx\n", "unrecognized arguments: --bogus"),
        ("--param missing", "x = 1\nx\n", "never assigns 'missing'"),
        ("--param x --code nothere", "x = 1\nx\n", "no function 'nothere'"),
        ("--param x --code ask_list", "x = 1\nx\n", "is a list, not a function"),
        ("--param x --feedback nofn", "x = 1\nx\n", "--feedback nofn"),
        ("--param 1x", "x = 1\nx\n", "not a valid Python name"),
        ("--param x", "x = (\n", "does not parse"),
    ],
)
def test_misuse_errors(ip, line, cell, message):
    ip.user_ns["ask_list"] = [1, 2]
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        ip.run_cell_magic("trace", line, cell)


def test_session_misuse_errors(ip, server):
    with pytest.raises(UsageError, match="no trace session named 'nope'"):
        ip.run_line_magic("trace_feedback", '--name nope "x"')
    trace(ip, "--name mis --param flag", "flag = True\nout = flag & True\nout\n")
    s = trace_nb.session("mis")
    with pytest.raises(ValueError, match="no feedback yet"):
        s.propose()
    s.feedback("turn it off")
    server.add_replies(reply({"flag": "maybe", "ghost": 1}))
    props = s.propose()
    assert not props[0].valid and "expected a bool" in props[0].reason
    assert "no variable named 'ghost'" in props[1].reason
    with pytest.raises(ValueError, match="cannot approve 'flag'"):
        s.approve("flag")
    with pytest.raises(ValueError, match="no variable named 'ghost'"):
        s.approve("ghost")
    with pytest.raises(KeyError, match="not a parameter"):
        s.approve("phantom")
    assert [p.status for p in s.reject("ghost")] == ["rejected"]
    assert s.parameters == {"flag": True}
    edited = s.edit("flag", "false")
    assert edited.valid and edited.new is False
    s.approve("flag")
    assert s.parameters == {"flag": False}


def test_output_without_parameters(ip, server):
    trace(ip, "--name noparam", "v = 2 + 2\nv\n")
    s = trace_nb.session("noparam")
    assert s.output == 4
    with pytest.raises(ValueError, match="does not depend on any parameter"):
        s.feedback("more")


def test_help_and_config(ip):
    doc = ip.find_cell_magic("trace").__doc__
    assert "Trace this cell" in doc and "--param" in doc
    ip.run_line_magic("config", 'TraceMagics.model = "gpt-test"')
    trace(ip, "--name cfg --param x", "x = 1\nx + 1\n")
    assert trace_nb.session("cfg").spec.model == "gpt-test"
    ip.run_line_magic("config", "TraceMagics.model = None")


def test_module_parameters_through_trace(ip, server):
    ip.run_cell(
        textwrap.dedent("""
        import trace_nb
        from trace_nb import bundle

        @trace_nb.model
        class Greeter:
            def __init__(self):
                self.style = trace_nb.node("polite", name="style", trainable=True)

            @bundle(trainable=True)
            def greet(self, who):
                return "hello " + who
        """)
    )
    trace(ip, "--name mod --param agent", "agent = Greeter()\nagent.greet(trace_nb.node('Ann'))\n")
    s = trace_nb.session("mod")
    assert set(s.parameters) == {"agent.greet", "agent.style"}
    assert s.output == "hello Ann"
    code_node = s.named_parameter_nodes()["agent.greet"]
    assert any(n["id"] == code_node.name for n in s.graph()["nodes"])
    s.feedback("Greet in capitals.")
    new = "def greet(self, who):\n    return 'HELLO ' + who.upper()\n"
    server.add_replies(reply({code_node.name: new}))
    s.step(auto_approve=True, approve_code=True)
    assert s.display_name(code_node) == "agent.greet"
    # Re-running the cell makes a new instance; it gets the approved code.
    trace(ip, "--name mod --param agent", "agent = Greeter()\nagent.greet(trace_nb.node('Ann'))\n")
    assert s.output == "HELLO ANN"
    # A module from an earlier cell works too.
    trace(ip, "--name mod2 --param agent", "agent.greet(trace_nb.node('Bo'))\n")
    assert trace_nb.session("mod2").output == "HELLO BO"


def test_code_function_traced_on_plain_arguments(ip, server):
    trace(
        ip,
        "--name plaincode --code halve",
        """
        def halve(values):
            return sum(values) / len([v for v in values if v > 0])
        halve([-1, -2])
        """,
    )
    s = trace_nb.session("plaincode")
    assert list(s.parameters) == ["halve"]
    assert s.exception is not None and s.exception.info["type"] == "ZeroDivisionError"
    assert s.named_parameter_nodes()["halve"] in s.exception.parents
    server.add_replies(
        reply(
            {
                "code_halve": "def halve(values):\n    pos = [v for v in values if v > 0]\n    return sum(pos) / len(pos) if pos else 0.0\n"
            }
        )
    )
    s.step(auto_approve=True, approve_code=True)
    assert s.rows[-1]["approved"] == "halve"
    s.run()
    assert s.exception is None and s.output == 0.0


def test_module_values_survive_save_and_load(ip, server, tmp_path):
    ip.run_cell(
        textwrap.dedent("""
        import trace_nb

        @trace_nb.model
        class Shouter:
            def __init__(self):
                self.suffix = trace_nb.node("!", name="suffix", trainable=True)

            def forward(self, text):
                return text + self.suffix
        """)
    )
    cell = "bot = Shouter()\nbot(trace_nb.node('hi'))\n"
    trace(ip, "--name modsave --param bot", cell)
    s = trace_nb.session("modsave")
    s.feedback("more excitement")
    name = s.named_parameter_nodes()["bot.suffix"].name
    server.add_replies(reply({name: "!!!"}))
    s.step(auto_approve=True, approve_code=True)
    path = tmp_path / "mod.json"
    s.save(str(path))
    s.close()  # as after a restart: the name finds nothing
    loaded = trace_nb.load_session(str(path))
    trace(ip, "--name modsave --param bot", cell)
    assert trace_nb.session("modsave") is loaded and loaded.output == "hi!!!"


def test_library_call_returning_a_node_keeps_its_history(ip, server):
    ip.run_cell(
        "import functools\nimport trace_nb\nbias = trace_nb.node(10, name='lib_bias', trainable=True)\n"
    )
    trace(
        ip,
        "--name libnode --param x",
        "x = 1\nf = functools.partial(lambda v, b: b + v, b=bias)\nf(x)\n",
    )
    s = trace_nb.session("libnode")
    assert s.output == 11
    ids = {n["id"] for n in s.graph()["nodes"]}
    assert "lib_bias" in ids and s.named_parameter_nodes()["x"].name in ids


def test_reassigning_a_param_later_is_a_traced_operation(ip, server):
    cell = """
        prompt = "Be brief."
        prompt = prompt + " Use pirate speech."
        out = ask(prompt, "why?")
        out
        """
    trace(ip, "--name reassign --param prompt", cell)
    s = trace_nb.session("reassign")
    # The first assignment is the initial value; the second is an operation on it.
    assert s.parameters == {"prompt": "Be brief."}
    assert s.output == "Be brief. Use pirate speech. -> why?"
    assert s.differences() == {}  # nothing approved: no "differs from the cell" note
    kinds = {n["name"]: n["kind"] for n in s.graph()["nodes"]}
    assert kinds["prompt"] == "parameter" and "add" in " ".join(kinds)
    s.feedback("shorter")
    server.add_replies(reply({"prompt": "Be terse."}))
    s.propose()
    s.approve()
    trace(ip, "--name reassign --param prompt", cell)
    assert s.output == "Be terse. Use pirate speech. -> why?"
    assert s.differences() == {"prompt": ("Be brief.", "Be terse.")}


def test_unload_ext_really_unloads_and_load_restores(ip, server):
    from trace_nb.notebook.tracer import param as trace_param

    assert ip.user_ns["param"] is trace_param
    ip.run_line_magic("unload_ext", "trace_nb")
    try:
        assert "trace" not in ip.magics_manager.magics["cell"]
        assert "trace_step" not in ip.magics_manager.magics["line"]
        assert "param" not in ip.user_ns
        with pytest.raises(UsageError, match="trace"):
            ip.run_cell_magic("trace", "--name gone", "x = 1\nx")
    finally:
        ip.run_line_magic("load_ext", "trace_nb")
    assert ip.user_ns["param"] is trace_param and "trace" in ip.magics_manager.magics["cell"]


def test_a_user_function_named_param_is_left_alone(ip, server):
    ip.run_cell("def param(v, name='?'):\n    return f'{name}:{v}'\n")
    try:
        trace(ip, "--name ownparam --param style", "style = 'calm'\nout = param(style)\nout\n")
        s = trace_nb.session("ownparam")
        assert s.output == "?:calm"  # the user's param, not given name="out"
    finally:
        from trace_nb.notebook.tracer import param as trace_param

        ip.user_ns["param"] = trace_param


def test_parameters_can_be_set_by_hand():
    p = trace_nb.node(1.0, name="by_hand", trainable=True)
    p.set_value(2.5)
    assert p.data == 2.5
    p.set_value(trace_nb.node(3.0))
    assert p.data == 3.0 and not isinstance(p.data, trace_nb.Node)
    assert (
        "param" in dir(trace_nb) and "importlib" not in dir(trace_nb) and "Any" not in dir(trace_nb)
    )


def test_a_library_call_with_star_args_is_labelled_as_in_a_bundle():
    ip = ipython_shell()
    ip.run_cell("import os")
    with FakeOpenAIServer(replies=[]) as srv:
        sessions.set_default_llm(make_llm(srv))
        try:
            ip.run_cell_magic(
                "trace",
                "--name star_args --param folder --no-panel",
                "folder = 'data'\nout = os.path.join(folder, 'a', 'b')\nout\n",
            )
            s = trace_nb.session("star_args")
            s.feedback("wrong folder")
            code = s.optimizer.messages()[1]["content"].split("#Code")[1].split("#Doc")[0]
        finally:
            sessions.set_default_llm(None)
    # os.path.join(a, *p): the variadic part is one tuple, not p='a', arg2='b'.
    assert "join(a=folder, p=('a', 'b'))" in code, code


# -- issue 23, item 20: what the cell says is checked when it runs --------------------------


@pytest.mark.parametrize(
    "line, message",
    [
        ("--param x --llm nosuchllm", "--llm nosuchllm: no variable 'nosuchllm' in the notebook"),
        ("--param x --llm not_an_llm", "'not_an_llm' is a int, not an LLM"),
        ("--param x --optimizer Unknown", "--optimizer Unknown: no such optimizer; use OptoPrime"),
    ],
)
def test_llm_and_optimizer_are_checked_when_the_cell_runs(ip, line, message):
    ip.user_ns["not_an_llm"] = 3
    ip.user_ns.pop("nosuchllm", None)
    with pytest.raises(UsageError, match=message):
        ip.run_cell_magic("trace", f"--name chk {line} --no-panel", "x = 1\nx\n")
    ip.user_ns.pop("chk_ran", None)
    with pytest.raises(UsageError):  # before the cell's code runs
        ip.run_cell_magic("trace", f"--name chk {line} --no-panel", "chk_ran = 1\nx = 1\nx\n")
    assert "chk_ran" not in ip.user_ns


def test_an_llm_variable_the_cell_assigns_and_any_case_of_optimizer_are_accepted(ip, server):
    trace(
        ip, "--name chk2 --param x --llm cell_llm --optimizer opro", "cell_llm = print\nx = 1\nx\n"
    )
    s = trace_nb.session("chk2")
    assert s.parameters == {"x": 1}
    assert type(s.optimizer).__name__ == "OPRO"


@pytest.mark.parametrize(
    "cell",
    [
        "from trace_nb import LLM as cell_llm\nx = 1\nx\n",
        "import trace_nb as cell_llm\nx = 1\nx\n",
        "def cell_llm(messages, **kw):\n    return 'x'\nx = 1\nx\n",
        "for cell_llm in [print]:\n    pass\nx = 1\nx\n",
    ],
    ids=["import-as", "import", "def", "for"],
)
def test_an_llm_the_cell_imports_or_defines_is_left_to_propose(ip, server, cell):
    ip.user_ns.pop("cell_llm", None)
    trace(ip, "--name chk3 --param x --llm cell_llm --reset", cell)
    assert trace_nb.session("chk3").parameters == {"x": 1}


@pytest.mark.parametrize(
    "cell, values",
    [
        ('prompt, other = "a", "b"\nprompt + other\n', {"prompt": "a"}),
        ('[prompt, *rest] = ["a", "b", "c"]\nprompt\n', {"prompt": "a"}),
        ('other = prompt = "a"\nprompt\n', {"prompt": "a"}),
        ('prompt: str = "a"\nprompt\n', {"prompt": "a"}),
    ],
    ids=["tuple", "starred-list", "chained", "annotated"],
)
def test_unpacking_and_other_assignments_make_the_parameter(ip, server, cell, values):
    trace(ip, "--name unpack --param prompt --reset", cell)
    s = trace_nb.session("unpack")
    assert s.parameters == values
    s.feedback("more")  # the output depends on the parameter: feedback reaches it
    assert s.parameter_nodes[0].feedback


def test_tuple_unpacking_keeps_the_approved_value_on_reruns(ip, server):
    cell = 'prompt, other = "a", "b"\nout = prompt + other\nout\n'
    trace(ip, "--name unpack2 --param prompt --reset", cell)
    s = trace_nb.session("unpack2")
    s.feedback("longer")
    server.add_replies(reply({"prompt": "aaa"}))
    s.propose()
    s.approve("prompt")
    trace(ip, "--name unpack2 --param prompt", cell)
    assert s.output == "aaab" and s.cell_values == {"prompt": "a"}


def test_a_parameter_assigned_only_in_a_branch_that_did_not_run_is_an_error(ip, server):
    cell = 'if False:\n    prompt = "a"\nout = "fixed"\nout\n'
    with pytest.raises(UsageError, match="ran without assigning 'prompt'.*nothing to optimize"):
        trace(ip, "--name branch --param prompt --reset", cell)
    # Once the session has a value, a run that skips the assignment keeps it, with a warning.
    ip.user_ns["use_cell_value"] = True
    cell = 'if use_cell_value:\n    prompt = "a"\nout = prompt + "!"\nout\n'
    trace(ip, "--name branch --param prompt --reset", cell)
    s = trace_nb.session("branch")
    ip.user_ns["use_cell_value"] = False
    with pytest.warns(UserWarning, match="did not assign 'prompt'.*kept the current value"):
        s.run()
    assert s.parameters == {"prompt": "a"} and s.output == "a!"
