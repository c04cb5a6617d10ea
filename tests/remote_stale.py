"""A workflow whose module cannot be pickled by value (it holds a lock), so workers import it
and use their own copy of its parameter: the remote runner must refuse, not train on it."""

from __future__ import annotations

import threading

from trace_nb import node

LOCK = threading.Lock()
STALE = node(0, name="stale_offset", trainable=True)


def workflow(example: int):
    with LOCK:
        return node(example) + STALE


def feedback(example: int, output: int):
    return 1.0 if output == example + 5 else 0.0


class Unloadable:
    """Pickles on the driver; unpickling it on a worker fails like a missing module."""

    def __reduce__(self):
        return (_not_installed, ())


def _not_installed():
    raise ModuleNotFoundError("No module named 'only_on_the_driver'")


UNLOADABLE = Unloadable()


def needs_missing_module(example: int):
    return node(example) + STALE if UNLOADABLE else None
