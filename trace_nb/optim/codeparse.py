"""Reading proposed code without running it: fences and indentation removed, parsed and
compiled within bounds, and every failure turned into a reason a model (or a person) can act on.

Used by :mod:`.codecheck`. Overlong or deeply nested code is refused before the compiler
sees it (it fails near 1,000 levels); ``MemoryError``/``RecursionError`` become reasons.
"""

from __future__ import annotations

import ast
import re
import textwrap
import warnings

from ..errors import CoercionError
from ..text import short_repr as _show
from .jsonish import find_fences

__all__ = [
    "MAX_CODE_DEPTH",
    "PARSE_ERRORS",
    "check_size",
    "compile_check",
    "decoded_escapes",
    "normalise",
    "parse",
    "parse_code",
    "prepare",
    "syntax_reason",
]

#: Deepest expression/statement nesting accepted (the compiler itself fails near 1,000).
MAX_CODE_DEPTH = 100
_MAX_NODES = 50_000


def _strip_outer_fence(text: str) -> str:
    """Remove a ```lang ... ``` fence around the whole text (the closing one optional)."""
    lines = text.strip("\n").split("\n")
    if lines and re.match(r"[ \t]*(`{3,}|~{3,})", lines[0]):
        fence = lines[0].strip()[:3]
        lines = lines[1:]
        if lines and lines[-1].strip().startswith(fence) and not lines[-1].strip().strip(fence[0]):
            lines = lines[:-1]
    return "\n".join(lines)


def prepare(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if text.strip().startswith(("```", "~~~")):
        text = _strip_outer_fence(text.strip())
    return textwrap.dedent(text).strip("\n")


def syntax_reason(
    exc: BaseException, what: str = "the code", fault: str = "has a syntax error"
) -> str:
    if isinstance(exc, SyntaxError):
        line = (exc.text or "").strip()
        shown = f" ({_show(line, 60)})" if line else ""
        where = f" on line {exc.lineno}" if exc.lineno else ""
        return f"{what} {fault}{where}: {exc.msg}{shown}"
    if isinstance(exc, (MemoryError, RecursionError)):
        return (
            f"{what} is too deeply nested or too large to check ({type(exc).__name__}); "
            "write it with less nesting"
        )
    return f"{what} cannot be parsed: {exc}"


def parse(code: str) -> ast.Module:
    """ast.parse that turns every failure into SyntaxError-like exceptions we report."""
    with warnings.catch_warnings():  # invalid escapes warn at parse time
        warnings.simplefilter("ignore")
        return ast.parse(code)


PARSE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError)


def parse_code(text: str) -> tuple[str, ast.Module]:
    """Parse proposed code, rescuing four common model slips before reporting an error."""
    code = prepare(text)
    try:
        return code, parse(code)
    except PARSE_ERRORS as exc:
        first_error: BaseException = exc
    rescues = []
    # Prose around a fenced block: take the first fenced block that parses.
    rescues += [textwrap.dedent(block).strip("\n") for block in find_fences(code)[:5]]
    # Code escaped twice: "def f(x):\\n    return x" arrives with literal backslash-n.
    if "\n" not in code and "\\n" in code:
        rescues.append(code.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"'))
    # Newlines dropped, indentation kept (a grammar-constrained reply cannot put a raw newline
    # in a JSON string, and a small model does not write "\n"): "def f(xs):    out = []".
    rescues += lost_newlines(code)
    # "\n" inside a string literal, written in a JSON string as "split('\n')": the JSON
    # reader made it a real newline, and the one-line literal no longer ends.
    escaped = decoded_escapes(code)
    rescues += escaped
    for candidate in rescues[:8]:
        try:
            return candidate, parse(candidate)
        except PARSE_ERRORS as exc:
            if escaped and candidate is escaped[0]:
                # The model meant the escape: the error left after it is the one to fix
                # (the first one, "unterminated string literal", would send it the wrong way).
                first_error = exc
            continue
    raise CoercionError(syntax_reason(first_error))


_RUN = {4: re.compile(r"(?<=\S) {4,}(?=\S)"), 2: re.compile(r"(?<=\S) {2,}(?=\S)")}


def lost_newlines(code: str) -> list[str]:
    """One-line code whose newlines were dropped, with each run of spaces (4 or more, then
    2 or more) read back as a newline and that indentation. Only tried when the code as
    given does not parse; the result still has to parse and pass every check."""
    if "\n" in code or not code.lstrip().startswith(("def ", "async def ", "@")):
        return []
    return [
        rebuilt
        for run in _RUN.values()
        if (rebuilt := run.sub(lambda m: "\n" + m.group(0), code)) != code
    ]


def decoded_escapes(code: str) -> list[str]:
    """The code with each newline that falls inside a one-line string literal written back
    as the escape ``\\n``, or nothing when there is none. Only tried when the code as given
    does not parse; the result still has to parse and pass every check. Comments and
    triple-quoted strings are copied as they are."""
    out: list[str] = []
    i, quote, changed = 0, "", False
    while i < len(code):
        c = code[i]
        if not quote:
            if c == "#":  # a comment, to the end of its line
                end = code.find("\n", i)
                end = len(code) if end < 0 else end
                out.append(code[i:end])
                i = end
                continue
            if code.startswith(('"""', "'''"), i):
                end = code.find(code[i : i + 3], i + 3)
                end = len(code) if end < 0 else end + 3
                out.append(code[i:end])
                i = end
                continue
            quote = c if c in "'\"" else ""
            out.append(c)
        elif c == "\\":
            out.append(code[i : i + 2])  # an escape (or a continued line): copied as it is
            i += 2
            continue
        elif c == quote:
            quote = ""
            out.append(c)
        elif c == "\n":
            out.append("\\n")
            changed = True
        else:
            out.append(c)
        i += 1
    return ["".join(out)] if changed else []


def check_size(tree: ast.AST) -> None:
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
                "less nesting"
            )
        if count > _MAX_NODES:
            raise CoercionError("the code is too large to check; keep the function short")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def compile_check(code: str) -> None:
    """Compile without running: catches what the parser lets through."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "<proposed code>", "exec", dont_inherit=True)
    except PARSE_ERRORS as exc:
        raise CoercionError(syntax_reason(exc, fault="does not compile")) from None


def normalise(code: str, tree: ast.Module) -> str:
    trimmed = "\n".join(line.rstrip() for line in code.split("\n")).strip("\n") + "\n"
    if trimmed == code.strip("\n") + "\n":
        return trimmed  # no trailing whitespace was removed: nothing to re-check
    try:
        # Trimming lines must not change a multi-line string literal.
        if ast.dump(parse(trimmed)) == ast.dump(tree):
            return trimmed
    except PARSE_ERRORS:
        pass
    return code.rstrip() + "\n"
