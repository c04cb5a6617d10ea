"""trace_nb.Module and @model: discovery, names, per-instance code, persistence, OptoPrime."""

from __future__ import annotations

import copy
import importlib.util
import json
import linecache
import os
import pickle
import re
import sys
import threading
import types

import modules_helpers as mh
import pytest
from conftest import make_llm

import trace_nb
from trace_nb import Module, OptoPrime, model, node
from trace_nb.modules import module_parameters
from trace_nb.testing import FakeOpenAIServer

NEW_ACT = "def act(self, plan):\n    return clip(plan * 10) + SCALE\n"


def code_of(module, method):
    getattr(module, method)  # the per-instance bundle is made on first access
    return module.__dict__[f"__trace_bundle_{method}"].parameter


def import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # like a normal import, so pickling and getsource see it
    spec.loader.exec_module(mod)
    return mod


def test_public_api_is_lazily_exported():
    assert trace_nb.Module is Module and trace_nb.model is model
    assert issubclass(mh.Agent, Module) and issubclass(mh.Tool, Module)


def test_discovery_and_names_on_nested_modules():
    team = mh.Team()
    named = team.named_parameters()
    assert list(named) == [
        "team.planner.plan",
        "team.planner.steps",
        "team.planner.weights",
        "team.tools[0].run",
        "team.tools[0].prompt",
        "team.tools[1].run",
        "team.tools[1].prompt",
        "team.by_name['lookup'].run",
        "team.by_name['lookup'].prompt",
        "team.bias",
    ]
    assert named["team.planner.plan"] is code_of(team.planner, "plan")
    assert named["team.tools[1].prompt"] is team.tools[1].prompt
    assert named["team.bias"] is team.bias and named["team.bias"].data == 1.0
    assert all(p.trainable for p in named.values())
    assert [p.is_code for p in named.values()].count(True) == 4
    assert team.parameters() == list(named.values())
    # the names the LLM sees: valid, unique identifiers built from the path
    idents = [p.name for p in named.values()]
    assert all(i.isidentifier() for i in idents) and len(set(idents)) == len(idents)
    assert re.fullmatch(r"team_planner_prompt(_\d+)?|team_planner_plan(_\d+)?", idents[0])
    assert re.fullmatch(r"team_tools_1_prompt(_\d+)?", team.tools[1].prompt.name)
    # a later walk with another prefix shows other readable names but keeps identifiers
    again = module_parameters(team, prefix="crew")
    assert list(again)[0] == "crew.planner.plan" and [p.name for p in again.values()] == idents


def test_user_given_names_are_kept_and_shared_parameters_listed_once():
    class Pair(Module):
        def __init__(self):
            self.prompt = node("p", name="my_prompt_mod", trainable=True)
            self.alias = self.prompt
            self.children = [self]  # a cycle must not loop forever
            self.fixed = node(3)  # not trainable

    pair = Pair()
    assert list(pair.named_parameters()) == ["pair.prompt"]
    assert pair.prompt.name == "my_prompt_mod"


def test_trainable_methods_are_per_instance():
    a1, a2 = mh.Agent(), mh.Agent()
    p1, p2 = a1.named_parameters()["agent.act"], a2.named_parameters()["agent.act"]
    assert p1 is not p2 and p1.name == p2.name == "agent_act" and p1.is_code
    assert "return plan * 2" in p1.data
    p1.set_value(NEW_ACT)
    assert a1.forward(1).data == 23 and a2.forward(1).data == 4
    assert a1.forward(node(1)).parents[-1] is p1  # the new code is a parent of the output
    assert mh.Agent().forward(1).data == 4  # the class is untouched


def test_forward_call_and_model_keeps_class_identity():
    agent = mh.Agent()
    assert agent(2).data == 6
    assert mh.Agent.__name__ == "Agent" and mh.Agent.__qualname__ == "Agent"
    assert mh.Agent.__module__ == "modules_helpers" and isinstance(agent, Module)
    assert repr(agent) == "Agent(reason, act, greeting)"
    with pytest.raises(AttributeError, match="'Agent' object has no attribute 'missing'"):
        agent.missing  # noqa: B018
    with pytest.raises(NotImplementedError, match="Planner defines no forward"):
        mh.Planner()(1)
    assert model()(mh._PlainGreeter).__name__ == "_PlainGreeter"
    assert model(mh.Tool) is mh.Tool
    with pytest.raises(TypeError, match="decorates a class"):
        model(len)


