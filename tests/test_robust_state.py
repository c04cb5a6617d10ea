"""Reliability of saved state: loaders treat files as untrusted and never half-apply,
exports cannot be injected, training steps are recorded or rolled back, killed saves
leave no debris (issue 14, items 6, 7, 17, 19, 20)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from conftest import make_llm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trace_nb import node
from trace_nb.files import _HOST, atomic_write, dumps_json, plain_copy, sweep_temp_files
from trace_nb.graph import compile_function
from trace_nb.llm.usage import Usage
from trace_nb.notebook import registry
from trace_nb.notebook import session as sessions
from trace_nb.notebook.loading import load_session
from trace_nb.notebook.persist import (
    SessionFileError,
    export_session,
    save_session,
)
from trace_nb.notebook.session import TraceSession
from trace_nb.notebook.writeback import writeback
from trace_nb.optim import OptoPrime
from trace_nb.training import CheckpointError, load_checkpoint, train
from trace_nb.training.checkpoint import RunState, check_values, save_checkpoint

CODE = "def double(v):\n    return v * 2\n"


def make_session(name: str, level=1, code: str | None = CODE) -> TraceSession:
    s = TraceSession(name)
    s.params.parameter("level", level, "how high", None)
    if code is not None:
        fn = compile_function(code, "double", {"__name__": "__main__"})
        s.params.code_bundle(fn, ["double"])
    s.rows = [{"step": 1, "score": 0.5}]
    return s


def drop(name: str) -> None:
    """Close the session named ``name``, if there is one (the next test starts clean)."""
    s = registry.find(name)
    if s is not None:
        s.close()


@pytest.fixture
def saved(tmp_path):
    """A saved session file and its JSON, with the live session removed afterwards."""
    s = make_session("robust_saved")
    path = tmp_path / "s.json"
    save_session(s, str(path))
    yield path, json.loads(path.read_text())
    drop("robust_saved")


def rewrite(path, state):
    path.write_text(json.dumps(state))


# -- 17. one error class, nothing half-applied -----------------------------------------------

CORRUPT = {
    "not-utf8": b'\xff\xfe{"format": 1}',
    "not-json": b'{"format": "trace_nb.session/1", ',
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "a-list": b"[1, 2]",
    "empty": b"",
    "nul": b"\x00\x00\x00",
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_files_raise_one_clear_error(tmp_path, case):
    path = tmp_path / "bad.json"
    path.write_bytes(CORRUPT[case])
    with pytest.raises(SessionFileError) as info:
        load_session(str(path))
    assert str(path) in str(info.value)


BAD_SHAPES = {
    "format": lambda st: st.update(format="other/1"),
    "name-int": lambda st: st.update(name=5),
    "parameters-list": lambda st: st.update(parameters=[1]),
    "parameter-not-object": lambda st: st["parameters"].update(level=3),
    "parameter-no-value": lambda st: st["parameters"]["level"].pop("value"),
    "parameter-name-injection": lambda st: st["parameters"].update(
        {"x = __import__('os')\nx": {"value": 1}}
    ),
    "description-int": lambda st: st["parameters"]["level"].update(description=7),
    "code-source-missing": lambda st: st["code"]["double"].pop("source"),
    "code-defaults-run": lambda st: st["code"]["double"].update(
        source="def double(v, _=__import__('os').system('true')):\n    return v\n"
    ),
    "code-top-level-call": lambda st: st["code"]["double"].update(
        source="print('loaded')\ndef double(v):\n    return v\n"
    ),
    "code-wrong-name": lambda st: st["code"]["double"].update(
        source="def triple(v):\n    return v\n"
    ),
    "code-does-not-compile": lambda st: st["code"]["double"].update(
        source="def double(v, v):\n    return v\n"
    ),
    "code-missing-import": lambda st: st["code"]["double"].update(
        source="import no_such_module_xyz\ndef double(v):\n    return v\n"
    ),
    "history-not-rows": lambda st: st.update(history=[1, 2]),
    "optimizer-list": lambda st: st.update(optimizer=[1]),
    "spec-unknown-field": lambda st: st.update(spec={"source": "x", "evil": 1}),
    "spec-not-object": lambda st: st.update(spec="x"),
}


@pytest.mark.parametrize("case", list(BAD_SHAPES))
def test_bad_files_are_refused_and_the_live_session_is_kept(saved, case):
    path, state = saved
    live = sessions.session("robust_saved")
    BAD_SHAPES[case](state)
    rewrite(path, state)
    with pytest.raises(SessionFileError, match="nothing was changed"):
        load_session(str(path))
    assert sessions.session("robust_saved") is live  # not replaced, not half-loaded
    assert live.parameters["level"] == 1


def test_a_wrong_typed_value_for_a_live_parameter_is_refused(saved):
    path, state = saved
    state["parameters"]["level"]["value"] = "5"
    rewrite(path, state)
    with pytest.raises(SessionFileError, match="parameter 'level' is a number"):
        load_session(str(path))
    state["parameters"]["level"]["value"] = 2.5  # an int parameter must not turn fractional
    rewrite(path, state)
    with pytest.raises(SessionFileError):
        load_session(str(path))


def test_saved_code_must_keep_the_live_signature(saved):
    path, state = saved
    state["code"]["double"]["source"] = "def double(v, extra):\n    return v\n"
    rewrite(path, state)
    with pytest.raises(SessionFileError, match="needs a default value"):
        load_session(str(path))


def test_a_good_file_loads_and_replaces_the_session(saved):
    path, state = saved
    state["parameters"]["level"]["value"] = 7
    rewrite(path, state)
    loaded = load_session(str(path))
    assert sessions.session("robust_saved") is loaded and loaded.parameters["level"] == 7
    assert loaded.params.code_functions()["double"].parameter.data == CODE


def test_loading_runs_no_code_at_load_time(saved, tmp_path):
    path, state = saved
    marker = tmp_path / "ran"
    state["code"]["double"]["source"] = f"X = open({str(marker)!r}, 'w')\n" + CODE
    rewrite(path, state)
    with pytest.raises(SessionFileError):
        load_session(str(path))
    assert not marker.exists()


# -- 20. NaN and temp files ------------------------------------------------------------------


def test_nan_parameters_are_refused_and_nan_scores_saved_as_null(tmp_path):
    s = make_session("robust_nan", level=1.0)
    s.rows = [{"step": 1, "score": float("nan")}]
    path = tmp_path / "n.json"
    save_session(s, str(path))
    assert json.loads(path.read_text())["history"][0]["score"] is None
    s.params.find("level").set_value(float("nan"))
    with pytest.raises(ValueError, match=r"NaN or infinity at \['parameters'\]\['level'\]"):
        save_session(s, str(path))
    with pytest.raises(ValueError, match="NaN"):
        dumps_json({"a": [1, math.inf]}, "the thing")
    drop("robust_nan")


def test_temp_files_of_killed_writers_are_swept(tmp_path):
    target = tmp_path / "state.json"
    atomic_write(target, "v1")
    # A writer that died after creating its temporary file (the effect of a kill -9).
    code = (
        "import os, sys, tempfile; tempfile.mkstemp(prefix=sys.argv[1] + str(os.getpid()) "
        "+ '.', suffix='.tmp', dir=sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, f".state.json.{_HOST}.", str(tmp_path)], check=True)
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1
    # A live writer's temp file (this process) and an unrelated file are kept.
    mine = tmp_path / f".state.json.{_HOST}.{os.getpid()}.abc.tmp"
    mine.write_text("in flight")
    other = tmp_path / ".other.json.x.tmp"
    other.write_text("x")
    atomic_write(target, "v2")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, mine.name, other.name]
    )
    assert target.read_text() == "v2"
    assert sweep_temp_files(target) == []


def test_kills_during_saves_never_tear_the_file(tmp_path):
    target = tmp_path / "k.json"
    atomic_write(target, json.dumps({"n": -1}))
    script = (
        "import json, sys\nfrom trace_nb.files import atomic_write\n"
        "for n in range(10**9):\n"
        "    atomic_write(sys.argv[1], json.dumps({'n': n, 'pad': 'x' * 200000}))\n"
    )
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script, str(target)])
        try:
            proc.wait(timeout=0.3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert isinstance(json.loads(target.read_text())["n"], int)
    atomic_write(target, "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


# -- 7. exports cannot be injected -------------------------------------------------------------


def test_export_escapes_the_session_name_and_refuses_non_literals(tmp_path):
    # A name that would break out of the export's docstring is refused when made (issue 23).
    with pytest.raises(ValueError, match="not a valid session name"):
        make_session('robust_exp"""\nimport os\nos.system("true")\n"""')
    s = make_session("robust_exp")
    path = tmp_path / "out.py"
    export_session(s, str(path))
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    assert ns["level"] == 1 and ns["double"](3) == 6
    assert set(ns) - {"__builtins__", "__doc__"} == {"level", "double"}

    class Evil:
        def __repr__(self):
            return "__import__('os').system('true')"

    for bad in (Evil(), float("nan"), float("inf")):
        s.params.find("level").set_value(bad)
        with pytest.raises(SessionFileError, match="has no Python literal"):
            export_session(s, str(path))
        with pytest.raises(SessionFileError):
            writeback_with(s)
    s.params.find("level").set_value(1)
    s.params.parameter("x = 1\nimport os\ny", 1)
    with pytest.raises(SessionFileError, match="not a Python identifier"):
        export_session(s, str(path))
    drop(s.name)


def writeback_with(s):
    from trace_nb.notebook.magics import CellSpec

    s.spec = CellSpec(source="level = 1\nlevel\n", params=["level"])
    return writeback(s)


def test_export_refuses_code_that_runs_at_import(tmp_path):
    s = make_session("robust_exp_code")
    s.params.code_functions()["double"].parameter.set_value("import os\nos.system('true')\n" + CODE)
    with pytest.raises(SessionFileError, match="function call"):
        export_session(s, str(tmp_path / "x.py"))
    assert not (tmp_path / "x.py").exists()
    drop(s.name)


# -- 6 / 17. checkpoints -------------------------------------------------------------------


def test_checkpoint_values_must_match_the_live_parameters():
    p = node(3, name="ck_int", trainable=True)
    assert check_values([p], {"ck_int": 4.0}) == {"ck_int": 4}
    for bad, fragment in [
        ("4", "checkpoint gives str"),
        (4.5, "float 4.5"),
        ([4], "list"),
        (True, "bool"),
    ]:
        with pytest.raises(CheckpointError, match=fragment):
            check_values([p], {"ck_int": bad})
    with pytest.raises(CheckpointError, match="not a parameter"):
        check_values([p], {"ghost": 1})
    t = node((1, 2), name="ck_tuple", trainable=True)
    assert check_values([t], {"ck_tuple": [3, 4]}) == {"ck_tuple": (3, 4)}


def test_checkpoint_code_is_validated_against_the_live_function():
    p = node(CODE, name="double", trainable=True)
    p.is_code = True
    assert check_values([p], {"double": "def double(v):\n    return v * 3\n"})
    for bad in ("def double():\n    return 1\n", "print(1)\n" + CODE, 42):
        with pytest.raises(CheckpointError, match="refused"):
            check_values([p], {"double": bad})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("step", "3"),
        ("step", -1),
        ("order", ["a"]),
        ("parameters", []),
        ("history", [1]),
        ("best_score", "high"),
        ("stale", True),
        ("optimizer_state", None),
        ("usage", 5),
    ],
)
def test_checkpoint_fields_are_type_checked(tmp_path, field, value):
    path = tmp_path / "c.json"
    save_checkpoint(path, RunState(parameters={"a": 1}))
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=repr(field)):
        load_checkpoint(path)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{", b"[" * 50_000, b"[]", b"null"])
def test_corrupt_checkpoints_raise_checkpoint_error(tmp_path, raw):
    path = tmp_path / "c.json"
    path.write_bytes(raw)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_resume_refuses_a_wrong_typed_value_and_changes_nothing(fake_server, tmp_path):
    param = node(0, name="rs_offset", trainable=True)
    path = tmp_path / "ck.json"
    state = RunState(
        parameters={"rs_offset": "five"},
        config={
            "batch_size": 1,
            "dataset_size": 2,
            "validation_size": None,
            "shuffle_seed": 0,
            "parameters": ["rs_offset"],
        },
    )
    save_checkpoint(path, state)
    opt = OptoPrime([param], llm=make_llm(fake_server))
    with pytest.raises(CheckpointError, match="rs_offset"):
        train(
            lambda ex: node(ex) + param,
            [1, 2],
            lambda ex, out: 1.0,
            opt,
            batch_size=1,
            checkpoint=path,
            resume=True,
            progress=False,
        )
    assert param.data == 0


# -- 19. a step is recorded or rolled back ---------------------------------------------------


def test_a_failing_validation_rolls_the_step_back(fake_server, tmp_path):
    param = node(0, name="rb_offset", trainable=True)
    fake_server.add_replies(json.dumps({"suggestion": {"rb_offset": 5}}))
    opt = OptoPrime([param], llm=make_llm(fake_server), memory_size=3)
    calls = {"n": 0}

    def feedback(example, output):
        if example == "val":
            calls["n"] += 1
            if calls["n"] > 1:  # the validation after the step
                raise RuntimeError("scoring broke")
        return 1.0 - abs(output - 5) / 10

    path = tmp_path / "ck.json"
    with pytest.raises(Exception, match="scoring broke"):
        train(
            lambda ex: node(1 if ex == "val" else ex) + param,
            [1],
            feedback,
            opt,
            batch_size=1,
            validation=["val"],
            checkpoint=path,
            progress=False,
            max_workers=1,
        )
    assert param.data == 0  # the applied value was rolled back
    assert len(opt.memory) == 0  # and the optimizer's memory of that step
    saved = load_checkpoint(path)
    assert saved.step == 0 and [r["step"] for r in saved.history] == [0]


def test_deep_values_checkpoint_without_recursion(fake_server, tmp_path):
    deep: list = []
    inner = deep
    for _ in range(600):
        inner.append([])
        inner = inner[0]
    assert plain_copy(deep) == deep
    param = node([], name="deep_value", trainable=True)
    param.set_value(deep)  # (node() itself walks nested values recursively)
    counter = node(0, name="deep_counter", trainable=True)
    fake_server.add_replies(json.dumps({"suggestion": {"deep_counter": 1}}))
    opt = OptoPrime([param, counter], llm=make_llm(fake_server))
    result = train(
        lambda ex: counter + ex,
        [1],
        lambda ex, out: 1.0,
        opt,
        batch_size=1,
        checkpoint=tmp_path / "d.json",
        progress=False,
        max_workers=1,
    )
    assert result.stopped_reason == "completed" and counter.data == 1
    assert load_checkpoint(tmp_path / "d.json").parameters["deep_value"] == deep


def test_restored_code_sees_the_notebook_namespace(tmp_path):
    from conftest import ipython_shell

    shell = ipython_shell()
    shell.user_ns["robust_helper"] = lambda v: v + 100
    s = make_session("robust_ns", code="def double(v):\n    return robust_helper(v) * 2\n")
    path = tmp_path / "ns.json"
    save_session(s, str(path))
    drop("robust_ns")  # a new kernel: the file makes the session
    loaded = load_session(str(path))
    assert (
        loaded.params.code_functions()["double"]._fn(1) == 202
    )  # the helper is found after loading
    assert "double" not in shell.user_ns  # and loading defined nothing in the notebook
    drop("robust_ns")


def test_damaged_usage_cannot_defeat_a_budget():
    from trace_nb.llm.usage import Usage
    from trace_nb.training import Budget
    from trace_nb.training.budget import estimate_next_step

    used = Usage.from_dict(
        {"calls": -5, "prompt_tokens": "many", "completion_tokens": 1e400, "cost": float("nan")}
    )
    assert (used.calls, used.prompt_tokens, used.completion_tokens, used.cost) == (0, 0, 0, 0.0)
    rows = [
        {"step": 1, "step_calls": -100, "step_tokens": "x", "step_cost": -1e9},
        {"step": "2"},
        7,
        {"step": 2, "step_calls": 1, "step_tokens": 10, "step_cost": 0.5},
    ]
    nxt = estimate_next_step(rows)
    assert nxt.calls >= 1 and nxt.cost >= 0.5
    for bad in ({"cost": -1}, {"calls": float("nan")}, {"tokens": "10"}, {"cost": True}):
        with pytest.raises(ValueError, match="must be a number >= 0"):
            Budget.coerce(bad)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=5,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _replace(doc, path, new):
    if not path:
        return new
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return doc


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), new=_json)
def test_any_damaged_session_file_loads_or_is_refused_cleanly(tmp_path, data, new):
    s = make_session("robust_fuzz")
    path = tmp_path / "fuzz.json"
    save_session(s, str(path))
    doc = json.loads(path.read_text())
    where = data.draw(st.sampled_from(list(_paths(doc))))
    path.write_text(json.dumps(_replace(doc, where, new)))
    try:
        loaded = load_session(str(path))
    except SessionFileError as e:
        assert "nothing was changed" in str(e)
        assert sessions.session("robust_fuzz") is s and s.parameters["level"] == 1
    else:
        assert sessions.session(loaded.name) is loaded
        if (
            loaded.name == "robust_fuzz" and "level" in loaded.params.value_nodes()
        ):  # the live kind kept
            value = loaded.parameters["level"]
            assert isinstance(value, int) and not isinstance(value, bool)
        drop(loaded.name)
    finally:
        drop("robust_fuzz")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), new=_json)
def test_any_damaged_checkpoint_loads_or_raises_checkpoint_error(tmp_path, data, new):
    path = tmp_path / "fuzz-ck.json"
    original = RunState(
        step=2,
        order=[1, 0],
        parameters={"a": 1},
        history=[{"step": 1, "train_score": 0.5}],
        config={"parameters": ["a"]},
    )
    save_checkpoint(path, original)
    doc = json.loads(path.read_text())
    kept = dict(doc)  # the undamaged fields (the damage replaces one inside one field)
    where = data.draw(st.sampled_from(list(_paths(doc))))
    damaged = _replace(doc, where, new)
    path.write_text(json.dumps(damaged))
    try:
        state = load_checkpoint(path)
    except CheckpointError as e:
        assert str(path) in str(e)  # the refusal names the file
        state = None
    if not where:  # the whole file replaced by some other JSON value
        assert state is None or damaged == kept
    elif where[0] in ("format", "kind") and damaged[where[0]] != kept[where[0]]:
        assert state is None  # another file's kind is never read as a checkpoint
    if state is not None:
        # A loaded checkpoint has the checkpoint's shape (an oracle written by hand) ...
        ints = (state.step, state.epoch, state.stale)
        assert all(isinstance(v, int) and not isinstance(v, bool) for v in ints)
        assert all(isinstance(i, int) and not isinstance(i, bool) for i in state.order)
        for field in ("parameters", "best_parameters", "optimizer_state", "config"):
            assert isinstance(getattr(state, field), dict), field
        used = state.usage  # read back as a Usage whose counts are never negative
        assert type(used) is Usage and min(used.calls, used.tokens, used.cost) >= 0
        assert isinstance(state.history, list)
        assert all(isinstance(row, dict) for row in state.history)
        assert state.best_score is None or isinstance(state.best_score, (int, float))
        # ... and every field the damage did not touch is what was saved.
        for field, value in original.to_json().items():
            if where and field != where[0] and field in kept:
                assert state.to_json()[field] == value, field
    # A saved value replaces the live int parameter only if it is a whole number (the rule
    # of same_kind, restated here), and comes back as an int; anything else is refused by name.
    p = node(1, name="fuzz_ck_a", trainable=True)
    values = state.parameters.values() if state is not None else ()
    for value in [*values, new]:
        whole = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
        try:
            got = check_values([p], {"fuzz_ck_a": value})
        except CheckpointError as e:
            assert not whole, value
            assert "fuzz_ck_a" in str(e)
        else:
            assert whole, value
            assert got == {"fuzz_ck_a": value} and type(got["fuzz_ck_a"]) is int


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("def act(self, plan, _=open('/tmp/x', 'w')):\n    return plan\n", "default value"),
        ("print('loaded')\ndef act(self, plan):\n    return plan\n", "function call"),
        ("def act(self):\n    return 1\n", "'plan' was removed"),
        ("def act(self, plan, plan):\n    return 1\n", "does not compile"),
    ],
    ids=["default", "top-level", "signature", "compile"],
)
def test_module_loads_validate_saved_code_like_a_proposal(tmp_path, code, fragment):
    import modules_helpers as mh

    agent = mh.Agent()
    path = tmp_path / "agent.json"
    agent.save(path)
    doc = json.loads(path.read_text())
    before = doc["parameters"]["act"]["value"]
    doc["parameters"]["act"]["value"] = code
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="is refused") as info:
        agent.load(path)
    assert fragment in str(info.value)
    assert agent.state_dict()["act"] == before  # nothing changed


def test_nan_scores_count_as_zero():
    from trace_nb.training.evaluate import ExampleResult, mean_score

    rows = [
        ExampleResult(i, None, score, "")
        for i, score in enumerate((1.0, float("nan"), float("inf"), None))
    ]
    assert mean_score(rows) == 0.25


def test_resume_refuses_an_order_that_is_not_a_permutation(fake_server, tmp_path):
    param = node(0, name="ord_offset", trainable=True)
    path = tmp_path / "ck.json"
    config = {
        "batch_size": 1,
        "dataset_size": 2,
        "validation_size": None,
        "shuffle_seed": 0,
        "parameters": ["ord_offset"],
    }
    save_checkpoint(
        path, RunState(step=1, epoch=0, order=[0, 7], parameters={"ord_offset": 1}, config=config)
    )
    opt = OptoPrime([param], llm=make_llm(fake_server))
    with pytest.raises(CheckpointError, match="not an order of the 2 examples"):
        train(
            lambda ex: node(ex) + param,
            [1, 2],
            lambda ex, out: 1.0,
            opt,
            batch_size=1,
            checkpoint=path,
            resume=True,
            progress=False,
        )
    assert param.data == 0


def test_history_rows_need_a_step(tmp_path):
    path = tmp_path / "c.json"
    save_checkpoint(path, RunState(history=[{"train_score": 1.0}]))
    with pytest.raises(CheckpointError, match="'history'"):
        load_checkpoint(path)


def test_writeback_of_an_unparsable_saved_cell_says_so():
    from trace_nb.notebook.magics import CellSpec

    s = make_session("robust_wb")
    s.spec = CellSpec(source="level = (\n", params=["level"])
    with pytest.raises(ValueError, match="saved cell source does not parse"):
        writeback(s)
    drop("robust_wb")
