"""Command line: ``python -m trace_nb.bench [options]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .methods import METHODS
from .runner import DEFAULT_METHODS, DEFAULT_TASKS
from .tasks import TASKS

DESCRIPTION = """\
How well does trace_nb optimize? Runs the Trace paper's experiments (numerical graphs,
BBH-style tasks, code debugging, format constraints, Battleship) for each task x method x
seed and writes DIR/results.json, DIR/report.md and DIR/score_vs_step.png. Finished runs in
DIR/results.json are skipped, so an interrupted run resumes.

Without --base-url (and without OPENAI_BASE_URL / OPENAI_API_KEY in the environment) it runs
OFFLINE against scripted oracles on 127.0.0.1: fast and deterministic, and a test of the
plumbing only, not of a model.

The trace_opt method runs the reference implementation (trace-opt 0.1.3.8) when this
Python can import it or TRACE_NB_REFERENCE_PYTHON names one that can (it has ~1.4 GB of
dependencies: give it its own venv).

CODE IS APPLIED WITHOUT REVIEW: the code-debugging, BBH and Battleship tasks let the LLM
rewrite Python functions; the benchmark applies those proposals automatically
(approve_code=True) and runs them in this process. Point it only at a model whose code you
are willing to run."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trace_nb.bench",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        help="model name (env TRACE_NB_MODEL; without one, the only model the server serves)",
    )
    p.add_argument("--base-url", help="OpenAI-compatible base URL (env OPENAI_BASE_URL)")
    p.add_argument("--api-key", help="API key (env OPENAI_API_KEY; not needed for local servers)")
    p.add_argument(
        "--offline",
        action="store_true",
        help="use the scripted oracles on loopback (default without an endpoint)",
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        default=DEFAULT_TASKS,
        metavar="TASK",
        help=f"tasks to run (comma or space separated): {', '.join(TASKS)}",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=DEFAULT_METHODS,
        metavar="METHOD",
        help=f"methods to compare (any letter case): {', '.join(METHODS)}",
    )
    p.add_argument(
        "--seeds", type=int, default=3, help="number of seeds (0..N-1, N >= 1), default 3"
    )
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per run (>= 0), default 8")
    p.add_argument("--workers", type=int, default=4, help="runs in parallel (threads), default 4")
    p.add_argument(
        "--out",
        default="bench-results",
        metavar="DIR",
        help="output directory, default ./bench-results",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the LLM response cache (default: DIR/llm_cache.sqlite when a model "
        "is called; offline runs use none)",
    )
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature")
    p.add_argument(
        "--max-tokens",
        type=int,
        default=1024,
        help="cap on each optimizer reply's tokens, default 1024",
    )
    p.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per LLM request, default 300"
    )
    p.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="no optimizer step starts after this many seconds; unfinished runs are recorded "
        "as stopped or skipped and run on the next invocation",
    )
    p.add_argument(
        "--transcript",
        action="store_true",
        help="append every LLM call of trace_nb's methods (messages and reply, keys "
        "scrubbed) to DIR/calls.jsonl, tagged with task, method, seed and step",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        default=None,
        metavar="URI",
        help="also log the results to MLflow (a parent run, a nested run per task x method "
        "x seed) at URI (default: MLflow's own setting); needs pip install 'trace_nb[mlflow]'",
    )
    p.add_argument("--list", action="store_true", help="list tasks and methods, then exit")
    return p


def _names(values: Sequence[str]) -> list[str]:
    return [n for v in values for n in v.split(",") if n]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        print("tasks:  ", " ".join(TASKS))
        print("methods:", " ".join(METHODS))
        return 0
    from .runner import run

    try:
        frame = run(
            _names(args.tasks),
            _names(args.methods),
            args.seeds,
            args.steps,
            model=args.model,
            base_url=args.base_url,
            api_key=args.api_key,
            offline=True if args.offline else None,
            out=args.out,
            workers=args.workers,
            cache=not args.no_cache,
            progress=not args.no_progress,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            timeout=args.timeout,
            time_budget=args.time_budget,
            transcript=args.transcript,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .report import markdown_table, summarize, unavailable_lines

    print(markdown_table(summarize(frame)))
    for line in unavailable_lines(frame):
        print(line)
    print(f"\nwrote {args.out}/results.json and {args.out}/report.md")
    if args.mlflow is not None:
        from ..tracking.bench_log import log_bench
        from .runner import load_results

        wanted = {
            (t, m, s)
            for t in _names(args.tasks)
            for m in _names(args.methods)
            for s in range(args.seeds)
        }
        runs = [r for r in load_results(args.out) if (r["task"], r["method"], r["seed"]) in wanted]
        meta = {
            "steps": args.steps,
            "seeds": args.seeds,
            "model": runs[0].get("model") if runs else None,
        }
        parent = log_bench(runs, meta, tracking_uri=args.mlflow or None, out=args.out)
        if parent.failed:
            print(f"MLflow logging failed: {parent.background.first_error}", file=sys.stderr)
            return 1
        print(f"logged {len(runs)} runs to MLflow (parent run {parent.run_id})")
    return 0
