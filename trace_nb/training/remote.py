"""Running examples on a remote engine with the trace intact.

The driver pickles the workflow, the feedback function, the trained parameters and the
default LLM once per run (:class:`Payload`, cloudpickle; LLM clients pickle without their
API key and read ``OPENAI_API_KEY`` on the worker). Each task carries the parameters'
current values by stable name (their names in a :class:`~trace_nb.graph.names.NameTable`
over the parameters, as the optimizer names them) and one example.

On the worker (:func:`run_task`) the values are set on the unpickled parameters, the
workflow runs, the feedback function scores the output, and the task returns a
:class:`RemoteResult`: the result, the output's graph as plain data
(:mod:`trace_nb.graph.portable`) and the usage of every LLM called during the task.

On the driver (:class:`RemoteRunner`) each graph is rebuilt with the driver's own
parameters in place of the worker's, so ``backward`` and the optimizer's prompt work as
for a local run. A task that raises or a worker that dies becomes that example's error
feedback (blamed on every parameter, as a workflow error is locally); errors of the
feedback function itself still stop the run, as they do locally.

A workflow defined in an importable module is pickled *by value* (cloudpickle's
``register_pickle_by_value``, for the time of the pickling) so that the parameters it
uses and the ones sent are the same objects on the worker; nothing is looked up by name
there. A worker whose output depends on a parameter that was not sent but has the name
of a trained one, or that cannot load the payload, stops the run with an error that says
so: that is a set-up problem, not feedback for the optimizer.

Secrets: LLM clients pickle without their key; the source lines shipped for tracebacks
are only those of the pickled functions, scrubbed; and a payload that still holds
something secret-looking (a registered key, ``sk-...``, the value of an environment
variable named like a key, token or password) is refused before anything is sent. So is
a task (the parameters' current values and one example) that holds one. The check reads
the strings a pickle holds, never its raw bytes, whose framing hides keys.
"""

from __future__ import annotations

import hashlib
import io
import linecache
import os
import pickle
import socket
import sys
import time
import types
from collections import ChainMap, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import FeedbackError
from ..graph import ParameterNode, topo_ancestors
from ..graph.names import NameTable
from ..graph.portable import export_trace, rebuild_trace, recording_existing
from ..llm.default import default_llm, set_default_llm
from ..llm.errors import scrub_secret, secrets_in_pickle
from ..llm.usage import Usage, collect_usage
from .engines import Engine
from .inprocess import ExampleResult, Traced, run_one, workflow_error
from .run_usage import WorkerUsage

__all__ = ["RemoteResult", "RemoteRunner", "run_task", "stable_names"]


def stable_names(params: Sequence[ParameterNode]) -> dict[str, ParameterNode]:
    """Name -> parameter, unique and the same on both sides (the optimizer's names)."""
    table = NameTable(first=params)
    return {table(p): p for p in params}


@dataclass
class RemoteResult:
    """What one task sends back."""

    result: ExampleResult
    graph: dict | None = None  # the output's trace (portable data), when it had one
    # "output", "exception" (an ExecutionError's node), "error" (the workflow raised), or
    # "setup" (the worker could not load the payload, or used parameters that were not sent)
    target: str | None = None
    usage: Usage = field(default_factory=Usage)  # LLM usage during the task
    worker: str = ""  # host:pid
    export_seconds: float = 0.0  # time spent turning the trace into data


# -- the worker side ------------------------------------------------------------------------
_LOADED: OrderedDict[str, tuple] = OrderedDict()  # per worker process: payload hash -> objects


def _load(payload: bytes, key: str) -> tuple:
    loaded = _LOADED.get(key)
    if loaded is None:
        sources, data = pickle.loads(payload)
        for name, lines in sources.items():
            # mtime None: linecache.checkcache keeps the entry (the file may not exist here).
            # Lines of the driver's files that were not sent are blank; a file this worker
            # has keeps its own entry.
            if not linecache.getlines(name):
                linecache.cache[name] = (sum(map(len, lines)), None, lines, name)
        with recording_existing() as existing:  # nodes from before any run: "shared"
            workflow, feedback, params, llm = pickle.loads(data)
        loaded = _LOADED[key] = (workflow, feedback, stable_names(params), llm, existing)
        while len(_LOADED) > 8:
            _LOADED.popitem(last=False)
    return loaded


