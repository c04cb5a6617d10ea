"""MLflow tracking against a REAL ``mlflow server`` on 127.0.0.1 (SQLite, temp artifacts).

Everything is logged over HTTP and read back with MLflow's own client: runs, params,
metrics per step, artifacts, traces. The LLM is the loopback FakeOpenAIServer, with a
key-shaped API key that must appear nowhere in what MLflow holds.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import train_helpers as th

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

from trace_nb import LLM, OptoPrime, node, train  # noqa: E402
from trace_nb.testing import FakeOpenAIServer  # noqa: E402
from trace_nb.testing.mlflow_server import mlflow_server  # noqa: E402
from trace_nb.tracking import MLflowLogger, flush_all, log_saved  # noqa: E402

KEY = "sk-h26tracking0123456789abcdefSECRET"


@pytest.fixture(autouse=True)
def _staging_in_tmp_path(own_temp_folder):
    """MLflow staging folders go under the test's own folder (see conftest)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def client(url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=url)


def run_named(url: str, experiment: str, name: str):
    c = client(url)
    exp = c.get_experiment_by_name(experiment)
    runs = c.search_runs([exp.experiment_id], filter_string=f"attributes.run_name = '{name}'")
    assert len(runs) == 1, runs
    return runs[0]


def everything_logged(url: str, run) -> bytes:
    """Params, tags, metric names, every artifact and every trace of ``run``, as bytes."""
    c = client(url)
    blob = [json.dumps(run.data.params), json.dumps(run.data.tags), json.dumps(run.data.metrics)]
    stack = [None]
    while stack:
        for f in c.list_artifacts(run.info.run_id, stack.pop()):
            if f.is_dir:
                stack.append(f.path)
            else:
                local = c.download_artifacts(run.info.run_id, f.path)
                blob.append(open(local, encoding="utf-8", errors="replace").read())
    for t in c.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id):
        blob.append(t.to_json())
    return "\n".join(blob).encode()


def artifact_text(url: str, run, path: str) -> str:
    local = client(url).download_artifacts(run.info.run_id, path)
    return open(local, encoding="utf-8").read()


def test_a_training_run_is_logged_live_and_reads_back(server):
    with FakeOpenAIServer(replies=th.half_stepper) as srv:
        llm = LLM(model="fake", api_key=KEY, base_url=srv.base_url, cache=False, backoff=0.01)
        param = node(0, name="offset", trainable=True)

        def workflow(example):
            return node(example["x"], name="x") + param

        result = train(
            workflow,
            th.make_examples(12),
            th.offset_feedback,
            OptoPrime([param], llm=llm),
            batch_size=4,
            validation=th.make_examples(4, start=100),
            progress=False,
            tracking={"experiment": "train-test", "run_name": "half", "tracking_uri": server},
        )
        calls = len(srv.requests)
    flush_all()  # train() returned; its last uploads went on in the background
    assert result.stopped_reason == "completed" and calls == 3
    run = run_named(server, "train-test", "half")
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert p["optimizer"] == "OptoPrime" and p["model"] == "fake" and p["initial.offset"] == "0"
    assert p["batch_size"] == "4"
    c = client(server)
    history = c.get_metric_history(run.info.run_id, "val_score")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1, 2, 3]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == [
        r["val_score"] for r in result.history
    ]
    tokens = {m.step: m.value for m in c.get_metric_history(run.info.run_id, "tokens")}
    assert tokens[3] == result.usage.tokens > 0
    auto = {m.step: m.value for m in c.get_metric_history(run.info.run_id, "approved_by_auto")}
    assert auto[1] == 1.0
    names = {f.path for f in c.list_artifacts(run.info.run_id, "parameters/offset")}
    versions = [n for n in names if n.endswith(".txt")]
    assert "parameters/offset/v0.txt" in names and "parameters/offset/diffs.patch" in names
    assert len(versions) == 1 + len({str(r["step"]) for r in result.history if r["changed"]})
    assert artifact_text(server, run, "parameters/offset/v0.txt") == "0"
    patch = artifact_text(server, run, "parameters/offset/diffs.patch")
    assert "--- offset v0\n+++ offset v1\n" in patch and "\n-0\n" in patch
    assert "follow the feedback" in artifact_text(server, run, "parameters/offset/reasoning.md")
    assert "#Variables" in artifact_text(server, run, "final_prompt.md")
    assert "val_score" in artifact_text(server, run, "history.csv").splitlines()[0]
    traces = c.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id)
    assert len(traces) == 1  # one trace per run, a span per LLM call
    root = traces[0].data.spans[0]
    assert root.name == "train" and root.parent_id is None
    chats = [sp for sp in traces[0].data.spans if sp.name == "chat fake"]
    assert len(chats) == calls and all(sp.parent_id == root.span_id for sp in chats)
    span = chats[0]
    assert span.attributes["gen_ai.usage.input_tokens"] > 0
    assert span.attributes["trace_nb.latency_s"] > 0
    assert span.inputs["message_chars"] > 0 and "messages" in span.inputs
    assert not isinstance(span.inputs["messages"], list)  # sizes only, unless asked
    assert KEY.encode() not in everything_logged(server, run)


