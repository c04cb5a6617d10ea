"""Traced minibatches on remote engines: the trace travels back as data and is rebuilt.

Real engines: a ProcessPoolExecutor, a Dask LocalCluster with 2 worker processes and a
local Ray instance (``ray.init(num_cpus=2)``); the workflow calls the loopback LLM server.
"""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import remote_agent as ra

from trace_nb import bundle, node
from trace_nb.errors import FeedbackError
from trace_nb.graph import ExecutionError
from trace_nb.graph.portable import (
    RebuildError,
    RemoteValue,
    export_trace,
    rebuild_trace,
    recording_existing,
)
from trace_nb.notebook.ui.train_view import TrainView
from trace_nb.optim import OptoPrime
from trace_nb.testing import FakeOpenAIServer
from trace_nb.training import Budget, evaluate, train
from trace_nb.training.engines import ExecutorEngine, engine_for
from trace_nb.training.inprocess import forward
from trace_nb.training.remote import Payload, RemoteRunner, stable_names

CI = os.environ.get("CI") == "true"


def need(module: str):
    """Import ``module``; under CI a missing engine fails instead of skipping."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        if CI:
            raise
        pytest.skip(f"{module} is not installed")


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(replies=ra.reply_for) as srv:
        yield srv


@pytest.fixture(scope="module")
def key_in_env():
    """Workers read the API key from their environment (it never travels with a task)."""
    old = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = ra.SECRET
    yield ra.SECRET
    if old is None:
        del os.environ["OPENAI_API_KEY"]
    else:
        os.environ["OPENAI_API_KEY"] = old


@pytest.fixture(scope="module")
def dask_client(key_in_env):
    need("distributed")
    from dask.distributed import Client, LocalCluster

    # Dask's default: a task whose worker died is retried on another worker up to 3 times,
    # so a task that kills every worker it runs on fails after 4 deaths (KilledWorker).
    with (
        LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def ray_started(key_in_env):
    ray = need("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def local_prompt(params, workflow, feedback, items):
    """The optimizer's messages after running ``items`` in this process (and the results)."""
    opt = OptoPrime(params, llm=object())
    traced = forward(workflow, feedback, items, None, params)
    for t in traced:
        if t.node is not None:
            t.node.backward(t.result.feedback, t.result.score)
    messages = opt.messages()
    opt.zero_feedback()
    return messages, [t.result for t in traced]


def remote_prompt(runner, params, items):
    opt = OptoPrime(params, llm=object())
    traced, usage = runner.forward(items)
    for t in traced:
        if t.node is not None:
            t.node.backward(t.result.feedback, t.result.score)
    messages = opt.messages()
    opt.zero_feedback()
    return messages, [t.result for t in traced], usage, traced


def batch():
    items = list(enumerate(ra.examples(3)))
    items.append((3, {"q": "boom", "want": "x"}))  # fails inside an operator: ExecutionError
    items.append((4, {"q": "w4", "want": "x", "raise": True}))  # the workflow itself raises
    # An exception that pickles but does not unpickle, raised in a thread of the workflow.
    items.append((5, {"q": "w5", "want": "x", "tags": ["quota", "b"]}))
    return items


