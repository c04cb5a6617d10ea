"""trace_nb.bench: how well does it optimize? The Trace paper's experiments as a benchmark.

``python -m trace_nb.bench --help`` or, in Python, :func:`run` (returns a DataFrame)::

    import trace_nb.bench as bench
    frame = bench.run(tasks=["numerical", "code_debug"], methods=["optoprime", "opro"],
                      seeds=2, steps=4, out="bench-out")   # offline: scripted oracles

Without an endpoint (no ``base_url``, no ``OPENAI_BASE_URL``/``OPENAI_API_KEY``) it runs
offline against scripted oracles, which checks the pipeline, not a model. This package is
not imported by ``import trace_nb``.
"""

from __future__ import annotations

from .methods import METHODS
from .runner import COLUMNS, DEFAULT_METHODS, DEFAULT_TASKS, run, run_one
from .tasks import TASKS, make_task

__all__ = [
    "COLUMNS",
    "DEFAULT_METHODS",
    "DEFAULT_TASKS",
    "METHODS",
    "TASKS",
    "make_task",
    "run",
    "run_one",
]