def test_a_failing_tracker_warns_once_and_the_run_goes_on(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with FakeOpenAIServer(replies=th.fixer) as srv:
        llm = LLM(model="fake", base_url=srv.base_url, cache=False, backoff=0.01)
        param = node(0, name="offset", trainable=True)
        logger = MLflowLogger("nowhere", tracking_uri="http://127.0.0.1:9")  # nothing listens
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = train(
                lambda ex: node(ex["x"], name="x") + param,
                th.make_examples(8),
                th.offset_feedback,
                OptoPrime([param], llm=llm),
                batch_size=4,
                progress=False,
                tracking=logger,
            )
            logger.flush()  # what train() left to the background is tried, too
    assert result.stopped_reason == "completed" and param.data == 5
    mine = [str(w.message) for w in caught if "MLflow logging" in str(w.message)]
    assert len(mine) == 2, mine  # the first failure, once; where the run's files are kept
    assert "failed, the run goes on without it" in mine[0]
    kept = mine[1].split(" were not uploaded; they are kept at ")[1]
    assert (Path(kept) / "parameters" / "offset" / "v0.txt").read_text() == "0"
    assert logger.failed and logger.run_id is None
    from trace_nb.tracking.events import observing

    assert not observing()  # the run's end removed its LLM-call observer


def test_a_server_gone_or_never_there_warns_at_once_with_mlflow_default_retries(
    monkeypatch, tmp_path
):
    """MLflow retries a refused connection for minutes by default: the warning must not
    wait for that, and neither must flush() or the interpreter's exit."""
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wrong = MLflowLogger("nowhere", tracking_uri="http://127.0.0.1:9")  # nothing listens
        assert wrong.flush(60)
        with mlflow_server(tmp_path / "gone") as url:
            gone = MLflowLogger("gone", "mid-run", tracking_uri=url)
            assert gone.flush(60) and gone.run_id is not None
        gone.log_metrics({"score": 1.0}, step=1)  # the server went down meanwhile
        gone.log_text("v1", "parameters/x/v1.txt")
        assert gone.flush(60)
    assert wrong.failed and wrong.run_id is None
    assert gone.failed and gone.background.failures == 2
    mine = [str(w.message) for w in caught if "MLflow logging" in str(w.message)]
    assert len(mine) == 2 and all("no MLflow server answers" in m for m in mine), mine


def test_a_run_that_raises_ends_its_mlflow_run_as_failed(server):
    from trace_nb.tracking.events import observing

    with FakeOpenAIServer(replies=th.fixer) as srv:
        llm = LLM(model="fake", base_url=srv.base_url, cache=False, backoff=0.01)
        param = node(0, name="offset", trainable=True)
        with pytest.raises(ValueError, match="received feedback"):
            train(
                lambda ex: node(ex["x"], name="x"),  # the parameter is not used: no feedback
                th.make_examples(4),
                th.offset_feedback,
                OptoPrime([param], llm=llm),
                progress=False,
                tracking={"experiment": "fails", "run_name": "broken", "tracking_uri": server},
            )
    flush_all()
    assert not observing()
    run = run_named(server, "fails", "broken")
    assert run.info.status == "FAILED"
    assert "received feedback" in run.data.tags["trace_nb.error"]


def test_an_autosave_file_is_imported_without_running_its_code(server, tmp_path):
    marker = tmp_path / "ran"
    code = f"def post(x=open({str(marker)!r}, 'w')):\n    return x\n"
    state = {
        "format": "trace_nb",
        "kind": "session",
        "version": 2,
        "name": "saved",
        "parameters": {"prompt": {"value": "Be brief.", "description": None, "constraint": None}},
        "code": {"post": {"source": code}},
        "modules": {},
        "history": [
            {"step": 0, "score": 0.25, "approved": "prompt", "decided_by": "human", "tokens": 9},
            {"step": 1, "score": 0.75, "approved": "", "decided_by": "", "tokens": 0},
        ],
        "optimizer": None,
        "spec": None,
        "lineage": {
            "current": {"prompt": 1},
            "versions": {
                "prompt": [
                    {"number": 0, "value": f"Be long. {KEY}", "parent": None, "source": "cell"},
                    {
                        "number": 1,
                        "value": "Be brief.",
                        "parent": 0,
                        "source": "proposal",
                        "step": 0,
                        "reasoning": "shorter answers score higher",
                        "decided_by": "human",
                        "runs": {"1": 0.75},
                    },
                ]
            },
        },
    }
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(state))
    logger = log_saved(str(path), "imports", tracking_uri=server)
    assert not logger.failed
    assert not marker.exists()  # the code was never compiled nor run
    run = run_named(server, "imports", "saved")
    assert artifact_text(server, run, "parameters/post/current.py") == code
    assert artifact_text(server, run, "parameters/prompt/v1.txt") == "Be brief."
    assert "-Be long." in artifact_text(server, run, "parameters/prompt/v0_to_v1.diff")
    assert "shorter answers" in artifact_text(server, run, "parameters/prompt/reasoning.md")
    scores = client(server).get_metric_history(run.info.run_id, "score")
    assert sorted((m.step, m.value) for m in scores) == [(0, 0.25), (1, 0.75)]
    human = client(server).get_metric_history(run.info.run_id, "approved_by_human")
    assert sorted((m.step, m.value) for m in human) == [(0, 1.0), (1, 0.0)]
    blob = everything_logged(server, run)
    assert KEY.encode() not in blob and b"Be long. " in blob  # scrubbed on the way out
    assert not marker.exists()


