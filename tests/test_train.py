"""Dataset training: the loop, feedback per example, budget, best/patience, checkpoints,
executors (threads and a real Dask cluster), and the progress views.

Every LLM call goes over real HTTP to a FakeOpenAIServer whose reply function reads the
prompt, so a test fails when the feedback does not reach the prompt.
"""

from __future__ import annotations

import gc
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import train_helpers as th

from trace_nb import LLM, OptoPrime, bundle, node
from trace_nb.notebook.ui.train_view import TrainView
from trace_nb.testing import FakeOpenAIServer
from trace_nb.training import (
    Budget,
    CheckpointError,
    FeedbackError,
    evaluate,
    load_checkpoint,
    parse_feedback,
    restore_best,
    train,
)

FAST = dict(progress=False, max_workers=4)


@pytest.fixture
def server(request):
    reply = getattr(request, "param", th.fixer)
    with FakeOpenAIServer(replies=reply) as srv:
        yield srv


def fake_llm(srv):
    return LLM(model="fake", base_url=srv.base_url, cache=False, backoff=0.01)


def setup(srv, value=0, name="offset", memory_size=0):
    param = node(value, name=name, trainable=True)

    def workflow(example):
        return node(example["x"], name="x") + param

    return param, workflow, OptoPrime([param], llm=fake_llm(srv), memory_size=memory_size)


def prompt(srv, i=0):
    return srv.requests[i]["messages"][-1]["content"]


# -- the loop --------------------------------------------------------------------------
def test_training_follows_the_feedback_and_improves_the_validation_score(server):
    param, workflow, opt = setup(server)
    result = train(
        workflow,
        th.make_examples(8),
        th.offset_feedback,
        opt,
        batch_size=4,
        validation=th.make_examples(4, start=100),
        **FAST,
    )
    assert result.stopped_reason == "completed"
    assert [r["step"] for r in result.history] == [0, 1, 2]
    assert result.history[0]["val_score"] == pytest.approx(1 / 6)
    assert result.history[1]["val_score"] == 1.0 and result.best_score == 1.0
    assert param.data == 5 and result.best_parameters == {param.name: 5}
    assert result.history[1]["train_score"] == pytest.approx(1 / 6)  # measured before the update
    assert result.history[2]["train_score"] == 1.0
    assert result.usage.calls == len(server.requests) == 2
    frame = result.to_frame()
    assert list(frame.index) == [0, 1, 2] and "val_score" in frame


def test_each_output_gets_its_own_feedback_in_one_prompt(server):
    param, workflow, opt = setup(server)
    data = [{"x": 1, "target": 4}, {"x": 2, "target": 9}, {"x": -7, "target": 0}]

    def fb(example, out):
        if example["x"] == -7:
            return "whatever"
        return th.offset_feedback(example, out)

    result = train(workflow, data, fb, opt, batch_size=3, shuffle_seed=None, **FAST)
    assert len(server.requests) == 1
    feedback = th.section(prompt(server), "Feedback").splitlines()
    assert len(feedback) == 3
    assert any(line.endswith("output too small by 3 (score: 0.25)") for line in feedback)
    assert any(line.endswith("output too small by 7 (score: 0.125)") for line in feedback)
    assert any(line.endswith(": whatever") for line in feedback)
    outputs = th.section(prompt(server), "Outputs")
    labels = [line.split(":")[0] for line in feedback]
    assert len(set(labels)) == 3 and all(f" {label}=" in outputs for label in labels)
    assert param.data == 5  # mean of +3 and +7
    assert result.history[-1]["train_score"] == pytest.approx((0.25 + 0.125 + 0) / 3)


def test_errors_become_feedback_that_reaches_the_prompt(server):
    param = node(0, name="shift", trainable=True)

    def workflow(example):
        if example["x"] == 2:
            raise KeyError("no such column")
        return th.check_positive(node(example["x"], name="x") + param)

    data = [{"x": -3, "target": 2}, {"x": 2, "target": 7}, {"x": 1, "target": 6}]
    opt = OptoPrime([param], llm=fake_llm(server))
    result = train(workflow, data, th.offset_feedback, opt, batch_size=3, **FAST)
    text = prompt(server)
    feedback = th.section(text, "Feedback")
    assert "ValueError: negative value -3" in feedback
    assert "KeyError: 'no such column'" in feedback
    assert "workflow_error" in th.section(text, "Code")
    assert "output too small by 5" in feedback
    assert result.history[-1]["train_score"] == pytest.approx(1 / 6 / 3)  # errors count as 0


