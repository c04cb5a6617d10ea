"""The score-over-steps plot, as SVG that takes the theme's text colour (matplotlib's
canvas: no pyplot, no global state).

Text, axes, ticks and grid are drawn in ``currentColor`` on a transparent background, so
the plot reads in JupyterLab's light and dark themes alike (a PNG has one fixed
background and ink); the lines keep matplotlib's default colours.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

#: label -> (step, score) points (a Mapping: any dict of lists or tuples of points is one)
Series = Mapping[str, Sequence[tuple[float, float]]]


_INK = "#0a0b0c"  # drawn in this colour, then written as currentColor


def score_plot_svg(
    series: Series, *, title: str | None = None, width: float = 4.4, height: float = 2.4
) -> str:
    """Lines of score per step, one per labelled series of ``(step, score)`` points.

    Scores that all lie in 0..1 get the whole 0..1 range; a legend shows when there is more
    than one series; few steps get integer ticks.
    """
    from matplotlib import rc_context

    # A literal, so pyright checks its keys against the names matplotlib knows.
    with rc_context(
        {
            "text.color": _INK,
            "axes.labelcolor": _INK,
            "axes.edgecolor": _INK,
            "xtick.color": _INK,
            "ytick.color": _INK,
            "grid.color": _INK,
            "legend.facecolor": "none",
            "legend.edgecolor": _INK,
            "svg.fonttype": "none",
        }
    ):
        return _draw(series, title, width, height)


def _draw(series: Series, title: str | None, width: float, height: float) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    fig.patch.set_alpha(0.0)
    FigureCanvasSVG(fig)
    ax = fig.add_subplot()
    ax.patch.set_alpha(0.0)
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
    buf = io.StringIO()
    fig.savefig(buf, format="svg", transparent=True)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # inline in HTML: no XML declaration or doctype
    # Fixed pixel size from the figure, scaled down in narrow panels.
    svg = svg.replace("<svg ", '<svg style="max-width:100%;height:auto" role="img" ', 1)
    return svg.replace(_INK, "currentColor")
