"""Trace nodes: wrapped values that remember how they were computed.

Semantics worth knowing (they differ from the reference Trace on purpose):

* Operators on nodes (``+``, ``<``, ``[]``, method calls, ...) are traced: each returns a
  :class:`MessageNode` whose parents are the node operands. See :mod:`.ops`.
* ``==`` and ``!=`` are traced too and return a node holding a bool. ``bool(node)`` is the
  truth value of ``node.data`` (Python needs a real bool, so it is not traced), which makes
  ``if a == b:`` behave like plain Python. ``hash(node)`` is identity-based, so nodes can be
  dict keys and set members no matter what they hold.
* ``len(node)`` returns a plain int (Python insists); ``node.len()`` is the traced form.
* A node keeps references to its parents only, never to its children, and there is no
  global registry holding nodes: dropping the output of a computation frees its graph.
* ``data`` is never a node: containers of nodes given to :func:`node`, to an operator or
  to a bundled function are unwrapped to their values, and the nodes become parents.
* Copies (``copy.copy``, ``copy.deepcopy``) make fresh nodes: same class, label, value
  (deep-copied by ``deepcopy``), description and constraint; no parents, no feedback. ``clone()`` is the traced copy (its parent is the original); ``detach()``
  gives a plain root node holding the same value.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..text import short_repr
from . import names
from .frames import (
    _note_created,
    _note_use,
    _unpickled,
)

_BACKWARD_OPTIONS = ("feedback", "score", "visualize", "retain_graph", "value_limit", "rankdir")
# The reference Trace's options of backward that trace_nb does not take, and what to do.
_REFERENCE_BACKWARD = {
    "propagator": "trace_nb has one propagation (the minimal subgraph from the output to "
    "each parameter); leave propagator out",
    "print_limit": "use value_limit= (characters of each value in the drawing)",
    "reverse_plot": "use rankdir='BT' to draw the output at the top",
    "simple_visualization": "trace_nb draws one style; leave it out",
}


def _refuse_backward_options(options: dict[str, Any]) -> None:
    """Unknown keywords of :meth:`Node.backward`: a TypeError that says what to write."""
    import difflib

    key = next(iter(options))
    hint = _REFERENCE_BACKWARD.get(key)
    if hint is None:
        close = difflib.get_close_matches(key, _BACKWARD_OPTIONS, n=1)
        hint = (f"did you mean {close[0]}=? " if close else "") + (
            "backward takes " + ", ".join(_BACKWARD_OPTIONS)
        )
    raise TypeError(f"backward() got an unexpected keyword argument {key!r}: {hint}")


@dataclass(frozen=True, eq=False)
class Feedback:
    """Feedback given on one output: free text and/or a score."""

    text: str
    score: float | None
    output: Node

    def describe(self) -> str:
        """Text shown to the optimizer: the text plus the score when there is one."""
        if self.score is None:
            return self.text
        return f"{self.text} (score: {self.score:g})" if self.text else f"score: {self.score:g}"


class Node:
    """A traced value. ``data`` is the wrapped value, ``parents`` the nodes it came from."""

    # ``_base`` is the node's label (see :mod:`.names`): the name it was given, or None.
    __slots__ = ("_data", "_parents", "_base", "description", "_feedback", "__weakref__")
    trainable = False
    kind = "value"

    def __init__(self, data: Any, name: str | None = None, description: str | None = None):
        self._data = data
        self._parents: tuple[Node, ...] = ()
        self._feedback: list[Feedback] | None = None
        self.description: str | None = description
        self._base: str | None = names.sanitize(name) if name is not None else None
        _note_created(self)

    # -- identity -------------------------------------------------------------------
    @property
    def data(self) -> Any:
        """The wrapped value. Reading it inside a bundled function records a dependency."""
        _note_use(self)
        return self._data

    def peek(self) -> Any:
        """The wrapped value, read without recording a use.

        ``data`` read inside a bundled function is a dependency of that call (and an
        undeclared one raises ``ExternalDependencyError``). Code that only looks at a value
        (to show it, save it, compare it, copy it) uses ``peek()``, so looking never changes
        what the trace records. It is a method, not a second property beside ``data``, so
        that the name says which of the two reads is the quiet one.

        Returns
        -------
        Any
            The value itself (not a copy): mutate it only if you mean to change the node.
        """
        return self._data

    @property
    def parents(self) -> tuple[Node, ...]:
        return self._parents

    @property
    def name(self) -> str:
        """The node's label, or a default from its kind (``float``, ``add``); a valid identifier.

        Not unique: the names the LLM sees come from a per-problem
        :class:`~.names.NameTable`, which keeps labels and numbers the rest.
        """
        return self._base or self._default_base()

    @property
    def label(self) -> str | None:
        """The name given to this node, or None."""
        return self._base

    def prompt_name(self, *outputs: Node, parameters: Any = ()) -> str:
        """The name the LLM sees for this node (``y.name`` is ``my_fun``, this ``my_fun_1``).

        Names are made per problem (see :mod:`.names`), so this is the name in a prompt, or
        the DAG view, built from the graph behind ``outputs`` (default: this node's own
        graph), with ``parameters`` named first as an optimizer names its parameters (pass
        ``optimizer.parameters`` for that optimizer's prompt). A labelled node keeps its
        label, so ``node(v, name="y")`` is ``y`` everywhere.
        """
        from .traverse import topo_ancestors

        graph = topo_ancestors(list(outputs) or [self])
        if not any(n is self for n in graph):
            raise ValueError(f"{self.name!r} is not in the graph behind the outputs given")
        return names.NameTable(graph, first=list(parameters)).name(self)

    def _default_base(self) -> str:
        return names.sanitize(type(self._data).__name__.lower())

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return bool(self._data)

    def __len__(self) -> int:
        return len(self._data)

    # Printing a node (even inside a bundled function) shows its value; it is not a use.
    def __str__(self) -> str:
        return str(self._data)

    def __format__(self, spec: str) -> str:
        return format(self._data, spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, data={short_repr(self._data, 80)})"

    # -- feedback -------------------------------------------------------------------
    @property
    def feedback(self) -> list[Feedback]:
        """Feedback records this node received through :meth:`backward`."""
        return list(self._feedback or ())

    def _receive(self, record: Feedback) -> None:
        if self._feedback is None:
            self._feedback = [record]
        else:
            self._feedback.append(record)

    def backward(
        self,
        feedback: str = "",
        score: float | None = None,
        *,
        visualize: bool = False,
        retain_graph: bool = True,
        value_limit: int = 40,
        rankdir: str = "TB",
        **unknown: Any,
    ) -> Any:
        """Send ``feedback`` on this output to every parameter it depends on.

        Runs in time linear in the size of the graph. Each trainable ancestor (and this
        node) receives a :class:`Feedback` record; the optimizer later recovers the
        minimal subgraph connecting the parameter to this output. Calling it on several
        outputs with different feedback (a minibatch) accumulates all of it, and calling it
        twice on one output is allowed (``retain_graph`` is accepted for code written for
        the reference Trace and changes nothing).

        Returns the :class:`Feedback` record, or with ``visualize=True`` a
        ``graphviz.Digraph`` of the graph behind this node, drawn by
        :func:`.render.to_dot` with ``value_limit`` (characters of each value shown) and
        ``rankdir``. Any other keyword raises TypeError, ``propagator=`` and the reference
        Trace's drawing options included (the message says what to use instead).
        """
        from .traverse import topo_ancestors

        if unknown:
            _refuse_backward_options(unknown)
        if not isinstance(feedback, str):
            raise TypeError(
                f"feedback must be text, got {type(feedback).__name__}; pass a number as score="
            )
        if score is not None:
            score = float(score)
        record = Feedback(feedback, score, self)
        self._receive(record)
        for n in topo_ancestors([self]):
            if n.trainable and n is not self:
                n._receive(record)
        if visualize:
            from .data import graph_data
            from .render import to_dot

            return to_dot(graph_data([self]), value_limit=value_limit, rankdir=rankdir)
        return record

    def zero_feedback(self) -> None:
        """Forget the feedback this node received."""
        self._feedback = None

    # -- graph views ----------------------------------------------------------------
    def to_data(self, **kwargs: Any) -> dict:
        """The graph that produced this node as plain data (see :func:`.data.graph_data`)."""
        from .data import graph_data

        return graph_data([self], **kwargs)

    def render(self, **kwargs: Any):
        """A drawable view of this node's graph (graphviz; shows as SVG in notebooks)."""
        from .render import GraphView

        return GraphView([self], **kwargs)

    def detach(self) -> Node:
        """A new, non-trainable root node holding the same value object, with no history."""
        return Node(self._data, description=self.description)

    # -- copies: fresh nodes (see the module docstring) ---------------------------------
    def _fresh(self, value: Any) -> Node:
        # An operator's result without its operator is a plain value.
        cls: type[Node] = Node if isinstance(self, MessageNode) else type(self)
        new = cls.__new__(cls)
        Node.__init__(new, value, description=self.description)
        if isinstance(self, ParameterNode) and isinstance(new, ParameterNode):
            new.constraint, new.is_code = self.constraint, self.is_code
        new._base = self._base if not isinstance(self, MessageNode) else None
        if isinstance(new, ParameterNode):
            new._base = new._base or "param"
        return new

    def __copy__(self) -> Node:
        return self._fresh(self._data)

    def __deepcopy__(self, memo: dict) -> Node:
        new = self._fresh(None)
        memo[id(self)] = new
        new._data = copy.deepcopy(self._data, memo)
        return new

    def __getstate__(self) -> dict:
        # Pickling keeps the value, the label and the history (parents, operator) but not
        # feedback. Labels need not be unique: names are made unique per problem.
        state = {}
        for klass in type(self).__mro__:
            for slot in getattr(klass, "__slots__", ()):
                if slot not in ("__weakref__", "_feedback", "loader") and hasattr(self, slot):
                    state[slot] = getattr(self, slot)
        return state

    def __setstate__(self, state: dict) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self._feedback = None
        sink = _unpickled.get()
        if sink is not None:  # see collect_unpickled()
            sink.append(self)


class ParameterNode(Node):
    """A trainable value: what the optimizer may change.

    ``constraint`` is free text shown to the LLM (e.g. "must be negative").
    ``is_code`` marks a parameter whose value is a function's source code.
    """

    # ``loader``: for a code parameter, a function that checks that a source loads (compiles
    # and defines the function) without changing anything; set by the bundle that owns it.
    __slots__ = ("constraint", "is_code", "loader")
    trainable = True
    kind = "parameter"

    def __init__(
        self,
        data: Any,
        name: str | None = None,
        description: str | None = None,
        constraint: str | None = None,
        is_code: bool = False,
    ):
        super().__init__(data, name=name, description=description)
        self.constraint: str | None = constraint
        self.is_code: bool = is_code
        self.loader: Any = None
        if self._base is None:
            self._base = "param"

    def set_value(self, value: Any) -> None:
        """Assign the parameter's value (a node's value is unwrapped first).

        This is how code outside the graph assigns a parameter: the session applying an
        accepted proposal, a checkpoint or a saved file being loaded, the user by hand.
        Nothing is checked here: proposals are validated before they are applied, and a
        value set by hand is taken as the user's decision. Nothing is recorded either.

        Parameters
        ----------
        value : Any
            The new value, or a node whose value is taken.
        """
        self._data = value._data if isinstance(value, Node) else value

    @contextlib.contextmanager
    def trial(self, value: Any) -> Iterator[ParameterNode]:
        """Hold ``value`` for the duration of a ``with`` block, then put the old one back.

        For "what would this value do": the old value is restored when the block ends,
        also when it ends with an exception (which then propagates unchanged). Trials nest;
        each restores what it found.

        Parameters
        ----------
        value : Any
            The value to hold meanwhile (a node's value is unwrapped, as in
            :meth:`set_value`).

        Yields
        ------
        ParameterNode
            This parameter.

        Examples
        --------
        >>> p = ParameterNode(1.0, name="w")
        >>> with p.trial(2.0):
        ...     p.peek()
        2.0
        >>> p.peek()
        1.0
        """
        old = self._data
        self.set_value(value)
        try:
            yield self
        finally:
            self._data = old


class MessageNode(Node):
    """The output of an operator: ``op`` applied to ``args`` (nodes or plain constants)."""

    __slots__ = ("op", "args", "kwargs", "info")
    kind = "message"

    def __init__(
        self,
        data: Any,
        op: Any,
        args: tuple,
        parents: tuple[Node, ...],
        kwargs: dict | None = None,
        info: dict | None = None,
    ):
        self._data = data
        self._parents = parents
        self._feedback = None
        self._base = None
        self.description = None
        self.op = op
        self.args = args
        self.kwargs = kwargs
        self.info: dict | None = info
        _note_created(self)

    def _default_base(self) -> str:
        return self.op.base_name


class ExceptionNode(MessageNode):
    """An operator call that raised: ``data`` is the exception, ``info`` has the details.

    ``info`` keys: ``type``, ``message``, ``line`` (the failing source line, when known),
    ``lineno`` and ``traceback`` (text).
    """

    __slots__ = ()
    kind = "exception"

    def _default_base(self) -> str:
        return "exception_" + self.op.base_name

    def describe(self) -> str:
        """One paragraph for feedback: error type, message and the failing line."""
        info = self.info or {}
        text = f"{info.get('type', type(self._data).__name__)}: {info.get('message', self._data)}"
        # An operator has no source line of its own; the notebook notes the cell's line.
        line, lineno = info.get("line"), info.get("lineno")
        if not line:
            line, lineno = info.get("cell_line"), info.get("cell_lineno")
        if line:
            text += f"\n  at line {lineno if lineno is not None else '?'}: {line.strip()}"
        return text


def node(
    value: Any,
    name: str | None = None,
    trainable: bool = False,
    description: str | None = None,
    constraint: str | None = None,
) -> Node:
    """Wrap ``value`` as a :class:`Node`, or a :class:`ParameterNode` when ``trainable``.

    A node passed in is returned unchanged unless ``trainable`` asks for a parameter, in
    which case a new parameter with the node's value is made. A list, tuple, dict or set
    holding nodes becomes an operator node (``make_list``...) whose value holds their
    values and whose parents are those nodes (a parameter just takes the values).
    """
    if isinstance(value, Node):
        if not trainable or value.trainable:
            return value
        value = value._data
    found: dict[int, Node] = {}
    if type(value) in (list, tuple, dict, set, frozenset):
        from .ops import unwrap_deep

        value = unwrap_deep(value, found)
    if trainable:
        return ParameterNode(value, name=name, description=description, constraint=constraint)
    if constraint is not None:
        raise ValueError("constraint= only applies to trainable nodes; pass trainable=True")
    if found:
        from .ops import container_op

        out = MessageNode(
            value, container_op(type(value)), tuple(found.values()), tuple(found.values())
        )
        out.description = description
        if name is not None:
            out._base = names.sanitize(name)
        return out
    return Node(value, name=name, description=description)
