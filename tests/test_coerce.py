"""Tests for trace_nb.optim.coerce: value coercion by the current value's type, and code."""

from __future__ import annotations

import enum
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trace_nb.errors import CoercionError
from trace_nb.optim.codecheck import validate_code
from trace_nb.optim.coerce import coerce_value


def reason(current, proposed, **kwargs) -> str:
    with pytest.raises(CoercionError) as info:
        coerce_value(current, proposed, **kwargs)
    assert info.value.reason == str(info.value)
    return info.value.reason


# ------------------------------------------------------------------------------ bool


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("False", False),
        (" TRUE ", True),
        ("false\n", False),
        ("yes", True),
        ("No", False),
        ("1", True),
        ("0", False),
        ("on", True),
        ("OFF", False),
    ],
)
def test_bool_accepts(proposed, expected):
    assert coerce_value(True, proposed) is expected
    assert coerce_value(False, proposed) is expected


def test_false_string_is_false():
    assert coerce_value(False, "False") is False
    assert coerce_value(True, "False") is False


@pytest.mark.parametrize("proposed", ["maybe", 2, -1, 0.5, None, [], "", "truthy"])
def test_bool_rejects(proposed):
    assert reason(True, proposed).startswith("expected a bool (true/false), got ")


def test_bool_message():
    assert reason(False, "maybe") == "expected a bool (true/false), got 'maybe'"


# ------------------------------------------------------------------------------- int


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        (5, 5),
        (-3, -3),
        (5.0, 5),
        (-2.0, -2),
        ("5", 5),
        (" 5 ", 5),
        ("5.0", 5),
        ("-3", -3),
        ("+4", 4),
        ("1e3", 1000),
        ("1E2", 100),
        (10**30, 10**30),
        ("123456789012345678901234567890", 123456789012345678901234567890),
    ],
)
def test_int_accepts(proposed, expected):
    value = coerce_value(7, proposed)
    assert value == expected and type(value) is int


def test_int_rejects_fraction_with_reason():
    assert reason(1, 5.5) == "expected an int, got 5.5 (not a whole number)"
    assert "not a whole number" in reason(1, "5.5")
    assert "not a whole number" in reason(1, "1e-3")


@pytest.mark.parametrize(
    ("proposed", "fragment"),
    [
        (True, "got a bool (True)"),
        (False, "got a bool (False)"),
        ("five", "got 'five' (not a number)"),
        ("", "not a number"),
        ("5 apples", "not a number"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        ("inf", "not a finite number"),
        ("nan", "not a finite number"),
        (None, "got None"),
        ([5], "got [5]"),
        ("1e999999", "too large"),
    ],
)
def test_int_rejects(proposed, fragment):
    message = reason(3, proposed)
    assert message.startswith("expected an int, got ")
    assert fragment in message


# ----------------------------------------------------------------------------- float


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [(1, 1.0), (2.5, 2.5), ("1e-3", 0.001), (" -0.5 ", -0.5), ("3", 3.0), (0, 0.0)],
)
def test_float_accepts(proposed, expected):
    value = coerce_value(0.1, proposed)
    assert value == expected and type(value) is float


@pytest.mark.parametrize(
    ("proposed", "fragment"),
    [
        (float("nan"), "expected a finite float, got nan"),
        (float("inf"), "expected a finite float, got inf"),
        ("-inf", "expected a finite float, got '-inf'"),
        ("NaN", "NaN and infinity are not allowed"),
        ("1e999", "expected a finite float"),
        (True, "expected a float, got a bool (True)"),
        ("fast", "expected a float, got 'fast' (not a number)"),
        (None, "expected a float, got None"),
        ({"a": 1}, "expected a float, got {'a': 1} (dict)"),
        (10**400, "too large"),
    ],
)
def test_float_rejects(proposed, fragment):
    assert fragment in reason(0.5, proposed)


def test_float_rejects_nan_even_if_current_is_nan():
    assert "finite" in reason(math.nan, math.nan)


# ------------------------------------------------------------------------------- str


def test_str_keeps_strings_even_if_they_look_like_code():
    assert coerce_value("old", "use a default def") == "use a default def"
    code = "def f(x):\n    return x\nimport os\nclass A: pass"
    assert coerce_value("old", code) == code
    assert coerce_value("old", "") == ""


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        (5, "5"),
        (2.5, "2.5"),
        (True, "True"),
        (False, "False"),
        ([1, "a"], '[1, "a"]'),
        ({"k": "é"}, '{"k": "é"}'),
        ((1, 2), "[1, 2]"),
    ],
)
def test_str_converts(proposed, expected):
    assert coerce_value("old", proposed) == expected


