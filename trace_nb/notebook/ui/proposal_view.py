"""One proposal card: the parameter, an old -> new diff, the LLM's reasoning, and the
Approve / Edit / Reject buttons."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w

from ...optim import Proposal
from ...text import bounded_html_diff, cut, score_text
from .events import Events

#: The Preview button of a code card: previewing runs the LLM's code, and says so.
PREVIEW_CODE = "Preview — runs this code"
#: Approve on a candidate's value card when that candidate also changes code.
APPROVE_CODE_TOO = "Approve — applies its code too"


def close_tree(widget: w.Widget) -> None:
    """Close a widget, everything inside it, and their layouts and styles.

    ipywidgets keeps every widget alive until it is closed, and closing a box closes
    neither its children nor anyone's layout and style.
    """
    stack = [widget]
    while stack:
        x = stack.pop()
        stack.extend(getattr(x, "children", ()))
        for part in (getattr(x, "layout", None), getattr(x, "style", None)):
            if isinstance(part, w.Widget):
                part.close()
        x.close()


def edit_text(value: Any) -> str:
    """The text a human edits: strings (and code) as they are, other values as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=1 if isinstance(value, (list, dict)) else None)
    except (TypeError, ValueError):
        return repr(value)


def diff_html(old: Any, new: Any) -> str:
    """Side-by-side diff for text, code, lists and dicts; ``old → new`` for scalars."""
    if isinstance(old, str) and isinstance(new, str):
        a, b = old.splitlines() or [""], new.splitlines() or [""]
    elif isinstance(old, (list, dict, tuple)) and isinstance(new, (list, dict, tuple)):
        a, b = edit_text(old).splitlines(), edit_text(new).splitlines()
    else:
        return (
            f"<div class='trace-nb-scalar'><code>{html.escape(edit_text(old))}</code> → "
            f"<code><b>{html.escape(edit_text(new))}</b></code></div>"
        )
    # Bounded: a 70,000-character line or a huge reply must not hang or break the card.
    # No hard wrap at a column (difflib cuts words there) and plain spaces instead of its
    # &nbsp;: the cells (white-space: pre-wrap) wrap long lines between words.
    table = bounded_html_diff("\n".join(a), "\n".join(b), wrapcolumn=0)
    return f"<div class='trace-nb-diff'>{table.replace('&nbsp;', ' ')}</div>"


def preview_html(result: Any) -> str:
    """A preview's table: per example, output and score before → after, regressions first
    and marked; the runs it took."""
    if result is None:
        return ""
    e = html.escape

    rows = "".join(
        f"<tr class='{'trace-nb-regression' if r.regression else ''}'>"
        f"<td>{'⚠ ' if r.regression else ''}{e(r.example)}</td><td>{e(r.before)}</td>"
        f"<td>{e(r.after)}</td><td>{score_text(r.before_score, '')} → {score_text(r.after_score, '')}</td>"
        f"<td>{e(r.error or r.after_feedback)}</td></tr>"
        for r in result.rows
    )
    summary = (
        f"{result.regressions} regression(s) in {len(result.rows)} example(s); mean score "
        f"{score_text(result.mean_before)} → {score_text(result.mean_after)}; ran the cell "
        f"{result.runs} times in {result.seconds:.1f} s (its own LLM calls are not counted)"
    )
    return (
        f"<div class='trace-nb-preview'><div class='trace-nb-label'>preview</div>"
        f"<div>{e(summary)}</div><div class='trace-nb-table'><table class='trace-nb-history'>"
        "<thead><tr><th>example</th><th>output before</th><th>output after</th><th>score</th>"
        f"<th>feedback / error</th></tr></thead><tbody>{rows}</tbody></table></div></div>"
    )


