"""One Usage type: a call's usage, a client's totals, a training run's and a remote
worker's are the same amount, added with ``+`` (issue 24, item 3)."""

from __future__ import annotations

import pickle

import pytest

from trace_nb import OptoPrime, node
from trace_nb.llm import LLM, CallUsage, Usage, UsageTotals
from trace_nb.testing import FakeOpenAIServer
from trace_nb.training import Usage as TrainingUsage
from trace_nb.training import load_checkpoint, train

MSG = [{"role": "user", "content": "x" * 40}]  # 40 chars -> 10 prompt tokens


def llm_for(srv, **kw):
    return LLM(model="gpt-4o-mini", base_url=srv.base_url, cache=False, backoff=0.01, **kw)


def test_a_calls_usage_is_a_usage_of_one_call_and_totals_are_their_sum():
    with FakeOpenAIServer(replies=["y" * 8, "y" * 4]) as srv:
        llm = llm_for(srv)
        replies = [llm.chat(MSG) for _ in range(2)]
    one = replies[0].usage
    assert isinstance(one, CallUsage) and isinstance(one, Usage)
    assert one.calls == 1 and one.cached_calls == 0 and one.tokens == 10 + 2
    total = llm.usage.total()
    assert type(total) is Usage
    assert total == replies[0].usage + replies[1].usage
    assert total == Usage(2, 20, 3, one.cost + replies[1].usage.cost, 0)
    assert (llm.usage.calls, llm.usage.prompt_tokens, llm.usage.cost) == (
        total.calls,
        total.prompt_tokens,
        total.cost,
    )
    assert TrainingUsage is Usage  # trace_nb.training.Usage is the same type


def test_cached_call_counts_as_a_cached_call():
    record = CallUsage(prompt_tokens=3, completion_tokens=1, cached=True, model="m")
    totals = UsageTotals()
    totals.add(record)
    totals.add(CallUsage(prompt_tokens=1, completion_tokens=1, cost=0.5, model="m"))
    assert totals.total() == Usage(2, 4, 2, 0.5, 1)
    assert totals.as_dict()["cached_calls"] == 1 and totals.as_dict()["total_tokens"] == 6


def test_to_dict_and_from_dict_round_trip_and_damaged_counts_read_as_zero():
    u = Usage(3, 100, 20, 0.25, 1)
    assert u.to_dict() == {
        "calls": 3,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost": 0.25,
        "cached_calls": 1,
        "tokens": 120,
    }
    assert Usage.from_dict(u.to_dict()) == u
    assert Usage.from_dict({"calls": -4, "cost": float("nan"), "prompt_tokens": "9"}) == Usage()
    assert Usage.from_dict(None) == Usage()
    assert (u - Usage(1, 50, 10, 0.25, 1)) == Usage(2, 50, 10, 0.0, 0)
    # a call record's dict is its amount only
    assert CallUsage(prompt_tokens=1, latency_s=2.0, model="m").to_dict()["calls"] == 1


def test_totals_pickle_and_old_pickled_totals_still_load():
    totals = UsageTotals()
    totals.add(CallUsage(prompt_tokens=5, completion_tokens=2, cost=0.1, model="m"))
    again = pickle.loads(pickle.dumps(totals))
    assert again == totals and again.total() == Usage(1, 5, 2, 0.1, 0)
    again.add(CallUsage(prompt_tokens=1, model="m"))  # its lock is a fresh one
    # The state an LLM pickled before Usage held the amounts (fields, one by one).
    old = UsageTotals.__new__(UsageTotals)
    old.__setstate__(
        {
            "calls": 2,
            "cached_calls": 1,
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "cost": 0.2,
            "records": [],
        }
    )
    assert old.total() == Usage(2, 7, 3, 0.2, 1) and old.calls == 2


