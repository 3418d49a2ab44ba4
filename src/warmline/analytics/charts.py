"""Server-rendered charts: horizontal bar charts as inline SVG (no scripts, nothing fetched)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH = 560
LABEL_WIDTH = 190
VALUE_WIDTH = 80
ROW = 26
BAR = 18
COLORS = ("#1f6feb", "#2f9e44", "#e8590c", "#c62828", "#7048e8", "#0b7285")


@dataclass(frozen=True)
class Bar:
    """One bar: its label, length (in the chart's unit) and the text printed after it."""

    label: str
    value: float
    text: str


def bar_chart(title: str, bars: list[Bar], *, maximum: float | None = None, chart_id: str = "") -> str:
    """An accessible SVG bar chart; ``maximum`` fixes the scale (1.0 for rates), else the largest bar."""
    top = maximum if maximum is not None else max((b.value for b in bars), default=0.0)
    scale = (WIDTH - LABEL_WIDTH - VALUE_WIDTH) / top if top > 0 else 0.0
    height = ROW * max(1, len(bars)) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}"'
        + (f' id="{escape(chart_id)}"' if chart_id else "")
        + f' aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        parts.append(f'<text x="0" y="{ROW - 8}" fill="#7b8794">No data yet</text>')
    for index, bar in enumerate(bars):
        y = index * ROW + 4
        length = max(0.0, bar.value) * scale
        color = COLORS[index % len(COLORS)]
        parts.append(
            f'<g class="bar" data-label="{escape(bar.label)}" data-value="{bar.value:g}">'
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR - 5}" text-anchor="end" fill="#1f2933" '
            f'font-size="13">{escape(bar.label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR}" rx="3" fill="{color}"/>'
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + BAR - 5}" fill="#1f2933" '
            f'font-size="13">{escape(bar.text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def percent(value: float | None) -> str:
    """``0.25`` → ``25 %``; missing → ``-``."""
    if value is None:
        return "-"
    shown = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{shown} %"


def duration(seconds: float | None) -> str:
    """Seconds as ``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