class ProposalView(w.VBox):
    """A card for one :class:`~trace_nb.optim.Proposal`.

    Events (register with ``on_<event>(callback)``): ``approve(name)``, ``reject(name)``,
    ``preview(name)`` when the button is clicked; ``edit(name, text)`` when "Save edit" is.

    Parameters
    ----------
    proposal : Proposal
    label : str, optional
        The parameter's name as the panel shows it (``proposal.name`` by default).
    previewable : bool
        Whether the card has a Preview button.
    code_too : sequence of str
        For a candidate's card: the parameters whose LLM code its Approve applies as well
        (the candidate's other cards); the button then says so.

    Attributes
    ----------
    approve_button, edit_button, reject_button, save_button : ipywidgets.Button
    edit_text : ipywidgets.Textarea
        The editor (hidden until Edit is clicked), prefilled with the proposed value.
    reason : ipywidgets.HTML
        Why the proposal is invalid ("" when valid).
    """

    def __init__(
        self,
        proposal: Proposal,
        label: str | None = None,
        previewable: bool = True,
        code_too: Sequence[str] = (),
    ):
        self.proposal = proposal
        self._events = Events("approve", "reject", "edit", "preview")
        self.label = label or proposal.name
        p = proposal
        cand = (
            ""
            if p.candidate is None
            else f"<span class='trace-nb-candidate'>candidate {p.candidate}</span> "
        )
        e = html.escape
        decided = p.status != "pending"
        addressable = p.parameter is not None  # unknown names cannot be approved or edited
        kind = (
            "code" if p.is_code else type(p.old).__name__ if p.parameter is not None else "unknown"
        )
        shown = p.status.replace("_", " ")  # "not_chosen" reads "not chosen"
        badge = shown if not p.decided_by else f"{shown} by {p.decided_by}"
        edited = " · edited" if p.edited else ""
        refusals = p.attempt - 1
        repaired = (
            f" <span class='trace-nb-repaired'>repaired after {refusals} "
            f"refusal{'s' if refusals != 1 else ''}</span>"
            if p.repaired
            else ""
        )
        self.header = w.HTML(
            f"{cand}<b>{e(self.label or '(whole reply)')}</b> <span class='trace-nb-kind'>{e(kind)}</span> "
            f"<span class='trace-nb-status trace-nb-{e(p.status)}'>{e(badge)}{edited}</span>{repaired}"
        )
        if p.parameter is not None:
            self.diff = w.HTML(diff_html(p.old, p.new))
        elif p.name is not None:
            self.diff = w.HTML(f"<div>suggested value: <code>{e(edit_text(p.new))}</code></div>")
        else:
            self.diff = w.HTML("")
        self.reason = w.HTML(
            "" if p.valid else f"<div class='trace-nb-invalid'>⚠ {e(p.reason or 'invalid')}</div>"
        )
        reasoning = e(p.reasoning or "(no reasoning given)")
        self.reasoning = w.HTML(
            f"<details><summary>LLM reasoning</summary><div class='trace-nb-reasoning'>"
            f"{reasoning}</div></details>"
        )
        auto = {"layout": w.Layout(width="auto", min_width="max-content")}  # full labels
        # A candidate's Approve picks the whole candidate: when that applies LLM code from
        # another card, the click approves that code too, so the label says so.
        approve_tip = "apply this value"
        if code_too:
            approve_tip = (
                f"picks candidate {p.candidate}: applies this value and its code for "
                f"{', '.join(code_too)}, which then runs"
            )
        self.approve_button = w.Button(
            description=APPROVE_CODE_TOO if code_too else "Approve",
            **auto,
            button_style="success",
            disabled=decided or not p.valid or not addressable,
            tooltip=(p.reason or "invalid") if not p.valid else approve_tip,
        )
        self.edit_button = w.Button(description="Edit", **auto, disabled=decided or not addressable)
        self.reject_button = w.Button(
            description="Reject",
            button_style="danger",
            **auto,
            disabled=decided or not addressable,
            tooltip="" if addressable else "use Reject all",
        )
        self.edit_text = w.Textarea(
            value=edit_text(p.new) if addressable else "",
            layout=w.Layout(height="8em" if p.is_code else "4em"),
        )
        self.save_button = w.Button(description="Save edit", button_style="info", **auto)
        # Previewing code runs the LLM's code: the click is consent, so the label says so.
        self.preview_button = w.Button(
            description=PREVIEW_CODE if p.is_code else "Preview",
            icon="eye",
            **auto,
            disabled=decided or not p.valid or not addressable,
            tooltip=(
                "runs the LLM's code: the cell runs with it on the examples, scores before → "
                "after; nothing is kept"
                if p.is_code
                else "run the cell with this value on the examples, scores before → after; "
                "changes nothing"
            ),
        )
        self.preview_view = w.HTML(preview_html(getattr(p, "preview", None)))
        self.editor = w.VBox([self.edit_text, self.save_button], layout=w.Layout(display="none"))
        name = p.name or ""
        emit = self._events.emit
        self.approve_button.on_click(lambda _: emit("approve", name))
        self.reject_button.on_click(lambda _: emit("reject", name))
        self.edit_button.on_click(lambda _: self.toggle_editor())
        self.preview_button.on_click(lambda _: emit("preview", name))
        self.save_button.on_click(lambda _: emit("edit", name, self.edit_text.value))
        buttons = w.HBox(
            [
                self.approve_button,
                self.edit_button,
                self.reject_button,
                *([self.preview_button] if previewable else []),
            ]
        )
        buttons.add_class("trace-nb-row")
        super().__init__(
            [
                self.header,
                self.diff,
                self.reason,
                self.reasoning,
                buttons,
                self.editor,
                self.preview_view,
            ]
        )
        self.add_class("trace-nb-card")
        if p.edited and not p.valid and not decided:
            self.toggle_editor(True)  # a rejected edit: keep the editor open to fix it

    def on_approve(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(name)`` when Approve is clicked."""
        self._events.on("approve", callback)

    def on_reject(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(name)`` when Reject is clicked."""
        self._events.on("reject", callback)

    def on_edit(self, callback: Callable[[str, str], Any]) -> None:
        """Call ``callback(name, text)`` when "Save edit" is clicked."""
        self._events.on("edit", callback)

    def on_preview(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(name)`` when Preview is clicked."""
        self._events.on("preview", callback)

    def show_preview(self, result: Any) -> None:
        """Show a preview's table (see :func:`preview_html`) on this card."""
        self.preview_view.value = preview_html(result)

    @property
    def name(self) -> str | None:
        return self.proposal.name

    @property
    def editing(self) -> bool:
        return self.editor.layout.display != "none"

    def toggle_editor(self, show: bool | None = None) -> None:
        """Show or hide the editor (toggles when ``show`` is None)."""
        show = not self.editing if show is None else show
        self.editor.layout.display = "" if show else "none"


class ProposalList(w.VBox):
    """The cards of a session's proposals; a card is kept while its proposal is unchanged
    (so an open editor survives a decision on another card).

    Events (register with ``on_<event>(callback)``), passed on from the cards with the
    card's candidate (None for a plain proposal): ``approve(name, candidate)``,
    ``reject(name, candidate)``, ``edit(name, text, candidate)``, ``preview(name, candidate)``.

    Parameters
    ----------
    label : callable, optional
        The name a card shows for a proposal (``proposal.name`` by default).
    previewable : bool
        Whether the cards have a Preview button.
    """

    def __init__(
        self,
        label: Callable[[Proposal], str] | None = None,
        previewable: bool = True,
    ):
        self._events = Events("approve", "reject", "edit", "preview")
        self._label = label or (lambda p: p.name)
        self._previewable = previewable
        self._views: dict[tuple, ProposalView] = {}
        self._empty = w.HTML("<i>No proposals.</i>")
        self._rows: list[w.HBox] = []  # rows of side-by-side candidate cards
        self._headings: list[w.HTML] = []  # "module <b>agent</b>" above a module's cards
        self._unknown = w.HTML()
        super().__init__([self._empty])

    def on_approve(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(name, candidate)`` when a card's Approve is clicked."""
        self._events.on("approve", callback)

    def on_reject(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(name, candidate)`` when a card's Reject is clicked."""
        self._events.on("reject", callback)

    def on_edit(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(name, text, candidate)`` when a card's "Save edit" is clicked."""
        self._events.on("edit", callback)

    def on_preview(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(name, candidate)`` when a card's Preview is clicked."""
        self._events.on("preview", callback)

    def _card(self, p: Proposal, label: str, code_too: list[str]) -> ProposalView:
        card = ProposalView(p, label=label, previewable=self._previewable, code_too=code_too)
        emit, c = self._events.emit, p.candidate
        card.on_approve(lambda name: emit("approve", name, c))
        card.on_reject(lambda name: emit("reject", name, c))
        card.on_edit(lambda name, text: emit("edit", name, text, c))
        card.on_preview(lambda name: emit("preview", name, c))
        return card

    @property
    def views(self) -> list[ProposalView]:
        return list(self._views.values())

    def update(
        self, proposals: list[Proposal], label: Callable[[Proposal], str] | None = None
    ) -> None:
        """Show ``proposals`` (new or changed ones get new cards), grouped by module;
        ``label`` (when given) names each card's parameter from now on.

        Only proposals about a parameter get a card. A problem with the whole reply is the
        panel's status line; names the LLM made up become one summary line (a reply with
        20,000 unknown keys must not make 20,000 cards).
        """
        if label is not None:
            self._label = label
        views = {}
        groups: dict[str, list] = {}
        unknown = [p for p in proposals if p.parameter is None and p.name is not None]
        for p in proposals:
            if p.parameter is None:
                continue
            key = (id(p), p.status)
            card_label = self._label(p)  # p has a parameter (checked above)
            code_too: list[str] = []
            if p.candidate is not None:  # a candidate's Approve picks the whole candidate
                code_too = [
                    self._label(q)
                    for q in proposals
                    if q is not p
                    and q.candidate == p.candidate
                    and q.is_code
                    and q.valid
                    and q.status == "pending"
                ]
            views[key] = self._views.get(key) or self._card(p, card_label, code_too)
            module = card_label.rsplit(".", 1)[0] if card_label and "." in card_label else ""
            groups.setdefault(module, []).append(views[key])
        for key, view in self._views.items():
            if key not in views:
                close_tree(view)  # a replaced card would otherwise live as long as the kernel
        self._views = views
        children: list = []
        if unknown:
            names = ", ".join(cut(str(p.name), 40) for p in unknown[:8])
            more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
            hints = "".join(f"<li>{html.escape(p.reason or '')}</li>" for p in unknown[:8])
            self._unknown.value = (
                f"<div class='trace-nb-invalid'>The reply also suggested values for "
                f"{len(unknown)} name(s) that are not parameters ({html.escape(names)}"
                f"{more}); they were ignored.<ul>{hints}</ul></div>"
            )
            children.append(self._unknown)
        replaced = [*self._rows, *self._headings]  # closed once no longer shown
        for old in self._rows:
            old.children = ()  # the cards it held may be kept: close the row alone
        self._rows, self._headings = [], []
        for module, members in groups.items():
            if module:  # a module's parameters (agent.reason, agent.act) under one heading
                heading = w.HTML(
                    f"<div class='trace-nb-group'>module <b>{html.escape(module)}</b></div>"
                )
                self._headings.append(heading)
                children.append(heading)
            by_label: dict[str, list] = {}
            for v in members:
                by_label.setdefault(v.label or "", []).append(v)
            for cards in by_label.values():
                if len(cards) > 1:  # several candidates for one parameter: side by side
                    row = w.HBox(cards)
                    row.add_class("trace-nb-candidates")
                    self._rows.append(row)
                    children.append(row)
                else:
                    children.extend(cards)
        self.children = children or [self._empty]
        for part in replaced:
            close_tree(part)

    def view(self, name: str) -> ProposalView:
        """The card of the proposal for ``name``; KeyError if there is none."""
        for v in self._views.values():
            if name in (v.name, v.label):
                return v
        raise KeyError(f"no proposal for {name!r}")

    def show_preview(self, name: str, candidate: int | None, result: Any) -> None:
        """Show a preview's table on the card of ``name`` (of ``candidate``)."""
        for v in self._views.values():
            if name in (v.name, v.label) and v.proposal.candidate == candidate:
                v.show_preview(result)

    def close(self) -> None:
        """Close the list, its cards and the parts it shows only sometimes."""
        for part in (
            self._empty,
            self._unknown,
            *self._rows,
            *self._headings,
            *self._views.values(),
        ):
            close_tree(part)
        super().close()
