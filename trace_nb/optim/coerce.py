"""Check and convert one suggested value against the parameter's current value.

An LLM suggestion arrives as whatever JSON (or text) the model wrote: ``"5"`` for an int,
``"False"`` for a bool, a fenced code block for a function. :func:`coerce_value` converts
it by the *type of the current value*, with explicit rules rather than
``type(current)(proposed)`` (which would turn ``"False"`` into ``True``), and raises
:class:`CoercionError` with a reason that says what was expected and what was received.

:func:`validate_code` checks new source code for a trainable function without running it:
it must parse, define exactly one function with the same name, and keep a signature that
old callers can still call.

Decisions
---------
* NaN and infinities are rejected for float parameters, even when the current value is
  one of them: a model proposing them is almost always a mistake.
* ``set``/``frozenset`` parameters are converted like lists; ``Enum`` parameters accept a
  member, its name or its value.
* For code, decorators already on the current function may be kept or dropped, new ones
  are rejected (they would run arbitrary code at definition time); ``async def`` must stay
  ``async def`` and ``def`` must stay ``def``.
"""

from __future__ import annotations

import ast
import enum
import inspect
import json
import math
import numbers
import re
import textwrap
import warnings
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["CoercionError", "coerce_value", "validate_code"]

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
_MAX_INT_DIGITS = 4000  # below Python's int/str conversion limit (4300 digits)


class CoercionError(ValueError):
    """A suggested value cannot be used for a parameter; ``reason`` says why.

    Parameters
    ----------
    reason : str
        Human-readable: what was expected and what was received.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _show(value: Any, limit: int = 80) -> str:
    """repr() of a value, truncated with an ellipsis so messages stay readable."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break messages
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def coerce_value(current: Any, proposed: Any, *, is_code: bool = False) -> Any:
    """Convert a suggested value to the type of the parameter's current value.

    Parameters
    ----------
    current : Any
        The parameter's current value; its type decides the conversion. For code
        (``is_code=True``) the current source, or the function itself.
    proposed : Any
        The value the model suggested, as parsed from its reply.
    is_code : bool, optional
        The parameter is a function's source code: delegate to :func:`validate_code`.

    Returns
    -------
    Any
        The converted value (a new object; ``current`` is not modified).

    Raises
    ------
    CoercionError
        When the value cannot be converted; the reason says what was expected and got.

    Notes
    -----
    bool: bools, 0/1, and the strings true/false/yes/no/1/0/on/off (any case, stripped).
    int: ints, whole floats, numeric strings with a whole value ("5", "5.0", "1e3").
    float: ints, finite floats, numeric strings. str: strings as is; numbers and bools via
    ``str()``; lists/dicts as JSON. list/tuple/set: sequences, or a string holding a JSON
    or Python list. dict: dicts, or a string holding a JSON or Python dict. None (untyped):
    anything. Other numbers (numpy scalars): like int or float, then converted back to the
    current type. Other types: only an instance of the same type.
    """
    if is_code:
        source = current
        if not isinstance(source, str):
            try:
                source = inspect.getsource(current)
            except (OSError, TypeError) as exc:
                raise CoercionError(
                    f"cannot read the current source of {_show(current)} to compare the new "
                    f"code with ({exc})"
                ) from None
        return validate_code(source, proposed)
    if current is None:
        return proposed
    if isinstance(current, enum.Enum):
        return _to_enum(current, proposed)
    if isinstance(current, bool):  # before int: bool is a subclass of int
        return _to_bool(proposed)
    if isinstance(current, int):
        return _to_int(proposed)
    if isinstance(current, float):
        return _to_float(proposed)
    if isinstance(current, str):
        return _to_str(proposed)
    if isinstance(current, (list, tuple, set, frozenset)):
        return _to_collection(current, proposed)
    if isinstance(current, dict):
        return _to_dict(proposed)
    if isinstance(proposed, type(current)):
        return proposed
    # Numeric types registered with the numbers ABCs (numpy scalars): convert like int or
    # float, then back to the current type.
    if isinstance(current, numbers.Integral):
        return _back_to(type(current), _to_int(proposed))
    if isinstance(current, numbers.Real) and not isinstance(current, numbers.Rational):
        return _back_to(type(current), _to_float(proposed))
    kind = type(current).__name__
    raise CoercionError(
        f"cannot coerce {_show(proposed)} ({type(proposed).__name__}) to {kind}: "
        f"this parameter holds {_article(kind)}, which only accepts a value of that same "
        "type"
    )


# --------------------------------------------------------------------- scalar rules


def _back_to(kind: type, value: Any) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise CoercionError(
            f"expected a {kind.__name__}, got {_show(value)} (out of range for {kind.__name__})"
        ) from None


def _to_bool(proposed: Any) -> bool:
    if isinstance(proposed, bool):
        return proposed
    if isinstance(proposed, int) and proposed in (0, 1):
        return bool(proposed)
    if isinstance(proposed, str):
        word = proposed.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise CoercionError(f"expected a bool (true/false), got {_show(proposed)}")


