"""Benchmark of tracking overhead. Prints one JSON object.

Run: ``python bench/bench_tracking.py [--repeats N]`` (needs
``pip install "trace_nb[mlflow,otel]"``; on a shared machine run it several times, ``nice``'d,
and compare the medians).

1. MLflow: a 50-step training run (batch of 4, the optimizer an :class:`~trace_nb.llm.LLM`
   talking over HTTP to a FakeOpenAIServer that takes ``LATENCY_S`` per reply) with and
   without ``tracking=`` a real ``mlflow server`` on 127.0.0.1, alternated ``REPEATS``
   times in the same process; medians compared. The wall time of the tracked run includes
   until ``train()`` returns (the metrics went out during the run, batched; the value files
   were staged on local disk and go up in one go with the history, diffs and prompt, and the
   LLM calls' trace is sent, after ``train()`` returned, beside the notebook), and, also
   reported, until everything reached the server. MLflow's one-off import happens before
   timing. Target: at most 5 % more wall time of ``train()``.
2. OpenTelemetry off: what the off path costs per step (``observing()`` once per LLM call,
   the trainer's ``spans is None`` checks), measured over 200,000 calls, as a share of the
   median untracked step. Target: at most 1 %. Also reported: the same run with spans on
   (an SDK provider with an in-memory exporter), for information.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import train_helpers as th  # noqa: E402

from trace_nb import LLM, OptoPrime, node, train  # noqa: E402
from trace_nb.testing import FakeOpenAIServer  # noqa: E402
from trace_nb.training import RunUsage  # noqa: E402

STEPS = 50
BATCH = 4
LATENCY_S = 0.5  # a fast model's reply to an OptoPrime prompt; real ones take 1-10 s
FAST_LATENCY_S = 0.05  # reported too: a step this short shows the logging's own cost
REPEATS = 2
TARGET_MLFLOW = 0.05
TARGET_OTEL_OFF = 0.01


def one_run(srv, tracking=None) -> tuple[float, RunUsage]:
    llm = LLM(model="fake", base_url=srv.base_url, cache=False, backoff=0.01)
    param = node(0, name="offset", trainable=True)

    def workflow(example):
        return node(example["x"], name="x") + param

    start = time.perf_counter()
    result = train(
        workflow,
        th.make_examples(STEPS * BATCH, delta=STEPS // 2),
        th.offset_feedback,
        OptoPrime([param], llm=llm),
        batch_size=BATCH,
        max_workers=1,
        progress=False,
        tracking=tracking,
    )
    seconds = time.perf_counter() - start
    assert result.steps == STEPS, result.stopped_reason
    return seconds, result.usage


def creeper(request: dict) -> str:
    """Moves the variable one unit toward the target, so values change on many steps."""
    text = request["messages"][-1]["content"]
    name, value = th._variable(text)
    diffs = th._diffs(text)
    step = (1 if sum(diffs) > 0 else -1) if diffs and sum(diffs) else 0
    return th._reply(name, value + step)


def compare(srv, url: str, label: str) -> dict:
    """Median wall time of untracked and MLflow-tracked runs, alternated in one process."""
    from trace_nb.tracking import MLflowLogger

    plain, tracked, settled = [], [], []
    for i in range(REPEATS):
        plain.append(one_run(srv)[0])
        logger = MLflowLogger("bench", f"{label}-{i}", tracking_uri=url)
        seconds = one_run(srv, tracking=logger)[0]
        start = time.perf_counter()
        logger.flush()  # the uploads train() left to the background
        tracked.append(seconds)
        settled.append(seconds + time.perf_counter() - start)
        assert not logger.failed, logger.background.first_error
    p, t = statistics.median(plain), statistics.median(tracked)
    return {
        "untracked_s": [round(x, 3) for x in plain],
        "tracked_s": [round(x, 3) for x in tracked],
        "overhead": round(t / p - 1, 4),
        "until_all_logged_s": [round(x, 3) for x in settled],
        "overhead_until_all_logged": round(statistics.median(settled) / p - 1, 4),
        "step_s": round(p / STEPS, 4),
    }


def main() -> dict:
    from trace_nb.testing.mlflow_server import mlflow_server
    from trace_nb.tracking import MLflowLogger, events, otel

    out: dict = {
        "steps": STEPS,
        "batch_size": BATCH,
        "llm_latency_s": LATENCY_S,
        "repeats": REPEATS,
    }
    with (
        FakeOpenAIServer(replies=creeper, latency=LATENCY_S) as srv,
        FakeOpenAIServer(replies=creeper, latency=FAST_LATENCY_S) as fast,
        mlflow_server() as url,
    ):
        MLflowLogger("bench-warmup", tracking_uri=url).finish()  # imports MLflow (not timed)
        one_run(fast)  # the openai import and first connections (not timed)
        out["mlflow"] = compare(srv, url, "slow")
        out["mlflow"].update(
            target=TARGET_MLFLOW, meets_target=out["mlflow"]["overhead"] <= TARGET_MLFLOW
        )
        out["mlflow_fast_llm"] = {"llm_latency_s": FAST_LATENCY_S, **compare(fast, url, "fast")}
        step_s = statistics.median(out["mlflow"]["untracked_s"]) / STEPS
        # Off path per step: one observing() per LLM call (1 per step here), two checks.
        n = 200_000
        assert not events.observing()
        per_call = timeit.timeit(events.observing, number=n) / n
        spans = None
        per_check = timeit.timeit(lambda: spans is None, number=n) / n
        off = per_call + 2 * per_check
        out["otel_off"] = {
            "observing_check_ns": round(per_call * 1e9, 1),
            "per_step_ns": round(off * 1e9, 1),
            "step_s": round(step_s, 5),
            "share_of_step": off / step_s,
            "target": TARGET_OTEL_OFF,
            "meets_target": off / step_s <= TARGET_OTEL_OFF,
        }
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        plain = one_run(fast)[0]
        otel.enable(provider)
        try:
            on = one_run(fast)[0]
        finally:
            otel.reset()
        out["otel_on_fast_llm"] = {
            "untracked_s": round(plain, 3),
            "spans_s": round(on, 3),
            "overhead": round(on / plain - 1, 4),
            "spans": len(exporter.get_finished_spans()),
        }
    return out


if __name__ == "__main__":
    if "--repeats" in sys.argv:
        REPEATS = int(sys.argv[sys.argv.index("--repeats") + 1])
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints "View run ..." lines
        result = main()
    print(json.dumps(result, indent=1))
