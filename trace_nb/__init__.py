"""trace_nb: Trace-style generative optimization for Jupyter.

Mark values and functions of notebook code as trainable, run the code, give feedback,
and let an LLM optimizer (OptoPrime) propose new values for you to review.

Importing this package is cheap and has no side effects: the public names below are
loaded on first use. In IPython, ``%load_ext trace_nb`` registers the ``%%trace`` magic.
"""

from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "node": "trace_nb.graph",
    "bundle": "trace_nb.graph",
    "Node": "trace_nb.graph",
    "ParameterNode": "trace_nb.graph",
    "MessageNode": "trace_nb.graph",
    "ExceptionNode": "trace_nb.graph",
    "ExecutionError": "trace_nb.graph",
    "ExternalDependencyError": "trace_nb.graph",
    "Feedback": "trace_nb.graph",
    "subgraph": "trace_nb.graph",
    "graph_data": "trace_nb.graph",
    "Optimizer": "trace_nb.optim",
    "OptoPrime": "trace_nb.optim",
    "OPRO": "trace_nb.optim",
    "Proposal": "trace_nb.optim",
    "LLM": "trace_nb.llm",
    "param": "trace_nb.notebook.tracer",
    "set_default_llm": "trace_nb.llm.default",
    "session": "trace_nb.notebook.session",
    "load_session": "trace_nb.notebook.loading",
    "TraceSession": "trace_nb.notebook.session",
    "train": "trace_nb.training",
    "Module": "trace_nb.modules",
    "model": "trace_nb.modules",
}

__all__ = [*sorted(_LAZY), "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trace_nb' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The public API only (plus the module's own dunders), not this file's helpers.
    return sorted({*__all__, "__version__"} | {k for k in globals() if k in _LAZY})


def load_ipython_extension(ipython: _Any) -> None:
    """Called by ``%load_ext trace_nb``: registers ``%%trace`` and its companions."""
    from .notebook.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: _Any) -> None:
    """Called by ``%unload_ext trace_nb``: removes the magics and ``param``."""
    from .notebook.extension import unload_ipython_extension as unload

    unload(ipython)
