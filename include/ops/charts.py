"""Server-rendered SVG charts: no JavaScript library, nothing fetched at view time.

Every text that goes into the SVG (labels, titles, tooltips) is escaped here; the result is safe
to embed in the page as markup. Colours are presentation attributes (no inline styles), so the
page's Content-Security-Policy can forbid inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``maximum``."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    top = math.ceil(maximum / step) * step
    return [i * step for i in range(round(top / step) + 1)]


def _number(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    stacked: bool = False,
    width: int = 900,
    height: int = 240,
    label_every: int | None = None,
    chart_id: str = "",
) -> Markup:
    """Grouped (or stacked) vertical bars, one group per category, with axes, legend and tooltips."""
    left, right, top, bottom = 56, 12, 30, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(categories), 1)
    if stacked:
        peak = max((sum(s.values[i] for s in series) for i in range(len(categories))), default=0)
    else:
        peak = max((v for s in series for v in s.values), default=0)
    ticks = nice_ticks(peak)
    scale = plot_h / ticks[-1] if ticks[-1] else 0
    band = plot_w / n
    every = label_every or max(1, math.ceil(n / 15))
    id_attribute = f' id="{_e(chart_id)}"' if chart_id else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}"{id_attribute} '
        f'data-chart="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    for tick in ticks:
        y = top + plot_h - tick * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555" {FONT}>{_number(tick)}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#888"/>')
    inner = band * 0.8
    for i, category in enumerate(categories):
        x0 = left + i * band + band * 0.1
        base = top + plot_h
        for j, s in enumerate(series):
            value = s.values[i]
            h = value * scale
            if stacked:
                x, w, y = x0, inner, base - h
                base = y
            else:
                w = inner / max(len(series), 1)
                x, y = x0 + j * w, top + plot_h - h
            if value <= 0:
                continue
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(w - 1, 1):.1f}" height="{max(h, 1):.1f}" '
                f'fill="{_e(s.color)}"><title>{_e(category)}: {_e(s.name)} {_e(f"{value:,.0f}")}</title></rect>'
            )
        if i % every == 0:
            cx = left + i * band + band / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#555" {FONT}>'
                f"{_e(category)}</text>"
            )
    x = left
    for s in series:
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{_e(s.color)}"/>')
        parts.append(f'<text x="{x + 16}" y="18" fill="#222" {FONT}>{_e(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    parts.append("</svg>")
    return Markup("".join(parts))


def hbar_chart(
    labels: Sequence[str], values: Sequence[float], *, title: str, color: str = "#1c7ed6", width: int = 520
) -> Markup:
    """Horizontal bars, one row per label (e.g. outstanding recalls per manufacturer)."""
    row, left, right, top = 18, 120, 70, 6
    height = top * 2 + row * max(len(labels), 1)
    peak = max(values, default=0) or 1
    plot_w = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{_e(title)}" data-chart="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        w = plot_w * value / peak
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end" fill="#222" {FONT}>{_e(label)}</text>')
        parts.append(
            f'<rect class="bar" x="{left}" y="{y + 2}" width="{max(w, 1 if value else 0):.1f}" height="{row - 5}" '
            f'fill="{_e(color)}"><title>{_e(label)}: {_e(f"{value:,.0f}")}</title></rect>'
        )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 12}" fill="#555" {FONT}>{_e(f"{value:,.0f}")}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
