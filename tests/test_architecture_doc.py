"""``docs/architecture.md`` names only things that exist.

Every ``trace_nb/...`` path, every dotted ``trace_nb.x.y`` name, every ``tests/...::test_``
reference and every ``Class.attribute`` of a class the doc names in full is looked up:
paths on disk, dotted names by importing the longest importable module and reading the
rest as attributes, tests by parsing the test file. A renamed module, function or test
makes this fail with the name to fix.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"

PATH = re.compile(r"\btrace_nb/[\w/]*(?:\.py|/)")
DOTTED = re.compile(r"(?<![\w./])trace_nb(?:\.\w+)+")
TEST_REF = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")
CLASS_ATTR = re.compile(r"`([A-Z]\w*)\.(\w+)")


def paths(text: str) -> set[str]:
    return set(PATH.findall(text))


def dotted(text: str) -> set[str]:
    return set(DOTTED.findall(text))


def cited_tests(text: str) -> set[tuple[str, str]]:
    return set(TEST_REF.findall(text))


def resolve(name: str) -> Any:
    """The object ``name`` names: the longest importable module, then attributes.
    Raises LookupError saying which part is missing."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is not None and not module_name.startswith(e.name):
                raise  # the module exists but imports something missing: a real error
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                raise LookupError(f"{name}: {'.'.join(parts[:cut])} has no {attr!r}")
            obj = getattr(obj, attr)
        return obj
    raise LookupError(f"{name}: no such module")


def missing_names(text: str) -> list[str]:
    """Every name in ``text`` that does not exist, with why."""
    bad = [f"{p}: no such file or folder" for p in sorted(paths(text)) if not (ROOT / p).exists()]
    classes: dict[str, type] = {}
    for name in sorted(dotted(text)):
        try:
            obj = resolve(name)
        except LookupError as e:
            bad.append(str(e))
            continue
        if isinstance(obj, type):
            classes[obj.__name__] = obj
    for cls, attr in sorted(set(CLASS_ATTR.findall(text))):
        if cls in classes and not hasattr(classes[cls], attr):
            bad.append(f"{cls}.{attr}: {classes[cls].__module__}.{cls} has no {attr!r}")
    for file, test in sorted(cited_tests(text)):
        path = ROOT / file
        if not path.exists():
            bad.append(f"{file}: no such test file")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if test not in defined:
            bad.append(f"{file}::{test}: no such test")
    return bad


def test_the_doc_names_what_it_maps():
    # The doc covers the parts and the road of a parameter: if the patterns stopped
    # matching, the check below would pass on nothing.
    text = DOC.read_text(encoding="utf-8")
    assert len(paths(text)) >= 30
    assert len(dotted(text)) >= 60
    assert len(cited_tests(text)) >= 10
    for must in (
        "trace_nb.notebook.transform.rewrite",
        "trace_nb.optim.problem.build_problem",
        "trace_nb.optim.policy.decide",
        "trace_nb.notebook.lineage.Lineage.accept",
        "trace_nb.notebook.writeback.writeback",
    ):
        assert must in dotted(text)


def test_every_name_in_the_architecture_doc_exists():
    assert missing_names(DOC.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("`trace_nb/optim/polcy.py`", "trace_nb/optim/polcy.py: no such file or folder"),
        ("`trace_nb/gui/`", "trace_nb/gui/: no such file or folder"),
        ("`trace_nb.optim.policy.decides`", "trace_nb.optim.policy.decides: "),
        ("`trace_nb.notebook.sesion.TraceSession`", "trace_nb.notebook.sesion.TraceSession: "),
        ("`trace_nb.notebook.session.TraceSession.aprove`", "has no 'aprove'"),
        (
            "`trace_nb.notebook.session.TraceSession` then `TraceSession.to_stat`",
            "TraceSession.to_stat: ",
        ),
        ("`tests/test_architecture.py::test_nothing_here`", "no such test"),
        ("`tests/test_nowhere.py::test_x`", "no such test file"),
    ],
)
def test_a_wrong_name_is_caught(line, expected):
    found = missing_names(line)
    assert len(found) == 1 and expected in found[0], found


def test_right_names_pass_and_sentence_ends_are_not_names():
    text = (
        "See `trace_nb/notebook/` and trace_nb.optim.policy. Then "
        "`trace_nb.notebook.session.TraceSession.approve`, `TraceSession.to_state`, "
        "`tests/test_architecture.py::test_no_import_circle_in_notebook`."
    )
    assert missing_names(text) == []
    assert dotted(text) == {
        "trace_nb.optim.policy",
        "trace_nb.notebook.session.TraceSession.approve",
    }