def _to_int(proposed: Any) -> int:
    if isinstance(proposed, bool):
        raise CoercionError(f"expected an int, got a bool ({proposed})")
    if isinstance(proposed, int):
        return int(proposed)
    if isinstance(proposed, float):
        if not math.isfinite(proposed):
            raise CoercionError(f"expected an int, got {_show(proposed)} (not a finite number)")
        if not proposed.is_integer():
            raise CoercionError(f"expected an int, got {_show(proposed)} (not a whole number)")
        return int(proposed)
    if isinstance(proposed, str):
        # Decimal reads "5", " 5 ", "5.0", "-3" and "1e3" exactly, unlike float().
        try:
            number = Decimal(proposed.strip())
        except (InvalidOperation, ValueError):
            raise CoercionError(f"expected an int, got {_show(proposed)} (not a number)") from None
        if not number.is_finite():
            raise CoercionError(f"expected an int, got {_show(proposed)} (not a finite number)")
        if number.adjusted() > _MAX_INT_DIGITS:
            raise CoercionError(f"expected an int, got {_show(proposed)} (too large)")
        if number != number.to_integral_value():
            raise CoercionError(f"expected an int, got {_show(proposed)} (not a whole number)")
        return int(number)
    raise CoercionError(f"expected an int, got {_show(proposed)} ({type(proposed).__name__})")


def _to_float(proposed: Any) -> float:
    if isinstance(proposed, bool):
        raise CoercionError(f"expected a float, got a bool ({proposed})")
    if isinstance(proposed, (int, float)):
        try:
            value = float(proposed)
        except OverflowError:
            raise CoercionError(f"expected a float, got {_show(proposed)} (too large)") from None
    elif isinstance(proposed, str):
        try:
            value = float(proposed.strip())
        except ValueError:
            raise CoercionError(f"expected a float, got {_show(proposed)} (not a number)") from None
    else:
        raise CoercionError(f"expected a float, got {_show(proposed)} ({type(proposed).__name__})")
    if not math.isfinite(value):
        raise CoercionError(
            f"expected a finite float, got {_show(proposed)} (NaN and infinity are not allowed)"
        )
    return value


def _to_str(proposed: Any) -> str:
    # Strings stay as they are, even when they look like code ("def", "import").
    if isinstance(proposed, str):
        return proposed
    if proposed is None:
        raise CoercionError("expected a str, got None")
    if isinstance(proposed, (bool, int, float)):
        return str(proposed)
    if isinstance(proposed, (list, tuple, dict)):
        try:
            return json.dumps(proposed, ensure_ascii=False)
        except (TypeError, ValueError):
            pass
    raise CoercionError(f"expected a str, got {_show(proposed)} ({type(proposed).__name__})")


def _to_enum(current: enum.Enum, proposed: Any) -> enum.Enum:
    cls = type(current)
    if isinstance(proposed, cls):
        return proposed
    if isinstance(proposed, str):
        name = proposed.strip()
        name = name.split(".", 1)[1] if name.startswith(cls.__name__ + ".") else name
        if name in cls.__members__:
            return cls.__members__[name]
    try:
        return cls(proposed)
    except (ValueError, TypeError):
        pass
    choices = ", ".join(cls.__members__)
    raise CoercionError(f"expected one of {cls.__name__} ({choices}), got {_show(proposed)}")


# ----------------------------------------------------------------- container rules

_NOTHING = object()


def _literal(text: str) -> Any:
    """A JSON or Python literal read from a string, or _NOTHING."""
    text = text.strip()
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    with warnings.catch_warnings():  # invalid escapes in the string would warn
        warnings.simplefilter("ignore")
        try:
            return ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return _NOTHING


def _to_collection(current: Any, proposed: Any) -> Any:
    kind = type(current).__name__ if type(current) in (list, tuple, set, frozenset) else "list"
    if isinstance(proposed, (list, tuple, set, frozenset)):
        items = list(proposed)
    elif isinstance(proposed, str):
        value = _literal(proposed)
        # A string must hold a list literal, or the current kind's own literal ("(1, 2)"
        # for a tuple): "1, 2" is a Python tuple, but not what a list parameter expects.
        accepted = (list, tuple) if isinstance(current, tuple) else (list,)
        if isinstance(current, (set, frozenset)):
            accepted = (list, set, frozenset)
        if not isinstance(value, accepted):
            raise CoercionError(
                f"expected {_article(kind)}, got {_show(proposed)} "
                "(a string that is not a JSON or Python list)"
            )
        items = list(value)
    else:
        raise CoercionError(
            f"expected {_article(kind)}, got {_show(proposed)} ({type(proposed).__name__})"
        )
    if isinstance(current, tuple):
        return tuple(items)
    if isinstance(current, (set, frozenset)):
        try:
            return type(current)(items) if type(current) in (set, frozenset) else set(items)
        except TypeError:
            raise CoercionError(
                f"expected {_article(kind)}, got {_show(proposed)} (its items are not hashable)"
            ) from None
    return items


def _to_dict(proposed: Any) -> dict[Any, Any]:
    if isinstance(proposed, dict):
        return dict(proposed)
    if isinstance(proposed, str):
        value = _literal(proposed)
        if isinstance(value, dict):
            return value
        raise CoercionError(
            f"expected a dict, got {_show(proposed)} (a string that is not a JSON or Python dict)"
        )
    raise CoercionError(f"expected a dict, got {_show(proposed)} ({type(proposed).__name__})")


# ---------------------------------------------------------------------------- code

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
