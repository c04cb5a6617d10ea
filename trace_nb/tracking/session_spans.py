"""OpenTelemetry spans of a notebook session: run → step → LLM call / preview / review.

:func:`trace_session` (``%trace_log NAME --otel``) follows a session's public
``on_change`` events: one ``trace_nb.run`` span until :meth:`SessionSpans.stop`, a
``trace_nb.step`` span per run of the cell (ended when the next run starts), and under the
step the optimizer's LLM calls (also those made on the panel's worker thread), a
``trace_nb.preview`` span per preview (emitted with the decision that follows it) and a
``trace_nb.review`` span per decision.
"""

from __future__ import annotations

from typing import Any

from . import otel
from .background import Background

__all__ = ["SessionSpans", "trace_session"]

_DECISIONS = ("approve", "reject", "edit", "restore")


class SessionSpans:
    """The spans of one session (see the module doc)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.run_span: Any = None
        self.step_span: Any = None
        self._previews: set[int] = set()
        self._undo: Any = None
        # only its warn-once bookkeeping is used: spans are made on the caller's thread
        self.errors = Background(f"OpenTelemetry spans of session {session.name!r}")

    def start(self) -> SessionSpans:
        t = otel.tracer()
        if t is None:
            raise RuntimeError(
                "OpenTelemetry is off: configure a tracer provider first "
                "(opentelemetry.trace.set_tracer_provider(...), or "
                'trace_nb.tracking.otel.enable(provider)); pip install "trace_nb[otel]"'
            )
        self.run_span = t.start_span(
            "trace_nb.run",
            attributes=otel.attributes_of({"session": self.session.name, "kind": "session"}),
        )
        self._undo = otel.adopt_calls(self._is_session_llm, lambda: self.step_span)
        self.session.on_change(self._on_change)
        if self.session.rows:
            self._new_step()
        return self

    def stop(self) -> None:
        """End the open step and the run span."""
        self.session.off_change(self._on_change)
        if self._undo is not None:
            self._undo()
        self._end_step()
        if self.run_span is not None:
            self.run_span.end()
            self.run_span = None

    def _is_session_llm(self, client: Any) -> bool:
        from ..llm.default import default_llm

        s = self.session
        return client is s.llm or (s.llm is None and client is default_llm())

    def _new_step(self) -> None:
        self._end_step()
        t = otel.tracer()
        if t is None or self.run_span is None:
            return
        from opentelemetry import trace

        row = self.session.rows[-1]
        self.step_span = t.start_span(
            "trace_nb.step",
            context=trace.set_span_in_context(self.run_span),
            attributes={"trace_nb.step": int(row.get("step", 0))},
        )
        self._feedback()

    def _feedback(self) -> None:
        rows = self.session.rows
        if rows and self.step_span is not None:
            row = rows[-1]
            self.step_span.set_attributes(
                otel.attributes_of({"score": row.get("score"), "feedback": row.get("feedback")})
            )

    def _end_step(self) -> None:
        if self.step_span is not None:
            self.step_span.end()
            self.step_span = None

    def _previews_seen(self) -> None:
        """A span per preview made since the last decision (a preview changes nothing, so
        the session sends no event for it: it is found on the proposals it was made for)."""
        for p in self.session.proposals:
            result = getattr(p, "preview", None)
            if result is not None and id(result) not in self._previews:
                self._previews.add(id(result))
                otel.instant(
                    "trace_nb.preview",
                    otel.attributes_of(
                        {
                            "parameter": result.name,
                            "examples": len(result.rows),
                            "regressions": result.regressions,
                            "runs": result.runs,
                            "seconds": result.seconds,
                        }
                    ),
                    self.step_span,
                )

    def _on_change(self, event: str) -> None:
        """The session's hook: a failure (a span processor that raises, say) warns once and
        never breaks the run, feedback or decision that called it."""
        try:
            self._follow(event)
        except Exception as e:  # noqa: BLE001 - the session goes on without its spans
            self.errors.failed(e)

    def _follow(self, event: str) -> None:
        rows = self.session.rows
        if event == "run":
            self._new_step()
        elif event == "feedback":
            self._feedback()
        elif event in _DECISIONS and rows:
            self._previews_seen()
            row = rows[-1]
            otel.instant(
                "trace_nb.review",
                otel.attributes_of(
                    {
                        "decision": event,
                        "decided_by": row.get("decided_by") or "human",
                        "approved": [n for n in str(row.get("approved") or "").split(", ") if n],
                        "rejected": [n for n in str(row.get("rejected") or "").split(", ") if n],
                    }
                ),
                self.step_span,
            )


def trace_session(session: Any) -> SessionSpans:
    """Emit ``session``'s spans from now on; call ``.stop()`` to end its run span."""
    return SessionSpans(session).start()
