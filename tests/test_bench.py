"""trace_nb.bench: the tasks' graders, the methods, the runner, the report and the CLI.

Every LLM call goes over real HTTP to a FakeOpenAIServer on 127.0.0.1 (the offline
oracles), never through a patched client.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
from conftest import make_llm

import trace_nb.bench as bench
from trace_nb.bench import cli, transcript
from trace_nb.bench.offline import oracle_llm
from trace_nb.bench.runner import COLUMNS, run_one
from trace_nb.bench.tasks import battleship, bbh, buggy, make_task
from trace_nb.bench.tasks.base import current_values, is_student, section, user_text
from trace_nb.bench.tasks.bbh_data import _OBJECTS, GENERATORS
from trace_nb.optim import OptoPrime
from trace_nb.optim.prompts import MEMORY_HEADER
from trace_nb.testing import FakeOpenAIServer

# -- the graders: a right answer scores 1, a wrong one less --------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_numerical_solution_scores_one_and_start_less(seed):
    task = make_task("numerical", seed)
    start = task.evaluate(None)
    assert not start.success and start.score < 1
    for param, value in zip(task.params, task.solution, strict=True):
        param.set_value(value)
    solved = task.evaluate(None)
    assert solved.success and solved.score == 1
    assert solved.detail["regret"] == pytest.approx(0, abs=1e-9)


def test_numerical_graph_uses_every_parameter():
    for seed in range(20):
        task = make_task("numerical", seed)
        for k in range(len(task.params)):
            moved = list(task.solution)
            moved[k] += 0.731  # not an integer: a square cannot map it back
            assert task.compute(moved) != pytest.approx(task.target), (seed, k)


def _close_brackets(sequence):
    """Closers for what ``sequence`` leaves open, written independently of the generator."""
    closer = {"(": ")", "[": "]", "{": "}", "<": ">"}
    open_ = []
    for token in sequence.split():
        if token in closer:
            open_.append(token)
        else:
            assert closer[open_.pop()] == token, sequence  # the prefix itself is well nested
    assert open_, f"nothing left to close in {sequence!r}"
    return " ".join(closer[t] for t in reversed(open_))


def _independent_answer(kind, question):
    if kind == "dyck_languages":
        return _close_brackets(question.split("Input: ")[1])
    if kind == "word_sorting":
        return " ".join(sorted(question.split("List: ")[1].split()))
    if kind in ("boolean_expressions", "multistep_arithmetic"):
        return str(eval(question.rsplit(" ", 1)[0]))  # the generated expression only
    category = re.search(r"How many (.+) do I have", question).group(1)
    words = {"a": 1, "an": 1, "two": 2, "three": 3}
    total = 0
    for count, name in re.findall(r"\b(a|an|two|three) (\w+)", question.split(".")[0]):
        if any(name in (o, o + "s", o + "es") for o in _OBJECTS[category]):
            total += words[count]
    return str(total)


def test_dyck_questions_vary_and_answers_close_the_input():
    import random

    rng = random.Random(7)
    pairs = [GENERATORS["dyck_languages"](rng) for _ in range(200)]
    assert len({q for q, _ in pairs}) > 150  # procedural, not a handful of fixed strings
    for question, answer in pairs:
        prefix = question.split("Input: ")[1]
        assert _close_brackets(prefix) == answer
        assert 4 <= len(prefix.split()) <= 11
    assert len({len(a.split()) for _, a in pairs}) >= 3  # answers of several lengths


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_bbh_answers_are_right(kind):
    task = bbh.make(kind, 0)
    assert len(task.train) == bbh.N_TRAIN and len(task.test) == bbh.N_TEST
    assert not {q for q, _ in task.train} & {q for q, _ in task.test}  # a real held-out split
    for question, answer in task.train + task.test:
        assert _independent_answer(kind, question) == answer, question


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_bbh_right_program_scores_one_and_initial_less(kind):
    task = bbh.make(kind, 1)
    with oracle_llm(task) as (llm, _):
        initial = task.evaluate(llm)
        task.template.set_value(bbh.INITIAL_TEMPLATE + bbh.FORMAT_HINT)
        task.extract.parameter.set_value(bbh.FIXED_EXTRACT)
        fixed = task.evaluate(llm)
        task.extract.parameter.set_value("def extract_answer(response):\n    return 'nonsense'\n")
        wrong = task.evaluate(llm)
    assert initial.score < 1 and not initial.success
    assert fixed.score == 1 and fixed.success
    assert wrong.score == 0


@pytest.mark.parametrize("fn", buggy.FUNCTIONS, ids=lambda f: f.__name__)
def test_code_debug_fix_passes_hidden_tests_and_bug_fails(fn):
    assert len(buggy.FUNCTIONS) >= 10
    task = make_task("code_debug", buggy.FUNCTIONS.index(fn))
    assert task.function_name == fn.__name__
    broken = task.evaluate(None)
    assert not broken.success and broken.detail["visible_passed"] < len(task.visible)
    assert broken.score < 1  # the hidden tests see the bug too
    task.fn.parameter.set_value(buggy.FIXES[fn.__name__])
    fixed = task.evaluate(None)
    assert fixed.success and fixed.score == 1


@pytest.mark.parametrize("seed", range(4))
def test_format_grader(seed):
    task = make_task("format_constraints", seed)
    everything = " ".join(r.instruction for r in task.requirements)
    obeying = task._student(f"Write about {task.test[0]}. {everything}")
    score, complaints = task.grade(obeying)
    assert score == 1 and complaints == []
    score, complaints = task.grade(task._student(f"Write about {task.test[0]}."))
    assert score < 1 and len(complaints) >= 1
    assert all(isinstance(c, str) and c for c in complaints)


def test_battleship_hunting_agent_scores_and_naive_one_fails():
    task = make_task("battleship", 0)
    naive = task.evaluate(None)
    assert not naive.success and naive.score < 0.1  # (0, 0) again and again: one cell at best
    code = {p.name: p for p in task.parameters()}
    code["agent_reason"].set_value(battleship.REASON_CELLS)
    code["agent_act"].set_value(battleship.ACT_SCAN)
    scanning = task.evaluate(None)
    code["agent_act"].set_value(battleship.ACT_HUNT)
    hunting = task.evaluate(None)
    assert 0 < scanning.score < battleship.SUCCESS <= hunting.score
    assert hunting.success and not scanning.success


# -- the oracles read what the optimizer really sends --------------------------------------


def test_oracle_reads_multiline_string_and_code_values_from_the_prompt():
    task = make_task("bbh_word_sorting", 0)
    with oracle_llm(task) as (llm, _):
        task.train_step(0, llm)
    optimizer = OptoPrime(task.parameters(), llm=llm)
    values = current_values({"messages": optimizer.messages()})
    assert values[task.template.name] == bbh.INITIAL_TEMPLATE  # "\n\n" inside kept
    assert ast.parse(values[task.extract.parameter.name]).body[0].name == "extract_answer"


# -- methods -------------------------------------------------------------------------------


def _optimizer_prompts(server):
    return [user_text(r) for r in server.requests if "#Variables" in user_text(r)]


@pytest.mark.parametrize("task_name", ["numerical", "code_debug"])
def test_masked_prompts_lack_code_and_documentation(task_name):
    seen = {}
    for method in ("optoprime", "optoprime_masked"):
        with FakeOpenAIServer(replies=make_task(task_name, 0).oracle) as srv:
            record = run_one(task_name, method, 0, 2, make_llm(srv))
            assert record["status"] == "ok", record["status"]
            seen[method] = _optimizer_prompts(srv)
    assert seen["optoprime"] and seen["optoprime_masked"]
    for prompt in seen["optoprime"]:
        assert section(prompt, "Code") and section(prompt, "Documentation")
    for prompt in seen["optoprime_masked"]:
        assert "#Code" in prompt and section(prompt, "Code") == ""
        assert section(prompt, "Documentation") == ""
        assert section(prompt, "Variables") and section(prompt, "Feedback")


def test_masked_numerical_does_worse_offline_because_the_graph_is_missing():
    # The numerical oracle can take Newton steps only from #Code: without it, it guesses.
    frame = bench.run(
        tasks=["numerical"],
        methods=["optoprime", "optoprime_masked"],
        seeds=4,
        steps=8,
        progress=False,
        offline=True,
    )
    wins = frame.groupby("method")["success"].sum()
    assert wins["optoprime"] == 4
    assert wins["optoprime_masked"] < 4


def test_memory_method_shows_earlier_steps():
    with FakeOpenAIServer(replies=make_task("numerical", 0).oracle) as srv:
        record = run_one("numerical", "optoprime_memory", 0, 3, make_llm(srv))
    prompts = _optimizer_prompts(srv)
    assert record["status"] == "ok" and len(prompts) >= 2
    assert MEMORY_HEADER not in prompts[0]
    assert all(MEMORY_HEADER in p for p in prompts[1:])


def test_opro_sees_history_not_code():
    with FakeOpenAIServer(replies=make_task("numerical", 3).oracle) as srv:
        run_one("numerical", "opro", 3, 2, make_llm(srv))
    prompts = [user_text(r) for r in srv.requests]
    assert prompts and all("#History" in p and "#Code" not in p for p in prompts)


def test_step_counters_parse_failure_invalid_and_repeated_value():
    task = make_task("numerical", 0)
    name = task.params[0].name
    current = task.start[0]
    unreadable = "I would rather not answer in JSON."
    same = json.dumps({"reasoning": "", "suggestion": {name: current}})
    invalid = json.dumps({"reasoning": "", "suggestion": {name: {"not": "a number"}}})
    # Three steps of two calls each (the first reply, then one repair turn), none usable.
    replies = [unreadable, same, invalid, invalid, same, same]
    with FakeOpenAIServer(replies=replies) as srv:
        record = run_one("numerical", "optoprime", 0, 3, make_llm(srv))
    assert record["status"] == "ok"
    # What each step ended with: a summary refusal and the repair turn's refusal.
    assert (
        record["parse_failures"],
        record["repeats"],
        record["invalid_proposals"],
        record["applied"],
    ) == (0, 2, 1, 0)
    assert record["refusals"] == {
        "repair_failed": 3,
        "same_value": 3,
        "unreadable": 1,
        "wrong_type": 2,
    }
    assert (record["steps_run"], record["wasted_steps"], record["repairs"]) == (3, 3, 3)
    assert record["identical_replies"] == 2  # invalid after invalid, same after same
    assert record["no_change_replies"] == 0 and record["repaired_steps"] == 0
    assert record["llm_calls"] == 6 and record["prompt_tokens"] > 0
    assert record["repair_prompt_tokens"] > record["first_prompt_tokens"] > 0
    assert record["success"] is False and record["steps_to_success"] is None
    assert len(record["curve"]) == 4
    assert any("2 attempts refused" in r for r in record["reasons"])


def test_a_repaired_step_and_an_unwrapped_string_are_counted():
    task = make_task("format_constraints", 0)
    name = task.template.name
    new = task.template.data + " Write in lowercase."
    replies = [
        json.dumps({"reasoning": "", "suggestion": {}}),  # no change: repaired
        json.dumps({"reasoning": "", "suggestion": {name: repr(new)}}),  # in repr quotes
    ]

    def answer(request):
        return "Some text." if is_student(request) else replies.pop(0)

    with FakeOpenAIServer(replies=answer) as srv:
        record = run_one("format_constraints", "optoprime", 0, 1, make_llm(srv))
    assert record["status"] == "ok"
    assert (record["no_change_replies"], record["repairs"], record["repaired_steps"]) == (1, 1, 1)
    assert (record["unwrapped"], record["wasted_steps"], record["applied"]) == (1, 0, 1)
    assert record["refusals"] == {"no_change": 1}
    assert task.template.data != new  # the run's own task instance changed, not this one


def test_a_step_is_kept_only_when_no_candidate_won():
    from trace_nb import node
    from trace_nb.bench import counters
    from trace_nb.optim.proposal import check

    x = node(1, name="kept_x", trainable=True)
    a, b = check(x, 2), check(x, 3)
    a.candidate, b.candidate = 0, 1

    def count(*statuses: str) -> tuple[int, int]:
        a.status, b.status = statuses
        counts = counters.empty()
        counters.count_step(counts, None, 0, [a, b], [])
        return counts["kept_steps"], counts["wasted_steps"]

    assert count("not_chosen", "not_chosen") == (1, 0)  # measured worse: kept
    assert count("approved", "not_chosen") == (0, 0)  # one applied
    # The winner was not applied after all (its code failed to load, say): wasted, not kept.
    assert count("rejected", "not_chosen") == (0, 1)


def test_llm_error_is_recorded_not_raised():
    """The LLM's failure (not any crash) is what the record says: the task was set up and
    scored, the one request reached the server, and the status names the LLM error."""
    with FakeOpenAIServer(replies=[]) as srv:  # every call: HTTP 500
        record = run_one("code_debug", "optoprime", 0, 2, make_llm(srv, max_retries=0))
        requests, base_url = len(srv.requests), srv.base_url
    assert requests == 1  # max_retries=0: one attempt, then the error
    status = record["status"]
    assert status.startswith("error: LLMError: "), status
    assert "HTTP 500" in status and "failed after 1 attempt" in status
    assert base_url in status  # the endpoint that failed (never the key)
    # the run got as far as the first LLM call: initial score measured, no step taken
    assert len(record["curve"]) == 1 and record["steps_run"] == 0 and record["applied"] == 0
    assert set(COLUMNS) <= set(record) and record["wall_s"] >= 0


def test_every_request_of_a_model_run_carries_the_sampling_seed(tmp_path):
    # Best-of-k's candidates sample at temperatures above 0: a fixed seed makes a re-run
    # give the same replies (llama.cpp honours it). None leaves sampling to the server.
    same = json.dumps({"reasoning": "r", "suggestion": {}})
    for seed, sent in ((0, {0}), (None, {None})):
        with FakeOpenAIServer(replies=[same] * 8) as srv:
            bench.run(
                tasks=["numerical"],
                methods=["optoprime"],
                seeds=1,
                steps=1,
                model="fake-model",
                base_url=srv.base_url,
                api_key="test-key",
                out=tmp_path / str(seed),
                cache=False,
                progress=False,
                workers=1,
                sampling_seed=seed,
            )
            assert srv.requests and {r.get("seed") for r in srv.requests} == sent


# -- the run: results.json, report.md, resume ----------------------------------------------


def test_offline_run_writes_results_and_report(tmp_path):
    tasks = ["numerical", "code_debug", "bbh_object_counting", "battleship"]
    methods = ["optoprime", "opro"]
    frame = bench.run(
        tasks=tasks, methods=methods, seeds=2, steps=4, out=tmp_path, progress=False, workers=4
    )
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 16 and set(frame["status"]) == {"ok"}
    assert (frame["model"] == "offline-oracle").all()
    assert (frame["prompt_tokens"] > 0).all() and (frame["llm_calls"] > 0).all()
    # the oracle's fixes are code: they only land through approve_code=True
    code = frame[frame["task"].isin(["code_debug", "bbh_object_counting"])]
    assert code["success"].all() and (code["steps_to_success"] == 1).all()
    agents = frame[frame["task"] == "battleship"]  # three code changes: scan, fix, hunt
    assert agents["success"].all() and (agents["steps_to_success"] == 3).all()

    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["offline"] is True and data["meta"]["steps"] == 4
    assert len(data["runs"]) == 16
    for run in data["runs"]:
        for key in (
            "success",
            "steps_to_success",
            "best_score",
            "parse_failures",
            "invalid_proposals",
            "repeats",
            "prompt_tokens",
            "completion_tokens",
            "wall_s",
        ):
            assert key in run
    report = (tmp_path / "report.md").read_text()
    assert "OFFLINE" in report and "not a model" in report
    header = next(line for line in report.splitlines() if line.startswith("| task |"))
    for column in (
        "success",
        "mean steps to success",
        "best score",
        "parse failures",
        "invalid",
        "repeats",
        "prompt tokens",
        "completion tokens",
        "wall s",
    ):
        assert f"| {column} |" in header
    for task in tasks:
        for method in methods:
            assert re.search(rf"^\| {task} \| {method} \| 2 \| \d/2 \|", report, re.M)
    assert "score_vs_step.png" in report
    assert (tmp_path / "score_vs_step.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_skips_finished_runs_and_retries_errors(tmp_path):
    options = dict(
        tasks=["code_debug"], methods=["optoprime"], seeds=3, steps=2, out=tmp_path, progress=False
    )
    bench.run(**options)
    path = tmp_path / "results.json"
    data = json.loads(path.read_text())
    by_seed = {r["seed"]: r for r in data["runs"]}
    by_seed[0]["best_score"] = 0.123  # a finished run: must be kept as is
    by_seed[1]["status"] = "error: RuntimeError: boom"  # a failed run: must be redone
    data["runs"] = [by_seed[0], by_seed[1]]  # seed 2 missing: must be run
    path.write_text(json.dumps(data))
    frame = bench.run(**options).set_index("seed")
    assert frame.loc[0, "best_score"] == 0.123
    assert frame.loc[1, "status"] == "ok" and frame.loc[1, "best_score"] == 1
    assert frame.loc[2, "status"] == "ok"
    assert len(json.loads(path.read_text())["runs"]) == 3
    # another number of steps is another experiment: refused, the file is left as it was
    before = path.read_text()
    with pytest.raises(ValueError, match=r"holds runs with steps 2, and this run asks for steps 3"):
        bench.run(**{**options, "steps": 3})
    assert path.read_text() == before
    frame = bench.run(**{**options, "steps": 3, "out": tmp_path / "three"})
    assert (frame["steps"] == 3).all()


def test_resume_with_other_steps_on_part_of_the_runs_is_refused(tmp_path, capsys):
    # The case: runs for seeds 0-1 at --steps 2, then seed 0 only at --steps 3 used to
    # leave a file whose meta said 3 while seed 1's run had 2.
    common = ["--offline", "--tasks", "code_debug", "--methods", "optoprime", "--no-progress"]
    common += ["--out", str(tmp_path)]
    assert cli.main([*common, "--seeds", "2", "--steps", "2"]) == 0
    capsys.readouterr()
    assert cli.main([*common, "--seeds", "1", "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "steps 2" in err and "--steps" in err and "--out" in err
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["steps"] == 2 and {r["steps"] for r in data["runs"]} == {2}


def test_time_budget_skips_runs_then_resume_runs_them(tmp_path):
    options = dict(
        tasks=["code_debug"],
        methods=["optoprime", "opro"],
        seeds=1,
        steps=2,
        out=tmp_path,
        progress=False,
    )
    frame = bench.run(**options, time_budget=0)
    assert (frame["status"] == "skipped: time budget").all()
    report = (tmp_path / "report.md").read_text()
    assert "skipped: time budget" in report  # the report says why there are no numbers
    frame = bench.run(**options)  # no budget: the skipped runs are not kept, they run now
    assert (frame["status"] == "ok").all() and frame["success"].all()


class _SlowMethod(bench.methods.Method):
    """OptoPrime whose every step takes at least 0.3 s (to pass a deadline on purpose)."""

    def step(self, optimizer, scorer=None):
        import time

        proposals = super().step(optimizer, scorer)
        time.sleep(0.3)
        return proposals


def test_a_run_stops_at_the_deadline_and_says_so(tmp_path):
    import time

    slow = _SlowMethod("optoprime", "optoprime")
    record = run_one("numerical", slow, 1, 5, offline=True, deadline=time.monotonic() + 0.2)
    assert record["status"] == "ok" and not record["success"]
    assert record["stopped"] == "time budget, after 1 of 5 steps"
    assert len(record["curve"]) == 2  # the start and the one step taken
    assert not bench.runner._reusable(record, 5, record["model"])  # a resume runs it again


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="the tasks are"):
        bench.run(tasks=["nope"], progress=False)
    with pytest.raises(ValueError, match="the methods are"):
        bench.run(tasks=["numerical"], methods=["nope"], progress=False)


# -- the command line ----------------------------------------------------------------------


def offline_args(out, tasks: str, workers: str, *extra: str) -> list[str]:
    """The command line of an offline run of optoprime and opro, 2 seeds x 2 steps."""
    return [
        "--offline", "--tasks", tasks, "--methods", "optoprime", "opro", "--seeds", "2",
        "--steps", "2", "--out", str(out), "--no-progress", "--workers", workers, *extra,
    ]  # fmt: skip


def test_cli_offline_run(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(offline_args(out, "format_constraints,numerical", "2"))
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| format_constraints | optoprime | 2 |" in printed
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {(r["task"], r["method"], r["seed"]) for r in runs} == {
        (t, m, s)
        for t in ("format_constraints", "numerical")
        for m in ("optoprime", "opro")
        for s in (0, 1)
    }
    assert (out / "report.md").exists()


def test_cli_time_budget_reaches_the_runner(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--offline", "--tasks", "code_debug", "--methods", "optoprime", "--seeds", "1"]
    args += ["--out", str(out), "--no-progress", "--time-budget", "0"]
    assert cli.main(args) == 0
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    assert run["status"] == "skipped: time budget"


@pytest.mark.parametrize("seeds", ["0", "-2"])
def test_cli_refuses_seeds_that_name_no_seed(tmp_path, capsys, seeds):
    args = ["--offline", "--tasks", "numerical", "--methods", "optoprime", "--no-progress"]
    assert cli.main([*args, "--seeds", seeds, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "seeds" in err and "at least 1" in err and f"got {seeds}" in err
    assert not (tmp_path / "results.json").exists()


def test_cli_refuses_a_negative_step_count(tmp_path, capsys):
    args = ["--offline", "--tasks", "numerical", "--methods", "optoprime", "--no-progress"]
    assert cli.main([*args, "--steps", "-1", "--out", str(tmp_path)]) == 2
    assert "steps must be a whole number >= 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--offline", "--model", "gpt-4o"], "model 'gpt-4o'"),
        (["--offline", "--base-url", "http://127.0.0.1:9/v1"], "base_url"),
        (["--model", "gpt-4o"], "model 'gpt-4o'"),  # no endpoint: offline by default
    ],
)
def test_cli_offline_refuses_a_model_it_would_ignore(tmp_path, capsys, monkeypatch, extra, named):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TRACE_NB_MODEL"):
        monkeypatch.delenv(var, raising=False)
    args = ["--tasks", "numerical", "--methods", "optoprime", "--no-progress"]
    assert cli.main([*args, *extra, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert named in err and "would not be used" in err and "--offline" in err
    assert not (tmp_path / "results.json").exists()


def test_cli_method_names_in_any_case(tmp_path, capsys):
    args = ["--offline", "--tasks", "numerical", "--methods", "OPRO", "OptoPrime"]
    args += ["--seeds", "1", "--steps", "1", "--no-progress", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "| numerical | opro | 1 |" in printed and "| numerical | optoprime | 1 |" in printed
    meta = json.loads((tmp_path / "results.json").read_text())["meta"]
    assert meta["methods"] == ["opro", "optoprime"]


def test_an_unavailable_method_is_one_line_not_a_row_per_task(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRACE_NB_REFERENCE_PYTHON", raising=False)
    from trace_nb.bench import reference

    if reference.unavailable() is None:
        pytest.skip("trace-opt is importable here, so trace_opt is not unavailable")
    args = ["--offline", "--tasks", "numerical,code_debug,format_constraints"]
    args += ["--methods", "optoprime", "trace_opt", "--seeds", "2", "--steps", "1"]
    assert cli.main([*args, "--no-progress", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("trace-opt is not installed") == 1
    assert "trace_opt: not run (3 tasks, 6 runs): unavailable: trace-opt" in printed
    assert "| trace_opt |" not in printed
    report = (tmp_path / "report.md").read_text()
    assert report.count("trace-opt is not installed") == 1 and "| trace_opt |" not in report


def test_offline_runs_create_no_response_cache(tmp_path):
    # docs/benchmark.md and --help say the cache is for runs that call a model
    bench.run(["numerical"], ["optoprime"], 1, 1, out=tmp_path, offline=True, progress=False)
    assert (tmp_path / "results.json").exists()
    assert not (tmp_path / "llm_cache.sqlite").exists()
    assert "offline runs use none" in " ".join(cli.parser().format_help().split())


def test_cli_help_says_code_is_applied_unreviewed():
    text = cli.parser().format_help()
    assert "approve_code=True" in text and "OFFLINE" in text
    assert cli.main(["--tasks", "nope", "--offline", "--no-progress"]) == 2


def test_import_trace_nb_does_not_import_bench():
    """Importing trace_nb (and using an optimizer) loads neither the benchmark nor pandas;
    after importing both, the same check sees them."""
    code = (
        "import sys, trace_nb; trace_nb.OptoPrime; "
        "print('trace_nb.bench' in sys.modules, 'pandas' in sys.modules); "
        "import trace_nb.bench, pandas; "
        "print('trace_nb.bench' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False", "True", "True"], out


def test_module_entry_point_lists_tasks():
    out = subprocess.run(
        [sys.executable, "-m", "trace_nb.bench", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in bench.TASKS:
        assert name in out
    assert "optoprime_masked" in out


def test_endpoint_run_uses_the_response_cache(tmp_path):
    # Not offline: one endpoint for all runs (here a loopback server answering like seed 0's
    # oracle), replies cached in a file; a second benchmark asks the server nothing new.
    cache = tmp_path / "cache.sqlite"
    options = dict(
        tasks=["numerical"],
        methods=["optoprime", "opro"],
        seeds=[0],
        steps=3,
        cache=str(cache),
        progress=False,
        offline=False,
    )
    with FakeOpenAIServer(replies=make_task("numerical", 0).oracle, model="m") as srv:
        first = bench.run(model="m", base_url=srv.base_url, out=tmp_path / "a", **options)
        asked = len(srv.requests)
        second = bench.run(model="m", base_url=srv.base_url, out=tmp_path / "b", **options)
        assert asked > 0 and len(srv.requests) == asked
    assert cache.exists()
    assert (first["model"] == "m").all() and set(first["status"]) == {"ok"}
    assert first["curve"].tolist() == second["curve"].tolist()
    assert "model `m`" in (tmp_path / "b" / "report.md").read_text()


def test_endpoint_timeout_reaches_the_client():
    with FakeOpenAIServer(replies=make_task("numerical", 0).oracle, latency=1.0) as srv:
        frame = bench.run(
            tasks=["numerical"],
            methods=["optoprime"],
            seeds=[0],
            steps=1,
            model="m",
            base_url=srv.base_url,
            offline=False,
            cache=False,
            timeout=0.2,
            progress=False,
        )
    assert frame.loc[0, "status"].startswith("error: LLMTimeoutError"), frame.loc[0, "status"]


# -- the CI stage's verdict: plumbing only, never a score -----------------------------------


def test_ci_fails_on_plumbing_only(tmp_path):
    from trace_nb.bench.ci import plumbing_errors

    def rec(status, success=False, best=0.0):
        return {
            "task": "numerical",
            "method": "optoprime",
            "seed": 0,
            "status": status,
            "success": success,
            "best_score": best,
        }

    assert "results.json was not written" in plumbing_errors([rec("ok")], tmp_path)
    (tmp_path / "results.json").write_text("{}")
    (tmp_path / "report.md").write_text("| table |")
    assert plumbing_errors([rec("ok"), rec("skipped: time budget")], tmp_path) == []
    assert plumbing_errors([rec("ok", best=0.0)], tmp_path) == []  # a zero score is fine
    crashed = plumbing_errors([rec("ok"), rec("error: RuntimeError: boom")], tmp_path)
    assert crashed == ["numerical/optoprime/seed 0: error: RuntimeError: boom"]
    assert plumbing_errors([rec("skipped: time budget")], tmp_path) == [
        "no run finished within the time budget"
    ]


def test_meta_names_every_task_method_and_seed_in_the_file(tmp_path):
    # Resuming with other --methods or --seeds adds runs to the file; meta must still describe
    # every run there (docs/benchmark.md), not only the last invocation's.
    options = dict(tasks=["code_debug"], steps=1, out=tmp_path, progress=False)
    bench.run(**options, methods=["opro"], seeds=1)
    bench.run(**options, methods=["optoprime"], seeds=2)
    data = json.loads((tmp_path / "results.json").read_text())
    meta = data["meta"]
    assert meta["methods"] == ["optoprime", "opro"] and meta["seeds"] == [0, 1]
    for r in data["runs"]:
        assert r["task"] in meta["tasks"] and r["method"] in meta["methods"]
        assert r["seed"] in meta["seeds"]
    bench.run(**options, methods=["opro"], seeds=1)  # report.md describes its own table
    assert "seeds: [0]" in (tmp_path / "report.md").read_text()


def test_cli_api_key_alone_is_an_endpoint_not_an_offline_run(tmp_path, capsys, monkeypatch):
    # --api-key is OpenAI's endpoint, as OPENAI_API_KEY is: it was refused as "would not be
    # used" by an offline run. --steps 0 on numerical asks no model, so nothing is sent.
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TRACE_NB_MODEL"):
        monkeypatch.delenv(var, raising=False)
    args = ["--tasks", "numerical", "--methods", "optoprime", "--seeds", "1", "--steps", "0"]
    args += ["--no-progress", "--api-key", "sk-test-NotARealKey-42", "--out", str(tmp_path)]
    assert cli.main([*args, "--model", "gpt-4o"]) == 0
    meta = json.loads((tmp_path / "results.json").read_text())["meta"]
    assert meta["offline"] is False and meta["model"] == "gpt-4o"
    assert "NotARealKey" not in (tmp_path / "results.json").read_text()
    capsys.readouterr()
    assert cli.main(args) == 2  # no model named: OpenAI serves many, so name one
    assert "OpenAI serves many models" in capsys.readouterr().err


def test_the_report_shows_wasted_steps_repairs_and_refusals_by_code():
    import pandas as pd

    from trace_nb.bench.report import summarize

    base = {c: 0 for c in COLUMNS} | {"task": "t", "method": "m", "status": "ok"}
    rows = [
        base | {"steps_run": 4, "wasted_steps": 1, "repairs": 2, "refusals": {"same_value": 2}},
        base
        | {"steps_run": 4, "wasted_steps": 2, "kept_steps": 1, "repairs": 0}
        | {"refusals": {"no_change": 3}},
    ]
    for r in rows:
        r.update(success=False, stopped=None, best_score=0.5)
    (row,) = summarize(pd.DataFrame(rows, columns=COLUMNS)).to_dict("records")
    assert row["wasted steps"] == "3/8 (38 %)" and row["repairs"] == 2
    assert row["kept steps"] == 1  # best of k kept the values: shown, not counted as wasted
    assert row["refusals"] == "no_change 3, same_value 2"


def test_results_that_counted_steps_but_not_wasted_ones_leave_the_cell_empty():
    import pandas as pd

    from trace_nb.bench.report import summarize

    columns = [c for c in COLUMNS if c != "wasted_steps"]
    row = {c: 0 for c in columns} | {"task": "t", "method": "m", "status": "ok"}
    row.update(steps_run=4, success=False, stopped=None, best_score=0.5, refusals={})
    (summary,) = summarize(pd.DataFrame([row], columns=columns)).to_dict("records")
    assert summary["wasted steps"] is None and summary["runs"] == "1"


def test_transcript_holds_each_runs_calls_by_step_and_results_keep_final_values(tmp_path):
    out = tmp_path / "run"
    # runs in parallel threads: each call must land under its own run
    rc = cli.main(offline_args(out, "format_constraints", "4", "--transcript"))
    assert rc == 0
    lines = transcript.read(out)
    runs = json.loads((out / "results.json").read_text())["runs"]
    for run in runs:
        mine = [
            c
            for c in lines
            if (c["task"], c["method"], c["seed"]) == (run["task"], run["method"], run["seed"])
        ]
        assert len(mine) == run["llm_calls"]
        optimizer = [c for c in mine if c["role"] == "optimizer"]
        # the oracle fixes the template in step 1; its prompt showed the initial one
        assert [c["step"] for c in optimizer] == [1]
        assert "Write a short description of {topic}." in optimizer[0]["messages"][-1]["content"]
        students = [c for c in mine if c["role"] == "student"]
        assert {c["step"] for c in students} == {0, 1}
        assert all(c["reply"] and c["prompt_tokens"] > 0 for c in mine)
        # the values the run ended with: the template the oracle wrote
        final = run["final_values"]["prompt_template"]
        assert final.startswith("Write a short description of {topic}.") and len(final) > 40
    # without --transcript, no file
    cli.main(
        [
            "--offline",
            "--tasks",
            "numerical",
            "--methods",
            "optoprime",
            "--seeds",
            "1",
            "--steps",
            "1",
            "--out",
            str(tmp_path / "plain"),
            "--no-progress",
        ]
    )
    assert not (tmp_path / "plain" / "calls.jsonl").exists()


def test_transcript_needs_an_output_folder():
    with pytest.raises(ValueError, match="out=DIR"):
        bench.run(
            tasks=["numerical"],
            methods=["optoprime"],
            seeds=1,
            steps=1,
            progress=False,
            transcript=True,
        )


def test_a_resumed_invocation_appends_its_calls_under_its_own_invocation(tmp_path):
    # A run that failed is run again on the next invocation: its calls are appended, and
    # the two sets of calls of the same (task, method, seed) must stay apart.
    task = make_task("format_constraints", 0)
    with FakeOpenAIServer(replies=task.oracle) as srv:
        srv.fault("status", code=401)  # the first call of the first invocation
        options = dict(
            tasks=["format_constraints"],
            methods=["optoprime"],
            seeds=1,
            steps=1,
            base_url=srv.base_url,
            api_key="test-key",
            cache=False,
            out=tmp_path,
            progress=False,
            transcript=True,
        )
        first = bench.run(**options)
        second = bench.run(**options)
    assert first.status[0].startswith("error") and second.status[0] == "ok"
    lines = transcript.read(tmp_path)
    invocations = list(dict.fromkeys(c["invocation"] for c in lines))
    assert len(invocations) == 2
    failed = [c for c in lines if c["invocation"] == invocations[0]]
    assert len(failed) == 1 and failed[0]["error"]
    latest = [c for c in lines if c["invocation"] == invocations[1]]
    assert len(latest) == second.llm_calls[0] and not any(c["error"] for c in latest)


def test_the_ceiling_scores_the_oracles_values_with_the_given_student(tmp_path):
    from trace_nb.bench.ceiling import ceiling
    from trace_nb.bench.ci import measure_ceiling
    from trace_nb.testing import FakeOpenAIServer

    # A student that ignores every instruction: even the oracle's template cannot pass.
    with FakeOpenAIServer(replies=lambda r: "Hello, World. This is a text.") as srv:
        row = ceiling("format_constraints", 0, make_llm(srv))
        summary: dict = {}
        problems = measure_ceiling(
            {"tasks": ["format_constraints", "numerical"], "seeds": [0]},
            {"alias": "student"},
            srv.base_url,
            tmp_path,
            summary,
        )
        asked = [r["messages"][-1]["content"] for r in srv.requests]
    template = row["values"]["prompt_template"]
    assert "{topic}" in template and "Do not use any commas." in template  # the oracle's
    assert row["status"] == "ok" and row["success"] is False and 0 <= row["score"] < 1
    # the student was asked with the oracle's template filled in, once per held-out topic
    task = bench.make_task("format_constraints", 0)
    assert asked[:3] == [template.replace("{topic}", t) for t in task.test]
    # numerical asks no student: its ceiling is the oracle's own solution
    rows = json.loads((tmp_path / "ceiling.json").read_text())
    assert [(r["task"], r["success"]) for r in rows] == [
        ("format_constraints", False),
        ("numerical", True),
    ]
    assert problems == [] and summary["ceiling"][1]["score"] == 1.0
