"""Checking source code for a code parameter, without running it.

Used for an LLM's suggestion (:func:`validate_code`, through :mod:`.coerce`) and for code
read back from a file (:func:`validate_source`): both pass the same rules.

* The code must parse *and compile* (``compile()`` finds what the parser lets through:
  ``def f(x, x)``, an unbound ``nonlocal``, ``from __future__ import braces``...).
* Nothing but constants may run when the definition is applied: default values are
  literals (or bare names, or the current function's own defaults), annotations are type
  expressions (names, dotted names, subscripts, ``|``), decorators are those the current
  function already had, and beside the function only imports, docstrings and constant
  assignments are allowed.
* It defines exactly the one function, with the same name, ``def``/``async def`` kind,
  and a signature old callers can still call.
* The work is bounded: overlong or deeply nested code is refused with a reason, and any
  failure of the check itself (``MemoryError``, ``RecursionError``...) makes the code
  invalid instead of escaping.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import textwrap
import warnings
from typing import Any

from ..text import short_repr as _show
from .codesig import signature_problems, signature_text
from .coerce import CoercionError
from .jsonish import find_fences

__all__ = ["MAX_CODE_CHARS", "MAX_CODE_DEPTH", "validate_code", "validate_source"]

#: Longest code accepted, in characters (a trainable function is a screenful, not a book).
MAX_CODE_CHARS = 50_000
#: Deepest expression/statement nesting accepted (the compiler itself fails near 1,000).
MAX_CODE_DEPTH = 100
_MAX_NODES = 50_000

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _strip_outer_fence(text: str) -> str:
    """Remove a ```lang ... ``` fence around the whole text (the closing one optional)."""
    lines = text.strip("\n").split("\n")
    if lines and re.match(r"[ \t]*(`{3,}|~{3,})", lines[0]):
        fence = lines[0].strip()[:3]
        lines = lines[1:]
        if lines and lines[-1].strip().startswith(fence) and not lines[-1].strip().strip(fence[0]):
            lines = lines[:-1]
    return "\n".join(lines)


def _prepare(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if text.strip().startswith(("```", "~~~")):
        text = _strip_outer_fence(text.strip())
    return textwrap.dedent(text).strip("\n")


def _syntax_reason(exc: BaseException, what: str = "the code",
                   fault: str = "has a syntax error") -> str:
    if isinstance(exc, SyntaxError):
        line = (exc.text or "").strip()
        shown = f" ({_show(line, 60)})" if line else ""
        where = f" on line {exc.lineno}" if exc.lineno else ""
        return f"{what} {fault}{where}: {exc.msg}{shown}"
    if isinstance(exc, (MemoryError, RecursionError)):
        return (f"{what} is too deeply nested or too large to check ({type(exc).__name__}); "
                "write it with less nesting")
    return f"{what} cannot be parsed: {exc}"


def _parse(code: str) -> ast.Module:
    """ast.parse that turns every failure into SyntaxError-like exceptions we report."""
    with warnings.catch_warnings():  # invalid escapes warn at parse time
        warnings.simplefilter("ignore")
        return ast.parse(code)


_PARSE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError)


def _parse_code(text: str) -> tuple[str, ast.Module]:
    """Parse proposed code, rescuing two common model slips before reporting an error."""
    code = _prepare(text)
    try:
        return code, _parse(code)
    except _PARSE_ERRORS as exc:
        first_error: BaseException = exc
    rescues = []
    # Prose around a fenced block: take the first fenced block that parses.
    rescues += [textwrap.dedent(block).strip("\n") for block in find_fences(code)[:5]]
    # Code escaped twice: "def f(x):\\n    return x" arrives with literal backslash-n.
    if "\n" not in code and "\\n" in code:
        rescues.append(code.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"'))
    for candidate in rescues[:5]:
        try:
            return candidate, _parse(candidate)
        except _PARSE_ERRORS:
            continue
    raise CoercionError(_syntax_reason(first_error))


def _check_size(tree: ast.AST) -> None:
    """Refuse trees too deep or too large for the compiler (iterative: no recursion)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_CODE_DEPTH:
            line = getattr(node, "lineno", None)
            where = f" (line {line})" if line else ""
            raise CoercionError(
                f"the code nests more than {MAX_CODE_DEPTH} levels deep{where}; write it with "
                "less nesting")
        if count > _MAX_NODES:
            raise CoercionError("the code is too large to check; keep the function short")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _compile(code: str) -> None:
    """Compile without running: catches what the parser lets through."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "<proposed code>", "exec", dont_inherit=True)
    except _PARSE_ERRORS as exc:
        raise CoercionError(_syntax_reason(exc, fault="does not compile")) from None


# ------------------------------------------------------------ definition-time effects


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _is_dotted(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _is_type_expr(node: ast.expr | None) -> bool:
    """A type hint that evaluates without calling anything we do not control."""
    if node is None or isinstance(node, ast.Constant) or _is_dotted(node):
        return True
    if isinstance(node, ast.Subscript):
        return _is_type_expr(node.value) and _is_type_expr(node.slice)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_is_type_expr(e) for e in node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_type_expr(node.left) and _is_type_expr(node.right)
    return False


def _annotations(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, ast.expr]]:
    args = fn.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    out = [(a.arg, a.annotation) for a in every if a.annotation is not None]
    if fn.returns is not None:
        out.append(("return", fn.returns))
    return out


def _definition_effects(fn: ast.FunctionDef | ast.AsyncFunctionDef,
                        old: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
    """Refuse defaults, annotations and decorators that would run code at definition time."""
    allowed = {ast.dump(d) for d in (old.decorator_list if old is not None else [])}
    for decorator in fn.decorator_list:
        if ast.dump(decorator) not in allowed:
            raise CoercionError(
                f"the code adds the decorator '@{_unparse(decorator)}' to '{fn.name}'; "
                "remove it (decorators run code when the function is defined)")
    old_defaults = set()
    if old is not None:
        old_defaults = {ast.dump(d) for d in [*old.args.defaults, *old.args.kw_defaults]
                        if d is not None}
    for default in [*fn.args.defaults, *fn.args.kw_defaults]:
        if default is None or _is_literal(default) or isinstance(default, ast.Name):
            continue
        if ast.dump(default) in old_defaults:
            continue
        raise CoercionError(
            f"the default value {_show(_unparse(default), 60)} on line {default.lineno} of "
            f"'{fn.name}' is not a constant; it would run when the function is defined. Use "
            "a constant default (e.g. None) and compute the value inside the function")
    old_annotations = {ast.dump(a) for _, a in _annotations(old)} if old is not None else set()
    for where, annotation in _annotations(fn):
        if not _is_type_expr(annotation) and ast.dump(annotation) not in old_annotations:
            raise CoercionError(
                f"the annotation of {where!r} in '{fn.name}' ({_show(_unparse(annotation), 60)})"
                " is not a plain type; it would run when the function is defined. Use a type "
                "name such as 'int' or 'list[str]', or leave it out")


def _unparse(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001 - only used in messages
        return "..."


def _is_constant_assignment(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        if not _is_type_expr(node.annotation):
            return False
        targets, value = [node.target], node.value
    else:
        return False
    return all(isinstance(t, ast.Name) for t in targets) and _is_literal(value)


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
            raise CoercionError(f"line {node.lineno} has a relative import; the code is not "
                                "part of a package, import by the full module name")
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
            raise CoercionError(f"line {node.lineno} imports {module!r}, which is not "
                                "installed here; use a module that is, or import inside the "
                                "function")


def _bound_names(node: ast.stmt) -> set[str]:
    """Names a top-level import or assignment binds."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    targets = node.targets if isinstance(node, ast.Assign) else (
        [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
    return {t.id for t in targets if isinstance(t, ast.Name)}


def _top_level(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The one function of ``tree``; everything beside it must be inert."""
    functions = [n for n in tree.body if isinstance(n, _FUNCTIONS)]
    for node in tree.body:
        if name in _bound_names(node) and node not in functions:
            raise CoercionError(
                f"line {node.lineno} binds the name '{name}' again, so the function would not "
                "be what the code defines; give that import or constant another name")
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
            "run when the code is applied")
    if not functions:
        raise CoercionError(f"the code defines no function; expected 'def {name}(...)'")
    if len(functions) > 1:
        listed = ", ".join(f"'{f.name}'" for f in functions[:10])
        raise CoercionError(
            f"the code defines {len(functions)} functions ({listed}); define only "
            f"'{name}' (put helpers inside it)")
    new = functions[0]
    if new.name != name:
        raise CoercionError(
            f"the code defines '{new.name}' but the parameter is the function '{name}'; "
            "keep the name")
    return new


def _current_function(current_source: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    try:
        current_tree = _parse(_prepare(str(current_source)))
    except _PARSE_ERRORS as exc:
        raise CoercionError(f"the current source of the parameter does not parse ({exc})") from None
    for node in current_tree.body:
        if isinstance(node, _FUNCTIONS):
            return node
    raise CoercionError("the current source of the parameter defines no function")


def _check(proposed: Any, old: ast.FunctionDef | ast.AsyncFunctionDef | None,
           name: str) -> str:
    if not isinstance(proposed, str):
        raise CoercionError(
            f"expected the new code as a str, got {_show(proposed)} ({type(proposed).__name__})"
        )
    if not proposed.strip():
        raise CoercionError("expected the new code of the function, got an empty string")
    if len(proposed) > MAX_CODE_CHARS:
        raise CoercionError(
            f"the code is {len(proposed):,} characters long, more than the {MAX_CODE_CHARS:,} "
            "a trainable function may have; keep the function short")
    if "\x00" in proposed:
        raise CoercionError("the code contains a NUL character (\\x00); remove it")
    code, tree = _parse_code(proposed)
    _check_size(tree)
    new = _top_level(tree, name)
    if old is not None:
        old_async = isinstance(old, ast.AsyncFunctionDef)
        if old_async != isinstance(new, ast.AsyncFunctionDef):
            keep = "async def" if old_async else "def"
            raise CoercionError(
                f"'{name}' is {'an async' if old_async else 'a plain'} function; keep '{keep}'")
    _definition_effects(new, old)
    if old is not None:
        problems = signature_problems(old.args, new.args)
        if problems:
            raise CoercionError(
                f"the new signature ({signature_text(new.args)}) cannot replace the old one "
                f"({signature_text(old.args)}): " + "; ".join(problems))
    _compile(code)
    return _normalise(code, tree)


def validate_code(current_source: str, proposed: Any) -> str:
    """Check new source code for a trainable function, without running it.

    Parameters
    ----------
    current_source : str
        Source of the current function (``def``/``async def``; its decorators may be kept).
    proposed : Any
        The suggested code; must be a str. Surrounding markdown fences are removed and the
        code is dedented.

    Returns
    -------
    str
        The normalised source: no fences, dedented, trailing whitespace trimmed, ending in
        exactly one newline.

    Raises
    ------
    CoercionError
        If the code is not a str, is too long or too deeply nested, does not parse or
        compile (the reason gives the line and the message), does not define exactly one
        function named like the current one (imports, docstrings and constant assignments
        may accompany it), changes ``def``/``async def``, adds decorators, has defaults or
        annotations that would run code when defined, or changes the signature so that
        old calls would fail (new parameters need defaults; ``*args``/``**kwargs`` may
        absorb old ones). Never raises anything else: a failure of the check itself is
        reported as a CoercionError too.
    """
    try:
        old = _current_function(current_source)
        return _check(proposed, old, old.name)
    except CoercionError:
        raise
    except Exception as exc:  # noqa: BLE001 - bounded: the check must never crash propose()
        raise CoercionError(f"the code could not be checked ({type(exc).__name__}); "
                            "write it more simply") from None


def validate_source(source: Any, name: str, current_source: str | None = None) -> str:
    """Check code read from a file (a session, checkpoint or module save) before loading it.

    The same rules as an LLM proposal (:func:`validate_code`). With ``current_source``
    (the function as it is now), the signature must stay compatible with it; without,
    the code must define the function ``name`` and may carry no decorator.

    Parameters
    ----------
    source : Any
        The saved code.
    name : str
        The function's name (the parameter's name).
    current_source : str, optional
        The live function's source, when there is one to compare with.

    Returns
    -------
    str
        The normalised source.

    Raises
    ------
    CoercionError
        With the reason, prefixed by the function's name.
    """
    try:
        if current_source is not None:
            return validate_code(current_source, source)
        try:
            return _check(source, None, name)
        except CoercionError:
            raise
        except Exception as exc:  # noqa: BLE001 - see validate_code
            raise CoercionError(f"the code could not be checked ({type(exc).__name__})") from None
    except CoercionError as exc:
        raise CoercionError(f"the saved code of {name!r} is refused: {exc.reason}") from None


def _normalise(code: str, tree: ast.Module) -> str:
    trimmed = "\n".join(line.rstrip() for line in code.split("\n")).strip("\n") + "\n"
    if trimmed == code.strip("\n") + "\n":
        return trimmed  # no trailing whitespace was removed: nothing to re-check
    try:
        # Trimming lines must not change a multi-line string literal.
        if ast.dump(_parse(trimmed)) == ast.dump(tree):
            return trimmed
    except _PARSE_ERRORS:
        pass
    return code.rstrip() + "\n"
