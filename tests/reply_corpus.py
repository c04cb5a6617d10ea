"""A corpus of LLM replies, well-formed and deformed, with what parse_reply must read.

Each case is ``(id, reply_text, names, expected)``; ``expected`` is a dict with either

* ``"suggestion"``: the exact suggestion dict (before coercion), implying ``error is None``;
* ``"error"``: a substring of the error reason ("" for any error), implying an empty
  suggestion;

and optionally ``"unknown"`` (exact), ``"format"``, ``"reasoning"``, ``"answer"`` (exact),
and ``"code"``: ``{"name": <var>, "current": <source>, "error": <substring> or None}``,
meaning ``validate_code(current, suggestion[var])`` must raise with that substring (or be
accepted when None).

Several replies imitate what GPT-4o and a 135M-parameter local model really send.
"""

from __future__ import annotations

import json
from typing import Any

Case = tuple[str, str, tuple[str, ...], dict[str, Any]]


def _reply(suggestion: Any, reasoning: str = "The output is wrong.", answer: str = "") -> str:
    return json.dumps({"reasoning": reasoning, "answer": answer, "suggestion": suggestion})


X = ("x",)
XY = ("x", "y")
CODE = ("__code0",)
F_SRC = "def f(x):\n    return x + 1\n"
FXY_SRC = "def f(x, y):\n    return x + y\n"
LONG = "lorem ipsum " * 850  # ~10k characters
HTML = (
    "<!DOCTYPE html>\n<html>\n<head><title>404 Not Found</title></head>\n"
    '<body><h1>Not Found</h1><script>var cfg = {"x": 1};</script></body>\n</html>\n'
)