# -- the data format, in this process --------------------------------------------------
def test_export_rebuild_gives_the_same_prompt_and_graph(server):
    with recording_existing() as existing:  # what a worker's payload holds before any run
        params, workflow, feedback, _ = ra.build(server.base_url)
    items = [it for it in batch() if not it[1].get("raise")]  # workflow_error is made here
    want, _ = local_prompt(params, workflow, feedback, items)
    names = stable_names(params)
    assert list(names) == ["prompt", "style"]
    opt = OptoPrime(params, llm=object())
    shared, ops = {}, {}
    outs = []
    for _, example in items:
        try:
            out = workflow(example)
        except ExecutionError as e:
            out = e.exception_node
        data = pickle.loads(pickle.dumps(export_trace(out, names, existing.ids)))
        outs.append((rebuild_trace(data, names, shared, ops), example))
    for out, example in outs:
        if out.kind == "exception":
            out.backward(out.describe())
        else:
            out.backward(*reversed(feedback(example, out.peek())))
    got = opt.messages()
    opt.zero_feedback()
    assert got == want
    content = got[1]["content"]
    assert "(str) suffix='!'" in content and content.count("suffix=") == 1  # one shared node
    assert "(int) limit=3" in content and "RuntimeError: the answer exploded" in content
    # The rebuilt graph holds the driver's own parameters, not copies.
    from trace_nb.graph import topo_ancestors

    nodes = topo_ancestors([outs[0][0]])
    assert params[0] in nodes and params[1] in nodes
    limit = [n for n in nodes if n.label == "limit"][0]
    assert limit.trainable and limit not in params and limit.peek() == 3


def _section(text: str, name: str) -> str:
    start = text.index(name)
    end = text.find("\n#", start + 1)
    return text[start : end if end >= 0 else None]


def test_values_that_do_not_pickle_travel_as_marked_previews():
    lock = threading.Lock()
    holder = node(lock, name="handle")

    @bundle()
    def describe(h, label):
        return f"{label}: {'locked' if h.locked() else 'free'}"

    out = describe(holder, node("gate", name="label"))
    data = export_trace(out, {})
    rec = [r for r in data["nodes"] if r["name"] == "handle"][0]
    assert "value" not in rec and rec["preview"]["type"] == "lock"
    pickle.dumps(data)  # the whole record travels
    rebuilt = rebuild_trace(data, {})
    handle = rebuilt.parents[0]
    assert isinstance(handle.peek(), RemoteValue)
    assert type(handle.peek()).__name__ == type(lock).__name__
    assert repr(handle.peek()) == repr(lock) and str(handle.peek()) == str(lock)
    assert rebuilt.peek() == "gate: free" and rebuilt.op.name == "describe"


def test_rebuild_refuses_unknown_parameters_and_versions():
    p = node(1, name="p", trainable=True)
    data = export_trace(p + 1, {"p": p})
    with pytest.raises(RebuildError, match="parameter 'p'.*not one of the trained"):
        rebuild_trace(data, {})
    with pytest.raises(RebuildError, match="version 99"):
        rebuild_trace({**data, "version": 99}, {"p": p})


def test_engine_for_names_what_it_accepts():
    assert engine_for(None) is None
    assert engine_for("ray").name == "ray"
    with pytest.raises(TypeError, match="dask.distributed.Client, 'ray'"):
        engine_for(object())


def test_the_api_key_never_travels_in_a_payload(server, monkeypatch):
    params, workflow, feedback, llm = ra.build(server.base_url, key=ra.SECRET)
    payload = Payload(workflow, feedback, params)
    assert ra.SECRET.encode() not in payload.data
    assert b"0123456789abcdef" not in payload.data
    # Source lines travel for tracebacks, but only those of the pickled functions: the
    # module's other lines (where a key or a token may sit) do not.
    assert b"def polish(text, how, n):" in payload.data
    assert b"SECRET =" not in payload.data

    # A key the workflow holds itself (not through an LLM) is refused with what to do:
    # a registered one, one shaped like an OpenAI key, an environment variable's token.
    held = {"key": ra.SECRET}

    def leaky(example):
        return node(held["key"])

    with pytest.raises(ValueError, match="hold an API key an LLM client uses.*OPENAI_API_KEY"):
        Payload(leaky, feedback, params)
    held["key"] = "sk-proj-never-registered-0123456789"
    with pytest.raises(ValueError, match=r"shaped like an OpenAI key"):
        Payload(leaky, feedback, params)
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnopqrstu")
    held["key"] = "hf_abcdefghijklmnopqrstu"
    with pytest.raises(ValueError, match=r"the value of \$HF_TOKEN"):
        Payload(leaky, feedback, params)


