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
    """``self``/``cls``, or ``super()``: an object's own fields."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def _private(name: str) -> bool:
    """``_x`` but not ``__x__`` nor a protocol name such as ``_repr_mimebundle_``."""
    return name.startswith("_") and not name.endswith("_")


def private_access(source: str) -> list[str]:
    """Every ``other._field`` (read, write, ``getattr``/``setattr``/``hasattr`` with a
    private name) and every ``from .x import _name`` in ``source``, where ``other`` is not
    ``self``, ``cls`` or ``super()``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr) and not _own(node.value):
            found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and not _own(node.args[0])
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


def imports(source: str) -> list[tuple[int, str]]:
    """``(level, module)`` of every relative import (``from ..x import y`` is ``(2, "x")``)."""
    return [
        (node.level, node.module or "")
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]


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
    for m in MODULES:
        rel = imports(m.read_text())
        if m.name not in COMPOSERS:
            assert (1, "controller") not in rel and (1, "panel") not in rel, m.name
        if m.name not in SESSION_SIDE:  # the session's modules (autosave, preview, ...)
            assert not [r for r in rel if r[0] == 2], f"{m.name} imports {rel}"


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
    """
)


def test_the_checks_catch_violations():
    assert private_access(VIOLATIONS) == [
        "line 2: imports _hidden from proposal_view",
        "line 5: self.proposals_box._empty",
        "line 6: self.session._params",
        "line 7: getattr(self.session, '_optimizer')",
    ]
    assert [v.split(":")[0] for v in mixed_classes(VIOLATIONS)] == ["line 3", "line 10"]
    assert "session" in names_used("def show(self, session):\n    pass")
    assert "session" in names_used("x = self.session.rows")
    assert imports("from ..session import TraceSession\nfrom .panel import Panel") == [
        (2, "session"),
        (1, "panel"),
    ]
