"""What a bundled call depended on beyond its arguments.

After a bundled function ran, :func:`classify` looks at the nodes it read (``.data``) and
the nodes in its result, and walks their history back to the call's inputs. Along the way:

* the call's inputs end the walk;
* nodes made during the call and operator results are internal (walked through);
* trainable nodes are *hidden dependencies*: always recorded, so that a parameter used by
  a nested call (a trainable method's code, a parameter handed to an inner bundle) still
  receives feedback;
* any other node that existed before the call is an *external dependency*.
"""

from __future__ import annotations

from .frames import CallFrame
from .node import Node


def classify(
    frame: CallFrame,
    inputs: dict[int, Node],
    result_nodes: dict[int, Node],
) -> tuple[list[Node], list[Node]]:
    """``(hidden, external)`` dependencies of one call, each in order of discovery."""
    hidden: list[Node] = []
    external: list[Node] = []
    seen: set[int] = set(inputs)
    stack = [n for n in (*frame.used.values(), *result_nodes.values())]
    created = frame.created
    while stack:
        n = stack.pop()
        key = id(n)
        if key in seen:
            continue
        seen.add(key)
        if n.trainable and key not in created:
            hidden.append(n)
        elif n._parents:
            stack.extend(n._parents)
        elif key not in created and n.kind == "value":
            external.append(n)
    return hidden, external