def test_pickling_a_model_instance():
    agent = mh.Agent("hey")
    code_of(agent, "act").set_value(NEW_ACT)
    clone = pickle.loads(pickle.dumps(agent))
    assert type(clone) is mh.Agent and clone.greeting.data == "hey"
    assert clone.forward(1).data == agent.forward(1).data == 23
    assert clone.state_dict() == agent.state_dict()
    # fresh nodes with the same labels: training the copy leaves the original alone
    assert code_of(clone, "act") is not code_of(agent, "act")
    assert code_of(clone, "act").name == code_of(agent, "act").name == "agent_act"
    code_of(clone, "act").set_value("def act(self, plan):\n    return -1\n")
    assert clone.forward(1).data == -1 and agent.forward(1).data == 23
    # decorated by a call: the module attribute is the plain class, the registry finds it
    greeter = pickle.loads(pickle.dumps(mh.Greeter()))
    assert type(greeter) is mh.Greeter and greeter.greet("bo").data == "hello bo"
    team = copy.deepcopy(mh.Team())
    assert team.forward(4) == mh.Team().forward(4)


def test_save_then_load_into_a_fresh_instance(tmp_path):
    team = mh.Team()
    team.planner.weights.set_value((0.25, 4.0))
    team.bias.set_value(-2.5)
    code_of(team.tools[0], "run").set_value("def run(self, x):\n    return clip(x * SCALE + 7)\n")
    code_of(team.planner, "plan").set_value("def plan(self, x):\n    return math.ceil(x / 3)\n")
    path = tmp_path / "team.json"
    team.save(path)
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["kind"], doc["version"]) == ("trace_nb", "module", 2)
    assert doc["class"] == "modules_helpers.Team"
    assert doc["parameters"]["tools[0].run"] == {
        "value": "def run(self, x):\n    return clip(x * SCALE + 7)\n",
        "code": True,
    }
    assert os.listdir(tmp_path) == ["team.json"]  # no temporary file left behind

    fresh = mh.Team()
    assert fresh.forward(10) != team.forward(10)
    assert fresh.load(path) is fresh
    assert fresh.state_dict() == team.state_dict()
    assert fresh.planner.weights.data == (0.25, 4.0)  # JSON list back to a tuple
    for x in (0, 3, 10, 50):
        assert fresh.forward(x) == team.forward(x)


def test_load_refuses_mismatched_files_and_changes_nothing(tmp_path):
    agent = mh.Agent()
    path = tmp_path / "agent.json"
    agent.save(path)
    doc = json.loads(path.read_text())
    doc["parameters"]["unknown.thing"] = {"value": 1, "code": False}
    doc["parameters"]["greeting"]["value"] = "changed"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"unknown names \['unknown.thing'\]"):
        agent.load(path)
    assert agent.greeting.data == "hello"
    with pytest.raises(ValueError, match="does not compile"):
        agent.load_state_dict({"act": "def act(self, plan) return"}, strict=False)
    with pytest.raises(ValueError, match="not a trace_nb file .*expected a trace_nb module file"):
        (tmp_path / "x.json").write_text("{}")
        agent.load(tmp_path / "x.json")
    with pytest.raises(TypeError, match="JSON cannot store"):
        bad = mh.Agent()
        bad.greeting.set_value({1, 2})
        bad.save(tmp_path / "bad.json")


def test_export_writes_learned_code_into_the_class(tmp_path):
    agent = mh.Agent()
    code_of(agent, "act").set_value(NEW_ACT)
    agent.greeting.set_value("ahoy")
    path = agent.export(tmp_path / "agent_export.py")
    text = open(path).read()
    assert (
        "    @bundle(trainable=True)\n    def act(self, plan):\n        return clip(plan * 10)"
        in text
    )
    assert "LEARNED_VALUES = {'greeting': 'ahoy'}" in text
    assert "SCALE = 3" in text and "from modules_helpers import clip" in text
    exported = import_file(path, "agent_export_1")
    rebuilt = exported.Agent()
    assert rebuilt.greeting.data == "ahoy" and rebuilt.state_dict() == agent.state_dict()
    for x in (-5, 0, 1, 7, 40):
        assert rebuilt.forward(x).data == agent.forward(x).data
    assert rebuilt.describe(2) == agent.describe(2) == "ahoy: 33"
    assert isinstance(rebuilt, Module)


def test_export_of_nested_modules_with_different_instance_code(tmp_path):
    team = mh.Team()
    code_of(team.tools[0], "run").set_value("def run(self, x):\n    return clip(x * SCALE * 2)\n")
    team.by_name["lookup"].prompt.set_value("find")
    team.bias.set_value(0.5)
    exported = import_file(team.export(tmp_path / "team_export.py"), "team_export_1")
    rebuilt = exported.Team()
    assert rebuilt.state_dict() == team.state_dict()
    assert [rebuilt.forward(x) for x in range(0, 40, 7)] == [
        team.forward(x) for x in range(0, 40, 7)
    ]
    text = (tmp_path / "team_export.py").read_text()
    assert "'tools[1].run'" not in text  # unchanged sub-module code is not repeated


