"""Reliability: LLM code is checked by compiling it, the check is bounded, and nothing
but constants runs when approved code is defined (issue 14, items 1-3 and 6)."""

from __future__ import annotations

import json

import pytest
from conftest import make_llm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trace_nb import bundle, node
from trace_nb.errors import CoercionError
from trace_nb.optim import OptoPrime
from trace_nb.optim.codecheck import MAX_CODE_CHARS, MAX_CODE_DEPTH, validate_code, validate_source

F = "def f(x):\n    return x\n"


def refused(proposed: str, current: str = F) -> str:
    with pytest.raises(CoercionError) as info:
        validate_code(current, proposed)
    return info.value.reason


# -- 1. compile, not only parse ------------------------------------------------------

COMPILE_ERRORS = {
    "duplicate-argument": ("def f(x, x):\n    return x\n", "duplicate argument 'x'"),
    "unbound-nonlocal": ("def f(x):\n    nonlocal y\n    return x\n", "no binding for nonlocal"),
    "future-braces": ("from __future__ import braces\ndef f(x):\n    return x\n", "not a chance"),
    "late-future": (
        "import os\nfrom __future__ import annotations\ndef f(x):\n    return x\n",
        "from __future__ imports must occur",
    ),
    "await-outside-async": ("def f(x):\n    return await x\n", "outside async function"),
    "break-outside-loop": ("def f(x):\n    break\n", "'break' outside loop"),
    "return-in-class-level": (
        "def f(x):\n    class A:\n        return 1\n    return x\n",
        "'return' outside function",
    ),
    "global-after-use": (
        "def f(x):\n    y = 1\n    global y\n    return x\n",
        "assigned to before global declaration",
    ),
    "nonlocal-at-function-level-param": (
        "def f(x):\n    def g():\n        nonlocal z\n    return x\n",
        "no binding for nonlocal 'z'",
    ),
    "starred-assignment-twice": (
        "def f(x):\n    *a, *b = x\n    return a\n",
        "multiple starred expressions",
    ),
}


@pytest.mark.parametrize("case", list(COMPILE_ERRORS))
def test_code_that_parses_but_does_not_compile_is_refused(case):
    code, fragment = COMPILE_ERRORS[case]
    message = refused(code)
    assert "does not compile" in message and fragment in message
    assert "line None" not in message


def test_syntax_errors_without_a_line_never_say_line_none():
    message = refused("def f(x):\n    return x\x00\n")
    assert "line None" not in message and "NUL" in message


# -- 2. bounded, and never crashing ----------------------------------------------------

HUGE = {
    "unary-chain": "def f(x):\n    return " + "-" * 100_000 + "x\n",
    "attribute-chain": "def f(x):\n    return x" + ".a" * 50_000 + "\n",
    "call-chain": "def f(x):\n    return x" + "()" * 30_000 + "\n",
    "nested-lists": "def f(x):\n    return " + "[" * 5_000 + "]" * 5_000 + "\n",
    "nested-150-lists": "def f(x):\n    return " + "[" * 150 + "x" + "]" * 150 + "\n",
    "nested-subscripts": "def f(x):\n    return x" + "[0]" * 3_000 + "\n",
    "binop-chain": "def f(x):\n    return " + "x + " * 60_000 + "x\n",
    "too-long": "def f(x):\n    return x\n" + "# comment\n" * (MAX_CODE_CHARS // 10 + 1),
    "many-functions": "".join(f"def g{i}():\n    pass\n" for i in range(20_000)),
}


@pytest.mark.parametrize("case", list(HUGE))
def test_huge_or_deep_code_is_refused_with_a_reason(case):
    message = refused(HUGE[case])
    assert any(
        word in message
        for word in ("nested", "too large", "too long", "characters long", "defines", "levels deep")
    ), message


def test_moderate_nesting_is_still_accepted():
    body = "(" * 20 + "x" + ")" * 20
    assert validate_code(F, f"def f(x):\n    return {body}\n")
    assert MAX_CODE_DEPTH >= 50


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(
        alphabet=st.sampled_from(list("def f(x):\n return-+*[]{}().a,=_'\"\\#@ ")), max_size=300
    )
)
def test_validation_only_ever_raises_coercion_error(text):
    try:
        out = validate_code(F, text)
    except CoercionError as e:
        assert e.reason and "line None" not in e.reason
    else:
        compile(out, "<checked>", "exec")  # what passes also compiles