def test_str_rejects_none():
    assert reason("old", None) == "expected a str, got None"


def test_str_rejects_other_objects():
    assert "expected a str, got" in reason("old", object())


# ---------------------------------------------------------------------- containers


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        ([1, 2], [1, 2]),
        ((1, 2), [1, 2]),
        ("[1, 2]", [1, 2]),
        ("['a', 'b']", ["a", "b"]),
        ('  ["a", true, null] ', ["a", True, None]),
        ("[True, None]", [True, None]),
        ("[]", []),
    ],
)
def test_list_accepts(proposed, expected):
    value = coerce_value([0], proposed)
    assert value == expected and type(value) is list


def test_tuple_current_gives_tuple():
    assert coerce_value((1, 2), [3, 4]) == (3, 4)
    assert coerce_value((1,), "[5]") == (5,)
    assert coerce_value((1,), "(5, 6)") == (5, 6)


def test_set_current_gives_set():
    assert coerce_value({1}, [2, 2, 3]) == {2, 3}
    assert coerce_value(frozenset({1}), "[1, 2]") == frozenset({1, 2})
    assert "not hashable" in reason({1}, [[1]])


@pytest.mark.parametrize(
    ("proposed", "fragment"),
    [
        ("1, 2", "expected a list, got '1, 2' (a string that is not a JSON or Python list)"),
        ("{}", "not a JSON or Python list"),
        (5, "expected a list, got 5 (int)"),
        (None, "expected a list, got None"),
        ({"a": 1}, "expected a list, got {'a': 1} (dict)"),
    ],
)
def test_list_rejects(proposed, fragment):
    assert fragment in reason([1], proposed)


def test_tuple_rejects_with_its_kind():
    assert reason((1,), 3).startswith("expected a tuple, got 3")


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ('{"a": 1}', {"a": 1}),
        ("{'a': True}", {"a": True}),
        (' {"a": {"b": [1]}} ', {"a": {"b": [1]}}),
    ],
)
def test_dict_accepts(proposed, expected):
    assert coerce_value({"k": 0}, proposed) == expected


@pytest.mark.parametrize(
    ("proposed", "fragment"),
    [
        ("[1]", "expected a dict, got '[1]' (a string that is not a JSON or Python dict)"),
        ("a=1", "not a JSON or Python dict"),
        ([("a", 1)], "expected a dict, got [('a', 1)] (list)"),
        (None, "expected a dict, got None"),
    ],
)
def test_dict_rejects(proposed, fragment):
    assert fragment in reason({}, proposed)


def test_dict_result_is_a_copy():
    proposed = {"a": 1, "b": [2]}
    result = coerce_value({}, proposed)
    assert result == {"a": 1, "b": [2]} and type(result) is dict
    assert result is not proposed
    result["c"] = 3  # changing the applied value leaves the LLM's suggestion as it was
    assert proposed == {"a": 1, "b": [2]}


# ------------------------------------------------------------------ untyped / other


@pytest.mark.parametrize("proposed", [None, 1, "x", [1], {"a": 1}, object()])
def test_none_current_accepts_anything(proposed):
    assert coerce_value(None, proposed) is proposed


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


def test_other_types_need_same_type():
    p = Point(2)
    assert coerce_value(Point(1), p) is p
    message = reason(Point(1), {"x": 2})
    assert "cannot coerce {'x': 2} (dict) to Point" in message
    assert "only accepts a value of that same type" in message
    assert "to Fraction" in reason(Fraction(1, 2), "1/3")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_enum():
    assert coerce_value(Color.RED, "BLUE") is Color.BLUE
    assert coerce_value(Color.RED, "Color.BLUE") is Color.BLUE
    assert coerce_value(Color.RED, "blue") is Color.BLUE
    assert coerce_value(Color.RED, Color.BLUE) is Color.BLUE
    assert "expected one of Color (RED, BLUE), got 'green'" in reason(Color.RED, "green")


def test_long_values_are_truncated_in_messages():
    message = reason(1, "x" * 500)
    assert "…" in message
    assert len(message) < 160


def test_messages_say_expected_and_received():
    for current, proposed in [
        (True, "maybe"),
        (1, "a"),
        (1.0, "b"),
        ("s", None),
        ([1], 1),
        ({}, 1),
    ]:
        message = reason(current, proposed)
        assert message.startswith("expected "), message
        assert "got " in message, message


