"""The real path: openai client -> llama.cpp server -> SmolLM2-135M -> parse -> proposals.

The tests marked ``local_llm`` need `make local-llm` (CI runs it; `make test` points
TRACE_NB_LLAMA_PYTHON at it). The model is far too small to optimize well, so they check the
plumbing, never the quality of a suggestion. The first tests drive ``local_server`` against a
stand-in ``llama_cpp.server`` (a few lines of http.server), so its process, log and warm-up
handling are checked on every machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import sys
import textwrap
import time

import pytest

from trace_nb import node
from trace_nb.llm import LLMConfigError
from trace_nb.llm.local import PYTHON_ENV, find_python, local_server
from trace_nb.optim import OptoPrime

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output"

# --- local_server against a stand-in llama_cpp.server ---------------------------------------

FAKE_SERVER = """
import argparse, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

p = argparse.ArgumentParser()
for a in ("--model", "--model_alias", "--host", "--port", "--n_ctx", "--n_threads"):
    p.add_argument(a)
args = p.parse_args()
if args.model.endswith("crash.gguf"):
    print("cannot load", args.model, flush=True)
    sys.exit(3)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.send({"object": "list", "data": [{"id": args.model_alias}]})

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        print("POST", self.path, json.dumps(req, sort_keys=True), flush=True)
        self.send({"id": "x", "object": "chat.completion", "created": 0, "model": args.model_alias,
                   "choices": [{"index": 0, "finish_reason": "length",
                                "message": {"role": "assistant", "content": "Hi"}}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


print("fake llama server", args.model_alias, args.port, flush=True)
HTTPServer((args.host, int(args.port)), Handler).serve_forever()
"""


@pytest.fixture
def fake_python(tmp_path):
    """An executable that runs this Python with a stand-in ``llama_cpp`` package on its path."""
    pkg = tmp_path / "site" / "llama_cpp"
    (pkg / "server").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "server" / "__init__.py").write_text("")
    (pkg / "server" / "__main__.py").write_text(FAKE_SERVER)
    exe = tmp_path / "python-with-llama"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{tmp_path / "site"}" exec "{sys.executable}" "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def _open_paths() -> set[str]:
    fds = pathlib.Path("/proc/self/fd")
    if not fds.exists():
        pytest.skip("needs /proc to see open files")
    out = set()
    for fd in fds.iterdir():
        try:
            out.add(os.readlink(fd))
        except OSError:
            pass
    return out


@pytest.fixture
def no_llama_here(monkeypatch):
    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("this interpreter has llama_cpp")
    monkeypatch.delenv(PYTHON_ENV, raising=False)


def test_python_comes_from_argument_then_env_never_from_a_checkout_layout(
    tmp_path, monkeypatch, fake_python, no_llama_here
):
    # A .venv-llm in the working directory is not looked at: the library knows no repo layout.
    decoy = tmp_path / ".venv-llm" / "bin" / "python"
    decoy.parent.mkdir(parents=True)
    decoy.symlink_to(fake_python)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LLMConfigError) as err:
        find_python()
    assert PYTHON_ENV in str(err.value) and sys.executable in str(err.value)

    monkeypatch.setenv(PYTHON_ENV, fake_python)
    assert find_python() == fake_python
    assert find_python(python=str(decoy)) == str(decoy)  # the argument wins over the variable
    with pytest.raises(LLMConfigError, match="python="):
        find_python(python=sys.executable)


def test_log_folder_is_created_warm_up_sent_and_log_closed_on_stop(tmp_path, fake_python):
    log_path = tmp_path / "not" / "yet" / "llama-server.log"
    with local_server(
        tmp_path / "model.gguf", python=fake_python, log_path=log_path, alias="tiny"
    ) as srv:
        assert srv.process.poll() is None and not srv.log.closed
        assert str(log_path) in _open_paths()
        assert srv.startup_seconds > 0 and srv.warmup_seconds > 0
        base_url = srv.base_url
    assert srv.process.poll() is not None
    assert srv.log.closed and str(log_path) not in _open_paths()
    srv.stop()  # a second stop is harmless

    lines = log_path.read_text().splitlines()
    assert lines[0].startswith("fake llama server tiny ")
    posts = [json.loads(line.split(" ", 2)[2]) for line in lines if line.startswith("POST ")]
    assert [line.split(" ")[1] for line in lines if line.startswith("POST ")] == [
        "/v1/chat/completions"
    ]
    assert posts == [
        {
            "model": "tiny",
            "max_tokens": 1,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Hi"}],
        }
    ]
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")


def test_no_warm_up_when_asked_and_log_appended(tmp_path, fake_python):
    log_path = tmp_path / "server.log"
    log_path.write_text("earlier run\n")
    with local_server(
        tmp_path / "model.gguf", python=fake_python, log_path=log_path, warm_up=False
    ) as srv:
        assert srv.warmup_seconds == 0.0
    text = log_path.read_text()
    assert text.startswith("earlier run\nfake llama server smollm2 ") and "POST" not in text


def test_a_server_that_dies_at_start_is_reported_and_its_log_closed(tmp_path, fake_python):
    log_path = tmp_path / "logs" / "server.log"
    with pytest.raises(LLMConfigError, match="exited with code 3") as failure:
        local_server(tmp_path / "crash.gguf", python=fake_python, log_path=log_path)
    # Closed by local_server itself, not by the garbage collector (the traceback is alive).
    assert failure.tb is not None and str(log_path) not in _open_paths()
    assert "cannot load" in log_path.read_text()


STARTER = """
import sys, time
from trace_nb.llm.local import local_server
srv = local_server(sys.argv[1], python=sys.argv[2], warm_up=False)
print(srv.process.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    stat = pathlib.Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


@pytest.mark.parametrize("wrapped", [False, True], ids=["python", "shell-wrapper"])
def test_the_server_ends_when_the_process_that_started_it_is_killed(tmp_path, fake_python, wrapped):
    import subprocess

    python = fake_python
    if wrapped:  # an interpreter given as a script that runs Python as its child (no exec)
        python = str(tmp_path / "wrapper.sh")
        pathlib.Path(python).write_text(f'#!/bin/sh\n"{fake_python}" "$@"\n')
        pathlib.Path(python).chmod(0o755)
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "model.gguf"), python],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        pid = int(starter.stdout.readline())
        assert _alive(pid)
        # SIGKILL: no exit handler of the starter runs. Not reaped until the end (a zombie,
        # as when its own parent is slow to wait for it): gone all the same.
        starter.kill()
        for _ in range(100):  # the server checks its parent twice a second
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, 9)
            pytest.fail("the llama.cpp server outlived the process that started it")
    finally:
        starter.kill()
        starter.wait()


# --- the real model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    python = os.environ.get(PYTHON_ENV) or None
    if python is None and (ROOT / ".venv-llm" / "bin" / "python").exists():
        python = str(ROOT / ".venv-llm" / "bin" / "python")  # `make local-llm`'s venv
    try:
        srv = local_server(python=python, log_path=OUT / "llama-server.log")
    except LLMConfigError as e:
        if os.environ.get("CI"):
            raise  # CI builds the server first (`make local-llm`); missing it is a failure there
        pytest.skip(f"local LLM stage not built (run `make local-llm`): {e}")
    STATS["startup_seconds"] = round(srv.startup_seconds, 2)
    STATS["warmup_seconds"] = round(srv.warmup_seconds, 2)
    yield srv
    srv.stop()
    assert srv.process.poll() is not None and srv.log.closed


STATS: dict = {"steps": []}


def record_step(kind, llm, props, seconds):
    STATS["steps"].append(
        {
            "workflow": kind,
            "seconds": round(seconds, 2),
            "json_mode": llm.describe()["json_mode_in_use"],
            "proposals": [{"name": p.name, "valid": p.valid, "reason": p.reason} for p in props],
        }
    )
    OUT.mkdir(exist_ok=True)
    with open(OUT / "local_llm.json", "w") as f:
        json.dump(STATS, f, indent=1)


def check_proposals(props, params):
    """Each proposal is either usable (for one of ``params``, coerced to its type, a change)
    or refused with a reason; never both, never neither."""
    assert props, "propose() always returns at least one proposal"
    for p in props:
        if p.valid:
            assert p.reason is None, p
            assert any(p.parameter is q for q in params), p  # `in` would use Node.__eq__
            assert p.name == p.parameter.name
            assert p.old == p.parameter.data
            assert type(p.new) is type(p.parameter.data) and p.new != p.old, p
        else:
            assert isinstance(p.reason, str) and p.reason.strip(), f"no reason given: {p}"


@pytest.mark.local_llm
def test_numeric_workflow_steps(server):
    llm = server.llm(max_retries=1, timeout=120, seed=0, temperature=0.7)
    x = node(3.0, name="local_x", trainable=True, constraint="a number between -10 and 10")
    opt = OptoPrime([x], llm=llm, prompt_budget=6000)
    for _ in range(2):
        opt.zero_feedback()
        y = (x - 5) ** 2
        y.backward(f"The output {y.data} should be 0; change local_x.")
        before = x.data
        t0 = time.perf_counter()
        props = opt.propose()
        record_step("numeric", llm, props, time.perf_counter() - t0)
        check_proposals(props, [x])
        applied = opt.apply(props)
        assert [p.name for p in applied] == [p.name for p in props if p.valid]
        if applied:
            assert x.data == applied[0].new and isinstance(x.data, float)
        else:
            assert x.data == before
    assert llm.usage.calls == 2 and llm.usage.prompt_tokens > 0 and llm.usage.completion_tokens > 0
    assert llm.describe()["json_mode_in_use"]  # the JSON path used was recorded


@pytest.mark.local_llm
def test_prompt_workflow_through_trace_magic(server):
    from conftest import ipython_shell

    from trace_nb.notebook import session as sessions

    ip = ipython_shell()
    llm = server.llm(max_retries=1, timeout=120, seed=1, temperature=0.7)
    sessions.set_default_llm(llm)
    try:
        ip.run_cell(
            textwrap.dedent('''
            def reply_to(instruction, question):
                """A canned assistant: follows the instruction's length rule."""
                return instruction.upper() + " " + question
            def grade(out):
                return (0.0, "The answer must be one short word; the instruction should say so.")
            ''')
        )
        ip.run_cell_magic(
            "trace",
            "--name local_qa --param instruction --feedback grade --no-panel",
            'instruction = "Answer at length."\nreply_to(instruction, "Sky colour?")\n',
        )
        s = sessions.session("local_qa")
        runs = len(s.rows)
        t0 = time.perf_counter()
        props = s.propose()
        record_step("prompt", llm, props, time.perf_counter() - t0)
        check_proposals(props, s.parameter_nodes)
        # The LLM call is counted on the run it was about.
        row = s.rows[-1]
        assert len(s.rows) == runs and row["calls"] == 1
        assert 0 < row["tokens"] <= llm.usage.prompt_tokens + llm.usage.completion_tokens
        valid = [p for p in props if p.valid]
        if valid:
            s.approve(valid[0].name)
            assert s.parameters["instruction"] == valid[0].new
            s.run()
            assert len(s.rows) == runs + 1
            assert s.output.startswith(valid[0].new.upper())
        else:
            s.reject()
            assert s.parameters["instruction"] == "Answer at length."
            assert len(s.rows) == runs
    finally:
        sessions.set_default_llm(None)