def test_a_damaged_autosave_file_logs_nothing(server, tmp_path):
    from trace_nb.notebook.persist import SessionFileError

    path = tmp_path / "bad.json"
    path.write_text('{"format": "trace_nb", "kind": "session", "version": 2, "name": 3}')
    with pytest.raises(SessionFileError, match="name"):
        log_saved(str(path), "imports-bad", tracking_uri=server)
    assert client(server).get_experiment_by_name("imports-bad") is None


# -- a notebook session, live, through %trace_log ----------------------------------------
PROMPT_0 = "Answer briefly."
PROMPT_1 = "Answer briefly.\nUse examples."


def test_trace_log_follows_a_session_live(server, tmp_path, monkeypatch):
    import textwrap

    from conftest import ipython_shell

    import trace_nb
    from trace_nb.notebook import session as sessions

    monkeypatch.setenv("TRACE_NB_STATE_DIR", "off")
    ip = ipython_shell()
    ip.run_cell(
        textwrap.dedent("""
        def h26_grade(out):
            return (out.count("\\n") + 1) / 2, "more guidance please"
        """)
    )
    reply = json.dumps({"reasoning": "add examples", "suggestion": {"prompt": PROMPT_1}})
    with FakeOpenAIServer(replies=[reply]) as srv:
        llm = LLM(model="fake", api_key=KEY, base_url=srv.base_url, cache=False, backoff=0.01)
        sessions.set_default_llm(llm)
        try:
            ip.run_cell_magic(
                "trace",
                "--name h26 --param prompt --feedback h26_grade --no-panel --reset",
                f"prompt = {PROMPT_0!r}\nprompt\n",
            )
            s = trace_nb.session("h26")
            log = ip.run_line_magic("trace_log", f"h26 --experiment sessions --uri {server}")
            s.propose()
            s.approve("prompt")
            s.run()
            ip.run_line_magic("trace_log", "h26 --stop")
        finally:
            sessions.set_default_llm(None)
    assert not log.logger.failed
    run = run_named(server, "sessions", "h26")
    assert run.info.status == "FINISHED"
    assert run.data.params["initial.prompt"] == PROMPT_0
    assert run.data.params["parameters"] == "prompt"
    c = client(server)
    scores = sorted((m.step, m.value) for m in c.get_metric_history(run.info.run_id, "score"))
    assert scores == [(0, 0.5), (1, 1.0)]
    human = sorted(
        (m.step, m.value) for m in c.get_metric_history(run.info.run_id, "approved_by_human")
    )
    assert human == [(0, 1.0), (1, 0.0)]
    calls = sorted((m.step, m.value) for m in c.get_metric_history(run.info.run_id, "calls"))
    assert calls == [(0, 1.0), (1, 0.0)]
    assert artifact_text(server, run, "parameters/prompt/v1.txt") == PROMPT_1
    assert "+Use examples." in artifact_text(server, run, "parameters/prompt/v0_to_v1.diff")
    notes = artifact_text(server, run, "parameters/prompt/reasoning.md")
    assert "add examples" in notes and "decided by human" in notes
    assert "#Feedback" in artifact_text(server, run, "final_prompt.md")
    assert artifact_text(server, run, "dag.svg").lstrip().startswith(("<?xml", "<svg"))
    import csv
    import io

    table = list(csv.DictReader(io.StringIO(artifact_text(server, run, "history.csv"))))
    assert [r["score"] for r in table] == ["0.5", "1.0"] and table[0]["approved"] == "prompt"
    traces = c.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id)
    by_name = {t.data.spans[0].name: t for t in traces}
    assert set(by_name) == {"h26 run 0", "h26 run 1"}  # a trace per run of the cell
    (chat,) = [sp for sp in by_name["h26 run 0"].data.spans if sp.name == "chat fake"]
    assert chat.attributes["trace_nb.step"] == 0 and chat.attributes["gen_ai.usage.input_tokens"]
    assert len(by_name["h26 run 1"].data.spans) == 1  # no LLM call after the second run
    assert KEY.encode() not in everything_logged(server, run)


def test_bench_cli_logs_nested_runs_per_task_and_seed(server, tmp_path, capsys):
    from trace_nb.bench import cli

    out = tmp_path / "bench"
    args = ["--offline", "--tasks", "numerical", "--methods", "optoprime", "--seeds", "2"]
    args += ["--steps", "2", "--out", str(out), "--no-progress", "--mlflow", server]
    assert cli.main(args) == 0
    assert "logged 2 runs to MLflow" in capsys.readouterr().out
    c = client(server)
    exp = c.get_experiment_by_name("trace_nb-bench")
    runs = c.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.info.run_name == "bench"]
    children = {r.info.run_name: r for r in runs if r is not parent}
    assert set(children) == {"numerical/optoprime/seed0", "numerical/optoprime/seed1"}
    results = {r["seed"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    for seed in (0, 1):
        child = children[f"numerical/optoprime/seed{seed}"]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.params["seed"] == str(seed)
        curve = sorted(c.get_metric_history(child.info.run_id, "score"), key=lambda m: m.step)
        assert [m.value for m in curve] == results[seed]["curve"]
        assert child.data.metrics["llm_calls"] == results[seed]["llm_calls"]
    assert "numerical" in artifact_text(server, parent, "report.md")
