"""Benchmark of concurrent evaluation in dataset training. Prints one JSON object.

Run: ``python bench/bench_train.py``. A workflow that makes one LLM call per example
(an :class:`~trace_nb.llm.LLM` talking over HTTP to a FakeOpenAIServer that takes 0.2 s per
reply) is evaluated on 32 examples with ``max_workers=1`` and ``max_workers=8`` in the
same run. Target (issue): 8 workers at least 6x faster than 1.

Also reported: one training step (minibatch of 8 through the same workflow, plus the
optimizer call) with 1 and 8 workers, which shows the same effect inside ``train``.
"""

from __future__ import annotations

import json
import time

from trace_nb import LLM, OptoPrime, bundle, node
from trace_nb.testing import FakeOpenAIServer
from trace_nb.training import evaluate, train

N_EXAMPLES = 32
LATENCY_S = 0.2
TARGET_SPEEDUP = 6.0


def main() -> dict:
    with (
        FakeOpenAIServer(replies=lambda req: "ok", latency=LATENCY_S) as wf_srv,
        FakeOpenAIServer(
            replies=lambda req: '{"reasoning": "", "suggestion": {"bench_prefix": "Q: "}}'
        ) as opt_srv,
    ):
        llm = LLM(model="fake", base_url=wf_srv.base_url, cache=False, backoff=0.01)
        prefix = node("Question: ", name="bench_prefix", trainable=True)

        @bundle()
        def ask(prompt):
            """Sends the prompt to the LLM and returns its answer."""
            return llm.chat([{"role": "user", "content": prompt}]).text

        def workflow(example):
            return ask(prefix + str(example))

        def feedback(example, output):
            return 1.0 if output == "ok" else 0.0

        examples = list(range(N_EXAMPLES))
        llm.chat([{"role": "user", "content": "warm-up"}])  # the openai import is not timed

        timings = {}
        for workers in (1, 8):
            report = evaluate(workflow, examples, feedback, max_workers=workers)
            assert report.mean_score == 1.0, report
            timings[workers] = report.seconds

        step = {}
        for workers in (1, 8):
            prefix.set_value("Question: ")
            opt = OptoPrime(
                [prefix],
                llm=LLM(model="fake", base_url=opt_srv.base_url, cache=False, backoff=0.01),
            )
            t0 = time.perf_counter()
            train(
                workflow,
                examples[:8],
                feedback,
                opt,
                batch_size=8,
                max_steps=1,
                max_workers=workers,
                progress=False,
            )
            step[workers] = time.perf_counter() - t0
        calls = len(wf_srv.requests)

    speedup = timings[1] / timings[8]
    return {
        "examples": N_EXAMPLES,
        "server_latency_s": LATENCY_S,
        "evaluate_seconds_1_worker": round(timings[1], 3),
        "evaluate_seconds_8_workers": round(timings[8], 3),
        "speedup_8_vs_1": round(speedup, 2),
        "target_speedup": TARGET_SPEEDUP,
        "target_met": speedup >= TARGET_SPEEDUP,
        "train_step_seconds_1_worker": round(step[1], 3),
        "train_step_seconds_8_workers": round(step[8], 3),
        "workflow_llm_calls": calls,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
