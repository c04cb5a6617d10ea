"""Loading and unloading the IPython extension: ``%load_ext trace_nb`` / ``%unload_ext trace_nb``."""

from __future__ import annotations

from typing import Any

_MAGICS = {
    "cell": ["trace"],
    "line": ["trace_feedback", "trace_step", "trace_writeback", "trace_log"],
}


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and put ``param`` in the notebook's namespace (unless taken)."""
    from .magics import TraceMagics
    from .tracer import param

    ipython.register_magics(TraceMagics)
    ipython.user_ns.setdefault("param", param)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and the ``param`` that loading added; sessions are kept."""
    from .tracer import param

    manager = ipython.magics_manager
    manager.registry.pop("TraceMagics", None)
    for kind, names in _MAGICS.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    if ipython.user_ns.get("param") is param:
        del ipython.user_ns["param"]
