"""``report.md`` and ``score_vs_step.png`` from the benchmark's DataFrame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SUMMARY_COLUMNS = [
    "task",
    "method",
    "runs",
    "success",
    "mean steps to success",
    "best score",
    "parse failures",
    "invalid",
    "repeats",
    "wasted steps",
    "kept steps",
    "repairs",
    "refusals",
    "prompt tokens",
    "completion tokens",
    "wall s",
]


def summarize(frame: Any) -> Any:
    """One row per (task, method): success k/n, means over the runs that finished."""
    import pandas as pd

    rows = []
    for (task, method), group in frame.groupby(["task", "method"], sort=False):
        ok = group[group["status"] == "ok"]
        if ok.empty and _unavailable(group["status"]).all():
            continue  # said once per method by unavailable_lines(), not once per task
        if ok.empty:
            status = str(group["status"].iloc[0])
            rows.append({"task": task, "method": method, "runs": 0, "success": status})
            continue
        solved = ok[ok["success"].astype(bool)]
        steps = solved["steps_to_success"].astype(float).mean() if len(solved) else None
        errors = len(group) - len(ok)
        stopped = int(ok["stopped"].notna().sum()) if "stopped" in ok else 0
        rows.append(
            {
                "task": task,
                "method": method,
                "runs": f"{len(ok)}"
                + (f" ({stopped} cut by the time budget)" if stopped else "")
                + (f" (+{errors} not run or failed)" if errors else ""),
                "success": f"{len(solved)}/{len(ok)}",
                "mean steps to success": None if steps is None else round(steps, 2),
                "best score": round(float(ok["best_score"].mean()), 3),
                "parse failures": int(ok["parse_failures"].sum()),
                "invalid": int(ok["invalid_proposals"].sum()),
                "repeats": int(ok["repeats"].sum()),
                "wasted steps": _wasted(ok),
                "kept steps": _total(ok, "kept_steps"),
                "repairs": _total(ok, "repairs"),
                "refusals": refusal_text(ok),
                "prompt tokens": int(ok["prompt_tokens"].sum()),
                "completion tokens": int(ok["completion_tokens"].sum()),
                "wall s": round(float(ok["wall_s"].sum()), 2),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _unavailable(status: Any) -> Any:
    return status.astype(str).str.startswith("unavailable")


def unavailable_lines(frame: Any) -> list[str]:
    """One line per method that could not run here, with the reason (left out of the table)."""
    lines = []
    gone = frame[_unavailable(frame["status"])]
    for (method, status), group in gone.groupby(["method", "status"], sort=False):
        tasks = group["task"].nunique()
        lines.append(
            f"{method}: not run ({tasks} task{'s' if tasks != 1 else ''}, "
            f"{len(group)} run{'s' if len(group) != 1 else ''}): {status}"
        )
    return lines


def _total(ok: Any, column: str) -> int | None:
    """The column's sum, None for results written before it existed."""
    if column not in ok or ok[column].isna().all():
        return None
    return int(ok[column].fillna(0).sum())


def _wasted(ok: Any) -> str | None:
    """``wasted/steps (percent)``: steps that applied nothing (see :mod:`.counters`)."""
    steps, wasted = _total(ok, "steps_run"), _total(ok, "wasted_steps")
    if not steps or wasted is None:  # results that counted steps but not wasted ones
        return None
    return f"{wasted}/{steps} ({round(100 * wasted / steps)} %)"


def refusal_text(ok: Any) -> str | None:
    """Refused proposals by reason code over the runs, most frequent first: ``same_value 3``."""
    if "refusals" not in ok:
        return None
    total: dict[str, int] = {}
    for counts in ok["refusals"]:
        for code, n in (counts if isinstance(counts, dict) else {}).items():
            total[code] = total.get(code, 0) + int(n)
    return ", ".join(f"{c} {n}" for c, n in sorted(total.items(), key=lambda kv: -kv[1])) or None


def markdown_table(table: Any) -> str:
    """A GitHub markdown table (no tabulate dependency); empty cells for missing values."""

    def cell(value: Any) -> str:
        if value is None or value != value:  # None or NaN
            return ""
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)  # pandas turns int columns with gaps into floats
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def mean_curves(frame: Any, steps: int) -> dict[str, dict[str, list[float]]]:
    """task -> method -> mean score per step; a run that stopped early keeps its last score."""
    curves: dict[str, dict[str, list[float]]] = {}
    for (task, method), group in frame.groupby(["task", "method"], sort=False):
        runs = [
            list(c) for c, s in zip(group["curve"], group["status"], strict=True) if s == "ok" and c
        ]
        if not runs:
            continue
        padded = [c + [c[-1]] * (steps + 1 - len(c)) for c in runs]
        curves.setdefault(task, {})[method] = [
            sum(col) / len(col) for col in zip(*padded, strict=True)
        ]
    return curves


def plot(frame: Any, steps: int, path: Path) -> Path | None:
    """Score vs step, one panel per task, one line per method (mean over seeds)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    curves = mean_curves(frame, steps)
    if not curves:
        return None
    cols = min(3, len(curves))
    rows = -(-len(curves) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
    FigureCanvasAgg(fig)
    for k, (task, by_method) in enumerate(curves.items()):
        ax = fig.add_subplot(rows, cols, k + 1)
        for method, curve in by_method.items():
            ax.plot(range(len(curve)), curve, marker="o", markersize=3, label=method)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("score")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def write_report(frame: Any, out: Path, meta: dict) -> Path:
    """Write ``out/report.md`` (and the plot next to it); return the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    picture = plot(frame, int(meta.get("steps", 0)), out / "score_vs_step.png")
    mode = (
        "OFFLINE: scripted oracles on 127.0.0.1 — these numbers test the plumbing, not a model"
        if meta.get("offline")
        else f"model `{meta.get('model')}`"
    )
    lines = [
        "# trace_nb.bench report",
        "",
        f"- Mode: {mode}",
        f"- Steps per run: {meta.get('steps')}; seeds: {meta.get('seeds')}",
        "- Score: 1 is solved (numerical: 1 - normalized regret; BBH: held-out accuracy; "
        "code: hidden tests passed; format: requirements met on held-out topics).",
        "- Code proposals were applied without review (approve_code=True).",
        "",
        markdown_table(summarize(frame)),
        "",
    ]
    lines += [f"- {line}" for line in unavailable_lines(frame)]
    lines += [""] if unavailable_lines(frame) else []
    if picture is not None:
        lines += ["## Score vs step (mean over seeds)", "", f"![score vs step]({picture.name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
