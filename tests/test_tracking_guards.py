"""Trackers that fail, hang or go away never break or stall the work, and lose nothing.

Against REAL servers on 127.0.0.1: ``mlflow server`` (stopped in the middle of a run), a
socket that accepts connections and never answers, and the loopback FakeOpenAIServer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import train_helpers as th
from conftest import ipython_shell
from IPython.core.error import UsageError

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

import trace_nb  # noqa: E402
from trace_nb import LLM, OptoPrime, node, train  # noqa: E402
from trace_nb.notebook import session as sessions  # noqa: E402
from trace_nb.testing import FakeOpenAIServer  # noqa: E402
from trace_nb.testing.mlflow_server import mlflow_server  # noqa: E402
from trace_nb.tracking import MLflowLogger  # noqa: E402

KEY = "sk-t26guards0123456789abcdefSECRET"


@pytest.fixture(autouse=True)
def _staging_in_tmp_path(own_temp_folder):
    """MLflow staging folders go under the test's own folder (see conftest)."""


def tracker_warnings(caught, url: str) -> list[str]:
    """The warnings about MLflow logging to ``url`` (not those of other tests' loggers)."""
    return [str(w.message) for w in caught if f"MLflow logging ({url})" in str(w.message)]


def metric_steps(url: str, run_id: str, name: str, wait_for: int, within: float = 30.0) -> set:
    """Steps of metric ``name`` on the server, polled until ``wait_for`` is among them (or
    ``within`` seconds passed: the caller asserts on what it got)."""
    c = MlflowClient(tracking_uri=url)
    deadline = time.monotonic() + within
    while True:
        steps = {m.step for m in c.get_metric_history(run_id, name)}
        if wait_for in steps or time.monotonic() > deadline:
            return steps
        time.sleep(0.2)