# -- 3. nothing runs at definition time ------------------------------------------------

DEFINITION_TIME = {
    "default-call": ("def f(x, _=open('/etc/passwd')):\n    return x\n", "default value"),
    "default-lambda": ("def f(x, key=lambda v: v):\n    return x\n", "default value"),
    "kwonly-default-call": (
        "def f(x, *, n=__import__('os').system('true')):\n    return x\n",
        "default value",
    ),
    "default-comprehension": (
        "def f(x, y=[i for i in range(10**9)]):\n    return x\n",
        "default value",
    ),
    "default-walrus": ("def f(x, y=(z := 1)):\n    return x\n", "default value"),
    "annotation-call": ("def f(x: print('pwned')):\n    return x\n", "annotation of 'x'"),
    "return-annotation-call": ("def f(x) -> exec('1'):\n    return x\n", "annotation of 'return'"),
    "vararg-annotation": ("def f(x, *a: input()):\n    return x\n", "annotation of 'a'"),
    "new-decorator": ("@functools.cache\ndef f(x):\n    return x\n", "decorator"),
    "decorator-call": ("@(lambda g: g)\ndef f(x):\n    return x\n", "decorator"),
    "top-level-call": ("import os\nos.system('true')\ndef f(x):\n    return x\n", "function call"),
    "top-level-loop": ("while True:\n    pass\ndef f(x):\n    return x\n", "'while' statement"),
    "top-level-assign-call": (
        "X = open('/etc/passwd').read()\ndef f(x):\n    return x\n",
        "not a constant",
    ),
    "top-level-annotated-call": ("X: print(1) = 3\ndef f(x):\n    return x\n", "not a constant"),
    "top-level-with": ("with open('x') as fh:\n    pass\ndef f(x):\n    return x\n", "'with'"),
    "top-level-try": (
        "try:\n    import os\nexcept Exception:\n    pass\ndef f(x):\n    return x\n",
        "'try'",
    ),
    "class-beside": ("class A:\n    print(1)\ndef f(x):\n    return x\n", "a class 'A'"),
    "aug-assign": ("X = 1\nX += 2\ndef f(x):\n    return x\n", "not a constant"),
    "del": ("X = 1\ndel X\ndef f(x):\n    return x\n", "'delete'"),
}


@pytest.mark.parametrize("case", list(DEFINITION_TIME))
def test_definitions_that_would_run_code_are_refused(case):
    code, fragment = DEFINITION_TIME[case]
    message = refused(code)
    assert fragment in message, message
    assert "run" in message or "only define" in message or "decorator" in message


@pytest.mark.parametrize(
    "code",
    [
        "def f(x, y=None, z=-1, w=(1, 'a'), v=1e3, u=b'x', t=..., s=frozenset()):\n    return x\n",
        "def f(x: int, y: list[str] | None = None, *a: int, **k: 'str') -> dict[str, int]:\n"
        "    return x\n",
        "import math\nfrom os import path as p\nLIMIT: int = 3\nNAMES = ('a', 'b')\n"
        "def f(x):\n    '''Doc.'''\n    return math.floor(x)\n",
        "def f(x, sep=SEP):\n    return x\n",  # a bare name: a lookup runs nothing
    ],
    ids=["constant-defaults", "type-annotations", "imports-and-constants", "name-default"],
)
def test_inert_definitions_are_accepted(code):
    if "frozenset()" in code:  # a call, even of a builtin, is refused
        assert "default value" in refused(code)
    else:
        assert validate_code(F, code) == code


def test_current_non_constant_defaults_may_be_kept():
    current = "def f(x, opts=dict(a=1)):\n    return x\n"
    assert validate_code(current, "def f(x, opts=dict(a=1)):\n    return x + 1\n")
    assert "default value" in refused("def f(x, opts=dict(a=2)):\n    return x\n", current)