def test_a_training_runs_usage_is_its_clients_total(tmp_path):
    """The run's usage, the checkpoint's and the client's totals are the same Usage."""
    reply = '{"reasoning": "r", "suggestion": {"offset": 5}}'
    with FakeOpenAIServer(replies=lambda req: reply) as srv:
        llm = llm_for(srv)
        param = node(0, name="offset", trainable=True)
        opt = OptoPrime([param], llm=llm, memory_size=0)
        result = train(
            lambda ex: node(ex, name="x") + param,
            [1, 2, 3, 4],
            lambda ex, out: 1.0 if out == ex + 5 else 0.0,
            opt,
            batch_size=2,
            progress=False,
            max_workers=1,
            checkpoint=tmp_path / "run.json",
        )
    assert result.usage.amount() == llm.usage.total() and result.usage.engine is None
    assert result.usage.to_dict() == llm.usage.total().to_dict()  # a local run: no workers
    assert Usage.from_dict(result.usage) == llm.usage.total()
    assert load_checkpoint(tmp_path / "run.json").usage == llm.usage.total()
    assert result.usage.calls == 2 and result.history[-1]["calls"] == 2
    assert result.history[-1]["tokens"] == llm.usage.total().tokens


@pytest.mark.parametrize("bad", [{"calls": 1.5e400}, {"calls": True}])
def test_from_dict_refuses_infinite_and_bool_counts(bad):
    assert Usage.from_dict(bad).calls == 0


def _remote_run_usage():
    from trace_nb.training.run_usage import RunUsage, WorkerUsage

    workers = {"w1": WorkerUsage.of(Usage(2, 20, 4, 0.5), 3), "w2": WorkerUsage.of(Usage(), 1)}
    return RunUsage.of(Usage(5, 50, 10, 1.5, 1), "dask", workers)


def test_a_remote_runs_usage_is_one_usage_with_its_workers():
    usage = _remote_run_usage()
    assert isinstance(usage, Usage) and usage.amount() == Usage(5, 50, 10, 1.5, 1)
    assert usage + Usage(1) == Usage(6, 50, 10, 1.5, 1)  # adds like any Usage
    assert usage.workers["w1"].examples == 3 and usage.workers["w1"].calls == 2
    assert usage.to_dict() == {  # the dict TrainResult.usage used to be
        **Usage(5, 50, 10, 1.5, 1).to_dict(),
        "engine": "dask",
        "workers": {
            "w1": {"examples": 3, **Usage(2, 20, 4, 0.5).to_dict()},
            "w2": {"examples": 1, **Usage().to_dict()},
        },
    }
    assert Usage.from_dict(usage) == usage.amount()
    assert pickle.loads(pickle.dumps(usage)) == usage


def test_item_access_on_a_runs_usage_still_works_but_warns():
    usage = _remote_run_usage()
    with pytest.warns(DeprecationWarning, match=r"read usage\.calls instead"):
        assert usage["calls"] == 5
    with pytest.warns(DeprecationWarning, match=r"usage\.workers"):
        assert usage["workers"]["w1"]["examples"] == 3
    with pytest.warns(DeprecationWarning):
        assert usage.get("engine") == "dask" and usage.get("nope", 7) == 7
    with pytest.warns(DeprecationWarning):
        assert "workers" in usage


def test_where_a_remote_run_ran_is_read_from_its_usage():
    from trace_nb.training.progress import workers_text
    from trace_nb.training.run_usage import RunUsage

    assert workers_text(_remote_run_usage()) == (
        "on dask: w1: 3 examples, 2 LLM calls; w2: 1 examples, 0 LLM calls"
    )
    assert workers_text(RunUsage.of(Usage(3))) == ""  # a local run


def test_a_checkpoint_holds_usage_as_plain_json_and_old_files_load(tmp_path):
    from trace_nb import savefile
    from trace_nb.training.checkpoint import RunState, save_checkpoint

    path = save_checkpoint(tmp_path / "c.json", RunState(step=1, usage=Usage(3, 30, 6, 0.25)))
    assert savefile.load(path, "train", ValueError)["usage"] == Usage(3, 30, 6, 0.25).to_dict()
    assert load_checkpoint(path).usage == Usage(3, 30, 6, 0.25)
    # A file written before the state held a Usage: the same dict, maybe without "tokens"
    # or "cached_calls", and possibly damaged; it loads, damaged counts as 0.
    data = savefile.load(path, "train", ValueError)
    data["usage"] = {"calls": 4, "prompt_tokens": 8, "completion_tokens": -1, "cost": 0.5}
    savefile.save(path, "train", data, "a checkpoint")
    assert load_checkpoint(path).usage == Usage(4, 8, 0, 0.5)