def test_what_cannot_travel_is_refused_with_what_to_do(server):
    params, _, feedback, _ = ra.build(server.base_url)
    lock = threading.Lock()

    def locked(example):
        with lock:
            return node(example)

    with pytest.raises(ValueError, match="cannot send the workflow.*create locks"):
        Payload(locked, feedback, params)


# -- real engines ----------------------------------------------------------------------
def check_engine(engine, server, crash: bool):
    """Same prompt as local, usage counted, errors become feedback; returns the runner."""
    params, workflow, feedback, llm = ra.build(server.base_url)
    items = batch()
    before = llm.usage.calls
    want, local_results = local_prompt(params, workflow, feedback, items)
    local_calls = llm.usage.calls - before
    local_tokens = llm.usage.prompt_tokens
    runner = RemoteRunner(engine_for(engine), workflow, feedback, params)
    got, results, usage, traced = remote_prompt(runner, params, items)
    assert got == want  # the prompt for a remote minibatch is the local one
    assert [r.score for r in results] == [r.score for r in local_results]
    assert [r.output for r in results] == [r.output for r in local_results]
    assert traced[3].node.kind == "exception"
    assert "the answer exploded" in results[3].feedback
    assert traced[4].node.op.name == "workflow_error"
    assert "cannot handle 'w4'" in results[4].feedback
    assert traced[5].node.kind == "exception"
    assert "QuotaError: alice is over quota 3" in results[5].feedback
    # Every LLM call made on the workers came back as usage (5 examples called the model).
    assert usage.calls == local_calls == 5
    assert usage.prompt_tokens == local_tokens > 0
    assert llm.usage.calls == before + local_calls  # the driver's client made no more calls
    assert all(w != "lost" and not w.endswith(f":{os.getpid()}") for w in runner.workers)
    if crash:
        crashed = [(6, {"q": "w6", "want": "x", "crash": True})]
        traced, _ = runner.forward(crashed + list(enumerate(ra.examples(2))))
        assert traced[0].result.score is None
        assert "worker running this example failed" in traced[0].result.feedback
        assert traced[0].node.op.name == "workflow_error"  # feedback reaches the parameters
        assert [t.result.score for t in traced[1:]] == [1.0, 1.0]  # the rest of the step
        assert runner.workers.get("lost") == 1
    return runner


def test_process_pool_ships_traces_back(server):
    with ProcessPoolExecutor(2) as pool:
        runner = check_engine(pool, server, crash=False)
        # The pool still works after the exception that does not unpickle (sent as text).
        traced, _ = runner.forward(list(enumerate(ra.examples(2))))
        assert [t.result.score for t in traced] == [1.0, 1.0]
    assert len(runner.workers) >= 1


def test_set_up_problems_stop_the_run_instead_of_becoming_feedback():
    import remote_stale as rs

    with ProcessPoolExecutor(1) as pool:
        # The module holds a lock, so it goes by reference: the worker's workflow uses its
        # own copy of the parameter, which never gets the values.
        runner = RemoteRunner(engine_for(pool), rs.workflow, rs.feedback, [rs.STALE])
        with pytest.raises(RuntimeError, match="own parameter.*stale_offset.*stale"):
            runner.forward([(0, 1)])
        with pytest.raises(RuntimeError, match="own parameter"):
            runner.evaluate([(0, 1)])  # validation too, where no trace is shipped
        # A payload the worker cannot load (a module only the driver has).
        runner = RemoteRunner(engine_for(pool), rs.needs_missing_module, rs.feedback, [rs.STALE])
        with pytest.raises(RuntimeError, match="could not load the workflow.*only_on_the_driver"):
            runner.forward([(0, 1)])
        # A pool that cannot take tasks any more says so, and what to do.
        pool.shutdown()
        with pytest.raises(RuntimeError, match="does not take tasks.*new one"):
            runner.forward([(0, 1)])