def test_values_wait_on_disk_metrics_go_live_and_a_server_gone_keeps_the_files(tmp_path):
    """During the run: metrics reach the server step by step, value files do not (they are
    staged locally). The server then goes away before the end: the run completes, and the
    staged files stay on disk, the warning says where."""
    seen: dict = {}
    with contextlib.ExitStack() as server_alive:
        url = server_alive.enter_context(mlflow_server(tmp_path / "mlflow"))
        logger = MLflowLogger("guards", "gone-before-the-end", tracking_uri=url)
        assert logger.flush(60) and logger.run_id  # the run exists before the steps read it

        def feedback(example, output):
            seen["calls"] = seen.get("calls", 0) + 1
            if seen["calls"] == 9:  # the third step's first example: steps 1 and 2 are done
                seen["live_steps"] = metric_steps(url, logger.run_id, "train_score", 2)
                c = MlflowClient(tracking_uri=url)
                seen["artifacts_during_run"] = c.list_artifacts(logger.run_id)
                folder = logger.staging.folder  # None: nothing was staged
                files = folder.rglob("*.txt") if folder is not None else []
                seen["staged"] = sorted(p.relative_to(folder).as_posix() for p in files)
                server_alive.close()  # the tracking server goes away mid-run
            return th.offset_feedback(example, output)

        with FakeOpenAIServer(replies=th.half_stepper) as srv:
            llm = LLM(model="fake", api_key=KEY, base_url=srv.base_url, cache=False)
            param = node(0, name="offset", trainable=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = train(
                    lambda ex: node(ex["x"], name="x") + param,
                    th.make_examples(12),
                    feedback,
                    OptoPrime([param], llm=llm),
                    batch_size=4,
                    progress=False,
                    tracking=logger,
                )
                assert logger.flush(60)
    assert result.stopped_reason == "completed" and result.steps == 3
    assert {1, 2} <= seen["live_steps"]  # live: metrics of finished steps are on the server
    assert seen["artifacts_during_run"] == []  # no upload per step: the files wait on disk
    assert seen["staged"] == ["parameters/offset/v0.txt", "parameters/offset/v1.txt"] + [
        "parameters/offset/v2.txt"
    ]
    messages = tracker_warnings(caught, url)
    kept = [m for m in messages if "were not uploaded; they are kept at" in m]
    assert len(kept) == 1, messages
    folder = Path(kept[0].rsplit(" kept at ", 1)[1])
    files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    assert {"parameters/offset/v0.txt", "parameters/offset/v3.txt", "history.csv"} <= set(files)
    assert {"best/offset.txt", "final_prompt.md", "parameters/offset/diffs.patch"} <= set(files)
    assert files["parameters/offset/v0.txt"].read_text() == "0"
    assert files["parameters/offset/v3.txt"].read_text() == str(param.data)
    assert not any(KEY in p.read_text() for p in files.values())
    assert len(messages) == 2  # the first failure, and where the files are


def test_staged_files_are_uploaded_at_the_end_and_the_folder_removed(tmp_path):
    with mlflow_server(tmp_path / "mlflow") as url:
        logger = MLflowLogger("guards", "uploaded", tracking_uri=url)
        with FakeOpenAIServer(replies=th.half_stepper) as srv:
            param = node(0, name="offset", trainable=True)
            opt = OptoPrime([param], llm=LLM(model="fake", base_url=srv.base_url, cache=False))
            train(
                lambda ex: node(ex["x"], name="x") + param,
                th.make_examples(8),
                th.offset_feedback,
                opt,
                batch_size=4,
                progress=False,
                tracking=logger,
            )
            folder = logger.staging.folder  # taken by the upload once train() returned
            assert logger.flush(60) and not logger.failed
        c = MlflowClient(tracking_uri=url)
        names = {f.path for f in c.list_artifacts(logger.run_id, "parameters/offset")}
        assert {"parameters/offset/v0.txt", "parameters/offset/v2.txt"} <= names
        assert c.get_run(logger.run_id).info.status == "FINISHED"
    assert folder is None or not folder.exists()
    assert logger.staging.folder is None


@contextlib.contextmanager
def silent_server():
    """A TCP server on 127.0.0.1 that accepts every connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_a_server_that_never_answers_is_said_once_and_the_run_goes_on(monkeypatch):
    """MLflow's client would wait 2 minutes per request and retry 7 times: the run and the
    flush must not wait for that, and the warning must say what is wrong."""
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    with silent_server() as url, FakeOpenAIServer(replies=th.fixer) as srv:
        param = node(0, name="offset", trainable=True)
        logger = MLflowLogger("hangs", tracking_uri=url)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = train(
                lambda ex: node(ex["x"], name="x") + param,
                th.make_examples(8),
                th.offset_feedback,
                OptoPrime([param], llm=LLM(model="fake", base_url=srv.base_url, cache=False)),
                batch_size=4,
                progress=False,
                tracking=logger,
            )
            flushed = logger.flush(60)
    assert result.stopped_reason == "completed" and param.data == 5
    assert flushed, "the logging waited on a server that never answers"
    messages = tracker_warnings(caught, url)
    assert any("accepts connections but does not answer" in m for m in messages), messages
    assert len([m for m in messages if "failed" in m]) == 1
    assert logger.failed and logger.run_id is None


@contextlib.contextmanager
def stalling_server():
    """An HTTP server on 127.0.0.1 that answers ``/health`` and leaves every other request
    waiting (until the block ends): a tracking server that hangs after it looked fine."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path.startswith("/health"):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")
            else:
                release.wait(120)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_server_that_stalls_after_answering_makes_flush_say_so_once(monkeypatch):
    """flush() waits at most its timeout and then says, once, that the logging goes on in
    the background; the run's staged files are named."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")  # so the stalled worker ends
    with stalling_server() as url:
        logger = MLflowLogger("stalls", "stalled", tracking_uri=url)
        logger.stage_text("v0", "parameters/x/v0.txt")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = logger.flush(0.5)
            second = logger.flush(0.5)
            folder = logger.staging.folder
            assert logger.flush(60)  # MLflow's own (shortened) timeout ended the request
            logger.finish()  # the run never opened: the files stay, the warning says where
    assert not first and not second
    messages = tracker_warnings(caught, url)
    stalled = [m for m in messages if "has not finished after 0.5 s" in m]
    assert len(stalled) == 1, messages
    assert "goes on in the background" in stalled[0] and str(folder) in stalled[0]
    assert any(m.endswith(f"were not uploaded; they are kept at {folder}") for m in messages)
    assert (folder / "parameters" / "x" / "v0.txt").read_text() == "v0"


# -- the session's hooks -----------------------------------------------------------------
def session_cell(ip, name: str, grade: str) -> None:
    """A session on ``prompt = 'a'``, scored 1.0."""
    ip.run_cell(f"def {grade}(out):\n    return 1.0, 'more please'\n")
    ip.run_cell_magic(
        "trace",
        f"--name {name} --param prompt --feedback {grade} --no-panel --reset",
        "prompt = 'a'\nprompt\n",
    )


def test_a_failing_mlflow_session_hook_warns_once_and_never_breaks_a_decision(
    tmp_path, monkeypatch
):
    """The hook fails on every decision (a disk that is full, injected where the version
    files are made): the decisions and runs go on, one warning says so, and what the hook
    missed is logged by ``--stop`` once the disk is back."""
    from trace_nb.tracking import records

    monkeypatch.setenv("TRACE_NB_STATE_DIR", "off")
    ip = ipython_shell()
    disk_full = [False]
    version_files = records.version_files

    def files_or_full_disk(snap, name):
        if disk_full[0]:
            raise OSError(28, "No space left on device")
        return version_files(snap, name)

    monkeypatch.setattr(records, "version_files", files_or_full_disk)
    replies = [json.dumps({"reasoning": "r", "suggestion": {"prompt": v}}) for v in "bc"]
    with mlflow_server(tmp_path / "mlflow") as url, FakeOpenAIServer(replies=replies) as srv:
        sessions.set_default_llm(LLM(model="fake", base_url=srv.base_url, cache=False))
        try:
            session_cell(ip, "t26g", "t26g_grade")
            s = trace_nb.session("t26g")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                log = ip.run_line_magic("trace_log", f"t26g --experiment guards --uri {url}")
                disk_full[0] = True
                s.propose()
                s.approve("prompt")  # 'b': the hook fails
                s.run()
                s.propose()
                s.approve("prompt")  # 'c': fails again, said once only
                s.run()
                disk_full[0] = False
                ip.run_line_magic("trace_log", "t26g --stop")
        finally:
            sessions.set_default_llm(None)
        assert s.parameters["prompt"] == "c" and len(s.rows) == 3
        messages = tracker_warnings(caught, url)
        assert len(messages) == 1 and "No space left on device" in messages[0], messages
        assert log.logger.background.failures == 2
        c = MlflowClient(tracking_uri=url)
        run = c.get_run(log.run_id)
        assert run.info.status == "FINISHED"
        assert sorted(m.step for m in c.get_metric_history(log.run_id, "score")) == [0, 1, 2]
        local = c.download_artifacts(log.run_id, "parameters/prompt/v2.txt")
        assert Path(local).read_text() == "c"


def test_a_failing_otel_session_hook_warns_once_and_never_breaks_a_decision(monkeypatch):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from trace_nb.tracking import otel

    class Refuses(SpanProcessor):
        """A span processor that raises on review spans (the SDK lets that through)."""

        def on_start(self, span, parent_context=None):
            if span.name == "trace_nb.review":
                raise RuntimeError("the collector refused the span")

    provider = TracerProvider()
    provider.add_span_processor(Refuses())
    monkeypatch.setenv("TRACE_NB_STATE_DIR", "off")
    ip = ipython_shell()
    replies = [json.dumps({"reasoning": "r", "suggestion": {"prompt": v}}) for v in ("b", "c")]
    otel.enable(provider)
    try:
        with FakeOpenAIServer(replies=replies) as srv:
            sessions.set_default_llm(LLM(model="fake", base_url=srv.base_url, cache=False))
            try:
                session_cell(ip, "t26o", "t26o_grade")
                s = trace_nb.session("t26o")
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    spans = ip.run_line_magic("trace_log", "t26o --otel")
                    s.propose()
                    s.approve("prompt")
                    s.run()
                    s.propose()
                    s.reject("prompt")
                    ip.run_line_magic("trace_log", "t26o --otel --stop")
            finally:
                sessions.set_default_llm(None)
    finally:
        otel.reset()
    assert s.parameters["prompt"] == "b"
    mine = [str(w.message) for w in caught if "OpenTelemetry spans of session" in str(w.message)]
    assert len(mine) == 1 and "the collector refused the span" in mine[0], mine
    assert spans.errors.failures == 2


def test_trace_log_without_mlflow_says_what_to_install(monkeypatch):
    monkeypatch.setenv("TRACE_NB_STATE_DIR", "off")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # how Python marks a module as absent
    ip = ipython_shell()
    ip.run_cell_magic("trace", "--name t26m --param x --no-panel --reset", "x = 1\nx\n")
    with pytest.raises(UsageError, match=r'pip install "trace_nb\[mlflow\]"'):
        ip.run_line_magic("trace_log", "t26m")


def test_files_of_a_killed_process_are_named_by_the_next_logger(tmp_path):
    """A process killed before its upload cannot warn: the next logger says where its files
    wait (once), and not about folders of processes still running (this one's)."""
    import os
    import subprocess
    import tempfile

    temp = tempfile.gettempdir()  # the test's own (own_temp_folder)
    script = (
        "import os, signal\n"
        "from trace_nb.tracking import MLflowLogger\n"
        "lg = MLflowLogger('killed', 'doomed', tracking_uri='http://127.0.0.1:9')\n"
        "lg.stage_text('v0 of x', 'parameters/x/v0.txt')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    alive = MLflowLogger("alive", "running", tracking_uri="http://127.0.0.1:9")
    alive.stage_text("mine", "parameters/y/v0.txt")  # a live process's folder: not an orphan
    env = {**os.environ, "TMPDIR": temp, "PYTHONPATH": str(Path(trace_nb.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert done.returncode == -9
    (left,) = Path(temp).glob("trace_nb-mlflow-doomed-*")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLflowLogger("next", tracking_uri="http://127.0.0.1:9")
        MLflowLogger("again", tracking_uri="http://127.0.0.1:9")  # said once
    told = [str(w.message) for w in caught if "earlier MLflow run" in str(w.message)]
    assert len(told) == 1 and told[0].count("trace_nb-mlflow-") == 1, told
    assert f"kept at: {left} " in told[0]
    assert (left / "parameters" / "x" / "v0.txt").read_text() == "v0 of x"


def test_a_training_row_becomes_metrics_with_kept_values():
    from trace_nb.tracking.training import step_metrics

    row = {"step": 3, "train_score": 0.5, "changed": [], "invalid": 1, "kept": True}
    metrics = step_metrics(row)
    assert metrics["kept_values"] == 1.0 and metrics["approved_by_auto"] == 0.0
    assert metrics["refused"] == 1.0 and metrics["improved"] == 0.0
    assert step_metrics({"changed": ["x"]})["kept_values"] == 0.0  # rows written before it
