"""The score-over-steps plot, as a PNG (matplotlib's Agg canvas: no pyplot, no global state)."""

from __future__ import annotations

import io
from collections.abc import Sequence

Series = dict[str, Sequence[tuple[float, float]]]


def score_plot_png(
    series: Series, *, title: str | None = None, width: float = 4.4, height: float = 2.4
) -> bytes:
    """Lines of score per step, one per labelled series of ``(step, score)`` points.

    Scores that all lie in 0..1 get the whole 0..1 range; a legend shows when there is more
    than one series; few steps get integer ticks.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    styles = ["o-", "s-", "^-", "d-"]
    steps: set[float] = set()
    scores: list[float] = []
    drawn = 0
    for i, (label, points) in enumerate(series.items()):
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, styles[i % len(styles)], label=label, markersize=4)
        steps.update(xs)
        scores.extend(ys)
        drawn += 1
    ax.set_xlabel("step")
    ax.set_ylabel("score")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if scores and all(0.0 <= s <= 1.0 for s in scores):
        ax.set_ylim(-0.05, 1.05)
    if steps and len(steps) < 8:
        ax.set_xticks(sorted(steps))
    if drawn > 1:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
