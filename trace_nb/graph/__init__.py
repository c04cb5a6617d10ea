"""The trace graph: nodes, operators, bundle, backward, subgraphs and plain-data views.

This package imports only the standard library; graphviz is imported by :mod:`.render`
when something is drawn.
"""

from __future__ import annotations

from ..errors import CodeCompileError, ExternalDependencyError
from . import ops  # noqa: F401  (installs the operator methods on Node)
from .bundle import BoundBundle, BundledFunction, bundle
from .compiling import compile_function, function_source
from .data import graph_data
from .errors import ExecutionError
from .node import ExceptionNode, Feedback, MessageNode, Node, ParameterNode, node
from .ops import Op
from .traverse import on_paths, outputs_of, subgraph, subgraphs, topo_ancestors

__all__ = [
    "BoundBundle",
    "BundledFunction",
    "CodeCompileError",
    "ExceptionNode",
    "ExecutionError",
    "ExternalDependencyError",
    "Feedback",
    "MessageNode",
    "Node",
    "Op",
    "ParameterNode",
    "bundle",
    "compile_function",
    "function_source",
    "graph_data",
    "node",
    "on_paths",
    "outputs_of",
    "subgraph",
    "subgraphs",
    "topo_ancestors",
]
