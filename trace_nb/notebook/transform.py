"""Rewrite a ``%%trace`` cell so that running it records a trace.

The rewrite is small and keeps every line number, so tracebacks point at the user's lines:

* the first ``x = <expr>`` for a ``--param x`` becomes ``x = __trace_nb__.param("x", <expr>)``
  (the initial value); a later ``x = x + "..."`` is left alone, so it is a traced operation
  on the parameter, not a second initial value;
* ``x = param(<value>)`` gets ``name="x"`` when no name is given;
* every call ``f(a, b=c)`` becomes ``__trace_nb__.call(f, a, b=c)``, which records an operator
  node when an argument is traced and otherwise just calls ``f``;
* f-strings with traced values become ``__trace_nb__.fstring(...)``.

Function and class bodies are left alone: they run on plain values, as operators.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TypeGuard

RUNTIME = "__trace_nb__"


@dataclass
class CellInfo:
    """What the cell defines at top level, for checking the magic's arguments."""

    assigned: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)


def scan(tree: ast.Module) -> CellInfo:
    info = CellInfo()
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            info.functions.add(stmt.name)
            continue
        if isinstance(stmt, ast.ClassDef):
            continue
        for node in ast.walk(stmt):  # also assignments inside top-level for/if/with
            if isinstance(node, ast.Assign):
                for target in node.targets:  # ``a = b = ...`` and ``a, b = ...`` too
                    info.assigned.update(bound_names(target))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(
                node.target, ast.Name
            ):
                info.assigned.add(node.target.id)
    return info


def bound_names(target: ast.expr) -> list[str]:
    """The variables an assignment target binds: ``x``, ``x, (y, *z)``, ``[x, y]``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return bound_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in bound_names(elt)]
    return []  # attributes and subscripts bind no variable


def _rt(attr: str) -> ast.Attribute:
    return ast.Attribute(value=ast.Name(id=RUNTIME, ctx=ast.Load()), attr=attr, ctx=ast.Load())


class _Rewriter(ast.NodeTransformer):
    def __init__(self, params: set[str], param_calls: bool = True):
        self.params = params
        self.param_calls = param_calls  # False when ``param`` is the user's own function
        self.initialized: set[str] = set()  # params whose initial assignment was rewritten

    # Bodies of definitions run on plain values: do not descend.
    def visit_FunctionDef(  # noqa: N802
        self, node: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> ast.FunctionDef | ast.AsyncFunctionDef:
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_ClassDef(self, node):  # noqa: N802
        return node

    def visit_Lambda(self, node):  # noqa: N802
        return node

    def visit_Assign(self, node):  # noqa: N802
        node.value = self.visit(node.value)
        target = node.targets[0] if len(node.targets) == 1 else None
        if isinstance(target, ast.Name):
            if self.param_calls and _is_param_call(node.value):
                # ``x = param(3.0)`` is named after its variable.
                if not any(k.arg == "name" for k in node.value.keywords):
                    node.value.keywords.append(
                        ast.keyword(arg="name", value=ast.Constant(target.id))
                    )
            elif target.id in self.params and target.id not in self.initialized:
                self.initialized.add(target.id)
                node.value = self._initial(target.id, node.value)
            return node
        # ``a, b = ...`` or ``a = b = ...``: the names are bound first, then each parameter
        # among them becomes ``a = __trace_nb__.param("a", a)`` (on the same line).
        names = [n for t in node.targets for n in bound_names(t)]
        fresh = [n for n in dict.fromkeys(names) if n in self.params and n not in self.initialized]
        self.initialized.update(fresh)
        after = [
            ast.copy_location(
                ast.Assign(
                    targets=[ast.Name(id=n, ctx=ast.Store())],
                    value=self._initial(n, ast.Name(id=n, ctx=ast.Load())),
                ),
                node,
            )
            for n in fresh
        ]
        return [node, *after] if after else node

    def visit_AnnAssign(self, node):  # noqa: N802
        if node.value is not None:
            value = node.value = self.visit(node.value)
            name = node.target.id if isinstance(node.target, ast.Name) else None
            if name in self.params and name not in self.initialized:
                self.initialized.add(name)
                node.value = self._initial(name, value)
        return node

    def _initial(self, name: str, value: ast.expr) -> ast.expr:
        """``__trace_nb__.param(name, value)``: the parameter's initial value."""
        return ast.copy_location(
            ast.Call(func=_rt("param"), args=[ast.Constant(name), value], keywords=[]), value
        )

    def visit_Call(self, node):  # noqa: N802
        self.generic_visit(node)
        return ast.copy_location(
            ast.Call(func=_rt("call"), args=[node.func, *node.args], keywords=node.keywords), node
        )

    def visit_JoinedStr(self, node):  # noqa: N802
        pieces: list[ast.expr] = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                spec: ast.expr = ast.Constant("")
                if part.format_spec is not None:  # a JoinedStr: ``{x:>{width}}`` nests one
                    # Evaluated as an f-string of its own when the cell runs, so a dynamic
                    # spec (``{x!r:<{w}}``) applies to the value's text as in plain Python.
                    spec = part.format_spec
                pieces.append(
                    ast.Tuple(
                        elts=[self.visit(part.value), ast.Constant(part.conversion), spec],
                        ctx=ast.Load(),
                    )
                )
            else:
                pieces.append(part)
        return ast.copy_location(ast.Call(func=_rt("fstring"), args=pieces, keywords=[]), node)


def _is_param_call(value: ast.expr) -> TypeGuard[ast.Call]:
    # After visit_Call the user's ``param(...)`` reads ``__trace_nb__.call(param, ...)``.
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "call"
        and len(value.args) > 0
        and isinstance(value.args[0], ast.Name)
        and value.args[0].id == "param"
    )


def rewrite(
    tree: ast.Module, params: set[str], param_calls: bool = True
) -> tuple[ast.Module, ast.Expression | None]:
    """Rewrite ``tree`` in place; split off the last expression (the cell's output), as
    an :class:`ast.Expression` to compile in ``"eval"`` mode.

    ``param_calls=False`` leaves calls of a function named ``param`` alone: the notebook's
    ``param`` is then the user's own, not trace_nb's.
    """
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
    rw = _Rewriter(params, param_calls)
    tree = rw.visit(tree)
    ast.fix_missing_locations(tree)
    if not isinstance(last, ast.Expr):
        return tree, None
    return tree, ast.fix_missing_locations(ast.Expression(rw.visit(last.value)))