def _foreign(node: Any, names: dict[str, ParameterNode]) -> list[str]:
    """Labels of parameters behind ``node`` that were not sent but share a trained name."""
    sent = set(map(id, names.values()))
    labels = {p.name for p in names.values()}
    return sorted(
        {
            n.name
            for n in topo_ancestors([node])
            if n.trainable and id(n) not in sent and n.name in labels
        }
    )


def run_task(task: bytes, payload: bytes, key: str) -> RemoteResult:
    """Run on the engine's worker: set the values, run the workflow, score, export the trace.

    ``task`` is the cloudpickled ``(values, example, index, trace)``: examples and values of
    classes defined in a notebook travel however the engine pickles.
    """
    worker = f"{socket.gethostname()}:{os.getpid()}"
    values, example, index, trace = pickle.loads(task)
    try:
        workflow, feedback, names, llm, existing = _load(payload, key)
    except Exception as e:  # noqa: BLE001 - e.g. a module the workflow needs is not installed
        text = (
            f"the worker could not load the workflow ({type(e).__name__}: {e}); install "
            "what it imports on the workers, or define it in the notebook"
        )
        return RemoteResult(
            ExampleResult(index, None, None, text, text), target="setup", worker=worker
        )
    for name, value in values.items():
        p = names.get(name)
        if p is not None:
            p.set_value(value)
    previous = default_llm()
    if llm is not None:
        set_default_llm(llm)
    try:
        with collect_usage() as totals:
            traced = run_one(workflow, feedback, example, index)
    finally:
        set_default_llm(previous)  # an in-process engine shares the driver's default
    out = RemoteResult(traced.result, usage=totals.total(), worker=worker)
    node = traced.node
    if node is None:
        out.target = "error" if traced.result.error is not None else None
    else:
        foreign = _foreign(node, names)
        if foreign:
            text = (
                f"the workflow on the worker used its own parameter(s) {', '.join(foreign)} "
                "instead of the trained one(s) sent with the task, so their values are "
                "stale: its module could not be sent by value. Define the parameters where "
                "the workflow can reach them (a closure, an object's attribute, the notebook)"
            )
            out.result = ExampleResult(index, None, None, text, text, traced.result.seconds)
            out.target = "setup"
            return out
        out.target = "exception" if node.kind == "exception" else "output"
        if trace:
            start = time.perf_counter()
            out.graph = export_trace(node, names, existing.ids)
            out.export_seconds = time.perf_counter() - start
    try:
        pickle.loads(pickle.dumps(out.result.output))
    except Exception:  # noqa: BLE001 - an output that cannot travel comes back as text
        out.result.output = repr(out.result.output)
    return out