def test_refused_code_never_runs_through_propose(fake_server, tmp_path):
    marker = tmp_path / "ran"

    @bundle(trainable=True)
    def shape(v):
        return v

    x = node(3, name="robust_code_in")
    shape(x).backward("make it bigger")
    evil = f"def shape(v, _=open({str(marker)!r}, 'w')):\n    return v * 2\n"
    top = f"open({str(marker)!r}, 'w')\ndef shape(v):\n    return v * 2\n"
    body = f"def shape(v):\n    open({str(marker)!r}, 'w')\n    return v * 2\n"
    name = shape.parameter.name
    for code in (evil, top, body):
        fake_server.add_replies(json.dumps({"reasoning": "r", "suggestion": {name: code}}))
    opt = OptoPrime([shape.parameter], llm=make_llm(fake_server), repair=0)  # one reply each
    before = shape.parameter.data
    for _ in range(2):
        (prop,) = opt.propose()
        assert not prop.valid and "run" in prop.reason
        assert opt.apply([prop]) == [] and shape.parameter.data == before
    (prop,) = opt.propose()  # a body only runs when called: valid, and still not run
    assert prop.valid and prop.status == "pending"
    assert not marker.exists()


# -- 6. code read from files ------------------------------------------------------------


def test_validate_source_refuses_decorators_and_other_names_without_a_current():
    assert (
        validate_source("def g(a, b=2):\n    return a\n", "g") == "def g(a, b=2):\n    return a\n"
    )
    for code, fragment in [
        ("@wrap\ndef g(a):\n    return a\n", "decorator"),
        ("def h(a):\n    return a\n", "'h' but the parameter is the function 'g'"),
        ("import os\nos.system('x')\ndef g(a):\n    return a\n", "function call"),
        (42, "expected the new code as a str"),
    ]:
        with pytest.raises(CoercionError, match="the saved code of 'g' is refused") as info:
            validate_source(code, "g")
        assert fragment in info.value.reason


def test_validate_source_with_a_current_function_checks_the_signature():
    with pytest.raises(CoercionError, match="the parameter 'y' was removed"):
        validate_source("def g(x):\n    return x\n", "g", "def g(x, y):\n    return x\n")


def test_any_failure_of_the_check_itself_is_a_reason():
    class Unreadable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(CoercionError, match="could not be checked"):
        validate_code(Unreadable(), F)


@pytest.mark.parametrize(
    "code",
    [
        "def f(x):\n    return x\nf = 5\n",
        "f = 5\ndef f(x):\n    return x\n",
        "from os import path as f\ndef f(x):\n    return x\n",
        "import f\ndef f(x):\n    return x\n",
    ],
    ids=["constant-after", "constant-before", "import-as", "import"],
)
def test_rebinding_the_function_name_is_refused(code):
    assert "binds the name 'f' again" in refused(code)


def test_top_level_imports_must_be_installed():
    assert validate_code(
        F, "import json\nfrom os import path\nimport xml.dom\ndef f(x):\n    return x\n"
    )
    assert "imports 'no_such_module_xyz'" in refused(
        "import no_such_module_xyz\ndef f(x):\n    return x\n"
    )
    assert "imports 'no_such_pkg_xyz.sub'" in refused(
        "from no_such_pkg_xyz.sub import thing\ndef f(x):\n    return x\n"
    )
    assert "relative import" in refused("from . import sibling\ndef f(x):\n    return x\n")
    # Inside the body an import only runs when called: not checked here.
    assert validate_code(F, "def f(x):\n    import no_such_module_xyz\n    return x\n")


def test_the_current_functions_own_annotations_may_be_kept():
    current = "def f(x: Annotated[int, Field(gt=0)]) -> int:\n    return x\n"
    assert validate_code(current, "def f(x: Annotated[int, Field(gt=0)]) -> int:\n    return 2\n")
    assert "annotation of 'x'" in refused(
        "def f(x: Annotated[int, Field(gt=1)]):\n    return x\n", current
    )
