"""What may run when proposed code is applied: nothing but the one function's definition.

Beside the function only imports (of installed modules), docstrings and constant
assignments may stand; the function's defaults are constants, its annotations plain type
expressions, and its decorators those the current function already had. Each refusal says
which line breaks which rule and how to write it instead. Used by :mod:`.codecheck`.
"""

from __future__ import annotations

import ast
import importlib.util
import sys

from ..errors import CoercionError
from ..text import short_repr as _show

__all__ = ["FUNCTIONS", "definition_effects", "is_literal", "is_type_expr", "top_level_function"]

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _is_dotted(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def is_type_expr(node: ast.expr | None) -> bool:
    """A type hint that evaluates without calling anything we do not control."""
    if node is None or isinstance(node, ast.Constant) or _is_dotted(node):
        return True
    if isinstance(node, ast.Subscript):
        return is_type_expr(node.value) and is_type_expr(node.slice)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(is_type_expr(e) for e in node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return is_type_expr(node.left) and is_type_expr(node.right)
    return False


def _annotations(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, ast.expr]]:
    args = fn.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    out = [(a.arg, a.annotation) for a in every if a.annotation is not None]
    if fn.returns is not None:
        out.append(("return", fn.returns))
    return out


def definition_effects(
    fn: ast.FunctionDef | ast.AsyncFunctionDef, old: ast.FunctionDef | ast.AsyncFunctionDef | None
) -> None:
    """Refuse defaults, annotations and decorators that would run code at definition time."""
    allowed = {ast.dump(d) for d in (old.decorator_list if old is not None else [])}
    for decorator in fn.decorator_list:
        if ast.dump(decorator) not in allowed:
            raise CoercionError(
                f"the code adds the decorator '@{_unparse(decorator)}' to '{fn.name}'; "
                "remove it (decorators run code when the function is defined)"
            )
    old_defaults = set()
    if old is not None:
        old_defaults = {
            ast.dump(d) for d in [*old.args.defaults, *old.args.kw_defaults] if d is not None
        }
    for default in [*fn.args.defaults, *fn.args.kw_defaults]:
        if default is None or is_literal(default) or isinstance(default, ast.Name):
            continue
        if ast.dump(default) in old_defaults:
            continue
        raise CoercionError(
            f"the default value {_show(_unparse(default), 60)} on line {default.lineno} of "
            f"'{fn.name}' is not a constant; it would run when the function is defined. Use "
            "a constant default (e.g. None) and compute the value inside the function"
        )
    old_annotations = {ast.dump(a) for _, a in _annotations(old)} if old is not None else set()
    for where, annotation in _annotations(fn):
        if not is_type_expr(annotation) and ast.dump(annotation) not in old_annotations:
            raise CoercionError(
                f"the annotation of {where!r} in '{fn.name}' ({_show(_unparse(annotation), 60)})"
                " is not a plain type; it would run when the function is defined. Use a type "
                "name such as 'int' or 'list[str]', or leave it out"
            )


def _unparse(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001 - only used in messages
        return "..."


def _is_constant_assignment(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        if not is_type_expr(node.annotation):
            return False
        targets, value = [node.target], node.value
    else:
        return False
    return all(isinstance(t, ast.Name) for t in targets) and is_literal(value)


def _describe(node: ast.stmt) -> str:
    if isinstance(node, ast.ClassDef):
        return f"a class {node.name!r}"
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return "a function call"
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return "an assignment that is not a constant"
    return f"a top-level {type(node).__name__.lower()!r} statement"


def _check_import(node: ast.Import | ast.ImportFrom) -> None:
    """A top-level import runs when the code is applied: its module must be installed.

    Only the top-level package is looked up (``importlib.util.find_spec`` of a top-level
    name finds the module without running it)."""
    if isinstance(node, ast.ImportFrom):
        if node.level:
            raise CoercionError(
                f"line {node.lineno} has a relative import; the code is not "
                "part of a package, import by the full module name"
            )
        modules = [node.module or ""]
    else:
        modules = [a.name for a in node.names]
    for module in modules:
        top = module.split(".")[0]
        if top == "__future__" or top in sys.builtin_module_names:
            continue
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise CoercionError(
                f"line {node.lineno} imports {module!r}, which is not "
                "installed here; use a module that is, or import inside the "
                "function"
            )


def _bound_names(node: ast.stmt) -> set[str]:
    """Names a top-level import or assignment binds."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else ([node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
    )
    return {t.id for t in targets if isinstance(t, ast.Name)}


def top_level_function(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The one function of ``tree``; everything beside it must be inert."""
    functions = [n for n in tree.body if isinstance(n, FUNCTIONS)]
    for node in tree.body:
        if name in _bound_names(node) and node not in functions:
            raise CoercionError(
                f"line {node.lineno} binds the name '{name}' again, so the function would not "
                "be what the code defines; give that import or constant another name"
            )
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            _check_import(node)
            continue
        if node in functions:
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring or stray constant
        if _is_constant_assignment(node):
            continue
        raise CoercionError(
            f"the code may only define the function '{name}' (plus imports and constant "
            f"assignments), but line {node.lineno} has {_describe(node)}; nothing else may "
            "run when the code is applied"
        )
    if not functions:
        raise CoercionError(f"the code defines no function; expected 'def {name}(...)'")
    if len(functions) > 1:
        listed = ", ".join(f"'{f.name}'" for f in functions[:10])
        raise CoercionError(
            f"the code defines {len(functions)} functions ({listed}); define only "
            f"'{name}' (put helpers inside it)"
        )
    new = functions[0]
    if new.name != name:
        raise CoercionError(
            f"the code defines '{new.name}' but the parameter is the function '{name}'; "
            "keep the name"
        )
    return new
