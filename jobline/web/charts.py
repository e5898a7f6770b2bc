"""Inline SVG charts for the dashboard: the geometry is computed here, the template draws it.

No JavaScript and no library: bars, lines and areas on a fixed ``viewBox`` that the browser
scales, with a ``<title>`` per bucket for a native tooltip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

WIDTH, HEIGHT = 400, 150  # about the size drawn on a laptop: text stays readable
LEFT, RIGHT, TOP, BOTTOM = 34, 6, 8, 18  # margins around the plot


@dataclass
class Chart:
    title: str
    unit: str
    # Numbers are preformatted strings: templates would localize floats ("1,5" in German).
    bars: list[dict[str, str]] = field(default_factory=list)
    paths: list[dict[str, str]] = field(default_factory=list)
    y_ticks: list[tuple[str, str]] = field(default_factory=list)
    x_ticks: list[tuple[str, str]] = field(default_factory=list)
    hits: list[dict[str, str]] = field(default_factory=list)  # hover areas with a title
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: float = HEIGHT - BOTTOM


def _n(value: float) -> str:
    return f"{value:.1f}"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is >= value (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _short(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 60:g}m"


def _frame(chart: Chart, n: int, top: float, span: timedelta, fmt: str) -> tuple[float, float]:
    """Axes and ticks; returns the bucket width and the y scale (pixels per unit)."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    for k in range(3):
        value = top * k / 2
        chart.y_ticks.append((_n(HEIGHT - BOTTOM - plot_h * k / 2), fmt.format(value)))
    seconds = span.total_seconds()
    for k in range(5):
        label = "now" if k == 4 else f"-{_short(seconds * (4 - k) / 4)}"
        chart.x_ticks.append((_n(LEFT + plot_w * k / 4), label))
    return plot_w / n, plot_h / top


def _hits(chart: Chart, bucket_w: float, titles: list[str]) -> None:
    plot_h = HEIGHT - TOP - BOTTOM
    for i, title in enumerate(titles):
        chart.hits.append(
            {
                "x": _n(LEFT + i * bucket_w),
                "y": _n(TOP),
                "w": _n(bucket_w),
                "h": _n(plot_h),
                "title": title,
            }
        )


def stacked_bars(
    title: str, series: list[tuple[str, list[int]]], labels: list[str], span: timedelta
) -> Chart:
    """Bars per bucket, one segment per named series (CSS class ``bar-<name>``)."""
    n = len(labels)
    top = nice_ceiling(max((sum(v[i] for _, v in series) for i in range(n)), default=0))
    chart = Chart(title=title, unit="jobs")
    bucket_w, scale = _frame(chart, n, top, span, "{:g}")
    gap = min(2.0, bucket_w * 0.2)
    for i in range(n):
        y = HEIGHT - BOTTOM
        for name, values in series:
            h = values[i] * scale
            if h > 0:
                y -= h
                chart.bars.append(
                    {
                        "x": _n(LEFT + i * bucket_w + gap / 2),
                        "y": _n(y),
                        "w": _n(bucket_w - gap),
                        "h": _n(h),
                        "cls": name,
                    }
                )
    titles = [
        f"{labels[i]}: " + ", ".join(f"{values[i]} {name}" for name, values in series)
        for i in range(n)
    ]
    _hits(chart, bucket_w, titles)
    return chart


def line(
    title: str,
    name: str,
    values: list[float | None],
    labels: list[str],
    span: timedelta,
    *,
    unit: str = "",
    top: float | None = None,
    area: bool = False,
) -> Chart:
    """A line (or filled area) through the buckets' middles; gaps where a value is None."""
    n = len(values)
    top = top or nice_ceiling(max((v for v in values if v is not None), default=0))
    chart = Chart(title=title, unit=unit)
    bucket_w, scale = _frame(chart, n, top, span, "{:g}" + unit)
    runs: list[list[tuple[float, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((LEFT + (i + 0.5) * bucket_w, HEIGHT - BOTTOM - v * scale))
    base = HEIGHT - BOTTOM
    for run in filter(None, runs):
        if len(run) == 1:  # a lone value: a short flat stroke, so that it shows
            (x, y), half = run[0], bucket_w / 2
            run = [(x - half, y), (x + half, y)]
        points = " L".join(f"{x:.1f},{y:.1f}" for x, y in run)
        if area:
            fill = f"M{run[0][0]:.1f},{base} L{points} L{run[-1][0]:.1f},{base} Z"
            chart.paths.append({"d": fill, "cls": f"area-{name}"})
        chart.paths.append({"d": f"M{points}", "cls": f"line-{name}"})
    titles = [
        f"{labels[i]}: {'no jobs' if v is None else f'{v:g}{unit}'}" for i, v in enumerate(values)
    ]
    _hits(chart, bucket_w, titles)
    return chart