def test_parse_feedback_forms():
    assert parse_feedback("ok") == (None, "ok")
    assert parse_feedback(3) == (3.0, "")
    assert parse_feedback((0.5, "meh")) == (0.5, "meh")
    assert parse_feedback(("meh", 0.5)) == (0.5, "meh")
    assert parse_feedback({"score": 1, "feedback": "good"}) == (1.0, "good")
    assert parse_feedback(None) == (None, "")
    with pytest.raises(FeedbackError):
        parse_feedback({"grade": 1})
    with pytest.raises(FeedbackError):
        parse_feedback(object())


def test_feedback_function_errors_are_raised_not_hidden(server):
    param, workflow, opt = setup(server)

    def broken(example, out):
        raise ZeroDivisionError("oops")

    with pytest.raises(FeedbackError, match="example 0.*ZeroDivisionError"):
        train(workflow, th.make_examples(2), broken, opt, batch_size=2, shuffle_seed=None, **FAST)
    assert server.requests == []


# -- best parameters, budget, patience -------------------------------------------------
@pytest.mark.parametrize("server", [th.saboteur], indirect=True)
def test_budget_on_calls_stops_cleanly_and_keeps_the_best(server):
    param, workflow, opt = setup(server)
    result = train(
        workflow,
        th.make_examples(8),
        th.offset_feedback,
        opt,
        batch_size=2,
        validation=th.make_examples(3, start=50),
        budget={"calls": 2},
        **FAST,
    )
    assert result.stopped_reason == "budget"
    assert len(server.requests) == result.usage.calls == 2
    assert param.data == 55  # step 2 broke it
    assert result.best_parameters == {param.name: 5} and result.best_step == 1
    result.restore()
    assert param.data == 5
    param.set_value(99)
    restore_best(opt, result)
    assert param.data == 5


def test_budget_too_small_for_the_first_step_makes_no_call(server):
    param, workflow, opt = setup(server)
    result = train(
        workflow,
        th.make_examples(4),
        th.offset_feedback,
        opt,
        batch_size=2,
        budget=Budget(tokens=100),
        **FAST,
    )
    assert result.stopped_reason == "budget" and server.requests == []
    assert result.projection.optimizer_call.prompt_tokens > 100
    assert param.data == 0 and not param.feedback


@pytest.mark.parametrize("server", [th.saboteur], indirect=True)
def test_early_stopping_with_patience(server):
    param, workflow, opt = setup(server)
    kw = dict(batch_size=1, validation=th.make_examples(2, start=20), **FAST)
    result = train(workflow, th.make_examples(8), th.offset_feedback, opt, patience=2, **kw)
    # step 1 fixes (best), step 2 breaks, step 3 fixes again: equal is not better -> stop
    assert result.stopped_reason == "patience"
    assert [r["val_score"] for r in result.history] == pytest.approx([1 / 6, 1, 1 / 51, 1])
    assert result.best_step == 1

    param, workflow, opt = setup(server)
    result = train(
        workflow, th.make_examples(8), th.offset_feedback, opt, patience=1, restore_best=True, **kw
    )
    assert result.stopped_reason == "patience" and result.steps == 2
    assert result.parameters[param.name] == 55 and param.data == 5  # the best put back


def test_without_validation_the_minibatch_score_picks_the_values_it_measured(server):
    param, workflow, opt = setup(server, value=2)
    result = train(workflow, th.make_examples(4), th.offset_feedback, opt, batch_size=2, **FAST)
    assert result.best_step == 1 and result.best_parameters == {param.name: 5}
    assert result.history[1]["train_score"] == 1.0


def test_projection_matches_the_first_prompt_and_counts_workflow_calls():
    with (
        FakeOpenAIServer(replies=th.fixer) as opt_srv,
        FakeOpenAIServer(replies=lambda req: "fine") as wf_srv,
    ):
        wf_llm = fake_llm(wf_srv)

        @bundle()
        def ask(value):
            """Asks the LLM about the value."""
            wf_llm.chat([{"role": "user", "content": str(value)}])
            return value

        param, _, opt = setup(opt_srv)
        result = train(
            lambda ex: ask(node(ex["x"], name="x") + param),
            th.make_examples(4),
            th.offset_feedback,
            opt,
            batch_size=2,
            validation=th.make_examples(2),
            calls_per_example=1,
            workflow_llm=wf_llm,
            **FAST,
        )
    proj = result.projection
    assert proj.optimizer_calls == 2
    assert proj.optimizer_call.prompt_tokens == opt.log[0].usage.prompt_tokens
    # step 1 changes the value (validation reruns), step 2 does not
    assert len(wf_srv.requests) == 2 + 2 + 2 + 2
    assert proj.workflow_calls == 2 * 2 + 2 * 2  # remaining when projected: batches + validations
    assert result.usage.calls == len(wf_srv.requests) + len(opt_srv.requests)


