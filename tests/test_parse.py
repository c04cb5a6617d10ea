"""Tests for trace_nb.optim.reply: the reply corpus plus property tests."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trace_nb.errors import CoercionError
from trace_nb.optim.codecheck import validate_code
from trace_nb.optim.reply import FORMATS, ParsedReply, parse_reply

try:  # tests/ on sys.path (pytest's default "prepend" import mode)
    from reply_corpus import CASES
except ImportError:  # tests/ imported as a package
    from tests.reply_corpus import CASES


def test_corpus_is_large_and_ids_are_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("text", "names", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_corpus(text, names, expected):
    parsed = parse_reply(text, names)
    assert isinstance(parsed, ParsedReply)
    assert parsed.format in FORMATS
    assert isinstance(parsed.reasoning, str) and isinstance(parsed.answer, str)
    assert set(parsed.suggestion) <= set(names)
    assert not set(parsed.unknown) & set(names)
    if "error" in expected:
        assert parsed.error is not None, parsed
        assert expected["error"] in parsed.error
        assert parsed.suggestion == {}
        assert not parsed.ok
    else:
        assert parsed.error is None, parsed.error
        assert parsed.suggestion == expected["suggestion"]
        assert parsed.ok
    for key in ("unknown", "format", "reasoning", "answer"):
        if key in expected:
            assert getattr(parsed, key) == expected[key], key
    code = expected.get("code")
    if code is not None:
        proposed = parsed.suggestion[code["name"]]
        if code["error"] is None:
            source = validate_code(code["current"], proposed)
            assert source.endswith("\n") and not source.endswith("\n\n")
            assert "```" not in source
        else:
            with pytest.raises(CoercionError) as info:
                validate_code(code["current"], proposed)
            assert code["error"] in str(info.value)


def test_types_are_kept_as_sent():
    parsed = parse_reply('{"suggestion": {"a": "5", "b": 5, "c": 5.5, "d": false}}', list("abcd"))
    assert parsed.suggestion == {"a": "5", "b": 5, "c": 5.5, "d": False}
    assert type(parsed.suggestion["a"]) is str


def test_non_string_reasoning_is_text():
    parsed = parse_reply('{"reasoning": ["a", 1], "answer": 42, "suggestion": {}}', ["x"])
    assert parsed.reasoning == '["a", 1]'
    assert parsed.answer == "42"
    assert parsed.error is None and parsed.suggestion == {}


def test_non_str_input_does_not_raise():
    assert parse_reply(None, ["x"]).error == "the reply is empty"  # type: ignore[arg-type]
    assert parse_reply(b'{"suggestion": {"x": 1}}', ["x"]).suggestion == {"x": 1}  # type: ignore[arg-type]


def test_error_mentions_expected_format_and_names():
    parsed = parse_reply('{"reasoning": "hmm"}', ["alpha", "beta"])
    assert '"alpha": <new value>' in parsed.error
    parsed = parse_reply('{"suggestion": {"gamma": 1}}', ["alpha", "beta"])
    assert "'gamma'" in parsed.error and "'alpha'" in parsed.error


def test_pathological_braces_are_refused_cleanly():
    # (Their speed is measured in bench/bench_robust.py.)
    for text, fragment in [
        ("{" * 20_000, "contains no JSON object"),
        ('{"a": "' + "{" * 20_000, "truncated"),
        ("[" * 5_000 + "]" * 5_000, "nested too deeply"),
    ]:
        parsed = parse_reply(text, ["x"])
        assert parsed.suggestion == {} and fragment in parsed.error, parsed.error


# ------------------------------------------------------------------ property tests

NAMES = ["x", "prompt", "__code0", "str:1", "lr"]
TRICKY = [
    '"',
    "'",
    "\\",
    "\n",
    "\r\n",
    "\t",
    "{",
    "}",
    "[",
    "]",
    "```",
    "```json\n",
    "def f(x):",
    "class A:",
    "import os",
    "TERMINATE",
    '"suggestion": {',
    "<suggestion>",
    "null",
    "é",
    "🙂",
]
texts = st.lists(st.one_of(st.text(max_size=20), st.sampled_from(TRICKY)), max_size=8).map("".join)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
suggestions = st.dictionaries(st.sampled_from(NAMES), json_values, max_size=len(NAMES))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suggestion=suggestions, reasoning=texts, answer=texts, ascii_only=st.booleans())
def test_round_trip_json(suggestion, reasoning, answer, ascii_only):
    body = json.dumps(
        {"reasoning": reasoning, "answer": answer, "suggestion": suggestion},
        ensure_ascii=ascii_only,
    )
    for text, fmt in (
        (body, "json"),
        ("```json\n" + body + "\n```", "json-fenced"),
        ("```\n" + body + "\n```\nTERMINATE", "json-fenced"),
        ("Here is my answer:\n" + body + "\nHope it helps {or not}.", "json-embedded"),
        ("**" + body + "**", "json-embedded"),
    ):
        parsed = parse_reply(text, NAMES)
        assert parsed.error is None, (text, parsed.error)
        assert parsed.suggestion == suggestion
        assert parsed.reasoning == reasoning
        assert parsed.answer == answer
        assert parsed.format == fmt


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_no_internal_error_on_arbitrary_text(text):
    # parse_reply catches everything; what must not happen is that it has to: its
    # last-resort message means a reader crashed on this text.
    parsed = parse_reply(text, NAMES)
    assert isinstance(parsed, ParsedReply)
    assert not (parsed.error or "").startswith("could not read the reply"), parsed.error
    assert (parsed.error is None) or parsed.suggestion == {}
    assert set(parsed.suggestion) <= set(NAMES)


json_ish = st.lists(
    st.sampled_from(
        [
            *TRICKY,
            ":",
            ",",
            "x",
            "prompt",
            "'x'",
            '"x"',
            "True",
            "None",
            "5",
            "-1.5e3",
            "<reasoning>",
            "</reasoning>",
            "<variable><name>x</name><value>",
            "</value></variable>",
            "</suggestion>",
            "//",
            "#",
            " ",
            "\\u00",
            "\ufeff",
        ]
    )
    | st.text(alphabet=string.printable, max_size=5),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=json_ish)
def test_no_internal_error_on_json_like_text(text):
    parsed = parse_reply(text, NAMES)
    assert isinstance(parsed, ParsedReply)
    assert not (parsed.error or "").startswith("could not read the reply"), parsed.error
    assert parsed.format in FORMATS
    assert set(parsed.suggestion) <= set(NAMES)
