"""Benchmark of traced minibatches on a remote engine. Prints one JSON object.

Run: ``python bench/bench_scale.py`` (``--examples``, ``--latency``, ``--workers``). Targets
(issue #18), both measured in this run:

  dask_speedup         64 examples whose workflow waits 200 ms on the loopback LLM server:
                       1 local worker (in this process, one after another) / 8 Dask worker
                       processes (traces shipped back and rebuilt)          >= 6
  overhead_fraction    per example, a 100-node trace exported on the worker, pickled,
                       unpickled and rebuilt here, over the workflow's own time (200 ms):
                       export and rebuild are the mean times measured in the Dask run,
                       pickling and unpickling the trace data is measured here (median)
                                                                             <= 0.05

The workflow: one traced LLM call (the server answers after ``latency`` seconds), then a
chain of traced string and arithmetic operations, so each output's graph has about 100 nodes.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time

OPS = 64  # operations after the LLM call: the trace has about 100 nodes


def build(base_url: str):
    from trace_nb import bundle, node
    from trace_nb.llm import LLM

    llm = LLM(model="fake-model", base_url=base_url, cache=False)
    prompt = node("Answer briefly.", name="prompt", trainable=True)
    scale = node(2, name="scale", trainable=True)

    @bundle()
    def ask(instruction, question):
        """Ask the model."""
        return llm.chat(
            [{"role": "system", "content": instruction}, {"role": "user", "content": question}]
        ).text

    def workflow(example):
        answer = ask(prompt, node(example["q"], name="question"))
        total = answer.len()
        for i in range(OPS):
            total = total + scale if i % 2 else total * node(1)
        return total

    def feedback(example, output):
        return (1.0 if output > 0 else 0.0), f"got {output}"

    return [prompt, scale], workflow, feedback


def main(examples: int, latency: float, workers: int) -> dict:
    from dask.distributed import Client, LocalCluster

    from trace_nb.graph import topo_ancestors
    from trace_nb.graph.portable import export_trace, recording_existing
    from trace_nb.testing import FakeOpenAIServer
    from trace_nb.training.engines import engine_for
    from trace_nb.training.inprocess import forward
    from trace_nb.training.remote import RemoteRunner, stable_names

    data = [{"q": f"question {i}"} for i in range(examples)]
    items = list(enumerate(data))
    out: dict = {"examples": examples, "latency_s": latency, "dask_workers": workers}
    with FakeOpenAIServer(replies=lambda body: "a short answer", latency=latency) as server:
        params, workflow, feedback = build(server.base_url)

        # Pickling one trace's data, measured in this process.
        with recording_existing() as existing:
            pass
        output = workflow(data[0])
        names = stable_names(params)
        out["trace_nodes"] = len(topo_ancestors([output]))
        graph = export_trace(output, names, existing.ids)
        times = []
        for _ in range(21):
            t0 = time.perf_counter()
            pickle.loads(pickle.dumps(graph))
            times.append(time.perf_counter() - t0)
        out["pickle_round_trip_s"] = sorted(times)[len(times) // 2]

        # 1 local worker: the examples one after another in this process.
        t0 = time.perf_counter()
        local = forward(workflow, feedback, items, None, params)
        out["local_1_worker_s"] = time.perf_counter() - t0
        assert all(t.result.score == 1.0 for t in local)

        with (
            LocalCluster(
                processes=True, n_workers=workers, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            runner = RemoteRunner(engine_for(client), workflow, feedback, params)
            runner.forward(items[:workers])  # warm: every worker loads the payload once
            t0 = time.perf_counter()
            traced, usage = runner.forward(items)
            out["dask_s"] = time.perf_counter() - t0
            assert all(t.result.score == 1.0 for t in traced) and usage.calls == examples
            assert len(topo_ancestors([traced[0].node])) == out["trace_nodes"]
            out["dask_workers_used"] = len(runner.workers)
            out["worker_export_s_per_example"] = runner.export_seconds / (examples + workers)
            out["driver_rebuild_s_per_example"] = runner.rebuild_seconds / (examples + workers)
    per_example = (
        out["worker_export_s_per_example"]
        + out["driver_rebuild_s_per_example"]
        + out["pickle_round_trip_s"]
    )
    out["serialize_rebuild_s"] = per_example
    out["overhead_fraction"] = per_example / latency
    out["dask_speedup"] = out["local_1_worker_s"] / out["dask_s"]
    out["targets"] = {
        "dask_speedup >= 6": out["dask_speedup"] >= 6,
        "overhead_fraction <= 0.05": out["overhead_fraction"] <= 0.05,
    }
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(main(args.examples, args.latency, args.workers), indent=2))
