"""The shape of ``trace_nb.notebook`` (issue 24): checked on the source with :mod:`ast`.

- no import circle among ``trace_nb.notebook.*`` modules, imports inside functions counted;
- no module imports ``TraceSession`` under ``TYPE_CHECKING`` (a Protocol says what it needs);
- no module reads or writes a private field (``x._name``, ``x`` not ``self``/``cls``) of a
  session part (:data:`PARTS`) unless it is the module that defines that part.

Each check is also run on a small source with the violation added, so it is known to fail.
"""

from __future__ import annotations

import ast
import functools
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "trace_nb"

#: A session part -> the module that defines it; only that module touches its private fields.
PARTS = {
    "TraceSession": "trace_nb.notebook.session",
    "ParameterSet": "trace_nb.notebook.parameters",
    "ReviewQueue": "trace_nb.notebook.review",
    "RunLog": "trace_nb.notebook.run_log",
    "LastRun": "trace_nb.notebook.last_run",
    "Lineage": "trace_nb.notebook.lineage",
    "OptimizerSlot": "trace_nb.notebook.optimizer_slot",
}


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _parsed() -> tuple[tuple[str, pathlib.Path, ast.Module], ...]:
    # Parsed once per test process: every check reads the same sources, and parsing all of
    # trace_nb/ is the slow part. Checks never change a tree (they replace entries).
    return tuple(
        (module_name(path), path, ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(ROOT.rglob("*.py"))
    )


def sources() -> dict[str, tuple[pathlib.Path, ast.Module]]:
    """Module name -> (path, tree) for every module of trace_nb/ (a new dict each call)."""
    return {name: (path, tree) for name, path, tree in _parsed()}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, tree: ast.Module, known: set[str], is_package: bool) -> set[str]:
    """The modules of ``known`` that ``module`` imports anywhere (functions included)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        for name in names:
            # ``from . import autosave`` names a module; ``from .x import y`` names x.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph`` (a list of modules, first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def notebook_graph(trees: dict[str, tuple[pathlib.Path, ast.Module]]) -> dict[str, set[str]]:
    ours = {m for m in trees if m == "trace_nb.notebook" or m.startswith("trace_nb.notebook.")}
    graph = {}
    for m in ours:
        path, tree = trees[m]
        deps = imports_of(m, tree, ours, path.name == "__init__.py")
        # A package's __init__ runs before its modules: importing a.b imports a too, but
        # that edge is no circle of ours (notebook/__init__ imports nothing).
        graph[m] = {d for d in deps if not m.startswith(d + ".")}
    return graph


def type_checking_session_imports(tree: ast.Module) -> list[int]:
    """Lines that import ``TraceSession`` inside ``if TYPE_CHECKING:``."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name != "TYPE_CHECKING":
            continue
        for inner in node.body:
            for sub in ast.walk(inner):
                if isinstance(sub, ast.ImportFrom | ast.Import) and any(
                    a.name.split(".")[-1] == "TraceSession" for a in sub.names
                ):
                    lines.append(sub.lineno)
    return lines


def private_fields(tree: ast.Module) -> set[str]:
    """The private attribute names a class's methods set or declare on ``self``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in ("self", "cls") and _private(node.attr):
                names.add(node.attr)
        elif isinstance(node, ast.FunctionDef) and _private(node.name):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if _private(node.target.id):
                names.add(node.target.id)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def part_fields(trees: dict[str, tuple[pathlib.Path, ast.Module]]) -> dict[str, set[str]]:
    """Private field (or method) name -> the part modules whose class has it."""
    owner: dict[str, set[str]] = {}
    for cls, module in PARTS.items():
        _, tree = trees[module]
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
        assert classes, f"{module} defines no class {cls}"
        for name in private_fields(classes[0]):
            owner.setdefault(name, set()).add(module)
    return owner


def private_reaches(
    module: str, tree: ast.Module, owner: dict[str, set[str]]
) -> list[tuple[int, str, str]]:
    """(line, ``obj._field``, owning module) for each private field of a part that
    ``module`` touches on an object other than ``self``/``cls`` (and is not its owner)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        homes = owner.get(node.attr, set())
        if homes and module not in homes:
            found.append((node.lineno, f"{ast.unparse(node.value)}.{node.attr}", min(homes)))
    return found


# ------------------------------------------------------------------------------ checks