NOTEBOOK_CELL = '''
import math
import trace_nb
from trace_nb import bundle, node

LIMIT = 4

def helper(v):
    return min(v, LIMIT) + math.floor(0.5)

@bundle()
def traced_double(v):
    """Doubles v."""
    return v * 2

OFFSET = (1, "unused")

class Memory(trace_nb.Module):
    @bundle(trainable=True)
    def recall(self, x):
        return x - OFFSET[0]

@trace_nb.model
class Bot:
    def __init__(self):
        self.tone = node("calm", trainable=True)
        self.memory = Memory()

    @bundle(trainable=True)
    def act(self, x):
        return helper(x)

    def forward(self, x):
        return traced_double(self.act(self.memory.recall(x)))
'''


@pytest.fixture
def notebook_module():
    """A module like IPython's __main__: no __file__, code in linecache under a cell name."""
    filename = "<ipython-input-modtest-1>"
    linecache.cache[filename] = (len(NOTEBOOK_CELL), None, NOTEBOOK_CELL.splitlines(True), filename)
    mod = types.ModuleType("nb_sim_main")
    sys.modules[mod.__name__] = mod
    exec(compile(NOTEBOOK_CELL, filename, "exec"), mod.__dict__)
    yield mod
    del sys.modules[mod.__name__]


def test_export_from_a_notebook_defined_class(tmp_path, notebook_module):
    bot = notebook_module.Bot()
    code_of(bot, "act").set_value("def act(self, x):\n    return helper(x) + LIMIT * 10\n")
    code_of(bot.memory, "recall").set_value("def recall(self, x):\n    return x + OFFSET[0] * 5\n")
    bot.tone.set_value("bold")
    path = bot.export(tmp_path / "bot.py")
    text = open(path).read()
    assert "def helper(v):" in text and "LIMIT = 4" in text and "import math" in text
    assert "@bundle()\ndef traced_double(v):" in text and "class Memory(trace_nb.Module):" in text
    assert "OFFSET = (1, 'unused')" in text and "'memory.recall': 'def recall(self, x)" in text
    rebuilt = import_file(path, "bot_export_1").Bot()
    assert rebuilt.tone.data == "bold" and rebuilt.state_dict() == bot.state_dict()
    assert [rebuilt.forward(x).data for x in range(7)] == [bot.forward(x).data for x in range(7)]


def test_export_refuses_globals_it_cannot_write(tmp_path, notebook_module):
    notebook_module.LIMIT = threading.Lock()
    with pytest.raises(ValueError, match="cannot export the global 'LIMIT'"):
        notebook_module.Bot().export(tmp_path / "bot.py")
    assert not (tmp_path / "bot.py").exists()


def test_optoprime_step_rewrites_one_agents_method():
    a1, a2 = mh.Agent(), mh.Agent()
    params = a1.parameters()
    act = a1.named_parameters()["agent.act"]
    assert act in params and act.name in {p.name for p in params}
    new_code = "def act(self, plan):\n    return plan * 100\n"

    def reply(request):
        prompt = request["messages"][-1]["content"]
        assert "should be 200" in prompt and f"(code) {act.name}:" in prompt
        return json.dumps({"reasoning": "scale the plan up", "suggestion": {act.name: new_code}})

    out = a1.forward(node(1, name="obs_mod"))
    out.backward("The result should be 200.")
    with FakeOpenAIServer(replies=reply) as srv:
        opt = OptoPrime(params, llm=make_llm(srv))
        proposals = opt.propose()
        assert [(p.name, p.valid) for p in proposals] == [(act.name, True)]
        assert opt.apply(proposals) == []  # code: auto approval needs approve_code=True
        assert opt.apply(proposals, decided_by="human") == proposals
        assert len(srv.requests) == 1
    assert act.data == new_code and a1.forward(1).data == 200
    assert a2.forward(1).data == 4 and "plan * 2" in code_of(a2, "act").data


def test_a_bad_module_file_is_refused_whole(tmp_path):
    from trace_nb.modules.persist import ModuleFileError

    @trace_nb.model
    class Dial:
        def __init__(self):
            self.level = trace_nb.node(3, name="level", trainable=True)
            self.label = trace_nb.node("low", name="label", trainable=True)

    d = Dial()
    good = tmp_path / "dial.json"
    d.save(str(good))
    cases = {
        "not utf-8": b"\xff\xfe{",
        "not json": b"{nope",
        "wrong type": good.read_text().replace('"value": 3', '"value": "three"').encode(),
        "no parameters": b'{"format": "trace_nb.module/1"}',
    }
    for why, raw in cases.items():
        bad = tmp_path / "bad.json"
        bad.write_bytes(raw)
        with pytest.raises(ModuleFileError):
            d.load(str(bad))
        assert d.level.data == 3 and d.label.data == "low", why
    data = json.loads(good.read_text())
    data["parameters"]["level"]["value"] = 7.0  # JSON may write a whole float for an int
    good.write_text(json.dumps(data))
    d.load(str(good))
    assert d.level.data == 7
