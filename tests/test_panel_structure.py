"""The panel's structure: views are widgets with events, one controller, no mixins, and no
module of ``notebook/ui/`` touching another object's private fields.

These checks read the source (``ast``); the snippets at the end show that each check
catches what it is meant to catch.
"""

from __future__ import annotations

import ast
import pathlib
import textwrap

import trace_nb.notebook.ui as ui_package

UI = pathlib.Path(ui_package.__file__).parent
MODULES = sorted(UI.glob("*.py"))
#: Modules that may import the controller (the panel composes it).
COMPOSERS = {"panel.py"}
#: Modules that may import the session's modules (``from ..autosave import ...``): the
#: controller, and the display that draws the session for it; never a view.
SESSION_SIDE = {"controller.py", "display.py"}


def _own(node: ast.expr) -> bool:
    """``self``/``cls``, or ``super()``: an object's own fields (inside its class's methods,
    see :func:`_in_methods`)."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def _in_methods(tree: ast.AST) -> set[int]:
    """The ids of the nodes inside a function defined in a class body (and in what such a
    method defines): only there is ``self`` the object of the class the code is in. A
    module-level function's ``self`` (a decorator's wrapper, a helper) is someone else's."""
    inside: set[int] = set()
    for cls in ast.walk(tree):
        if isinstance(cls, ast.ClassDef):
            for item in cls.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    inside.update(id(n) for n in ast.walk(item))
    return inside


def _private(name: str) -> bool:
    """``_x`` but not ``__x__`` nor a protocol name such as ``_repr_mimebundle_``."""
    return name.startswith("_") and not name.endswith("_")


def private_access(source: str) -> list[str]:
    """Every ``other._field`` (read, write, ``getattr``/``setattr``/``hasattr`` with a
    private name) and every ``from .x import _name`` in ``source``, where ``other`` is not
    ``self``, ``cls`` or ``super()``."""
    found: list[tuple[int, str]] = []
    tree = ast.parse(source)
    methods = _in_methods(tree)

    def own(node: ast.expr) -> bool:
        return _own(node) and id(node) in methods

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and not own(node.value):
            found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and not own(node.args[0])
        ):
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom):
            found.extend(
                (node.lineno, f"imports {a.name} from {node.module}")
                for a in node.names
                if _private(a.name)
            )
    return [f"line {line}: {what}" for line, what in sorted(found)]


def mixed_classes(source: str) -> list[str]:
    """Classes with more than one base, or named ``...Mixin``."""
    return [
        f"line {node.lineno}: class {node.name}({', '.join(ast.unparse(b) for b in node.bases)})"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and (len(node.bases) > 1 or node.name.endswith("Mixin"))
    ]


