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

import enum
import inspect
import json
import math
import numbers
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import CoercionError
from ..text import short_repr
from .codecheck import validate_code

__all__ = ["coerce_value"]

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
_MAX_INT_DIGITS = 4000  # below Python's int/str conversion limit (4300 digits)


_show = short_repr  # repr() cut with an ellipsis, so messages stay readable


#: Deepest nesting, and most items, a suggested container may have.
MAX_VALUE_DEPTH = 100
MAX_VALUE_ITEMS = 100_000


def _check_plain(value: Any) -> None:
    """Refuse suggested values that would break later steps: nested deeper than
    :data:`MAX_VALUE_DEPTH`, more than :data:`MAX_VALUE_ITEMS` items, or a NaN/infinity
    inside a container (JSON cannot save it). Iterative: no recursion on deep input."""
    if not isinstance(value, (list, tuple, dict, set, frozenset)):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    items = 0
    while stack:
        v, depth = stack.pop()
        items += 1
        if items > MAX_VALUE_ITEMS:
            raise CoercionError(
                f"the suggested value has more than {MAX_VALUE_ITEMS:,} items; "
                "suggest a smaller value"
            )
        if isinstance(v, float) and not math.isfinite(v):
            raise CoercionError(
                f"the suggested value contains {v!r}, which is not a finite "
                "number (NaN and infinity cannot be saved)"
            )
        if isinstance(v, (list, tuple, set, frozenset, dict)):
            if depth > MAX_VALUE_DEPTH:
                raise CoercionError(
                    f"the suggested value is nested more than "
                    f"{MAX_VALUE_DEPTH} levels deep; suggest a flatter value"
                )
            children = [*v.keys(), *v.values()] if isinstance(v, dict) else v
            stack.extend((c, depth + 1) for c in children)


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
    _check_plain(proposed)
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
    from .jsonish import literal_eval, strict  # the one safe reader of literals

    text = text.strip()
    ok, value = strict(text)
    if not ok:
        value = literal_eval(text, _NOTHING)
    if value is not _NOTHING:
        _check_plain(value)
    return value


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
