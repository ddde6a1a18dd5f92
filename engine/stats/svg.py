"""Small server-rendered SVG bar charts: no script, no library, every label escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2d5bd7", "#e08a1e", "#2e9e5b", "#b3261e")
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 44, 8, 28, 46
_LABEL_CHARS, _CHAR_W_PX = 14, 6.5  # axis labels are cut to 14 characters of ~6.5 px


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above `value` (at least 1): a round top of the axis."""
    if value <= 1:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= value)


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 260,
) -> str:
    """A grouped bar chart as an <svg> element: one group per label, one bar per series.

    Long label lists are thinned on the axis (every n-th shown); each bar has a <title> so the
    exact value shows on hover and to screen readers.
    """
    top = nice_ceiling(max((v for s in series for v in s.values), default=0.0))
    plot_w = width - _PAD_LEFT - _PAD_RIGHT
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    slot = plot_w / max(len(labels), 1)
    bar_w = min(max(slot * 0.8 / max(len(series), 1), 1.0), 48.0)
    longest = max((len(label[:_LABEL_CHARS]) for label in labels), default=1)
    every = max(1, math.ceil(longest * _CHAR_W_PX / slot))  # axis labels must not overlap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" '
        f'font-family="system-ui, sans-serif" style="width:100%;height:auto;max-width:{width}px">',
        f'<text x="{_PAD_LEFT}" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
    ]
    for tick in (0.0, top / 2, top):
        y = _PAD_TOP + plot_h - plot_h * tick / top
        parts.append(
            f'<line x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#dde1e8"/><text x="{_PAD_LEFT - 4}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end">{tick:g}</text>'
        )
    for i, label in enumerate(labels):
        x0 = _PAD_LEFT + i * slot + slot * 0.1
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{_PAD_TOP + plot_h - h:.1f}" '
                f'width="{bar_w:.1f}" height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{escape(label)} · {escape(s.name)}: {value:g}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x0 + slot * 0.4:.1f}" y="{height - _PAD_BOTTOM + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label[:_LABEL_CHARS])}</text>'
            )
    for j, s in enumerate(series):
        x = _PAD_LEFT + j * 110
        parts.append(
            f'<rect x="{x}" y="{height - 16}" width="10" height="10" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/><text x="{x + 14}" y="{height - 7}" '
            f'font-size="11">{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
