"""Run (task, method, seed) triples in parallel, resumably, and collect one record each."""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from . import counters
from .methods import METHODS, Method, get_method
from .tasks import TASKS, make_task
from .transcript import Transcript

DEFAULT_TASKS = [
    "numerical",
    "bbh_word_sorting",
    "bbh_boolean_expressions",
    "bbh_multistep_arithmetic",
    "bbh_object_counting",
    "bbh_dyck_languages",
    "code_debug",
    "format_constraints",
    "battleship",
]
DEFAULT_METHODS = ["optoprime", "optoprime_memory", "optoprime_masked", "opro", "trace_opt"]
#: the numbers each run ends with (the report's and a tracker's metrics)
OUTCOME = [
    "success",
    "steps_to_success",
    "best_score",
    "final_score",
    "parse_failures",
    "invalid_proposals",
    "repeats",
    "applied",
    "llm_calls",
    "prompt_tokens",
    "completion_tokens",
    "wall_s",
    *counters.COUNTERS,
]
COLUMNS = [
    "task",
    "method",
    "seed",
    "status",
    *OUTCOME,
    "curve",
    "reasons",
    "stopped",
    "steps",
    "model",
    "refusals",
]
SAME_VALUE = "the suggested value is the same as the current one"
SKIPPED = "skipped: time budget"
NO_CHANGES = "the reply suggests no changes"


def classify(proposals: Iterable[Any]) -> dict[str, int]:
    """Count one step's proposals: parse failures, invalid ones, re-proposed values, applied."""
    counts = {"parse_failures": 0, "invalid_proposals": 0, "repeats": 0, "applied": 0}
    for p in proposals:
        code = counters.code_of(p)
        if p.status == "approved":
            counts["applied"] += 1
        elif p.valid:
            continue
        elif code == "same_value":
            counts["repeats"] += 1
        elif p.name is None:
            counts["parse_failures"] += code not in ("no_change", "repair_failed")
        else:
            counts["invalid_proposals"] += 1
    return counts


def run_one(
    task_name: str,
    method: Method | str,
    seed: int,
    steps: int,
    llm: Any = None,
    *,
    offline: bool = False,
    max_tokens: int | None = 1024,
    deadline: float | None = None,
    transcript: Transcript | None = None,
) -> dict[str, Any]:
    """One run: evaluate, then up to ``steps`` train-step/optimizer-step/evaluate rounds.

    Stops early at the first success. ``offline=True`` serves ``llm`` from the task's
    oracle on loopback (``llm`` is then ignored). Errors become ``status: "error: ..."``.
    ``deadline`` (a :func:`time.monotonic` value): no step starts after it; a run that
    stops for it says so in ``stopped``, and one that cannot start has status
    ``"skipped: time budget"``. ``transcript``: where to write every LLM call of the run
    (:mod:`.transcript`). The record's ``final_values`` holds the parameters' values at the
    end (as JSON holds them, else their text; a code parameter's source).
    """
    method = get_method(method) if isinstance(method, str) else method
    record: dict[str, Any] = {
        "task": task_name,
        "method": method.name,
        "seed": seed,
        "steps": steps,
        "success": False,
        "steps_to_success": None,
        "best_score": None,
        "final_score": None,
        "curve": [],
        "llm_calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        **classify([]),
        **counters.empty(),
        "reasons": [],
        "stopped": None,
        "final_values": {},
    }
    why_not = method.unavailable()
    if why_not:
        return {**record, "status": why_not, "wall_s": 0.0, "model": None}
    if deadline is not None and time.monotonic() >= deadline:
        return {**record, "status": SKIPPED, "wall_s": 0.0, "model": None}
    if method.kind == "reference":
        from . import reference

        if not reference.in_process():  # run where trace-opt is installed
            start = time.perf_counter()
            try:
                return reference.run_in_subprocess(
                    task_name,
                    method,
                    seed,
                    steps,
                    llm,
                    offline=offline,
                    max_tokens=max_tokens,
                    deadline=deadline,
                )
            except Exception as e:  # noqa: BLE001 - one failed run must not stop the benchmark
                return {
                    **record,
                    "status": f"error: {type(e).__name__}: {str(e)[-300:]}",
                    "wall_s": round(time.perf_counter() - start, 3),
                    "model": None if llm is None else llm.model,
                }
    start = time.perf_counter()
    task = make_task(task_name, seed)
    if offline:
        from .offline import oracle_llm

        context: Any = oracle_llm(task)
    else:
        context = nullcontext((copy.copy(llm), None))  # own usage totals per run
    with context as (run_llm, _server):
        record["model"] = run_llm.model
        holder: list = []
        label = {"task": task_name, "method": method.name, "seed": seed}
        watching = (
            transcript.watch(run_llm, label, lambda: len(record["curve"]))
            if transcript is not None
            else nullcontext()
        )
        try:
            with watching:
                _optimize(task, method, steps, run_llm, max_tokens, record, deadline, holder)
            record["status"] = "ok"
        except Exception as e:  # noqa: BLE001 - one failed run must not stop the benchmark
            record["status"] = f"error: {type(e).__name__}: {str(e)[:300]}"
        record["final_values"] = {p.name: _plain(p.data) for p in task.parameters()}
        used = run_llm.usage.total()
        # An optimizer with its own client (the reference) counts its calls itself.
        for extra in (getattr(o, "extra_usage", None) for o in holder):
            if extra is not None:
                used = used + extra
        record.update(
            llm_calls=used.calls,
            prompt_tokens=used.prompt_tokens,
            completion_tokens=used.completion_tokens,
        )
    record["wall_s"] = round(time.perf_counter() - start, 3)
    return record


