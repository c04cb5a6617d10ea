"""The last run of a traced cell: its output (or exception) and the feedback it got
(:class:`LastRun`, a part of :class:`~.session.TraceSession`)."""

from __future__ import annotations

from typing import Any

from ..graph import ExceptionNode, Node, ParameterNode
from ..graph.data import find, graph_data

__all__ = ["LastRun"]


class LastRun:
    """What the last run of the cell gave and what was said about it.

    Attributes
    ----------
    cell_values : dict
        The values the cell itself assigned to its parameters (its source's values).
    output_node : Node or None
        The output, when it depends on a parameter.
    output_value
        The output's value.
    exception : ExceptionNode or None
        The error the run raised, if it did (then it is the output).
    last_feedback : (text, score) or None
        The feedback on the output.
    feedback_error
        Why the ``--feedback`` function gave none (a FeedbackError), or None.
    node_feedback : dict
        Node name -> (node, text, score): feedback on intermediate values.
    """

    def __init__(self) -> None:
        self.cell_values: dict[str, Any] = {}
        self.output_node: Node | None = None
        self.output_value: Any = None
        self.exception: ExceptionNode | None = None
        self.last_feedback: tuple[str, float | None] | None = None
        self.feedback_error: Any = None
        self.node_feedback: dict[str, tuple[Node, str, float | None]] = {}

    def record(self, value: Any, exception: ExceptionNode | None, cell_values: dict) -> None:
        """A new run: its output (a node or a plain value) or exception; no feedback yet."""
        self.cell_values = dict(cell_values)
        self.output_node = value if isinstance(value, Node) else None
        self.output_value = value.peek() if isinstance(value, Node) else value
        self.exception = exception
        self.last_feedback, self.feedback_error, self.node_feedback = None, None, {}

    @property
    def target(self) -> Node | None:
        """The node feedback on the output goes to: the exception, else the output node."""
        return self.exception if self.exception is not None else self.output_node

    @property
    def output(self) -> Any:
        """The output value (the exception, if the run raised)."""
        return self.exception.peek() if self.exception is not None else self.output_value

    def give(self, text: str | None, score: float | None, params: list[ParameterNode]) -> None:
        """Send feedback on the output back to ``params`` (node feedback of this run is
        sent again beside it). ValueError when there is nothing it could reach."""
        target = self.target
        if target is None:
            raise ValueError(
                "the last output does not depend on any parameter, so feedback cannot reach "
                "one: make sure the cell's last expression uses a --param value"
            )
        if text is None and score is None:
            raise ValueError("give feedback text, a score, or both")
        for p in params:
            p.zero_feedback()
        target.zero_feedback()
        target.backward(text or "", score)
        for node, node_text, node_score in self.node_feedback.values():
            node.backward(node_text, node_score)  # node feedback of this run stays
        self.last_feedback = (text or "", score)

    def give_on(
        self, node_name: str, text: str, score: float | None, params: list[ParameterNode]
    ) -> bool:
        """Send feedback on the node named ``node_name`` (replacing what it had); False
        when that node is the output itself (then use :meth:`give`). KeyError listing
        the nodes when there is none of that name."""
        root = self.target
        node = find([root], node_name) if root is not None else None
        if node is None:
            names = [n["name"] for n in self.graph(max_nodes=None)["nodes"]]
            raise KeyError(
                f"no node named {node_name!r} in the last run's trace "
                f"(nodes: {', '.join(names) or 'none'})"
            )
        if not (text or "").strip() and score is None:
            raise ValueError("give feedback text, a score, or both")
        if node is root:
            return False
        if node_name in self.node_feedback:  # replace: clear what it sent, send the rest again
            for p in params:
                p.zero_feedback()
            if root is not None and self.last_feedback is not None:
                root.zero_feedback()
                root.backward(*self.last_feedback)
            for other, (n, t, sc) in self.node_feedback.items():
                if other != node_name:
                    n.backward(t, sc)
        node.backward(text or "", score)
        self.node_feedback[node_name] = (node, text or "", score)
        return True

    def node_notes(self) -> str:
        """The node feedback as one text (``node: text; ...``) for the history table."""
        return "; ".join(f"{k}: {v[1]}" for k, v in self.node_feedback.items())

    def graph(self, max_nodes: int | None = 300) -> dict:
        """The run's trace as plain data (see :func:`trace_nb.graph.graph_data`)."""
        target = self.target
        if target is None:
            return {"nodes": [], "edges": [], "hidden": 0}
        return graph_data([target], max_nodes=max_nodes)

    def default_feedback(self) -> str | None:
        """Feedback the run implies by itself: the exception, when there was one."""
        if self.exception is None:
            return None
        return "The code raised an exception:\n" + self.exception.describe()