@given(st.integers())
def test_int_round_trips_through_strings(n):
    assert coerce_value(0, str(n)) == n
    assert coerce_value(0, n) == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trips_through_strings(x):
    assert coerce_value(0.0, repr(x)) == x


@given(st.booleans())
def test_bool_round_trips_through_strings(b):
    assert coerce_value(not b, str(b)) is b
    assert coerce_value(not b, str(b).lower()) is b


# ---------------------------------------------------------------------------- code

F = "def f(x):\n    return x + 1\n"


def code_reason(current, proposed) -> str:
    with pytest.raises(CoercionError) as info:
        validate_code(current, proposed)
    return str(info.value)


def test_code_valid_is_normalised():
    assert (
        validate_code(F, "def f(x):\n    return x * 2   \n\n\n") == "def f(x):\n    return x * 2\n"
    )


def test_code_fences_stripped_and_dedented():
    proposed = "```python\n    def f(x):\n        return x - 1\n```"
    assert validate_code(F, proposed) == "def f(x):\n    return x - 1\n"
    assert validate_code(F, "```\ndef f(x):\n    return 0\n```\n") == "def f(x):\n    return 0\n"
    # unclosed fence
    assert validate_code(F, "```py\ndef f(x):\n    return 0\n") == "def f(x):\n    return 0\n"


def test_code_prose_around_fence():
    proposed = "Here is the fix:\n```python\ndef f(x):\n    return 2 * x\n```\nDone."
    assert validate_code(F, proposed) == "def f(x):\n    return 2 * x\n"


def test_code_double_escaped_newlines():
    assert validate_code(F, "def f(x):\\n    return x") == "def f(x):\n    return x\n"


def test_code_crlf():
    assert validate_code(F, "def f(x):\r\n    return 3\r\n") == "def f(x):\n    return 3\n"


def test_code_multiline_string_keeps_trailing_spaces():
    proposed = 'def f(x):\n    s = """a   \nb"""\n    return s\n'
    assert validate_code(F, proposed) == proposed


def test_code_via_coerce_value():
    assert coerce_value(F, "def f(x):\n    return 1", is_code=True) == "def f(x):\n    return 1\n"
    assert "keep the name" in reason(F, "def g(x):\n    return 1", is_code=True)


def sample(x):
    return x


def test_code_current_may_be_the_function():
    assert coerce_value(sample, "def sample(x):\n    return 2", is_code=True).startswith(
        "def sample"
    )


def test_code_must_be_a_string():
    assert "expected the new code as a str, got 5 (int)" in code_reason(F, 5)
    assert "got None" in code_reason(F, None)
    assert "empty" in code_reason(F, "   ")


def test_code_syntax_error_has_line_number():
    message = code_reason(F, "def f(x):\n    y = 1\n    return x +\n")
    assert "syntax error on line 3" in message
    assert "return x +" in message


def test_code_indentation_error():
    assert "syntax error on line 2" in code_reason(F, "def f(x):\nreturn x\n")


def test_code_rename():
    assert code_reason(F, "def g(x):\n    return x\n") == (
        "the code defines 'g' but the parameter is the function 'f'; keep the name"
    )


def test_code_no_function():
    # No definition at all: refused as the wrong form, saying what to send (issue 22).
    assert "not a definition of the function 'f'" in code_reason(F, "x = 1\n")
    assert "starts with `def f(x):`" in code_reason(F, "lambda x: x\n")


def test_code_two_functions():
    message = code_reason(F, "def helper():\n    return 1\n\ndef f(x):\n    return helper()\n")
    assert "defines 2 functions ('helper', 'f')" in message
    assert "define only 'f'" in message


def test_code_allows_imports_docstring_and_constants():
    proposed = (
        '"""Module doc."""\nimport math\nfrom os import path\nSCALE = 2\nLIMIT: int = 10\n'
        "NAMES = ('a', 'b')\n\ndef f(x):\n    return math.floor(x * SCALE)\n"
    )
    assert validate_code(F, proposed) == proposed


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("print('hi')\n", "line 1 has a function call"),
        ("class A:\n    pass\n", "line 1 has a class 'A'"),
        ("X = compute()\n", "line 1 has an assignment that is not a constant"),
        ("if True:\n    pass\n", "line 1 has a top-level 'if' statement"),
    ],
)
def test_code_rejects_other_top_level_statements(extra, fragment):
    message = code_reason(F, extra + "def f(x):\n    return x\n")
    assert "may only define the function 'f'" in message
    assert fragment in message