def test_dask_local_cluster_ships_traces_back(server, dask_client):
    runner = check_engine(dask_client, server, crash=True)
    workers = {w for w in runner.workers if w != "lost"}
    assert len(workers) >= 2  # both worker processes ran examples (restarted ones get new ids)
    per_worker = runner.usage_by_worker()
    assert sum(v.calls for v in per_worker.values()) == 5 + 2


def test_ray_ships_traces_back(server, ray_started):
    runner = check_engine("ray", server, crash=True)  # the default engine: no retries
    assert runner.engine.options["max_retries"] == 0


def test_train_on_dask_counts_worker_usage_in_totals_and_budget(server, dask_client):
    fixer = FakeOpenAIServer(
        replies=lambda body: {"reasoning": "make it upper", "suggestion": {"style": "upper"}}
    ).start()
    try:
        params, workflow, feedback, llm = ra.build(server.base_url)
        from trace_nb.llm import LLM

        opt_llm = LLM(model="fake", base_url=fixer.base_url, cache=False)
        opt = OptoPrime(params, llm=opt_llm)
        view = TrainView()
        data = [{"q": f"w{i}", "want": "THE ANSWER IS!"} for i in range(4)]
        result = train(
            workflow,
            data,
            feedback,
            opt,
            batch_size=2,
            executor=dask_client,
            validation=data[:2],
            progress=False,
            workflow_llm=llm,
            view=view,
        )
        assert params[1].data == "upper" and result.best_score == 1.0
        # 2 steps x 2 examples + 2 validations x 2 examples ran on workers, each one LLM call;
        # plus 2 optimizer calls here.
        assert result.usage.calls == 10
        assert sum(w.calls for w in result.usage.workers.values()) == 8
        assert result.usage.engine == "dask"
        assert "on dask:" in view.totals.value and "examples" in view.totals.value
        # The budget sees worker calls: the first step costs 5 calls (2 examples, 1 optimizer
        # call, 2 validation examples) on top of the initial validation's 2; a second step
        # would take the total past 7.
        for p, v in zip(params, ("Answer with the word asked for.", "lower"), strict=True):
            p.set_value(v)
        stopped = train(
            workflow,
            data,
            feedback,
            OptoPrime(params, llm=opt_llm),
            batch_size=2,
            executor=dask_client,
            validation=data[:2],
            progress=False,
            budget=Budget(calls=7),
        )
        assert stopped.stopped_reason == "budget" and stopped.steps == 1, stopped.usage
        assert stopped.usage.calls <= 7
    finally:
        fixer.close()


def test_evaluate_on_ray_reports_usage(server, ray_started):
    params, workflow, feedback, _ = ra.build(server.base_url)
    report = evaluate(workflow, ra.examples(3), feedback, executor="ray", parameters=params)
    assert [r.score for r in report.results] == [1.0, 1.0, 1.0]
    assert report.usage.calls == 3


