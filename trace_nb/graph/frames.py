"""What running code is recording: the nodes a bundled call reads and makes (its frames),
and the nodes a remote worker's payload brings (unpickled ones).

Context variables, not thread-locals: concurrent awaits of async bundles each run in their
own task context, so their frames never mix.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .node import Node

__all__ = ["CallFrame", "collect_unpickled", "pop_frame", "push_frame", "stop_collecting"]


class CallFrame:
    """What one running bundled call saw: nodes whose values it read, nodes it created."""

    __slots__ = ("used", "created")

    def __init__(self) -> None:
        self.used: dict[int, Node] = {}
        self.created: set[int] = set()


# A context variable, not a thread-local: concurrent awaits of async bundles each run in
# their own task context, so their frames never mix.
_frames: contextvars.ContextVar[tuple[CallFrame, ...]] = contextvars.ContextVar(
    "trace_nb_frames", default=()
)


def _note_use(node: Node) -> None:
    """Record that ``node``'s raw value was read (inside a bundled call, see :mod:`.bundle`)."""
    frames = _frames.get()
    if frames:
        frames[-1].used[id(node)] = node


def push_frame() -> tuple[CallFrame, contextvars.Token]:
    """Start recording for one bundled call; pass the token to :func:`pop_frame`."""
    frame = CallFrame()
    return frame, _frames.set((*_frames.get(), frame))


def pop_frame(frame: CallFrame, token: contextvars.Token) -> None:
    """Stop recording; nodes made inside count as made inside the enclosing call too."""
    _frames.reset(token)
    outer = _frames.get()
    if outer and frame.created:
        outer[-1].created |= frame.created


# Nodes unpickled in this context (a remote worker loading its payload), kept by reference.
_unpickled: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "trace_nb_unpickled", default=None
)


def collect_unpickled() -> tuple[list, contextvars.Token]:
    """Start collecting the nodes unpickled in this context; reset with the token."""
    sink: list = []
    return sink, _unpickled.set(sink)


def stop_collecting(token: contextvars.Token) -> None:
    _unpickled.reset(token)


def _note_created(node: Node) -> None:
    frames = _frames.get()
    if frames:
        frames[-1].created.add(id(node))