def test_code_decorators_in_current_are_ignored():
    current = "@bundle(trainable=True)\ndef f(x):\n    return x\n"
    assert (
        validate_code(current, "def f(x):\n    return x + 2\n") == "def f(x):\n    return x + 2\n"
    )
    kept = "@bundle(trainable=True)\ndef f(x):\n    return x + 2\n"
    assert validate_code(current, kept) == kept


def test_code_new_decorators_rejected():
    assert "adds the decorator '@functools.cache'" in code_reason(
        F, "@functools.cache\ndef f(x):\n    return x\n"
    )


def test_code_async_kept_async():
    current = "async def f(x):\n    return x\n"
    assert validate_code(current, "async def f(x):\n    return await g(x)\n").startswith(
        "async def"
    )
    assert "keep 'async def'" in code_reason(current, "def f(x):\n    return x\n")
    assert "keep 'def'" in code_reason(F, "async def f(x):\n    return x\n")


def test_code_current_indented_method_source():
    current = "    def f(self, x):\n        return x\n"
    assert (
        validate_code(current, "def f(self, x):\n    return -x\n")
        == "def f(self, x):\n    return -x\n"
    )


def test_code_current_source_must_parse():
    assert "current source of the parameter does not parse" in code_reason("def f(:", F)
    assert "current source of the parameter defines no function" in code_reason("x = 1", F)


# Signature compatibility: (old, new, fragment or None when accepted)
SIGNATURES = [
    ("x", "x", None),
    ("x", "x, y=1", None),
    ("x", "x, *, flag=False", None),
    ("x", "x, *args, **kwargs", None),
    ("x, y", "*args, **kwargs", None),
    ("x, y", "x, *args, **kwargs", None),
    ("x, y=2", "x, y=3", None),
    ("x, *, k=1", "x, *, k=2", None),
    ("x, *, k", "x, k", None),
    ("x, *, k", "x, **kw", None),
    ("x, /, y", "z, /, y", None),
    ("x, *args", "x, *rest", None),
    ("x, **kw", "x, **options", None),
    ("x", "x: int", None),
    ("x", "x, y", "the new parameter 'y' needs a default value"),
    ("x", "x, *, y", "the new parameter 'y' needs a default value"),
    ("x, y", "x", "the parameter 'y' was removed"),
    ("x, y", "y, x", "parameter 1 was 'x' but is now 'y'"),
    ("x, y", "x, z", "parameter 2 was 'y' but is now 'z'"),
    ("x, y", "x, z=0, y=0", "parameter 2 was 'y' but is now 'z'"),
    ("x, y=2", "x, y", "'y' lost its default value"),
    ("x, *, k=1", "x, *, k", "'k' lost its default value"),
    ("x, *, k", "x", "the keyword-only parameter 'k' was removed"),
    ("x, *args", "x", "*args was removed"),
    ("x, **kw", "x", "**kw was removed"),
    ("x, y", "x, *args", "'y' can no longer be passed by name"),
    ("x, y", "x, *, y", "'y' can no longer be passed by position"),
    ("x, y", "x, y, /", "'y' became positional-only"),
]


@pytest.mark.parametrize(("old", "new", "fragment"), SIGNATURES)
def test_code_signatures(old, new, fragment):
    current = f"def f({old}):\n    pass\n"
    proposed = f"def f({new}):\n    pass\n"
    if fragment is None:
        assert validate_code(current, proposed) == proposed
    else:
        message = code_reason(current, proposed)
        assert fragment in message
        assert f"cannot replace the old one ({old})" in message


def test_code_never_executes(tmp_path, monkeypatch):
    # An import is allowed beside the function, and importing this module has a side
    # effect: validation compiles the code but never runs it, so the marker stays absent.
    marker = tmp_path / "imported"
    (tmp_path / "side_effect_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    proposed = "import side_effect_mod\n\ndef f(x):\n    raise SystemExit('must not run')\n"
    assert validate_code(F, proposed) == proposed
    assert not marker.exists()


def test_numpy_scalars_keep_their_type():
    np = pytest.importorskip("numpy")
    value = coerce_value(np.int64(3), "5")
    assert value == 5 and type(value) is np.int64
    value = coerce_value(np.float32(0.5), "0.25")
    assert value == 0.25 and type(value) is np.float32
    assert reason(np.int64(1), 2.5) == "expected an int, got 2.5 (not a whole number)"
    assert "expected a finite float" in reason(np.float32(1), "nan")
