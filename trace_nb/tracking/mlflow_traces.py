"""The LLM calls of one MLflow run as MLflow traces (used on the logger's worker thread).

:class:`RunTraces` turns :class:`~.events.LLMCall` records into spans: inside the trace
opened with :meth:`RunTraces.open` (one per training run, or per run of a session's cell),
else a trace per call. A span carries sizes, tokens, latency and cost in the GenAI semantic
conventions' names, the message texts only when the records hold them (already scrubbed).
"""

from __future__ import annotations

from typing import Any

from .events import LLMCall
from .reach import host

__all__ = ["RunTraces"]


class RunTraces:
    """The traces of one run, written with ``client`` (an ``MlflowClient``)."""

    def __init__(self, client: Any, experiment_id: str, run_id: str) -> None:
        self.client, self.experiment_id, self.run_id = client, experiment_id, run_id
        self.group: Any = None  # the open trace's root span

    def open(self, name: str, attrs: dict, start: int) -> None:
        """Start the trace later calls become spans of (ending the one open before)."""
        self.close(start)
        self.group = self.client.start_trace(
            name,
            span_type="CHAIN",
            attributes=attrs,
            experiment_id=self.experiment_id,
            start_time_ns=start,
            run_id=self.run_id,
        )

    def close(self, end: int) -> None:
        """End the open trace (MLflow sends it then)."""
        group, self.group = self.group, None
        if group is not None:
            self.client.end_trace(group.trace_id, end_time_ns=max(end, group.start_time_ns))

    def call(self, r: LLMCall, step: int) -> None:
        """One LLM call: a span of the open trace, or a trace of its own."""
        client = self.client
        inputs: dict[str, Any] = {"messages": r.messages, "message_chars": r.message_chars}
        outputs: dict[str, Any] = {"reply_chars": r.reply_chars}
        if r.bodies is not None:  # the user asked for the texts (already scrubbed)
            inputs["messages"], outputs["reply"] = r.bodies
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": r.model,
            "gen_ai.response.model": r.response_model or r.model,
            "gen_ai.usage.input_tokens": r.prompt_tokens,
            "gen_ai.usage.output_tokens": r.completion_tokens,
            "trace_nb.latency_s": round(r.latency_s, 6),
            "trace_nb.cost_usd": r.cost,
            "trace_nb.cached": r.cached,
            "trace_nb.step": step,
            "server.address": host(r.base_url),
        }
        status = "ERROR" if r.error else "OK"
        error = {"error": r.error} if r.error else None
        if self.group is not None:
            group = self.group
            span = client.start_span(
                f"chat {r.model}",
                trace_id=group.trace_id,
                parent_id=group.span_id,
                span_type="CHAT_MODEL",
                inputs=inputs,
                attributes=attributes,
                start_time_ns=r.start_ns,
            )
            client.end_span(
                group.trace_id,
                span.span_id,
                outputs=outputs,
                attributes=error,
                status=status,
                end_time_ns=r.end_ns,
            )
            return
        span = client.start_trace(
            f"chat {r.model}",
            span_type="CHAT_MODEL",
            inputs=inputs,
            attributes=attributes,
            tags={"trace_nb.step": str(step)},
            experiment_id=self.experiment_id,
            start_time_ns=r.start_ns,
            run_id=self.run_id,
        )
        client.end_trace(
            span.trace_id, outputs=outputs, status=status, attributes=error, end_time_ns=r.end_ns
        )
