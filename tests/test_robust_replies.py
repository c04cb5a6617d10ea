"""Reliability: truncated, huge, odd-unicode and odd-number replies are refused or read
cleanly, with a reason that says what was wrong (issue 14, items 8-11)."""

from __future__ import annotations

import json

import pytest
from conftest import make_llm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trace_nb import node
from trace_nb.optim import OptoPrime
from trace_nb.optim.jsonish import Braces, repair_surrogates, top_spans
from trace_nb.optim.proposal import MAX_UNKNOWN_PROPOSALS, proposals_from_reply
from trace_nb.optim.reply import MAX_SEARCH_CHARS, parse_reply

NAMES = ["x", "prompt", "cfg", "b"]


def encodable(value) -> bool:
    """Every string inside ``value`` (keys included) can be written as UTF-8."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return True


# -- 8. truncated replies give nothing --------------------------------------------------

TRUNCATED = [
    '{"reasoning":"r","suggestion":{"cfg":{"x":1,"b":2},"prompt":"Be concise and',
    '{"reasoning":"r","suggestion":{"cfg":{"x":1,"b":2}',
    '{"reasoning":"r","suggestion":{"cfg":{"x":1,"b":2}}',  # the suggestion closed: cfg only
    '{"reasoning": "r", "suggestion": {"prompt": "a", "x": [1, {"b": 2}',
    'Sure!\n```json\n{"reasoning": "r", "suggestion": {"x": {"b": 1}, "prompt": "cut',
    '{"suggestion": {"x": 5, "prompt": "Be',
    "{'reasoning': 'r', 'suggestion': {'cfg': {'x': 1}, 'prompt': 'cut",
    "<suggestion><variable><name>x</name><value>5</value></variable>"
    "<variable><name>prompt</name><value>Be conc",
]


@pytest.mark.parametrize("text", TRUNCATED, ids=range(len(TRUNCATED)))
def test_truncated_replies_never_yield_fragments(text):
    parsed = parse_reply(text, NAMES)
    if text.endswith("}}"):
        assert parsed.suggestion == {"cfg": {"x": 1, "b": 2}}
        return
    assert parsed.suggestion == {}
    assert "truncated" in parsed.error and "max_tokens" in parsed.error


suggestion_values = st.recursive(
    st.integers(-5, 5) | st.text(alphabet="ab {}\"'", max_size=6) | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suggestion=st.dictionaries(st.sampled_from(NAMES), suggestion_values, min_size=1),
    reasoning=st.text(alphabet="ab {}\"'", max_size=8),
    data=st.data(),
)
def test_every_cut_inside_the_suggestion_gives_no_suggestion(suggestion, reasoning, data):
    text = json.dumps({"reasoning": reasoning, "suggestion": suggestion})
    opened = text.index('"suggestion": {') + len('"suggestion": ')
    closed = len(text) - 1  # the suggestion's own closing brace is the last-but-one char
    cut = data.draw(st.integers(opened + 1, closed - 1))
    parsed = parse_reply(text[:cut], NAMES)
    assert parsed.suggestion == {}, (text[:cut], parsed)
    # The complete reply reads back whole.
    assert parse_reply(text, NAMES).suggestion == suggestion


def test_truncated_reply_through_propose_changes_nothing(fake_server):
    x = node(1, name="trunc_x", trainable=True)
    (x * 2).backward("more")
    fake_server.add_replies('{"reasoning": "r", "suggestion": {"trunc_x": 3, "other": {"a": 1}')
    fake_server.add_replies('{"reasoning": "r", "suggestion": {"other": {"trunc_x": 3}, "trunc_x"')
    opt = OptoPrime([x], llm=make_llm(fake_server), repair=0)  # one reply per propose
    for _ in range(2):
        props = opt.propose()
        assert opt.apply(props) == [] and x.data == 1
        assert "truncated" in props[0].reason


# -- 9. bounded work ---------------------------------------------------------------------


def test_many_unknown_keys_become_one_summary_proposal(fake_server):
    x = node(1, name="many_x", trainable=True)
    (x + 1).backward("more")
    keys = {f"k{i}": i for i in range(20_000)}
    fake_server.add_replies(json.dumps({"reasoning": "r", "suggestion": {"many_x": 2, **keys}}))
    opt = OptoPrime([x], llm=make_llm(fake_server))
    props = opt.propose()
    assert [p.name for p in props] == ["many_x", None]
    assert props[0].valid
    assert "20,000 variables that do not exist" in props[1].reason and "'k0'" in props[1].reason
    assert len(props[1].reason) < 1000


def test_a_few_unknown_keys_keep_one_proposal_each():
    from trace_nb.graph import ParameterNode

    p = ParameterNode(1, name="few_x")
    parsed = parse_reply(json.dumps({"suggestion": {f"few_{i}": 1 for i in range(5)}}), ["few_x"])
    props = proposals_from_reply(parsed, {"few_x": p}, "")
    assert props[0].name is None and "names no trainable variable" in props[0].reason
    assert [q.name for q in props[1:]] == [f"few_{i}" for i in range(MAX_UNKNOWN_PROPOSALS)]
    assert all("no variable named" in q.reason for q in props[1:])


def test_long_non_json_replies_are_refused_without_searching():
    text = "Here is my idea: " + "x" * MAX_SEARCH_CHARS + ' {"suggestion": {"x": 1}}'
    parsed = parse_reply(text, NAMES)
    assert parsed.suggestion == {} and "not searched for JSON" in parsed.error
    # One long JSON document is still read.
    long_value = "y" * (5 * MAX_SEARCH_CHARS)
    parsed = parse_reply(json.dumps({"suggestion": {"prompt": long_value}}), NAMES)
    assert parsed.suggestion == {"prompt": long_value}


def test_brace_scanning_has_a_budget():
    text = ('{"a": "' + "{'" * 40) * 3000
    braces = Braces(text, budget=1000)
    top_spans(braces)
    assert braces.exhausted and braces.budget <= 0


def test_a_reply_exhausting_the_budget_says_so():
    text = '{"k": \'' + "{'" * 100_000
    parsed = parse_reply(text[: MAX_SEARCH_CHARS - 10], NAMES)
    assert parsed.suggestion == {} and parsed.error


def test_key_values_for_thousands_of_names_in_one_pass():
    names = [f"n{i}" for i in range(20_000)]
    parsed = parse_reply("I suggest:\nn19999: 5\nn3 = 'a'\nzzz: 1", names)
    assert parsed.suggestion == {"n19999": 5, "n3": "a"} and parsed.format == "key-value"


# -- 10. lone surrogates are repaired ------------------------------------------------------

SURROGATES = [
    ('{"suggestion": {"prompt": "a\\ud800b"}}', "a\ufffdb"),
    ('{"suggestion": {"prompt": "\\udfff"}}', "\ufffd"),
    ('{"suggestion": {"prompt": "\\ud83d\\ude00"}}', "\U0001f600"),  # a pair is one char
    ('{"suggestion": {"prompt": "\\\\ud800"}}', "\\ud800"),  # an escaped backslash: text
    ("{'suggestion': {'prompt': 'a\\ud800'}}", "a\ufffd"),
    ('prompt: "x\\ud800"', "x\ufffd"),
    ('{"suggestion": {"prompt": "lit\ud800eral"}}', "lit\ufffderal"),
    ('{"suggestion": {"prompt": "\\uD800\\uD800"}}', "\ufffd\ufffd"),
]


@pytest.mark.parametrize(("text", "expected"), SURROGATES, ids=range(len(SURROGATES)))
def test_lone_surrogates_are_repaired_at_parse_time(text, expected):
    parsed = parse_reply(text, NAMES)
    assert parsed.suggestion == {"prompt": expected}
    assert encodable(parsed.suggestion)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "\\ud800",
                "\\udc00",
                "\\ud83d\\ude00",
                "\\\\",
                "a",
                "\\u0041",
                "\\uDBFF",
                "\\U0000d800",
                '\\"',
            ]
        ),
        max_size=12,
    ).map("".join)
)
def test_parsed_strings_are_always_encodable(body):
    text = '{"reasoning": "' + body + '", "suggestion": {"prompt": "' + body + '"}}'
    parsed = parse_reply(text, NAMES)
    assert encodable(parsed.suggestion) and encodable(parsed.reasoning)
    assert encodable(repair_surrogates(text))


def test_a_surrogate_reply_applies_and_the_next_call_still_works(fake_server, tmp_path):
    p = node("start", name="sur_prompt", trainable=True)
    (p + "!").backward("better")
    fake_server.add_replies(
        '{"suggestion": {"sur_prompt": "bad \\ud800 char"}}', '{"suggestion": {}}'
    )
    opt = OptoPrime([p], llm=make_llm(fake_server, cache=tmp_path / "c.sqlite"), memory_size=2)
    (prop,) = opt.propose()
    opt.apply([prop])
    assert p.data == "bad \ufffd char"
    (p + "!").backward("again")
    opt.propose()  # the value is in the next prompt and the cache key: no UnicodeEncodeError


# -- 11. clear reasons ----------------------------------------------------------------------


def test_a_5000_digit_integer_is_too_large_not_missing_json(fake_server):
    x = node(1, name="big_x", trainable=True)
    (x + 1).backward("more")
    fake_server.add_replies('{"reasoning": "r", "suggestion": {"big_x": ' + "9" * 5000 + "}}")
    (prop,) = OptoPrime([x], llm=make_llm(fake_server)).propose()
    assert not prop.valid and "too large" in prop.reason and "JSON" not in prop.reason


def test_tool_call_replies_are_read(fake_server):
    x = node(1, name="tool_x", trainable=True)
    (x + 1).backward("more")
    arguments = json.dumps({"reasoning": "r", "suggestion": {"tool_x": 4}})
    fake_server.fault(
        "body",
        body={
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"type": "function", "function": {"name": "f", "arguments": arguments}}
                        ],
                    }
                }
            ]
        },
    )
    (prop,) = OptoPrime([x], llm=make_llm(fake_server)).propose()
    assert prop.valid and prop.new == 4


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("I cannot help with that.", "contains no JSON object"),
        ('{"suggestion": {"x": 1, "b": [' + "]" * 3, "truncated"),
        ("prose {" * (MAX_SEARCH_CHARS // 7 + 1), "not one valid JSON document"),
        ("[" * 5_000, "nested too deeply"),
        ('{"a": ' * 600 + "1" + "}" * 600, "has no 'suggestion'"),
    ],
)
def test_refusals_say_what_was_wrong(text, fragment):
    parsed = parse_reply(text, NAMES)
    assert parsed.suggestion == {} and fragment in parsed.error
    assert "None" not in parsed.error.replace("None)", "")


# -- values that would break later steps are refused at coercion -------------------------------


@pytest.mark.parametrize(
    ("current", "text", "fragment"),
    [
        ([1], '{"suggestion": {"x": ' + "[" * 150 + "]" * 150 + "}}", "nested more than"),
        ({"k": 1}, '{"suggestion": {"x": {"a": [1, NaN]}}}', "not a finite number"),
        ([1], '{"suggestion": {"x": [1, Infinity]}}', "not a finite number"),
        (None, '{"suggestion": {"x": [1e999]}}', "not a finite number"),
        ([1], '{"suggestion": {"x": "[' + "[" * 150 + "]" * 150 + ']"}}', "nested more than"),
        ([1], '{"suggestion": {"x": [' + ", ".join(["0"] * 100_001) + "]}}", "more than 100,000"),
    ],
    ids=[
        "deep-list",
        "nan-in-dict",
        "inf-in-list",
        "untyped-inf",
        "deep-list-in-string",
        "too-many-items",
    ],
)
def test_values_that_would_break_saving_or_prompts_are_refused(current, text, fragment):
    from trace_nb.graph import ParameterNode
    from trace_nb.optim.proposal import check

    parsed = parse_reply(text, ["x"])
    assert parsed.ok, parsed.error
    prop = check(ParameterNode(current, name="plain_x"), parsed.suggestion["x"])
    assert not prop.valid and fragment in prop.reason


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("```" + "a" * 5_000 + "`", "contains no JSON object"),
        ("<html>" + "<title>x" * 2_000, "HTML page"),
        ("<html><title>Bad   Gateway</title>", "page title: 'Bad Gateway'"),
    ],
    ids=["long-fence-line", "many-titles", "title"],
)
def test_regex_hot_spots_read_correctly(text, fragment):
    # (bench/bench_robust.py times these at 250,000 characters.)
    parsed = parse_reply(text, NAMES)
    assert parsed.suggestion == {} and fragment in parsed.error


def test_fenced_code_with_prose_is_still_rescued():
    from trace_nb.errors import CoercionError
    from trace_nb.optim.codecheck import validate_code

    code = "Here you go:\n```python\ndef f(x):\n    return 2\n```\nThanks!"
    assert validate_code("def f(x):\n    return x\n", code) == "def f(x):\n    return 2\n"
    with pytest.raises(CoercionError, match="not a definition of the function 'f'"):
        validate_code("def f(x):\n    return x\n", "```py\n" * 300)  # no def in it at all