def test_interrupt_returns_the_result_so_far(server):
    param, workflow, opt = setup(server)

    def stop(row):
        raise KeyboardInterrupt

    result = train(
        workflow, th.make_examples(4), th.offset_feedback, opt, batch_size=2, callback=stop, **FAST
    )
    assert result.stopped_reason == "interrupted" and result.steps == 1 and param.data == 5


def test_runs_inside_a_running_event_loop_like_jupyters(server):
    import asyncio

    param, workflow, opt = setup(server)

    async def cell():  # a notebook cell runs while the kernel's event loop is running
        return train(
            workflow,
            th.make_examples(4),
            th.offset_feedback,
            opt,
            batch_size=2,
            validation=th.make_examples(2),
            **FAST,
        )

    assert asyncio.run(cell()).best_score == 1.0 and param.data == 5


# -- checkpoints -----------------------------------------------------------------------
@pytest.mark.parametrize("server", [th.half_stepper], indirect=True)
def test_resume_after_a_crash_equals_the_uninterrupted_run(server, tmp_path):
    data, val = th.make_examples(6, delta=20), th.make_examples(2, delta=20, start=30)
    kw = dict(batch_size=2, epochs=2, validation=val, shuffle_seed=7, **FAST)

    param, workflow, opt = setup(server, memory_size=2)
    full = train(workflow, data, th.offset_feedback, opt, checkpoint=tmp_path / "a.json", **kw)
    assert full.stopped_reason == "completed" and full.steps == 6
    expected = (
        full.parameters[param.name],
        [(r["train_score"], r["val_score"]) for r in full.history],
        full.best_score,
    )
    full_prompts = [log.messages[-1]["content"] for log in opt.log]
    full_name = param.name
    del param, workflow, opt, full
    gc.collect()

    def crash(row):
        if row["step"] == 4:
            raise RuntimeError("kernel died")

    path = tmp_path / "b.json"
    param, workflow, opt = setup(server, memory_size=2)
    with pytest.raises(RuntimeError, match="kernel died"):
        train(workflow, data, th.offset_feedback, opt, checkpoint=path, callback=crash, **kw)
    saved = load_checkpoint(path)
    assert saved.step == 4 and len(saved.history) == 5 and saved.optimizer_state["memory"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temp files
    json.loads(path.read_text())

    fresh, workflow2, opt2 = setup(server, memory_size=2)  # "after the restart"
    resumed = train(workflow2, data, th.offset_feedback, opt2, checkpoint=path, resume=True, **kw)
    got = (
        resumed.parameters[fresh.name],
        [(r["train_score"], r["val_score"]) for r in resumed.history],
        resumed.best_score,
    )
    assert got == expected
    assert len(opt2.log) == 2  # only steps 5 and 6 ran after the restart
    first_after = opt2.log[0].messages[-1]["content"]  # the optimizer memory came back
    assert first_after.startswith("Earlier values") and first_after.count('{"variables"') == 2
    # Same prompt as the uninterrupted run's step 5, up to node names allocated differently.
    assert th.section(first_after, "Variables") == th.section(full_prompts[4], "Variables").replace(
        full_name, fresh.name
    )
    assert first_after.count("too small by") == full_prompts[4].count("too small by")
    assert resumed.stopped_reason == "completed" and fresh.data == expected[0]


def test_max_steps_then_resume_and_config_mismatch(server, tmp_path):
    path = tmp_path / "run.json"
    param, workflow, opt = setup(server, value=1)
    first = train(
        workflow,
        th.make_examples(6),
        th.offset_feedback,
        opt,
        batch_size=2,
        checkpoint=path,
        max_steps=1,
        **FAST,
    )
    assert first.stopped_reason == "max_steps" and first.steps == 1
    rest = train(
        workflow,
        th.make_examples(6),
        th.offset_feedback,
        opt,
        batch_size=2,
        checkpoint=path,
        resume=True,
        **FAST,
    )
    assert rest.stopped_reason == "completed" and rest.steps == 3 and len(server.requests) == 3
    with pytest.raises(CheckpointError, match="batch_size"):
        train(
            workflow,
            th.make_examples(6),
            th.offset_feedback,
            opt,
            batch_size=3,
            checkpoint=path,
            resume=True,
            **FAST,
        )


# -- executors -------------------------------------------------------------------------
def test_a_custom_thread_pool_runs_the_examples(server):
    param = node(0, name="offset", trainable=True)
    threads = set()

    def workflow(example):
        threads.add(threading.current_thread().name)
        return node(example["x"], name="x") + param

    opt = OptoPrime([param], llm=fake_llm(server))
    with ThreadPoolExecutor(3, thread_name_prefix="custom-pool") as pool:
        result = train(
            workflow,
            th.make_examples(6),
            th.offset_feedback,
            opt,
            batch_size=3,
            validation=th.make_examples(3),
            executor=pool,
            progress=False,
        )
    assert result.best_score == 1.0 and param.data == 5
    assert threads and all(t.startswith("custom-pool") for t in threads)


def test_evaluate_threads_match_sequential():
    data = th.make_examples(5)
    th.OFFSET.set_value(3)
    one = evaluate(th.offset_workflow, data, th.offset_feedback, max_workers=1)
    many = evaluate(th.offset_workflow, data, th.offset_feedback, max_workers=4)
    assert [r.score for r in one.results] == [r.score for r in many.results] == [1 / 3] * 5
    assert one.mean_score == pytest.approx(1 / 3)


def test_dask_process_cluster_scores_validation_remotely(server):
    distributed = pytest.importorskip("dask.distributed", reason="dask.distributed not installed")
    with (
        distributed.LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ex = client.get_executor()
        pids = {
            r.output
            for r in evaluate(th.pid_workflow, range(6), th.pid_feedback, executor=ex).results
        }
        assert pids and os.getpid() not in pids

        # A workflow from an importable module: pickled by value with its module's parameter,
        # so the worker's workflow uses the very parameter that gets the values.
        th.OFFSET.set_value(0)
        opt = OptoPrime([th.OFFSET], llm=fake_llm(server))
        result = train(
            th.offset_workflow,
            th.make_examples(4),
            th.offset_feedback,
            opt,
            batch_size=4,
            validation=th.make_examples(4, start=10),
            executor=ex,
            **FAST,
        )
        assert [r["val_score"] for r in result.history] == pytest.approx([1 / 6, 1.0])
        assert th.OFFSET.data == 5

        # A closure pickled by value: the unpickled parameter gets the values.
        local = node(2, name="closure_offset", trainable=True)
        report = evaluate(
            lambda e: node(e["x"]) + local,
            th.make_examples(3),
            th.offset_feedback,
            executor=ex,
            parameters=[local],
        )
        assert [r.score for r in report.results] == pytest.approx([0.25] * 3)
        local.set_value(5)
        report = evaluate(
            lambda e: node(e["x"]) + local,
            th.make_examples(3),
            th.offset_feedback,
            executor=ex,
            parameters=[local],
        )
        assert report.mean_score == 1.0


# -- progress --------------------------------------------------------------------------
def test_train_view_and_tqdm_output(server, capsys):
    param, workflow, opt = setup(server)
    view = TrainView()
    result = train(
        workflow,
        th.make_examples(4),
        th.offset_feedback,
        opt,
        batch_size=2,
        epochs=2,
        validation=th.make_examples(2),
        view=view,
    )
    out, err = capsys.readouterr()
    assert "projected for 4 steps: 4 optimizer calls" in out + err
    assert "stopped: completed" in out + err and "4/4" in err
    assert view.step_bar.value == view.step_bar.max == 4
    assert view.epoch_bar.value == view.epoch_bar.max == 2
    assert view.plot.value.startswith("<svg") and "currentColor" in view.plot.value
    assert "<table" in view.table.value and "correct" in view.table.value
    assert "finished" in view.title.value and result.best_score == 1.0


def test_code_parameters_need_explicit_approval():
    from trace_nb import bundle
    from trace_nb.optim import OptoPrime

    @bundle(trainable=True)
    def double(v):
        return v * 2

    opt = OptoPrime([double.parameter], llm=object())
    with pytest.raises(ValueError, match="approve_code=True"):
        train(lambda ex: double(ex), [1, 2], lambda ex, out: 1.0, opt, progress=False)


def test_training_does_not_import_ipywidgets():
    import subprocess
    import sys

    code = (
        "import sys, trace_nb.training, trace_nb.training.loop, trace_nb.training.progress; "
        "print('ipywidgets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_train_keyword_is_an_option_of_the_config():
    """train() builds its TrainConfig from its keywords by name: a keyword added to one and
    not the other would be dropped silently, so the two lists must match (validation is
    data, gate joins review)."""
    import dataclasses
    import inspect

    from trace_nb.training.config import TrainConfig

    keywords = {
        name
        for name, p in inspect.signature(train).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert keywords - {"validation", "gate"} == {f.name for f in dataclasses.fields(TrainConfig)}


def test_train_passes_every_option_to_the_run(server):
    """An option given to train() reaches the run: max_steps stops it, gate holds."""
    param, workflow, opt = setup(server)
    result = train(
        workflow, th.make_examples(8), th.offset_feedback, opt, batch_size=1, max_steps=2, **FAST
    )
    assert result.stopped_reason == "max_steps" and len(result.history) == 2
    with pytest.raises(ValueError, match="batch_size"):
        train(workflow, th.make_examples(2), th.offset_feedback, opt, batch_size=0, **FAST)
    with pytest.raises(Exception, match="nonsense"):
        train(workflow, th.make_examples(2), th.offset_feedback, opt, gate="nonsense", **FAST)