class _SameProcess(concurrent.futures.Executor):
    """A remote engine as far as trace_nb knows (not a ThreadPoolExecutor), one thread here."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(1)

    def submit(self, fn, /, *args, **kwargs):
        return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, **kwargs):
        self.pool.shutdown(wait=wait)


def test_a_failing_feedback_function_stops_the_tasks_still_queued(tmp_path):
    go = tmp_path / "go"

    def workflow(example):
        (tmp_path / f"ran-{example}").touch()
        while example == 1 and not go.exists():
            time.sleep(0.01)
        return node(example) + 0

    def feedback(example, output):
        if example == 0:
            raise ValueError("the scorer has a bug")
        return 1.0

    engine = _SameProcess()
    runner = RemoteRunner(engine_for(engine), workflow, feedback, [])
    with pytest.raises(FeedbackError, match="scorer has a bug"):
        runner.forward([(0, 0), (1, 1), (2, 2)])
    go.touch()
    engine.shutdown(wait=True)
    assert (tmp_path / "ran-0").exists() and not (tmp_path / "ran-2").exists()


# Every length of an OpenAI-shaped key: pickle writes the string's length in the byte just
# before it, and lengths 45-57, 65-90, 95 and 97-122 are the bytes "-", digits, letters and
# "_" that a word-boundary pattern on the raw bytes took for part of a longer word.
KEY_LENGTHS = range(15, 130)


def shaped_key(length: int) -> str:
    return "sk-" + ("Ab3" * 50)[: length - 3]


@pytest.mark.parametrize("length", [45, 51, 57, 65, 90, 95, 97, 122])
def test_an_sk_key_of_any_length_in_a_payload_is_refused(server, length):
    params, _, feedback, _ = ra.build(server.base_url)
    held = {"key": shaped_key(length)}

    def leaky(example):
        return node(held["key"])

    with pytest.raises(ValueError, match=r"shaped like an OpenAI key"):
        Payload(leaky, feedback, params)


def test_the_secret_check_reads_what_a_pickle_holds_not_its_bytes():
    import cloudpickle

    from trace_nb.llm.errors import secrets_in_pickle

    for length in KEY_LENGTHS:
        key = shaped_key(length)
        for obj in (key, {"v": key}, [1, key.encode()], ("x", {"deep": [key]})):
            for dump in (pickle.dumps, cloudpickle.dumps):
                data = dump(obj)
                assert secrets_in_pickle(data), (length, obj)
                assert secrets_in_pickle(pickle.dumps(data)), (length, "nested")
    # Ordinary words with "sk-" inside are not keys.
    assert not secrets_in_pickle(pickle.dumps(["a task-oriented-workflow-step", "risk-averse"]))


def test_a_key_in_an_example_or_a_value_is_refused_before_any_task_is_sent(server):
    params, workflow, feedback, _ = ra.build(server.base_url)
    with ThreadPoolExecutor(1) as pool:
        engine = _counting(ExecutorEngine(pool))
        runner = RemoteRunner(engine, workflow, feedback, params)
        key = shaped_key(51)
        with pytest.raises(ValueError, match=r"example 1 holds text shaped like an OpenAI key"):
            runner.forward([(0, {"q": "w0", "want": "x"}), (1, {"q": key, "want": "x"})])
        assert engine.submitted == 0
        params[0].set_value(f"Answer. {key}")
        with pytest.raises(ValueError, match=r"the parameters' values hold text shaped like"):
            runner.forward([(0, {"q": "w0", "want": "x"})])
        assert engine.submitted == 0


def test_a_key_in_a_numpy_string_is_refused_before_any_task_is_sent(server):
    """numpy keeps text as UTF-32 in the bytes it pickles: a dataset made with
    ``np.array([...])`` gives ``np.str_`` examples whose key no UTF-8 or Latin-1 reading
    finds, and a registered key (any shape) hides the same way."""
    import cloudpickle
    import numpy as np

    from trace_nb.llm.errors import register_secret, secrets_in_pickle

    key = shaped_key(51)
    odd = "zq8" + "x7" * 20  # a key of no known shape, known because a client registered it
    register_secret(odd)
    for text in (key, odd):
        for obj in (np.array([text])[0], np.array([f"q: {text}"]), {"q": np.array([text])}):
            assert secrets_in_pickle(cloudpickle.dumps(obj)), (text, obj)
    params, workflow, feedback, _ = ra.build(server.base_url)
    with ThreadPoolExecutor(1) as pool:
        engine = _counting(ExecutorEngine(pool))
        runner = RemoteRunner(engine, workflow, feedback, params)
        example = {"q": np.array([f"Question: {key}"])[0], "want": "x"}
        with pytest.raises(ValueError, match=r"example 0 holds text shaped like an OpenAI key"):
            runner.forward([(0, example)])
        assert engine.submitted == 0
    assert not secrets_in_pickle(cloudpickle.dumps(np.array(["a task-oriented step"])))


def _counting(engine):
    """``engine``, counting the tasks it was given."""
    submit = engine.submit
    engine.submitted = 0

    def counted(*args, **kwargs):
        engine.submitted += 1
        return submit(*args, **kwargs)

    engine.submit = counted
    return engine
