"""The ceiling of a task with a given student model: how the oracle's own values score.

Where a task's workflow asks a language model (the "student": ``format_constraints`` and
the BBH tasks), a run can succeed only if the student, given the optimized prompt, gets
every held-out item right. :func:`ceiling` first runs the task offline, where its scripted
oracle finds known good values (an instruction per requirement, a marked answer and the
code that reads it), then scores those values on the held-out set with ``llm`` as the
student, exactly as a run's evaluation does. A ceiling below success says that better
proposals alone cannot solve that (task, seed) with this student; an optimizer must find
values better than the oracle's.

``python -m trace_nb.bench.ci --stage 1.5b --ceiling`` measures it for a stage's tasks and
seeds (``ceiling.json``).
"""

from __future__ import annotations

from typing import Any

from .runner import run_one
from .tasks import make_task

#: Offline steps the oracle gets to reach its values (it needs at most 3 on every task).
ORACLE_STEPS = 8


def ceiling(task_name: str, seed: int, llm: Any) -> dict[str, Any]:
    """The held-out score of ``task_name``/``seed`` with the oracle's values and ``llm``.

    Returns ``{"task", "seed", "score", "success", "detail", "values"}``; ``score`` is
    None (with ``status`` saying why) when the oracle did not solve the task offline, as
    then its values are no ceiling.
    """
    oracle = run_one(task_name, "optoprime", seed, ORACLE_STEPS, offline=True)
    out: dict[str, Any] = {"task": task_name, "seed": seed, "values": oracle["final_values"]}
    if oracle["status"] != "ok" or not oracle["success"]:
        why = oracle["status"] if oracle["status"] != "ok" else "no success"
        return {**out, "score": None, "success": None, "status": f"oracle offline: {why}"}
    task = make_task(task_name, seed)
    for p in task.parameters():
        p.set_value(oracle["final_values"][p.name])
    score = task.evaluate(llm)
    return {
        **out,
        "score": score.score,
        "success": score.success,
        "detail": score.detail,
        "status": "ok",
    }


__all__ = ["ORACLE_STEPS", "ceiling"]