def _plain(value: Any) -> Any:
    """``value`` as JSON keeps it (text, numbers, lists...), else its text."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


MAX_REASONS = 5


def _note_reasons(proposals: Iterable[Any], reasons: list[str]) -> None:
    """Keep the first few distinct reasons why proposals were not applied (for diagnosis)."""
    for p in proposals:
        reason = p.reason
        if reason and counters.code_of(p) != "no_change" and len(reasons) < MAX_REASONS:
            text = f"{p.name}: {reason}"[:200]
            if text not in reasons:
                reasons.append(text)


def _optimize(
    task: Any,
    method: Method,
    steps: int,
    llm: Any,
    max_tokens: int | None,
    record: dict,
    deadline: float | None = None,
    holder: list | None = None,
) -> None:
    optimizer = method.build(task.parameters(), llm, task.objective, max_tokens)
    if holder is not None:
        holder.append(optimizer)
    score = task.evaluate(llm)
    record["curve"].append(score.score)
    if score.success:
        record["success"], record["steps_to_success"] = True, 0
    previous: list[str] = []  # the run's last reply, for identical_replies
    for step in range(1, steps + 1):
        if record["success"]:
            break
        if deadline is not None and time.monotonic() >= deadline:
            record["stopped"] = f"time budget, after {step - 1} of {steps} steps"
            break
        optimizer.zero_feedback()
        task.train_step(step - 1, llm)
        start = counters.log_length(optimizer)
        proposals = method.step(optimizer, scorer=lambda k=step - 1: task.score_examples(k, llm))
        for key, n in classify(proposals).items():
            record[key] += n
        counters.count_step(record, optimizer, start, proposals, previous)
        _note_reasons(proposals, record["reasons"])
        score = task.evaluate(llm)
        record["curve"].append(score.score)
        if score.success:
            record["success"], record["steps_to_success"] = True, step
    record["best_score"] = max(record["curve"])
    record["final_score"] = record["curve"][-1]


# -- results file ------------------------------------------------------------------------


def load_results(out: str | os.PathLike | None) -> list[dict]:
    path = Path(out) / "results.json" if out else None
    if path is None or not path.exists():
        return []
    return list(json.loads(path.read_text()).get("runs", []))


def _save(out: Path, meta: dict, runs: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    tmp.replace(out / "results.json")


def _reusable(record: dict, steps: int, model: str | None) -> bool:
    status = str(record.get("status"))
    return (
        (status == "ok" or status.startswith("unavailable"))
        and not record.get("stopped")
        and record.get("steps") == steps
        and record.get("model") in (model, None)
    )


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``seeds`` as a list: a count ``n`` is ``0..n-1``; refused when it names no seed."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(
                f"seeds is how many seeds to run (0..N-1) and must be at least 1, got {seeds}"
            )
        return list(range(seeds))
    seed_list = list(seeds)
    if not seed_list:
        raise ValueError("seeds is an empty list: name at least one seed")
    return seed_list


def _check_resume(earlier: list[dict], out_dir: Path | None, steps: int, model: str) -> None:
    """Refuse to add runs of another ``steps`` or model to a results file.

    ``meta`` describes every run in the file, so one file holds one configuration: a
    different one would replace finished runs or mix two experiments in one table.
    """
    for label, wanted, flag in (("steps", steps, "--steps"), ("model", model, "--model")):
        found = sorted({str(r.get(label)) for r in earlier if r.get(label) is not None})
        others = [f for f in found if f != str(wanted)]
        if others:
            raise ValueError(
                f"{out_dir}/results.json holds runs with {label} {', '.join(others)}, and this "
                f"run asks for {label} {wanted}. One results file holds one experiment: to "
                f"resume it, use the same {flag}; for a new one, pass another --out DIR (or "
                "move results.json away)."
            )


def run(
    tasks: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    seeds: int | Sequence[int] = 3,
    steps: int = 8,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    offline: bool | None = None,
    out: str | os.PathLike | None = None,
    workers: int = 4,
    cache: bool | str = True,
    progress: bool = True,
    temperature: float = 0.0,
    max_tokens: int | None = 1024,
    timeout: float = 300.0,
    report: bool = True,
    time_budget: float | None = None,
    sampling_seed: int | None = 0,
    transcript: bool = False,
) -> Any:
    """Run the benchmark and return one row per (task, method, seed) as a DataFrame.

    Parameters
    ----------
    tasks, methods
        Names from :data:`~trace_nb.bench.tasks.TASKS` and :data:`~trace_nb.bench.methods.METHODS`
        (default: all).
    seeds
        How many seeds (0..n-1, at least 1), or the seeds themselves.
    model, base_url, api_key
        The OpenAI-compatible endpoint, both optimizer and "student model" (env fallbacks as
        in :class:`trace_nb.llm.LLM`).
    offline
        Use the scripted oracles on loopback (default: when no ``base_url`` or ``api_key`` is
        given and ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` are unset). Offline numbers measure the
        plumbing, not a model.
    out
        Directory for ``results.json``, ``report.md`` and ``score_vs_step.png``. Runs already
        in its ``results.json`` (finished) are not run again. A file whose runs have another
        ``steps`` or model is refused (``ValueError``): one file holds one experiment.
    workers
        Threads running (task, method, seed) triples at once.
    timeout
        Seconds per LLM request (a small model on a busy CPU can need minutes for one reply).
    sampling_seed
        The ``seed`` sent with every request (default 0), so that calls at a temperature
        above 0 (best-of-k's candidates, repair turns) give the same replies on a re-run
        where the server honours it (llama.cpp does); None leaves sampling to the server.
    time_budget
        Seconds for the whole benchmark (None: no limit). No optimizer step starts after
        it: a run in progress stops (``stopped`` says so) and the runs not started yet are
        recorded as ``"skipped: time budget"`` (and run on the next, resumed invocation).
    cache
        The LLM response cache: True (``out/llm_cache.sqlite``, or the default location
        without ``out``), False, or a path. Offline runs use none (their replies are
        computed, not fetched), so they create no cache file.
    transcript
        Append every LLM call of trace_nb's methods (messages and reply) to
        ``out/calls.jsonl``, tagged with task, method, seed and step (:mod:`.transcript`);
        needs ``out``.

    Code proposals are applied without review (``approve_code=True``), as a benchmark has
    no human in the loop: only point it at a model whose code you are willing to run.
    """
    import pandas as pd

    tasks = list(tasks or DEFAULT_TASKS)
    methods = list(methods or DEFAULT_METHODS)
    for name in tasks:
        if name not in TASKS:
            make_task(name, 0)  # raises with the list of tasks
    method_objs = [get_method(m) for m in methods]
    methods = [m.name for m in method_objs]
    seed_list = _seed_list(seeds)
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0 (0: evaluate only), got {steps!r}")
    if offline is None:
        offline = not (
            base_url
            or api_key
            or os.environ.get("OPENAI_BASE_URL")
            or os.environ.get("OPENAI_API_KEY")
        )
    named = [f"{k} {v!r}" for k, v in (("model", model), ("base_url", base_url)) if v]
    if offline and (named or api_key):
        raise ValueError(
            f"{' and '.join(named) or 'an API key'} would not be used: offline runs answer "
            "from scripted oracles on 127.0.0.1, not from a model. To call a model, give its "
            "endpoint (--base-url, or OPENAI_BASE_URL / OPENAI_API_KEY in the environment) "
            "without --offline; to run offline, leave out --model, --base-url and --api-key."
        )
    llm = None
    if not offline:
        from ..llm import LLM

        if cache is True:
            cache = str(Path(out) / "llm_cache.sqlite") if out else True
        llm = LLM(
            model=model,
            api_key=api_key,
            base_url=base_url,
            cache=cache,
            temperature=temperature,
            timeout=timeout,
            seed=sampling_seed,
        )
        model = llm.model
    else:
        from .offline import OFFLINE_MODEL

        model = OFFLINE_MODEL
    out_dir = Path(out) if out else None
    if transcript and out_dir is None:
        raise ValueError("transcript=True writes DIR/calls.jsonl: give out=DIR as well")
    calls = Transcript(out_dir) if transcript and out_dir is not None else None
    meta = {
        "model": model,
        "offline": offline,
        "steps": steps,
        "tasks": tasks,
        "methods": methods,
        "seeds": seed_list,
    }
    earlier = load_results(out_dir)
    _check_resume(earlier, out_dir, steps, model)
    for key, label in (("tasks", "task"), ("methods", "method"), ("seeds", "seed")):
        # runs kept from an earlier invocation stay in the file: meta names them too
        meta[key] = [
            *meta[key],
            *dict.fromkeys(r[label] for r in earlier if r[label] not in meta[key]),
        ]
    done = {(r["task"], r["method"], r["seed"]): r for r in earlier}
    todo = [
        (t, m, s)
        for t in tasks
        for m in method_objs
        for s in seed_list
        if not ((t, m.name, s) in done and _reusable(done[(t, m.name, s)], steps, model))
    ]
    lock = threading.Lock()
    deadline = None if time_budget is None else time.monotonic() + time_budget

    def finish(record: dict) -> None:
        with lock:
            done[(record["task"], record["method"], record["seed"])] = record
            if out_dir is not None:
                _save(out_dir, meta, list(done.values()))

    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="trace_nb.bench", unit="run", disable=not progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(
                run_one,
                t,
                m,
                s,
                steps,
                llm,
                offline=offline,
                max_tokens=max_tokens,
                deadline=deadline,
                transcript=calls,
            )
            for t, m, s in todo
        ]
        for future in as_completed(futures):
            finish(future.result())
            bar.update(1)
    bar.close()
    if out_dir is not None:
        _save(out_dir, meta, list(done.values()))
    wanted = [done[(t, m.name, s)] for t in tasks for m in method_objs for s in seed_list]
    frame = pd.DataFrame(wanted, columns=COLUMNS)
    if report and out_dir is not None:
        from .report import write_report

        write_report(frame, out_dir, {**meta, "seeds": seed_list})  # the table's runs
    return frame


__all__ = ["COLUMNS", "DEFAULT_METHODS", "DEFAULT_TASKS", "METHODS", "classify", "run", "run_one"]
