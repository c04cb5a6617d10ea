"""Every LLM call of a benchmark's runs, one JSON line each, for reading what went wrong.

A run's score says *that* a method failed; the transcript says *why*: which prompt the
optimizer saw, what the model answered, what the student model wrote. ``bench.run(...,
transcript=True)`` (``--transcript`` on the command line, always on in ``bench.ci``'s
stages) appends to ``DIR/calls.jsonl``::

    {"task": "format_constraints", "method": "optoprime", "seed": 0, "step": 1,
     "invocation": "2026-12-07T10:31:02.512345+00:00", "role": "optimizer",
     "temperature": 0.0, "prompt_tokens": 812, "completion_tokens": 95, "cached": false,
     "error": null, "latency_s": 41.2, "messages": [...], "reply": "..."}

``step`` is 0 for the first evaluation and *s* for everything step *s* did (its training
run, the optimizer's calls, the evaluation after it). ``role`` is ``"student"`` for the
task's own model calls and ``"optimizer"`` for the rest. ``invocation`` is when the
``bench.run`` that made the call started: a resumed invocation appends, and a run it runs
again (one that failed or stopped) has its earlier calls in the file too, under the
earlier invocation. Message texts are scrubbed of API keys like every tracker's. The
reference method runs in its own process with its own client, so its calls are not in
the file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..tracking.events import LLMCall, add_call_observer, remove_call_observer
from .tasks.base import STUDENT_SYSTEM

FILE = "calls.jsonl"


class Transcript:
    """Appends the calls of the clients it watches to ``folder/calls.jsonl`` (thread-safe)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / FILE
        self.invocation = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        self._lock = threading.Lock()

    @contextmanager
    def watch(self, client: Any, label: dict[str, Any], step: Callable[[], int]) -> Iterator[None]:
        """While inside, write every call ``client`` makes (by identity: each run has its
        own client), tagged with ``label`` and the run's current ``step()``."""

        def observe(call: LLMCall) -> None:
            if call.client is not client or call.bodies is None:
                return
            messages, reply = call.bodies
            system = messages[0]["content"] if messages else ""
            line = {
                **label,
                "step": step(),
                "invocation": self.invocation,
                "role": "student" if system == STUDENT_SYSTEM else "optimizer",
                "temperature": call.temperature,
                "prompt_tokens": call.prompt_tokens,
                "completion_tokens": call.completion_tokens,
                "cached": call.cached,
                "error": call.error,
                "latency_s": round(call.latency_s, 3),
                "messages": messages,
                "reply": reply,
            }
            text = json.dumps(line, ensure_ascii=False) + "\n"
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(text)

        add_call_observer(observe, bodies=True)
        try:
            yield
        finally:
            remove_call_observer(observe)


def read(folder: str | Path) -> list[dict[str, Any]]:
    """The lines of ``folder/calls.jsonl`` (empty when there is none)."""
    path = Path(folder) / FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