CASES: list[Case] = [
    # ------------------------------------------------------------------ well formed
    (
        "plain-json",
        '{"reasoning": "x is too small", "answer": "", "suggestion": {"x": 5}}',
        X,
        {"suggestion": {"x": 5}, "format": "json", "reasoning": "x is too small"},
    ),
    (
        "plain-json-two-vars",
        _reply({"x": 3, "y": "be concise"}),
        XY,
        {"suggestion": {"x": 3, "y": "be concise"}, "format": "json"},
    ),
    (
        "pretty-printed-json",
        json.dumps({"reasoning": "r", "answer": "a", "suggestion": {"x": [1, 2]}}, indent=2),
        X,
        {"suggestion": {"x": [1, 2]}, "answer": "a", "format": "json"},
    ),
    (
        "empty-suggestion-means-no-changes",
        _reply({}),
        XY,
        {"suggestion": {}, "format": "json"},
    ),
    (
        "empty-suggestion-list",
        _reply([]),
        XY,
        {"suggestion": {}},
    ),
    # ------------------------------------------------------------------ fences and prose
    (
        "fenced-json",
        "```json\n" + _reply({"x": 5}) + "\n```",
        X,
        {"suggestion": {"x": 5}, "format": "json-fenced"},
    ),
    (
        "fenced-bare",
        "```\n" + _reply({"x": 5}) + "\n```",
        X,
        {"suggestion": {"x": 5}, "format": "json-fenced"},
    ),
    (
        "fenced-with-prose-around",
        "Here is my suggestion:\n\n```json\n"
        + json.dumps({"reasoning": "r", "suggestion": {"y": "new"}}, indent=2)
        + "\n```\n\nLet me know if this helps!",
        XY,
        {"suggestion": {"y": "new"}, "format": "json-fenced", "reasoning": "r"},
    ),
    (
        "fenced-inline-one-line",
        'Answer: ```json {"suggestion": {"x": 2}}```',
        X,
        {"suggestion": {"x": 2}},
    ),
    (
        "json-in-prose",
        "Sure! Based on the feedback I propose " + _reply({"x": 7}) + " Hope this helps.",
        X,
        {"suggestion": {"x": 7}, "format": "json-embedded"},
    ),
    (
        "two-fenced-blocks-code-then-json",
        "First the new code:\n```python\ndef f(x):\n    return {'a': x}\n```\n"
        "Then the reply:\n```json\n" + _reply({"x": 1}) + "\n```",
        X,
        {"suggestion": {"x": 1}, "format": "json-fenced"},
    ),
    (
        "two-json-fences-first-without-suggestion",
        '```json\n{"reasoning": "thinking"}\n```\n```json\n{"suggestion": {"x": 9}}\n```',
        X,
        {"suggestion": {"x": 9}, "format": "json-fenced"},
    ),
    (
        "two-objects-in-prose-second-has-suggestion",
        'My analysis: {"reasoning": "x too low"} and so: {"suggestion": {"x": 4}}',
        X,
        {"suggestion": {"x": 4}, "format": "json-embedded"},
    ),
    (
        "markdown-bold-around-json",
        "**" + _reply({"x": 1}) + "**",
        X,
        {"suggestion": {"x": 1}, "format": "json-embedded"},
    ),
    (
        "json-fence-without-closing",
        "```json\n" + _reply({"x": 6}) + "\n",
        X,
        {"suggestion": {"x": 6}, "format": "json-fenced"},
    ),
    (
        "extra-closing-brace-tiny-model",
        '{"reasoning": "The value is wrong", "suggestion": {"x": 5}}}}',
        X,
        {"suggestion": {"x": 5}, "format": "json-embedded", "reasoning": "The value is wrong"},
    ),
    (
        "repeated-json-tiny-model",
        '{"suggestion": {"x": 5}}\n{"suggestion": {"x": 5}}\n{"suggestion": {"x": 5',
        X,
        {"suggestion": {"x": 5}},
    ),
    # ------------------------------------------------------------------ lenient syntax
    (
        "single-quoted-python-dict",
        "{'reasoning': 'use more', 'answer': '', 'suggestion': {'x': 10, 'y': 'it\\'s'}}",
        XY,
        {"suggestion": {"x": 10, "y": "it's"}, "format": "python-literal"},
    ),
    (
        "python-true-false-none",
        '{"reasoning": "r", "suggestion": {"x": True, "y": None}}',
        XY,
        {"suggestion": {"x": True, "y": None}, "format": "python-literal"},
    ),
    (
        "mixed-quotes-and-json-literals",
        "{'reasoning': 'r', \"suggestion\": {'x': true, 'y': null}}",
        XY,
        {"suggestion": {"x": True, "y": None}, "format": "python-literal"},
    ),
    (
        "python-triple-quoted-code",
        "{'suggestion': {'__code0': '''def f(x):\n    return x * 2\n'''}}",
        CODE,
        {
            "suggestion": {"__code0": "def f(x):\n    return x * 2\n"},
            "format": "python-literal",
            "code": {"name": "__code0", "current": F_SRC, "error": None},
        },
    ),
    (
        "json-true-false-null",
        '{"suggestion": {"x": true, "y": null}}',
        XY,
        {"suggestion": {"x": True, "y": None}, "format": "json"},
    ),
    (
        "raw-newline-inside-string",
        '{"reasoning": "line one\nline two", "suggestion": {"y": "first\nsecond"}}',
        XY,
        {
            "suggestion": {"y": "first\nsecond"},
            "format": "json-lenient",
            "reasoning": "line one\nline two",
        },
    ),
    (
        "tab-inside-string",
        '{"reasoning": "r", "suggestion": {"y": "a\tb"}}',
        XY,
        {"suggestion": {"y": "a\tb"}, "format": "json-lenient"},
    ),
    (
        "trailing-commas",
        '{"reasoning": "r", "suggestion": {"x": 1, "y": [1, 2,],},}',
        XY,
        {"suggestion": {"x": 1, "y": [1, 2]}, "format": "json-lenient"},
    ),
    (
        "comments-in-json",
        '{\n  // why\n  "reasoning": "r",\n  "suggestion": {"x": 2} # done\n}',
        X,
        {"suggestion": {"x": 2}, "format": "json-lenient"},
    ),
    (
        "invalid-escape-in-regex-string",
        '{"suggestion": {"y": "^\\d+\\s*$"}}',
        XY,
        {"suggestion": {"y": "^\\d+\\s*$"}, "format": "json-lenient"},
    ),
    (
        "raw-newlines-code-in-json-string",
        '{"reasoning": "r", "suggestion": {"__code0": "def f(x):\n    return x - 1\n"}}',
        CODE,
        {
            "suggestion": {"__code0": "def f(x):\n    return x - 1\n"},
            "format": "json-lenient",
            "code": {"name": "__code0", "current": F_SRC, "error": None},
        },
    ),
    # ------------------------------------------------------------------ values
    (
        "number-as-string",
        _reply({"x": "5"}),
        X,
        {"suggestion": {"x": "5"}},
    ),
    (
        "float-for-int",
        _reply({"x": 5.0}),
        X,
        {"suggestion": {"x": 5.0}},
    ),
    (
        "nested-list-dict-values",
        _reply({"x": {"a": [1, 2, {"b": None}], "c": {"d": "e"}}, "y": [[1], [2, 3]]}),
        XY,
        {"suggestion": {"x": {"a": [1, 2, {"b": None}], "c": {"d": "e"}}, "y": [[1], [2, 3]]}},
    ),
    (
        "unicode-and-emoji",
        json.dumps({"suggestion": {"y": "Réponds en français 🇫🇷 ✨ — 日本語"}}, ensure_ascii=False),
        XY,
        {"suggestion": {"y": "Réponds en français 🇫🇷 ✨ — 日本語"}},
    ),
    (
        "unicode-escapes",
        '{"suggestion": {"y": "caf\\u00e9 \\ud83d\\ude00"}}',
        XY,
        {"suggestion": {"y": "café 😀"}},
    ),
    (
        "very-long-string-value",
        _reply({"y": LONG}),
        XY,
        {"suggestion": {"y": LONG}},
    ),
    (
        "very-long-string-value-in-prose",
        "Here you go:\n" + _reply({"y": LONG}) + "\nThanks.",
        XY,
        {"suggestion": {"y": LONG}, "format": "json-embedded"},
    ),
    (
        "escaped-quotes-and-backslashes",
        _reply({"y": 'say "hi" \\ and {not a brace}'}),
        XY,
        {"suggestion": {"y": 'say "hi" \\ and {not a brace}'}},
    ),
    (
        "deeply-nested-braces-in-strings-in-prose",
        "Result: "
        + json.dumps({"reasoning": "{{{ }} {", "suggestion": {"y": '}}}{{ {"x": 1} }'}})
        + " end }",
        XY,
        {"suggestion": {"y": '}}}{{ {"x": 1} }'}, "format": "json-embedded"},
    ),
    (
        "reasoning-with-braces",
        _reply({"x": 2}, reasoning="the template {name} and {} and {{x}} are fine"),
        X,
        {"suggestion": {"x": 2}, "reasoning": "the template {name} and {} and {{x}} are fine"},
    ),
    (
        "prose-braces-before-json",
        "Use a template like {name} here. " + _reply({"x": 3}),
        X,
        {"suggestion": {"x": 3}, "format": "json-embedded"},
    ),
    # ------------------------------------------------------------------ suggestion shapes
    (
        "missing-suggestion",
        '{"reasoning": "I think x is fine", "answer": "42"}',
        X,
        {"error": "the reply has no 'suggestion'", "reasoning": "I think x is fine"},
    ),
    (
        "suggestion-null",
        '{"reasoning": "nothing to do", "suggestion": null}',
        X,
        {"error": "'suggestion' is null"},
    ),
    (
        "suggestion-as-list-of-name-value",
        _reply([{"name": "x", "value": 3}, {"name": "y", "value": "hi"}]),
        XY,
        {"suggestion": {"x": 3, "y": "hi"}},
    ),
    (
        "suggestion-as-list-of-single-key-dicts",
        _reply([{"x": 3}, {"y": "hi"}]),
        XY,
        {"suggestion": {"x": 3, "y": "hi"}},
    ),
    (
        "suggestion-list-of-junk",
        _reply([1, 2, 3]),
        XY,
        {"error": "is a list whose items are not"},
    ),
    (
        "suggestion-is-a-string",
        '{"reasoning": "r", "suggestion": "x = 5"}',
        X,
        {"error": "'suggestion' is a string ('x = 5')"},
    ),
    (
        "suggestion-is-double-encoded-json",
        '{"reasoning": "r", "suggestion": "{\\"x\\": 5}"}',
        X,
        {"suggestion": {"x": 5}},
    ),
    (
        "suggestion-is-a-number",
        '{"suggestion": 5}',
        X,
        {"error": "'suggestion' is an int (5)"},
    ),
    (
        "extra-top-level-keys",
        json.dumps({"reasoning": "r", "confidence": 0.9, "suggestion": {"x": 1}, "notes": ["a"]}),
        X,
        {"suggestion": {"x": 1}, "unknown": {}},
    ),
    (
        "capitalised-keys",
        '{"Reasoning": "r", "Answer": "a", "Suggestion": {"x": 1}}',
        X,
        {"suggestion": {"x": 1}, "reasoning": "r", "answer": "a"},
    ),
    (
        "top-level-known-names-without-suggestion",
        '{"reasoning": "raise it", "x": 4}',
        XY,
        {"suggestion": {"x": 4}, "reasoning": "raise it"},
    ),
    (
        "bare-object-of-known-names",
        '{"x": 1, "y": "b"}',
        XY,
        {"suggestion": {"x": 1, "y": "b"}, "format": "json"},
    ),
    (
        "wrapper-object",
        json.dumps({"response": {"reasoning": "r", "suggestion": {"x": 8}}}),
        X,
        {"suggestion": {"x": 8}, "reasoning": "r"},
    ),
    (
        "hallucinated-variable-only",
        _reply({"z": 1}),
        X,
        {"error": "names no trainable variable", "unknown": {"z": 1}},
    ),
    (
        "mixed-known-unknown",
        _reply({"x": 1, "learning_rate": 0.1}),
        XY,
        {"suggestion": {"x": 1}, "unknown": {"learning_rate": 0.1}},
    ),
    (
        "keys-with-whitespace",
        '{"suggestion": {" x ": 1, "y\\n": 2}}',
        XY,
        {"suggestion": {"x": 1, "y": 2}, "unknown": {}},
    ),
    (
        "keys-quoted-oddly",
        '{"suggestion": {"\'x\'": 1, "`y`": 2}}',
        XY,
        {"suggestion": {"x": 1, "y": 2}},
    ),
    (
        "exact-key-wins-over-stripped",
        '{"suggestion": {" x": 2, "x": 1}}',
        X,
        {"suggestion": {"x": 1}, "unknown": {" x": 2}},
    ),
    (
        "case-differs-is-not-guessed",
        _reply({"X": 1}),
        X,
        {"error": "names no trainable variable", "unknown": {"X": 1}},
    ),
    (
        "python-int-keys",
        "{'suggestion': {1: 2, 'x': 3}}",
        X,
        {"suggestion": {"x": 3}, "unknown": {"1": 2}},
    ),
    (
        "special-characters-in-names",
        _reply({"str:0": "a", "__code0": "def f(x):\n    return x\n"}),
        ("str:0", "__code0"),
        {"suggestion": {"str:0": "a", "__code0": "def f(x):\n    return x\n"}},
    ),
    # ------------------------------------------------------------------ code values
    (
        "code-valid",
        _reply({"__code0": "def f(x):\n    return x * 3\n"}),
        CODE,
        {
            "suggestion": {"__code0": "def f(x):\n    return x * 3\n"},
            "code": {"name": "__code0", "current": F_SRC, "error": None},
        },
    ),
    (
        "code-syntax-error",
        _reply({"__code0": "def f(x):\n    return x +\n"}),
        CODE,
        {
            "suggestion": {"__code0": "def f(x):\n    return x +\n"},
            "code": {"name": "__code0", "current": F_SRC, "error": "line 2"},
        },
    ),
    (
        "code-renames-function",
        _reply({"__code0": "def g(x):\n    return x\n"}),
        CODE,
        {
            "suggestion": {"__code0": "def g(x):\n    return x\n"},
            "code": {
                "name": "__code0",
                "current": F_SRC,
                "error": "defines 'g' but the parameter is the function 'f'; keep the name",
            },
        },
    ),
    (
        "code-fences-inside-json-string",
        _reply({"__code0": "```python\ndef f(x):\n    return x * 2\n```"}),
        CODE,
        {
            "suggestion": {"__code0": "```python\ndef f(x):\n    return x * 2\n```"},
            "format": "json",
            "code": {"name": "__code0", "current": F_SRC, "error": None},
        },
    ),
    (
        "code-fences-inside-json-inside-fence",
        "```json\n" + _reply({"__code0": "```python\ndef f(x):\n    return 0\n```"}) + "\n```",
        CODE,
        {
            "suggestion": {"__code0": "```python\ndef f(x):\n    return 0\n```"},
            "code": {"name": "__code0", "current": F_SRC, "error": None},
        },
    ),
    (
        "code-changed-signature-required-param",
        _reply({"__code0": "def f(x, y):\n    return x + y\n"}),
        CODE,
        {
            "suggestion": {"__code0": "def f(x, y):\n    return x + y\n"},
            "code": {"name": "__code0", "current": F_SRC, "error": "'y' needs a default"},
        },
    ),
    (
        "code-removed-param",
        _reply({"__code0": "def f(x):\n    return x\n"}),
        CODE,
        {
            "suggestion": {"__code0": "def f(x):\n    return x\n"},
            "code": {"name": "__code0", "current": FXY_SRC, "error": "'y' was removed"},
        },
    ),
    (
        "code-new-param-with-default",
        _reply({"__code0": "def f(x, scale=2):\n    return x * scale\n"}),
        CODE,
        {
            "suggestion": {"__code0": "def f(x, scale=2):\n    return x * scale\n"},
            "code": {"name": "__code0", "current": F_SRC, "error": None},
        },
    ),
    # ------------------------------------------------------------------ TERMINATE
    (
        "terminate-alone",
        "TERMINATE",
        X,
        {"error": "the model answered TERMINATE (no changes suggested)"},
    ),
    (
        "terminate-bold",
        "**TERMINATE**",
        X,
        {"error": "answered TERMINATE"},
    ),
    (
        "terminate-after-prose",
        "The output is already correct, nothing to change.\nTERMINATE",
        X,
        {"error": "answered TERMINATE"},
    ),
    (
        "terminate-as-json-answer-without-suggestion",
        '{"reasoning": "all good", "answer": "TERMINATE"}',
        X,
        {"error": "answered TERMINATE", "reasoning": "all good"},
    ),
    (
        "terminate-in-reasoning-with-suggestion",
        _reply({"x": 2}, reasoning="I should not TERMINATE yet; x must grow. TERMINATE"),
        X,
        {"suggestion": {"x": 2}},
    ),
    (
        "terminate-as-answer-with-suggestion",
        _reply({"x": 2}, answer="TERMINATE"),
        X,
        {"suggestion": {"x": 2}, "answer": "TERMINATE"},
    ),
    (
        "terminate-after-json",
        _reply({"x": 3}) + "\nTERMINATE",
        X,
        {"suggestion": {"x": 3}},
    ),
    (
        "terminate-as-suggestion-value",
        '{"reasoning": "done", "suggestion": "TERMINATE"}',
        X,
        {"error": "answered TERMINATE"},
    ),
    (
        "terminate-as-a-value",
        _reply({"y": "TERMINATE"}),
        XY,
        {"suggestion": {"y": "TERMINATE"}},
    ),
    # ------------------------------------------------------------------ not a reply
    ("empty-reply", "", X, {"error": "the reply is empty"}),
    ("whitespace-only", " \n\t \r\n ", X, {"error": "the reply is empty"}),
    (
        "html-error-page",
        HTML,
        X,
        {"error": "the reply is an HTML page, not JSON (was the base URL right?)"},
    ),
    (
        "plain-prose",
        "I am sorry, but I cannot help with that request.",
        X,
        {"error": "contains no JSON"},
    ),
    (
        "api-error-object",
        '{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}',
        X,
        {"error": "API error, not a suggestion: 'Incorrect API key provided'"},
    ),
    (
        "json-number",
        "42",
        X,
        {"error": "JSON number"},
    ),
    (
        "json-array-of-scalars",
        "[1, 2, 3]",
        X,
        {"error": "JSON array"},
    ),
    (
        "json-array-holding-the-reply",
        "[" + _reply({"x": 1}) + "]",
        X,
        {"suggestion": {"x": 1}, "format": "json"},
    ),
    (
        "json-array-of-name-value-pairs",
        '[{"name": "x", "value": 4}]',
        X,
        {"suggestion": {"x": 4}},
    ),
    (
        "json-string-literal-reply",
        json.dumps(_reply({"x": 11})),
        X,
        {"suggestion": {"x": 11}},
    ),
    (
        "json-string-literal-prose",
        '"just a sentence"',
        X,
        {"error": "contains no JSON"},
    ),
    # ------------------------------------------------------------------ truncated
    (
        "truncated-in-suggestion",
        '{"reasoning": "r", "suggestion": {"x": 5, "y": "an unfinished str',
        XY,
        {"error": "truncated", "reasoning": "r"},
    ),
    (
        "truncated-in-reasoning",
        '{"reasoning": "The output is wrong because the value of x is',
        XY,
        {"error": "truncated"},
    ),
    (
        "truncated-after-suggestion-closed",
        '{"reasoning": "r", "suggestion": {"x": 5}',
        XY,
        {"suggestion": {"x": 5}, "reasoning": "r"},
    ),
    # ------------------------------------------------------------------ encodings
    (
        "bom-prefix",
        "\ufeff" + _reply({"x": 1}),
        X,
        {"suggestion": {"x": 1}, "format": "json"},
    ),
    (
        "crlf-line-endings",
        json.dumps({"reasoning": "r", "suggestion": {"x": 1}}, indent=2).replace("\n", "\r\n"),
        X,
        {"suggestion": {"x": 1}, "format": "json"},
    ),
    (
        "crlf-fenced",
        "```json\r\n" + _reply({"x": 1}) + "\r\n```\r\n",
        X,
        {"suggestion": {"x": 1}, "format": "json-fenced"},
    ),
    # ------------------------------------------------------------------ XML
    (
        "xml-variable-pairs",
        "<reasoning>x is too small</reasoning>\n<answer></answer>\n<suggestion>\n"
        "<variable>\n<name>x</name>\n<value>5</value>\n</variable>\n"
        "<variable><name>y</name><value>Be concise.</value></variable>\n</suggestion>",
        XY,
        {
            "suggestion": {"x": "5", "y": "Be concise."},
            "format": "xml",
            "reasoning": "x is too small",
        },
    ),
    (
        "xml-variable-code-value",
        "<reasoning>r</reasoning><suggestion><variable><name>__code0</name><value>\n"
        "    def f(x):\n        return x * 4\n</value></variable></suggestion>",
        CODE,
        {
            "suggestion": {"__code0": "def f(x):\n    return x * 4"},
            "format": "xml",
            "code": {"name": "__code0", "current": F_SRC, "error": None},
        },
    ),
    (
        "xml-child-tags",
        "<reasoning>r</reasoning>\n<suggestion>\n  <x>5</x>\n  <y>short</y>\n</suggestion>",
        XY,
        {"suggestion": {"x": "5", "y": "short"}, "format": "xml"},
    ),
    (
        "xml-json-inside-suggestion",
        '<reasoning>r</reasoning>\n<suggestion>{"x": 5}</suggestion>',
        X,
        # The embedded-object reader (step 3) comes before the XML one (step 5).
        {"suggestion": {"x": 5}, "format": "json-embedded", "reasoning": "r"},
    ),
    (
        "xml-child-code-with-braces",
        "<reasoning>r</reasoning>\n<suggestion>\n<__code0>\ndef f(x):\n"
        '    return {"a": x}\n</__code0>\n</suggestion>',
        CODE,
        {
            "suggestion": {"__code0": 'def f(x):\n    return {"a": x}'},
            "format": "xml",
            "code": {"name": "__code0", "current": F_SRC, "error": None},
        },
    ),
    (
        "xml-variables-without-wrapper",
        "<variable><name>x</name><value><![CDATA[ 3 ]]></value></variable>",
        X,
        {"suggestion": {"x": "3"}, "format": "xml"},
    ),
    (
        "xml-reasoning-only",
        "<reasoning>everything is fine</reasoning>",
        X,
        {"error": "the reply has no 'suggestion'", "format": "xml"},
    ),
    (
        "xml-unknown-child",
        "<suggestion><z>1</z></suggestion>",
        X,
        {"error": "names no trainable variable", "unknown": {"z": "1"}},
    ),
    # ------------------------------------------------------------------ key-value
    (
        "key-value-lines",
        'x: 5\ny: "hello"',
        XY,
        {"suggestion": {"x": 5, "y": "hello"}, "format": "key-value"},
    ),
    (
        "key-value-quoted-in-prose",
        'I would set "x": 7, and "y": "abc". That should do.',
        XY,
        {"suggestion": {"x": 7, "y": "abc"}, "format": "key-value"},
    ),
    (
        "key-value-ignores-unknown-names",
        "learning_rate: 0.5\nx = 2",
        X,
        {"suggestion": {"x": 2}, "format": "key-value", "unknown": {}},
    ),
]