def imports(source: str, package: str = "trace_nb.notebook.ui") -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, by its full name,
    relative or absolute, at the top or in a function; for ``from x import y``, both ``x``
    and ``x.y`` (``y`` may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
            if not node.level:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_no_module_of_the_panel_touches_private_fields_of_another_object():
    found = {m.name: private_access(m.read_text()) for m in MODULES}
    assert {k: v for k, v in found.items() if v} == {}


def test_no_mixins_and_the_panel_is_one_vbox():
    found = {m.name: mixed_classes(m.read_text()) for m in MODULES}
    assert {k: v for k, v in found.items() if v} == {}
    tree = ast.parse((UI / "panel.py").read_text())
    (panel,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Panel"]
    assert [ast.unparse(b) for b in panel.bases] == ["w.VBox"]


def test_views_import_neither_the_controller_nor_the_session_side():
    ui = "trace_nb.notebook.ui"
    for m in MODULES:
        found = imports(m.read_text())
        if m.name not in COMPOSERS:
            bad = [i for i in found if _under(i, f"{ui}.controller", f"{ui}.panel")]
            assert not bad, f"{m.name} imports {bad}"
        if m.name not in SESSION_SIDE:  # the session's modules (autosave, preview, ...)
            bad = [i for i in found if _under(i, "trace_nb.notebook") and not _under(i, ui)]
            assert not bad, f"{m.name} imports {bad}"


def test_only_the_controller_owns_the_jobs_the_auto_run_and_the_ticker():
    ui = "trace_nb.notebook.ui"
    users: dict[str, set[str]] = {"autorun": set(), "ticker": set(), "jobs": set()}
    for m in MODULES:
        found = imports(m.read_text())
        if f"{ui}.autorun" in found:
            users["autorun"].add(m.name)
        if f"{ui}.jobs.Ticker" in found:
            users["ticker"].add(m.name)
        if f"{ui}.jobs" in found:
            users["jobs"].add(m.name)
    # The panel makes the Jobs on the cell's thread (see Panel.__init__) and hands it over.
    assert users == {
        "autorun": {"controller.py"},
        "ticker": {"controller.py"},
        "jobs": {"controller.py", "panel.py"},
    }


#: Views that are given what to show, never the session (history_view keeps
#: ``HistoryView.update(session)`` for scripts; the panel calls its ``show``).
VIEWS = [
    "controls.py",
    "dag_view.py",
    "errors_view.py",
    "node_details.py",
    "node_feedback.py",
    "proposal_view.py",
    "restore_offer.py",
    "status_bar.py",
    "versions_view.py",
]


def names_used(source: str) -> set[str]:
    """Every name, attribute and parameter name in ``source``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
    return found


def test_views_never_hold_the_session():
    used = {m: "session" in names_used((UI / m).read_text()) for m in VIEWS}
    assert used == dict.fromkeys(VIEWS, False)


def test_views_are_widgets_that_emit_events():
    import ipywidgets as w

    from trace_nb.notebook.ui.controls import Controls
    from trace_nb.notebook.ui.node_feedback import NodeFeedbackView
    from trace_nb.notebook.ui.restore_offer import RestoreOffer
    from trace_nb.notebook.ui.status_bar import StatusBar
    from trace_nb.notebook.ui.versions_view import VersionsView

    heard: list[tuple] = []

    def listen(view: w.Widget, *events: str) -> w.Widget:
        assert isinstance(view, w.DOMWidget)
        for event in events:
            getattr(view, f"on_{event}")(lambda *args, e=event: heard.append((e, *args)))
        return view

    controls = listen(Controls(), *Controls.EVENTS)
    for event in Controls.EVENTS:
        getattr(controls, f"{event}_button").click()
    node = listen(NodeFeedbackView(), "send")
    node.text.value = " too long "
    node.button.click()
    offer = listen(RestoreOffer(), "restore", "keep")
    offer.restore_button.click()
    offer.dismiss_button.click()
    bar = listen(StatusBar(), "cancel")
    bar.cancel_button.click()
    versions = listen(VersionsView(), "pick", "restore")
    versions.show("<table></table>", [("v0 (cell)", 0), ("v1 (llm)", 1)], current=1)
    versions.restore_button.click()
    assert heard == [
        *[(e,) for e in Controls.EVENTS],
        ("send", "too long"),
        ("restore",),
        ("keep",),
        ("cancel",),
        ("pick", 1),  # new options: the current version is picked
        ("restore", 1),
    ]
    for view in (controls, node, offer, bar, versions):
        view.close()


# -- the checks catch what they should ---------------------------------------------------
VIOLATIONS = textwrap.dedent(
    """
    from .proposal_view import _hidden
    class Panel(Base, Mixin):
        def close(self):
            self.proposals_box._empty.close()
            self.session._params = {}
            getattr(self.session, "_optimizer")
            self._mine = super()._theirs
            self.widget._repr_mimebundle_()
    class EvidenceMixin:
        pass
    def action(self):
        return self._depth
    """
)


def test_the_checks_catch_violations():
    assert private_access(VIOLATIONS) == [
        "line 2: imports _hidden from proposal_view",
        "line 5: self.proposals_box._empty",
        "line 6: self.session._params",
        "line 7: getattr(self.session, '_optimizer')",
        "line 13: self._depth",  # a module-level function's self is another module's object
    ]
    assert [v.split(":")[0] for v in mixed_classes(VIOLATIONS)] == ["line 3", "line 10"]
    assert "session" in names_used("def show(self, session):\n    pass")
    assert "session" in names_used("x = self.session.rows")
    found = imports(
        "from ..session import TraceSession\nfrom . import panel\n"
        "def f():\n    from ...notebook import preview\n    import trace_nb.notebook.persist\n"
        "from ...optim import Proposal"
    )
    assert sorted(i for i in found if _under(i, "trace_nb.notebook")) == [
        "trace_nb.notebook",
        "trace_nb.notebook.persist",
        "trace_nb.notebook.preview",
        "trace_nb.notebook.session",
        "trace_nb.notebook.session.TraceSession",
        "trace_nb.notebook.ui",
        "trace_nb.notebook.ui.panel",
    ]
    assert "trace_nb.optim" in found