# -- the driver side ------------------------------------------------------------------------
class _Pickler:
    """cloudpickle, keeping each function's file name (cloudpickle writes ``<dynamic-code>``)
    and noting the files, so the worker can show the failing line of a traced function."""

    def __init__(self) -> None:
        import cloudpickle
        from cloudpickle import cloudpickle as impl

        self.lines: dict[str, set[int]] = {}  # file -> line numbers of the pickled code

        def code_reduce(code: types.CodeType) -> tuple:
            fn, args = impl._code_reduce(code)
            numbers = self.lines.setdefault(code.co_filename, set())
            numbers.update(n for _, _, n in code.co_lines() if n is not None)
            numbers.add(code.co_firstlineno)  # the def line (decorators start here)
            return fn, tuple(code.co_filename if a == "<dynamic-code>" else a for a in args)

        base = cloudpickle.Pickler

        class Pickler(base):
            # typeshed calls the base's table a read-only Mapping; ChainMap only reads it.
            dispatch_table = ChainMap(
                {types.CodeType: code_reduce},
                base.dispatch_table,  # pyright: ignore[reportArgumentType]
            )

        self.pickler_class = Pickler

    def dumps(self, obj: Any) -> bytes:
        buffer = io.BytesIO()
        self.pickler_class(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return buffer.getvalue()


def _source_lines(lines: dict[str, set[int]]) -> dict[str, list[str]]:
    """Per file (or notebook cell) a pickled function came from: the lines of the pickled
    functions, from first to last, scrubbed of keys; every other line blank. Only what a
    traceback of that code shows travels, not the rest of the file."""
    out = {}
    for name, numbers in sorted(lines.items()):
        text = linecache.getlines(name)
        if not text or not numbers:
            continue
        first, last = max(min(numbers), 1), min(max(numbers), len(text))
        out[name] = ["\n"] * (first - 1) + [scrub_secret(t) for t in text[first - 1 : last]]
    return out


class Payload:
    """The pickled workflow, feedback, parameters and default LLM, made once per run, plus
    the source lines of the functions in it (a notebook cell's text is not on the worker)."""

    def __init__(self, workflow: Callable, feedback: Callable, params: Sequence[ParameterNode]):
        import cloudpickle

        modules: dict[str, Any] = {}
        for fn in (workflow, feedback):
            mod = sys.modules.get(getattr(fn, "__module__", None) or "")
            if (
                mod is not None
                and mod.__name__ not in ("__main__", "builtins")
                and not mod.__name__.startswith("trace_nb.")
                and mod.__name__ not in cloudpickle.list_registry_pickle_by_value()
            ):
                modules[mod.__name__] = mod
        obj = (workflow, feedback, list(params), default_llm())
        pickler = _Pickler()
        try:
            for mod in modules.values():
                cloudpickle.register_pickle_by_value(mod)
            data = pickler.dumps(obj)
        except Exception:  # noqa: BLE001 - by value failed (an unpicklable global): by reference
            self._unregister(modules)
            modules = {}
            pickler = _Pickler()
            try:
                data = pickler.dumps(obj)
            except Exception as e:
                raise ValueError(
                    f"cannot send the workflow to the workers: {type(e).__name__}: {e}. "
                    "Everything the workflow and the feedback function use must pickle "
                    "(cloudpickle): create locks, open files and clients inside the workflow, "
                    "or hold them where the workflow does not reach them"
                ) from e
        finally:
            self._unregister(modules)
        sources = _source_lines(pickler.lines)
        found = secrets_in_pickle(data) + secrets_in_pickle(pickle.dumps(sources))
        if found:
            raise ValueError(
                f"the workflow, its feedback function or its parameters hold {found[0]}: it "
                "would travel to every worker. Read keys from the environment on the worker "
                "(LLM() reads OPENAI_API_KEY when no api_key is given) and set them there."
            )
        self.data = pickle.dumps((sources, data), protocol=pickle.HIGHEST_PROTOCOL)
        self.key = hashlib.sha1(self.data).hexdigest()

    @staticmethod
    def _unregister(modules: dict[str, Any]) -> None:
        import cloudpickle

        for name, mod in modules.items():
            if name in cloudpickle.list_registry_pickle_by_value():
                cloudpickle.unregister_pickle_by_value(mod)


def _refuse_secrets(task: bytes, values: dict[str, Any], i: int, example: Any) -> None:
    """Raise ValueError, before anything is sent, when a task holds something secret-looking
    (see :func:`~trace_nb.llm.errors.secrets_in_pickle`): the parameters' current values
    and the example travel with every task, not in the payload checked once."""
    import cloudpickle

    found = secrets_in_pickle(task)
    if not found:
        return
    in_values = secrets_in_pickle(cloudpickle.dumps(values))
    where, what = (
        ("the parameters' values hold", in_values[0])
        if in_values
        else (f"example {i} holds", found[0])
    )
    raise ValueError(
        f"{where} {what}: it would travel to a worker. Nothing was sent. Keep keys out of "
        "the dataset and the parameters; read them from the environment on the worker "
        "(LLM() reads OPENAI_API_KEY when no api_key is given)."
    )


def _cancel(futures: list[Any]) -> None:
    for f in futures:
        try:
            f.cancel()
        except Exception:  # noqa: BLE001 - best effort: an engine that cannot cancel
            pass


class RemoteRunner:
    """Runs examples of one training run (or one evaluation) on ``engine``.

    ``worker_usage`` sums the LLM usage each worker reported; ``workers`` counts the
    examples each ran.
    """

    def __init__(
        self,
        engine: Engine,
        workflow: Callable,
        feedback: Callable,
        params: Sequence[ParameterNode],
    ):
        self.engine = engine
        self.params = list(params)
        self.names = stable_names(self.params)
        self.payload = Payload(workflow, feedback, self.params)
        self.handle: Any = None
        self.worker_usage: dict[str, Usage] = {}
        self.workers: dict[str, int] = {}
        self.export_seconds = 0.0
        self.rebuild_seconds = 0.0

    def _submit(self, items: Sequence[tuple[int, Any]], trace: bool) -> list[Any]:
        import cloudpickle

        values = {name: p.peek() for name, p in self.names.items()}
        tasks = [cloudpickle.dumps((values, ex, i, trace)) for i, ex in items]
        for task, (i, ex) in zip(tasks, items, strict=True):
            _refuse_secrets(task, values, i, ex)
        futures: list[Any] = []
        try:
            if self.handle is None:
                self.handle = self.engine.share(self.payload.data)
            for task in tasks:
                futures.append(self.engine.submit(run_task, task, self.handle, self.payload.key))
        except Exception as e:
            _cancel(futures)
            raise RuntimeError(
                f"the {self.engine.name} engine does not take tasks ({type(e).__name__}: {e}); "
                "a process pool whose worker died cannot be used again: make a new one, or "
                "use Dask or Ray, which replace dead workers"
            ) from e
        return futures

    def _collect(self, futures: list[Any], items: Sequence[tuple[int, Any]]) -> list:
        out = []
        try:
            for f, (i, _) in zip(futures, items, strict=True):
                try:
                    r = f.result()
                except FeedbackError:
                    raise
                except Exception as e:  # noqa: BLE001 - a lost worker or task: its example's error
                    text = f"the worker running this example failed ({type(e).__name__}: {e}); no output"
                    r = RemoteResult(
                        ExampleResult(i, None, None, text, text), target="error", worker="lost"
                    )
                if r.target == "setup":  # not the trained program's fault: stop here
                    raise RuntimeError(
                        f"example {i} on the {self.engine.name} engine: {r.result.error}"
                    )
                self.workers[r.worker] = self.workers.get(r.worker, 0) + 1
                if r.usage.calls:
                    self.worker_usage[r.worker] = self.worker_usage.get(r.worker, Usage()) + r.usage
                self.export_seconds += r.export_seconds
                out.append(r)
        except BaseException:
            _cancel(futures)  # stop what is still queued or running (Ctrl-C, a bad scorer)
            raise
        return out

    def forward(self, items: Sequence[tuple[int, Any]]) -> tuple[list[Traced], Usage]:
        """Traced runs of ``items`` (index, example), rebuilt here; and the LLM usage they cost."""
        results = self._collect(self._submit(items, True), items)
        start = time.perf_counter()
        shared: dict = {}
        ops: dict = {}
        traced, usage = [], Usage()
        for r in results:
            usage = usage + r.usage
            node = None
            if r.graph is not None:
                node = rebuild_trace(r.graph, self.names, shared, ops)
            elif r.target == "error" and self.params:
                node = workflow_error(r.result.feedback, *self.params)
            traced.append(Traced(node, r.result))
        self.rebuild_seconds += time.perf_counter() - start
        return traced, usage

    def evaluate(self, items: Sequence[tuple[int, Any]]) -> tuple[list[ExampleResult], Usage]:
        """Results of ``items`` without their traces (validation); and the LLM usage."""
        results = self._collect(self._submit(items, False), items)
        usage = Usage()
        for r in results:
            usage = usage + r.usage
        return [r.result for r in results], usage

    def usage_by_worker(self) -> dict[str, WorkerUsage]:
        """Per worker: examples run and LLM usage reported."""
        return {
            w: WorkerUsage.of(self.worker_usage.get(w, Usage()), n)
            for w, n in sorted(self.workers.items())
        }
