"""What a session's MLflow run holds, as plain data: params, metrics per step, text files.

A live session (:func:`session_snapshot`) and an autosave file
(:func:`saved_snapshot`) become the same :class:`Snapshot`; :func:`params_of`,
:func:`row_metrics` and :func:`artifacts_of` turn it into what a tracker logs. Nothing here
imports MLflow, and nothing runs the values: code is only ever written out as text.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Snapshot",
    "artifacts_of",
    "params_of",
    "row_metrics",
    "saved_snapshot",
    "session_snapshot",
    "value_text",
]

_UNSAFE = re.compile(r"[^\w.\-]")


@dataclass
class Snapshot:
    """A session's state as trackers read it (see the module doc)."""

    name: str
    rows: list[dict]
    lineage: Any  # trace_nb.notebook.lineage.Lineage
    values: dict[str, Any]
    code: set[str] = field(default_factory=set)  # names of code parameters
    spec: Any = None  # trace_nb.notebook.spec.CellSpec
    model: str | None = None
    prompt: list[dict] | None = None  # the last messages the optimizer sent
    svg: str | None = None  # the last run's DAG
    source: str = "session"  # or "autosave file"


def session_snapshot(session: Any, *, dag: bool = True) -> Snapshot:
    """The state of a live :class:`~trace_nb.notebook.session.TraceSession`."""
    nodes = session.named_parameter_nodes()
    model = prompt = svg = None
    if any(row.get("calls") for row in session.rows):  # an optimizer exists: it was asked
        opt = session.optimizer
        llm = getattr(opt, "llm", None)
        model = getattr(llm, "model", None)
        log = getattr(opt, "log", None) or []
        prompt = list(log[-1].messages) if log else None
    elif session.spec is not None:
        model = session.spec.model
    if dag and session.rows:
        svg = dag_svg(session.graph())
    return Snapshot(
        name=session.name,
        rows=[dict(r) for r in session.rows],
        lineage=session.lineage,
        values=dict(session.parameters),
        code={k for k, p in nodes.items() if p.is_code},
        spec=session.spec,
        model=model,
        prompt=prompt,
        svg=svg,
    )


def saved_snapshot(path: str) -> Snapshot:
    """The state in an autosave (or ``session.save``) file, read and checked as untrusted
    input by :func:`trace_nb.notebook.persist.read_state`; its code is never compiled."""
    from ..notebook.persist import read_state

    state = read_state(str(path))
    values = {k: rec["value"] for k, rec in state["parameters"].items()}
    values.update({k: rec["source"] for k, rec in state["code"].items()})
    for mod, saved in state["modules"].items():
        params = saved.get("parameters", saved) if isinstance(saved, dict) else None
        if isinstance(params, dict):
            values.update({f"{mod}.{k}": v for k, v in params.items()})
    spec = state["spec"]
    return Snapshot(
        name=state["name"],
        rows=[dict(r) for r in state["history"]],
        lineage=state["lineage"],
        values=values,
        code=set(state["code"]),
        spec=spec,
        model=spec.model if spec is not None else None,
        source="autosave file",
    )


def dag_svg(graph: dict) -> str | None:
    """SVG text of a session's graph data, or None without graphviz."""
    if not graph.get("nodes"):
        return None
    from ..graph.render import svg

    try:
        return svg(graph)
    except (ImportError, RuntimeError):  # graphviz or dot missing: the rest is still logged
        return None


def value_text(value: Any) -> str:
    """A parameter value as the text of its artifact (JSON for non-text values)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=1, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def _file(name: str) -> str:
    return _UNSAFE.sub("_", name) or "_"


def params_of(snap: Snapshot) -> dict[str, Any]:
    """Run params: session, optimizer, model, options and each parameter's first value."""
    spec = snap.spec
    out: dict[str, Any] = {"session": snap.name, "source": snap.source}
    if spec is not None:
        out.update(
            optimizer=spec.optimizer,
            memory=spec.memory,
            candidates=spec.candidates,
            feedback_function=spec.feedback or "",
            parameters=",".join(spec.params),
            code_parameters=",".join(spec.code),
        )
    if snap.model:
        out["model"] = snap.model
    for name in snap.values:
        first = snap.lineage.get(name, 0) if snap.lineage.versions.get(name) else None
        initial = first.value if first is not None else snap.values[name]
        out[f"initial.{name}"] = value_text(initial)
    return out


def row_metrics(row: dict) -> dict[str, float]:
    """One history row of a session as metrics: score, tokens, cost, calls and the
    decisions (approvals by a human or automatically, rejections)."""
    out: dict[str, float] = {}
    for key in ("score", "tokens", "cost", "calls"):
        if isinstance(row.get(key), int | float) and not isinstance(row.get(key), bool):
            out[key] = float(row[key])
    approved = [n for n in str(row.get("approved") or "").split(", ") if n]
    rejected = [n for n in str(row.get("rejected") or "").split(", ") if n]
    who = row.get("decided_by") or ""
    out["approved_by_human"] = float(len(approved) if who == "human" else 0)
    out["approved_by_auto"] = float(len(approved) if who == "auto" else 0)
    out["rejected"] = float(len(rejected))
    return out


def history_csv(rows: list[dict]) -> str:
    """The history table as CSV text (one row per run, every column any row has)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: value_text(v) if isinstance(v, list | dict) else v for k, v in row.items()}
        )
    return buf.getvalue()


def version_files(snap: Snapshot, name: str) -> list[tuple[str, str]]:
    """Every accepted version of ``name`` (``.py`` for code), the diff from its parent,
    and one ``reasoning.md`` with who decided what, why, and how it scored."""
    chain = snap.lineage.versions.get(name) or []
    ext = "py" if name in snap.code else "txt"
    folder = f"parameters/{_file(name)}"
    files = []
    notes = [f"# {name}: {len(chain)} version(s)\n"]
    for v in chain:
        files.append((f"{folder}/v{v.number}.{ext}", value_text(v.value)))
        if v.parent is not None:
            diff = snap.lineage.diff(name, v.parent, v.number)
            files.append((f"{folder}/v{v.parent}_to_v{v.number}.diff", diff + "\n"))
        score = "-" if v.score is None else f"{v.score:.4g}"
        notes.append(
            f"## version {v.number} ({v.source}, parent {v.parent}, after run {v.step}, "
            f"decided by {v.decided_by or '-'}, score {score})\n\n{v.reasoning or '-'}\n"
        )
    if chain:
        files.append((f"{folder}/reasoning.md", "\n".join(notes)))
    elif name in snap.values:
        files.append((f"{folder}/current.{ext}", value_text(snap.values[name])))
    return files


def prompt_text(messages: list[dict]) -> str:
    """The optimizer's messages as one Markdown text."""
    return "\n\n".join(f"## {m.get('role', '?')}\n\n{m.get('content', '')}" for m in messages)


def artifacts_of(snap: Snapshot) -> list[tuple[str, str]]:
    """``(path, text)`` of every file of the run: versions, diffs, reasoning, history,
    lineage, the final prompt and the DAG."""
    files: list[tuple[str, str]] = []
    for name in snap.values:
        files.extend(version_files(snap, name))
    files.append(("history.csv", history_csv(snap.rows)))
    files.append(("lineage.json", json.dumps(snap.lineage.to_data(), indent=1, default=repr)))
    if snap.prompt:
        files.append(("final_prompt.md", prompt_text(snap.prompt)))
    if snap.svg:
        files.append(("dag.svg", snap.svg))
    return files
