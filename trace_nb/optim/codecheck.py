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
import re
from typing import Any

from ..errors import CoercionError
from ..text import short_repr as _show
from .codeeffects import FUNCTIONS, definition_effects, top_level_function
from .codeparse import (
    MAX_CODE_DEPTH,
    PARSE_ERRORS,
    check_size,
    compile_check,
    normalise,
    parse,
    parse_code,
    prepare,
)
from .codesig import signature_problems, signature_text
from .refusal import Refusal

__all__ = ["MAX_CODE_CHARS", "MAX_CODE_DEPTH", "validate_code", "validate_source"]

#: Longest code accepted, in characters (a trainable function is a screenful, not a book).
MAX_CODE_CHARS = 50_000


def _current_function(current_source: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    try:
        current_tree = parse(prepare(str(current_source)))
    except PARSE_ERRORS as exc:
        raise CoercionError(f"the current source of the parameter does not parse ({exc})") from None
    for node in current_tree.body:
        if isinstance(node, FUNCTIONS):
            return node
    raise CoercionError("the current source of the parameter defines no function")


def _check(proposed: Any, old: ast.FunctionDef | ast.AsyncFunctionDef | None, name: str) -> str:
    if not isinstance(proposed, str):
        raise CoercionError(
            f"expected the new code as a str, got {_show(proposed)} ({type(proposed).__name__})"
        )
    if not proposed.strip():
        raise CoercionError("expected the new code of the function, got an empty string")
    if len(proposed) > MAX_CODE_CHARS:
        raise CoercionError(
            f"the code is {len(proposed):,} characters long, more than the {MAX_CODE_CHARS:,} "
            "a trainable function may have; keep the function short"
        )
    if "\x00" in proposed:
        raise CoercionError("the code contains a NUL character (\\x00); remove it")
    proposed = _definition_form(proposed, old, name)
    code, tree = parse_code(proposed)
    check_size(tree)
    new = top_level_function(tree, name)
    if old is not None:
        old_async = isinstance(old, ast.AsyncFunctionDef)
        if old_async != isinstance(new, ast.AsyncFunctionDef):
            keep = "async def" if old_async else "def"
            raise CoercionError(
                f"'{name}' is {'an async' if old_async else 'a plain'} function; keep '{keep}'"
            )
    definition_effects(new, old)
    if old is not None:
        problems = signature_problems(old.args, new.args)
        if problems:
            raise CoercionError(
                f"the new signature ({signature_text(new.args)}) cannot replace the old one "
                f"({signature_text(old.args)}): " + "; ".join(problems)
            )
    compile_check(code)
    return normalise(code, tree)


def _definition_form(
    proposed: str, old: ast.FunctionDef | ast.AsyncFunctionDef | None, name: str
) -> str:
    """``proposed`` when it holds a definition of ``name``; refuses anything else with a
    reason that says what to send (:attr:`Refusal.CODE_FORM`).

    Small models answer a code variable with the prompt's label form
    (``"(float) text=text.lstrip()"``) or an expression. A definition wrapped in one pair of
    parentheses (``"(def f(x): ...)"``) is used without them.
    """
    text = prepare(proposed)
    own = rf"(async\s+)?def\s+{re.escape(name)}\s*\("
    if re.search(rf"^\s*{own}", text, re.M):
        return proposed
    stripped = text.strip()
    if re.match(rf"\(\s*{own}", stripped):
        inner = stripped[1:]
        if inner.rstrip().endswith(")"):
            try:
                parse(prepare(inner))
            except PARSE_ERRORS:
                inner = inner.rstrip()[:-1]
        return inner
    if _DEF.search(text):
        return proposed  # a definition of another name: the checks below say what is wrong
    head = f"def {name}({signature_text(old.args)}):" if old is not None else f"def {name}(...):"
    if old is not None and isinstance(old, ast.AsyncFunctionDef):
        head = "async " + head
    raise CoercionError(
        f"the suggestion is not a definition of the function {name!r} "
        f"({_show(stripped, 60)}): send the complete source code of the function as one "
        f"string that starts with `{head}` and holds its whole body, with no type label, "
        "parentheses or quotes around it",
        Refusal.CODE_FORM,
    )


_DEF = re.compile(r"^\s*(async\s+)?def\s", re.M)


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
        raise CoercionError(
            f"the code could not be checked ({type(exc).__name__}); write it more simply"
        ) from None


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
