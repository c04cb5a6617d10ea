"""The benchmark's tasks by name: ``make_task(name, seed)`` builds one seeded instance."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from . import battleship, bbh, code_debug, format, numerical
from .base import Score, TaskInstance

TASKS: dict[str, Callable[[int], TaskInstance]] = {
    "numerical": numerical.make,
    "bbh_word_sorting": partial(bbh.make, "word_sorting"),
    "bbh_boolean_expressions": partial(bbh.make, "boolean_expressions"),
    "bbh_multistep_arithmetic": partial(bbh.make, "multistep_arithmetic"),
    "bbh_object_counting": partial(bbh.make, "object_counting"),
    "bbh_dyck_languages": partial(bbh.make, "dyck_languages"),
    "code_debug": code_debug.make,
    "format_constraints": format.make,
    "battleship": battleship.make,
}


def make_task(name: str, seed: int) -> TaskInstance:
    """A fresh instance of task ``name`` for ``seed`` (same seed, same problem)."""
    try:
        factory = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; the tasks are: {', '.join(TASKS)}") from None
    return factory(seed)


__all__ = ["TASKS", "Score", "TaskInstance", "make_task"]
