"""Charts as SVG markup, drawn on the server: no JavaScript, no CDN, nothing the CSP has to allow.

Colours and fonts come from classes styled in static/css/stats.css (an inline `style` would be refused).
Every chart carries a <title> and a data attribute per mark, so it can be read without seeing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36


def _nice_max(value: float) -> float:
    """A round upper bound for an axis: 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _axis(top_value: float, unit: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for i in range(5):
        value = top_value * i / 4
        y = TOP + plot_h - plot_h * i / 4
        label = f"{value:g}{unit}"
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    return parts


def _x_labels(labels: Sequence[str], step_x: float) -> list[str]:
    every = max(1, len(labels) // 8)
    parts = []
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + step_x * (i + 0.5)
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{escape(label)}</text>'
            )
    return parts


def _svg(name: str, title: str, body: list[str], legend: Sequence[tuple[str, str]] = ()) -> str:
    keys = "".join(f'<tspan class="legend-{css}" dx="8">■ {escape(label)}</tspan>' for css, label in legend)
    legend_markup = f'<text class="legend" x="{LEFT}" y="{HEIGHT - 6}">{keys}</text>' if legend else ""
    return (
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}{legend_markup}</svg>'
    )


def bar_chart(name: str, title: str, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]]) -> str:
    """Grouped bars: one group per label, one bar per series (css class, legend label, values)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = _nice_max(max((v for _c, _l, values in series for v in values), default=0))
    step_x = plot_w / max(1, len(labels))
    bar_w = max(1.0, step_x * 0.8 / max(1, len(series)))
    body = _axis(top_value, "")
    for s, (css, label, values) in enumerate(series):
        for i, value in enumerate(values):
            h = plot_h * value / top_value
            x = LEFT + step_x * i + step_x * 0.1 + bar_w * s
            body.append(
                f'<rect class="bar bar-{escape(css)}" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" data-value="{value:g}">'
                f"<title>{escape(labels[i])}: {escape(label)} {value:g}</title></rect>"
            )
    body += _x_labels(labels, step_x)
    return _svg(name, title, body, [(css, label) for css, label, _v in series])


def line_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    unit: str = "%",
) -> str:
    """Lines (gaps where a value is None): one per series (css class, legend label, values)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values_all = [v for _c, _l, values in series for v in values if v is not None]
    top_value = 100.0 if unit == "%" else _nice_max(max(values_all, default=0))
    step_x = plot_w / max(1, len(labels))
    body = _axis(top_value, unit)
    for css, label, values in series:
        segments: list[list[str]] = [[]]
        for i, value in enumerate(values):
            if value is None:
                segments.append([])
                continue
            x, y = LEFT + step_x * (i + 0.5), TOP + plot_h - plot_h * value / top_value
            segments[-1].append(f"{x:.1f},{y:.1f}")
            body.append(
                f'<circle class="dot dot-{escape(css)}" cx="{x:.1f}" cy="{y:.1f}" r="2.5" data-value="{value:g}">'
                f"<title>{escape(labels[i])}: {escape(label)} {value:g}{escape(unit)}</title></circle>"
            )
        for points in segments:
            if len(points) > 1:
                body.append(f'<polyline class="line line-{escape(css)}" points="{" ".join(points)}"/>')
    body += _x_labels(labels, step_x)
    return _svg(name, title, body, [(css, label) for css, label, _v in series])
