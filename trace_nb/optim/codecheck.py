"""Checking a suggested new source for a code parameter (used by :mod:`.coerce`).

The code is parsed, never run: it must define the same function, keep a compatible
signature, and may only add imports and constant assignments beside it.
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

from .coerce import CoercionError, _show

_FENCE_BLOCK = re.compile(
    r"^[ \t]*(`{3,}|~{3,})[ \t]*[\w+.-]*[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S
)


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


def _parse_code(text: str) -> tuple[str, ast.Module]:
    """Parse proposed code, rescuing two common model slips before reporting an error."""
    code = _prepare(text)
    try:
        return code, ast.parse(code)
    except (SyntaxError, ValueError) as exc:
        first_error = exc
    rescues = []
    # Prose around a fenced block: take the first fenced block that parses.
    rescues += [textwrap.dedent(m.group(2)).strip("\n") for m in _FENCE_BLOCK.finditer(code)]
    # Code escaped twice: "def f(x):\\n    return x" arrives with literal backslash-n.
    if "\n" not in code and "\\n" in code:
        rescues.append(code.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"'))
    for candidate in rescues:
        try:
            return candidate, ast.parse(candidate)
        except (SyntaxError, ValueError):
            continue
    if isinstance(first_error, SyntaxError):
        line = (first_error.text or "").strip()
        shown = f" ({_show(line, 60)})" if line else ""
        raise CoercionError(
            f"the code has a syntax error on line {first_error.lineno}: {first_error.msg}{shown}"
        )
    raise CoercionError(f"the code cannot be parsed: {first_error}")


def _function(tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def _is_constant_assignment(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return False
    if not all(isinstance(t, ast.Name) for t in targets):
        return False
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _describe(node: ast.stmt) -> str:
    if isinstance(node, ast.ClassDef):
        return f"a class {node.name!r}"
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return "a function call"
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return "an assignment that is not a constant"
    return f"a top-level {type(node).__name__.lower()!r} statement"


def _signature(args: ast.arguments) -> str:
    try:
        return ast.unparse(args)
    except Exception:  # noqa: BLE001 - only used in messages
        return "..."


def _signature_problems(old: ast.arguments, new: ast.arguments) -> list[str]:
    """Ways in which a call valid for ``old`` would fail for ``new``."""
    problems: list[str] = []
    old_pos = [*old.posonlyargs, *old.args]
    new_pos = [*new.posonlyargs, *new.args]
    old_first_default = len(old_pos) - len(old.defaults)
    new_first_default = len(new_pos) - len(new.defaults)
    new_kwonly = {
        a.arg: d is not None for a, d in zip(new.kwonlyargs, new.kw_defaults, strict=True)
    }
    new_by_keyword = {a.arg for a in new.args} | set(new_kwonly)

    for i, param in enumerate(old_pos):
        by_keyword = i >= len(old.posonlyargs)  # callers may pass it by name
        has_default = i >= old_first_default
        if i < len(new_pos):
            now = new_pos[i]
            if by_keyword and now.arg != param.arg:
                problems.append(
                    f"parameter {i + 1} was '{param.arg}' but is now '{now.arg}' (keep the "
                    "names and order of the parameters)"
                )
                continue
            if by_keyword and i < len(new.posonlyargs) and new.kwarg is None:
                problems.append(f"'{param.arg}' became positional-only")
            if has_default and i < new_first_default:
                problems.append(f"'{param.arg}' lost its default value (callers may omit it)")
        elif new.vararg is None:
            if param.arg in new_kwonly:
                problems.append(f"'{param.arg}' can no longer be passed by position")
            else:
                problems.append(f"the parameter '{param.arg}' was removed")
        elif by_keyword and param.arg not in new_by_keyword and new.kwarg is None:
            problems.append(f"'{param.arg}' can no longer be passed by name")

    if old.vararg is not None and new.vararg is None:
        problems.append(f"*{old.vararg.arg} was removed")
    for param, default in zip(old.kwonlyargs, old.kw_defaults, strict=True):
        if param.arg in new_kwonly:
            if default is not None and not new_kwonly[param.arg]:
                problems.append(f"'{param.arg}' lost its default value (callers may omit it)")
        elif param.arg in new_by_keyword:
            index = [a.arg for a in new_pos].index(param.arg)
            if default is not None and index < new_first_default:
                problems.append(f"'{param.arg}' lost its default value (callers may omit it)")
        elif new.kwarg is None:
            problems.append(f"the keyword-only parameter '{param.arg}' was removed")
    if old.kwarg is not None and new.kwarg is None:
        problems.append(f"**{old.kwarg.arg} was removed")

    # Parameters old callers never pass must have defaults.
    old_names = {a.arg for a in (*old_pos, *old.kwonlyargs)}
    for j, param in enumerate(new_pos):
        if j >= len(old_pos) and j < new_first_default and param.arg not in old_names:
            problems.append(
                f"the new parameter '{param.arg}' needs a default value (callers do not pass it)"
            )
    for name, has_default in new_kwonly.items():
        if name not in old_names and not has_default:
            problems.append(
                f"the new parameter '{name}' needs a default value (callers do not pass it)"
            )
    return problems


def validate_code(current_source: str, proposed: Any) -> str:
    """Check new source code for a trainable function, without running it.

    Parameters
    ----------
    current_source : str
        Source of the current function (``def``/``async def``, decorators ignored).
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
        If the code is not a str, does not parse (the reason gives the line and the
        message), does not define exactly one function named like the current one
        (imports and constant assignments may accompany it), changes ``def``/``async
        def``, adds decorators, or changes the signature so that old calls would fail
        (new parameters need defaults; ``*args``/``**kwargs`` may absorb old ones).
    """
    if not isinstance(proposed, str):
        raise CoercionError(
            f"expected the new code as a str, got {_show(proposed)} ({type(proposed).__name__})"
        )
    if not proposed.strip():
        raise CoercionError("expected the new code of the function, got an empty string")
    try:
        current_tree = ast.parse(_prepare(str(current_source)))
    except (SyntaxError, ValueError) as exc:
        raise CoercionError(f"the current source of the parameter does not parse ({exc})") from None
    old = _function(current_tree)
    if old is None:
        raise CoercionError("the current source of the parameter defines no function")

    code, tree = _parse_code(proposed)
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for node in tree.body:
        if node in functions or isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring or stray constant
        if _is_constant_assignment(node):
            continue
        raise CoercionError(
            f"the code may only define the function '{old.name}' (plus imports and constant "
            f"assignments), but line {node.lineno} has {_describe(node)}"
        )
    if not functions:
        raise CoercionError(f"the code defines no function; expected 'def {old.name}(...)'")
    if len(functions) > 1:
        listed = ", ".join(f"'{f.name}'" for f in functions)
        raise CoercionError(
            f"the code defines {len(functions)} functions ({listed}); define only "
            f"'{old.name}' (put helpers inside it)"
        )
    new = functions[0]
    if new.name != old.name:
        raise CoercionError(
            f"the code defines '{new.name}' but the parameter is the function '{old.name}'; "
            "keep the name"
        )
    old_async = isinstance(old, ast.AsyncFunctionDef)
    if old_async != isinstance(new, ast.AsyncFunctionDef):
        keep = "async def" if old_async else "def"
        raise CoercionError(
            f"'{old.name}' is {'an async' if old_async else 'a plain'} function; keep '{keep}'"
        )
    allowed = {ast.dump(d) for d in old.decorator_list}
    for decorator in new.decorator_list:
        if ast.dump(decorator) not in allowed:
            raise CoercionError(
                f"the code adds the decorator '@{ast.unparse(decorator)}' to '{old.name}'; "
                "remove it"
            )
    problems = _signature_problems(old.args, new.args)
    if problems:
        raise CoercionError(
            f"the new signature ({_signature(new.args)}) cannot replace the old one "
            f"({_signature(old.args)}): " + "; ".join(problems)
        )
    return _normalise(code, tree)


def _normalise(code: str, tree: ast.Module) -> str:
    trimmed = "\n".join(line.rstrip() for line in code.split("\n")).strip("\n") + "\n"
    try:
        # Trimming lines must not change a multi-line string literal.
        if ast.dump(ast.parse(trimmed)) == ast.dump(tree):
            return trimmed
    except (SyntaxError, ValueError):
        pass
    return code.rstrip() + "\n"