def test_no_import_circle_in_notebook():
    cycle = find_cycle(notebook_graph(sources()))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_type_checking_import_of_trace_session():
    bad = [
        f"{path}:{line}"
        for path, tree in sources().values()
        for line in type_checking_session_imports(tree)
    ]
    assert bad == []


def test_no_private_field_of_a_session_part_is_touched_from_outside():
    trees = sources()
    owner = part_fields(trees)
    # The parts have private fields, so the check has something to look for.
    assert {"_values", "_code", "_optimizer", "_listeners"} <= set(owner)
    bad = [
        f"{trees[m][0].relative_to(ROOT.parent)}:{line}: {expr} (private to {home})"
        for m, (_, tree) in trees.items()
        for line, expr, home in private_reaches(m, tree, owner)
    ]
    assert bad == []


# ------------------------------------------------------- each check fails on a violation


def test_cycle_check_sees_a_function_level_import():
    trees = sources()
    graph = notebook_graph(trees)
    assert find_cycle(graph) is None
    # The session imported from inside a function of the parameters part: a circle,
    # since the session imports that part.
    added = ast.parse("def f():\n    from .session import TraceSession\n")
    m = "trace_nb.notebook.parameters"
    graph[m] |= imports_of(m, added, set(graph), False)
    cycle = find_cycle(graph)
    assert cycle is not None and "trace_nb.notebook.session" in cycle


def test_type_checking_check_sees_the_import():
    src = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .session import TraceSession\n"
    assert type_checking_session_imports(ast.parse(src)) == [3]
    src2 = "import typing\nif typing.TYPE_CHECKING:\n    from x.session import TraceSession\n"
    assert type_checking_session_imports(ast.parse(src2)) == [3]


@pytest.mark.parametrize(
    "line",
    [
        "session._slot = None",
        "x = s.params._values['a']",
        "s.lineage._origins.clear()",
        "loaded._notify('run')",
    ],
)
def test_private_check_sees_a_reach(line):
    owner = part_fields(sources())
    tree = ast.parse(f"def f(session, s, loaded):\n    {line}\n")
    assert private_reaches("trace_nb.notebook.persist", tree, owner) != []
    # ... and not in the part's own module on self.
    own = ast.parse("class A:\n    def f(self):\n        self._slot = None\n")
    assert private_reaches("trace_nb.notebook.persist", own, owner) == []


def test_the_graph_sees_module_and_function_level_imports():
    # Without these edges the circle check would pass on a graph that misses imports.
    graph = notebook_graph(sources())
    assert "trace_nb.notebook.parameters" in graph["trace_nb.notebook.session"]  # top level
    assert "trace_nb.notebook.autosave" in graph["trace_nb.notebook.magics"]  # in trace()
    assert "trace_nb.notebook.autosave" in graph["trace_nb.notebook.ui.controller"]  # in a method
    assert "trace_nb.notebook.registry" in graph["trace_nb.notebook.magics"]  # from . import x


# -- graph/ is the bottom layer --------------------------------------------------------------

#: What ``trace_nb.graph`` may import of the project: itself and two leaf modules.
GRAPH_MAY_IMPORT = ("trace_nb.graph", "trace_nb.errors", "trace_nb.text")


def graph_reaches(trees: dict[str, tuple[pathlib.Path, ast.Module]]) -> list[str]:
    """``module -> import`` for every project import of a graph/ module outside
    :data:`GRAPH_MAY_IMPORT` (functions and ``TYPE_CHECKING`` blocks included)."""
    known = set(trees) | {"trace_nb"}
    bad = []
    for module, (path, tree) in sorted(trees.items()):
        if not (module == "trace_nb.graph" or module.startswith("trace_nb.graph.")):
            continue
        for target in sorted(imports_of(module, tree, known, path.name == "__init__.py")):
            allowed = any(target == a or target.startswith(a + ".") for a in GRAPH_MAY_IMPORT)
            if not allowed:
                bad.append(f"{module} -> {target}")
    return bad


def test_graph_imports_nothing_above_it():
    # The graph (nodes, bundle, traversal) is what optim/, notebook/, training/ build on; an
    # import the other way would make the core depend on the optimizer or the notebook.
    assert graph_reaches(sources()) == []


def test_graph_check_sees_an_upward_import():
    trees = sources()
    path, _ = trees["trace_nb.graph.traverse"]
    upward = ast.parse("def f():\n    from ..optim import policy\n")
    trees["trace_nb.graph.traverse"] = (path, upward)
    assert "trace_nb.graph.traverse -> trace_nb.optim.policy" in graph_reaches(trees)
