"""Runs you can find again: trace_nb in MLflow and OpenTelemetry.

* :class:`MLflowLogger`: one MLflow run (``pip install 'trace_nb[mlflow]'``).
* :func:`log_session` (``session.log_to_mlflow()``, ``%trace_log NAME``): a notebook
  session, live; :func:`log_saved`: an autosave file.
* ``trace_nb.train(..., tracking="mlflow")``: a training run, live (:mod:`.training`).
* :func:`log_bench`: the benchmark's results, a nested run per task × method × seed.
* :mod:`.otel`: spans run → step → LLM call / preview / review decision to your tracer
  provider (``pip install 'trace_nb[otel]'``); :func:`trace_session` for a session.

Nothing here imports MLflow or OpenTelemetry until it is used.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:  # what __getattr__ below loads on first use, for type checkers and IDEs
    from .bench_log import log_bench
    from .events import LLMCall, add_call_observer, remove_call_observer
    from .mlflow import MLflowLogger, flush_all
    from .session_log import SessionLog, log_saved, log_session
    from .session_spans import trace_session

_LAZY = {
    "MLflowLogger": "trace_nb.tracking.mlflow",
    "flush_all": "trace_nb.tracking.mlflow",
    "log_session": "trace_nb.tracking.session_log",
    "log_saved": "trace_nb.tracking.session_log",
    "SessionLog": "trace_nb.tracking.session_log",
    "log_bench": "trace_nb.tracking.bench_log",
    "trace_session": "trace_nb.tracking.session_spans",
    "LLMCall": "trace_nb.tracking.events",
    "add_call_observer": "trace_nb.tracking.events",
    "remove_call_observer": "trace_nb.tracking.events",
}

# The names of _LAZY, spelled out so that type checkers can read them.
__all__ = [
    "LLMCall",
    "MLflowLogger",
    "SessionLog",
    "add_call_observer",
    "flush_all",
    "log_bench",
    "log_saved",
    "log_session",
    "remove_call_observer",
    "trace_session",
]


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trace_nb.tracking' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value
