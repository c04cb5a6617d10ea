"""Saved code that does not load is refused whole by ``modules.load`` and
``train(resume=True)``, as approval and ``load_session`` refuse it (issue 23, item 13)."""

from __future__ import annotations

import json

import modules_helpers as mh
import pytest
from conftest import make_llm

from trace_nb import modules, node
from trace_nb.graph import BundledFunction
from trace_nb.modules.persist import ModuleFileError
from trace_nb.optim import OptoPrime
from trace_nb.training import CheckpointError, train
from trace_nb.training.checkpoint import RunState, save_checkpoint

# It compiles and keeps the name and signature; only making the function fails.
ACT = "from math import no_such_name_for_trace_nb\n\ndef act(self, plan):\n    return plan * 3\n"


def test_modules_load_refuses_code_that_does_not_load(tmp_path):
    agent = mh.Agent()
    path = tmp_path / "agent.json"
    modules.save(agent, path)
    data = json.loads(path.read_text())
    data["parameters"]["greeting"]["value"] = "ahoy"
    data["parameters"]["act"]["value"] = ACT
    path.write_text(json.dumps(data))
    before = modules.state_dict(agent)
    with pytest.raises(ModuleFileError, match="'act' does not load.*no_such_name_for_trace_nb"):
        modules.load(agent, path)
    assert modules.state_dict(agent) == before  # all or nothing: the greeting too
    assert agent.act(2).data == 4  # and calls run the code the parameter shows


def double(v):
    return v * 2


def test_resume_refuses_code_that_does_not_load(fake_server, tmp_path):
    b = BundledFunction(double, trainable=True)
    name = b.parameter.name
    path = tmp_path / "ck.json"
    broken = "from math import no_such_name_for_trace_nb\n\ndef double(v):\n    return v * 3\n"
    save_checkpoint(
        path,
        RunState(
            parameters={name: broken},
            config={
                "batch_size": 1,
                "dataset_size": 2,
                "validation_size": None,
                "shuffle_seed": 0,
                "parameters": [name],
            },
        ),
    )
    opt = OptoPrime([b.parameter], llm=make_llm(fake_server))
    with pytest.raises(CheckpointError, match=f"code of {name!r} does not load.*ImportError"):
        train(
            lambda ex: b(node(ex)),
            [1, 2],
            lambda ex, out: 1.0,
            opt,
            batch_size=1,
            checkpoint=path,
            resume=True,
            progress=False,
            approve_code=True,
        )
    assert b.parameter.data.startswith("def double") and b.function(2) == 4
