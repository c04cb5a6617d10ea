"""The feedback box and the loop's buttons: Send feedback, Propose, Approve all, Reject
all, Run again, and the auto run's steps, Auto, Stop and "auto-approve code"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .buttons import button
from .events import Events

#: Auto's tooltip when the cell has no feedback function (Auto is then disabled).
AUTO_NEEDS_FEEDBACK = (
    "Auto needs a feedback function: add --feedback FUNC to the "
    "%%trace line (FUNC(output) returns text, a score, or both)"
)


class Controls(w.VBox):
    """What a human types and clicks to drive the loop.

    Events (register with ``on_<event>(callback)``; each is called with no arguments):
    ``send``, ``propose``, ``approve_all``, ``reject_all``, ``run``, ``auto``, ``stop``.

    Attributes
    ----------
    feedback_text : ipywidgets.Textarea
    score_text : ipywidgets.Text
    send_button, propose_button, approve_all_button, reject_all_button, run_button,
    auto_button, stop_button : ipywidgets.Button
    auto_steps : ipywidgets.IntText
        Rounds of an auto run.
    auto_code : ipywidgets.Checkbox
        Whether an auto run may approve code without a human.
    """

    EVENTS = ("send", "propose", "approve_all", "reject_all", "run", "auto", "stop")

    def __init__(self) -> None:
        self._events = Events(*self.EVENTS)
        # continuous_update=False: the text syncs once, when the box loses focus (before the
        # click that follows), so no echo of an older value can overwrite what was typed.
        self.feedback_text = w.Textarea(
            placeholder="What do you think of the output?",
            continuous_update=False,
            layout=w.Layout(height="auto"),
        )
        self.feedback_text.add_class("trace-nb-feedback")
        self.score_text = w.Text(
            placeholder="optional", description="score", layout=w.Layout(width="200px")
        )
        self.send_button = button(description="Send feedback", icon="comment")
        self.propose_button = button(
            description="Propose", button_style="primary", icon="lightbulb-o"
        )
        self.approve_all_button = button(description="Approve all", button_style="success")
        self.reject_all_button = button(description="Reject all", button_style="danger")
        self.run_button = button(description="Run again", icon="play")
        self.auto_steps = w.IntText(
            value=5,
            description="Auto N steps",
            layout=w.Layout(width="150px"),
            style={"description_width": "initial"},
        )
        self.auto_button = button(description="Auto", icon="forward")
        self.stop_button = button(description="Stop", icon="stop")
        self.auto_code = w.Checkbox(value=False, description="auto-approve code", indent=False)
        for name in self.EVENTS:
            getattr(self, f"{name}_button").on_click(lambda _, n=name: self._events.emit(n))
        rows = [
            w.HBox([self.score_text, self.send_button]),
            w.HBox(
                [
                    self.propose_button,
                    self.approve_all_button,
                    self.reject_all_button,
                    self.run_button,
                ]
            ),
            w.HBox([self.auto_steps, self.auto_button, self.stop_button, self.auto_code]),
        ]
        for row in rows:
            row.add_class("trace-nb-row")
        super().__init__([w.HTML("<h4>Feedback</h4>"), self.feedback_text, *rows])

    def on_send(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when "Send feedback" is clicked."""
        self._events.on("send", callback)

    def on_propose(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when Propose is clicked."""
        self._events.on("propose", callback)

    def on_approve_all(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when "Approve all" is clicked."""
        self._events.on("approve_all", callback)

    def on_reject_all(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when "Reject all" is clicked."""
        self._events.on("reject_all", callback)

    def on_run(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when "Run again" is clicked."""
        self._events.on("run", callback)

    def on_auto(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when Auto is clicked."""
        self._events.on("auto", callback)

    def on_stop(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when Stop is clicked."""
        self._events.on("stop", callback)

    def feedback(self) -> tuple[str, float | None]:
        """The typed feedback (stripped) and score (None when empty); ValueError, saying
        what to type, when the score is not a number."""
        text = self.score_text.value.strip()
        score = None
        if text:
            try:
                score = float(text)
            except ValueError:
                raise ValueError(f"the score must be a number (or empty), got {text!r}") from None
        return self.feedback_text.value.strip(), score

    def fill(self, text: str | None = None, score: float | None = None) -> None:
        """Put ``text`` and ``score`` into the boxes (None leaves a box as it is)."""
        if text is not None:
            self.feedback_text.value = text
        if score is not None:
            self.score_text.value = str(score)

    def reset(self, text: str, score: float | None) -> None:
        """Set both boxes (an empty score box for None)."""
        self.feedback_text.value = text
        self.score_text.value = "" if score is None else str(score)

    def sync(
        self,
        *,
        busy: bool,
        auto: bool,
        paused: bool,
        approvable: bool,
        rejectable: bool,
        can_auto: bool,
    ) -> None:
        """Enable what can be clicked now.

        Parameters
        ----------
        busy : bool
            An LLM call runs.
        auto, paused : bool
            An auto run goes on / waits for a human.
        approvable, rejectable : bool
            Some proposal is pending and valid / there are proposals.
        can_auto : bool
            The cell has a feedback function (Auto needs one).
        """
        for b in (self.propose_button, self.run_button, self.send_button, self.auto_button):
            b.disabled = busy or auto
        self.approve_all_button.disabled = busy or auto or not approvable
        self.reject_all_button.disabled = busy or auto or not rejectable
        self.stop_button.disabled = not auto and not paused
        if not can_auto:
            self.auto_button.disabled = True
            self.auto_button.tooltip = AUTO_NEEDS_FEEDBACK
        else:
            self.auto_button.tooltip = "propose, approve the valid proposals and run, N times"
