"""The report's charts as inline SVG text: bars, the latency histogram, requests over time and a
caller's call-pattern timeline with its rate limits drawn in.

Every text from the log is escaped here (:func:`esc`); the charts reference nothing outside
themselves (no fonts, images or links), so a page holding them works offline from ``file://``.
Long series are reduced to one point per pixel column (its highest value), so a caller with
100,000 requests is a few hundred points.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from typing import Iterable, Sequence

from ..traffic.window import Window

# One colour per finding on a timeline (the call-pattern codes, and a throttled answer).
MARK_COLOURS = {
    "burst-limit": "#d9480f", "sustain-limit": "#e8590c", "certification-limit": "#c92a2a",
    "repeated-request": "#7048e8", "polling": "#1c7ed6", "ignored-retry-after": "#f08c00",
    "throttled": "#495057",
}
LIMIT_COLOURS = ("#c92a2a", "#862e9c", "#5c940d")


def esc(text: object) -> str:
    """Text safe inside an HTML or SVG element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def clock(ts: float, fine: bool = False) -> str:
    """A time axis label: UTC, to the second (``fine``: to the millisecond)."""
    text = datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S.%f")
    return text[:12] if fine else text[:8]


def number(n: float) -> str:
    """A count or a millisecond figure, short."""
    if n >= 100 or n == int(n):
        return f"{n:,.0f}"
    return f"{n:.3g}"


def bars(items: Sequence[tuple[str, int, str]], width: int = 560) -> str:
    """Horizontal bars: (label, count, CSS class) each, scaled to the largest count."""
    if not items:
        return '<p class="none">none</p>'
    row, label_w, count_w = 22, 170, 70
    top = max(n for _, n, _ in items) or 1
    plot = width - label_w - count_w
    parts = [f'<svg class="chart" role="img" width="{width}" height="{row * len(items) + 4}" '
             f'viewBox="0 0 {width} {row * len(items) + 4}">']
    for i, (label, n, cls) in enumerate(items):
        y = i * row + 2
        w = max(1.0, plot * n / top) if n else 0
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{esc(label)}</text>'
                     f'<rect class="{esc(cls)}" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}">'
                     f'<title>{esc(label)}: {n:,}</title></rect>'
                     f'<text x="{label_w + w + 5:.1f}" y="{y + 15}">{n:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(bins: Sequence[tuple[float, float, int]], width: int = 760, height: int = 200) -> str:
    """Vertical bars over (low ms, high ms, count) bins, left to right; labels at each decade."""
    if not bins:
        return '<p class="none">none</p>'
    left, bottom, top_pad = 50, 34, 10
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max(n for _, _, n in bins) or 1
    bw = plot_w / len(bins)
    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             _y_axis(left, top_pad, plot_h, top, width - 10)]
    for i, (low, high, n) in enumerate(bins):
        x = left + i * bw
        h = plot_h * n / top
        span = f"{number(low)}–{number(high)} ms" if math.isfinite(high) else f"≥ {number(low)} ms"
        parts.append(f'<rect class="lat" x="{x + 0.5:.1f}" y="{top_pad + plot_h - h:.1f}" width="{max(bw - 1, 1):.1f}" '
                     f'height="{h:.1f}"><title>{esc(span)}: {n:,}</title></rect>')
        if low > 0 and abs(math.log10(low) - round(math.log10(low))) < 1e-9:
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{number(low)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">latency, ms (log scale)</text></svg>')
    return "".join(parts)


def _y_axis(left: int, top_pad: int, plot_h: float, top: float, right: float) -> str:
    """Gridlines and labels at 0, half and the top of a count axis."""
    out = []
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - frac)
        out.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{number(top * frac)}</text>')
    return "".join(out)


def _x_axis(start: float, end: float, left: int, plot_w: float, y: float) -> str:
    """Five UTC time labels along a time axis."""
    span = max(end - start, 1e-9)
    out = []
    for k in range(5):
        ts = start + span * k / 4
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        out.append(f'<text x="{left + plot_w * k / 4:.1f}" y="{y:.1f}" text-anchor="{anchor}">{clock(ts, span < 20)}</text>')
    return "".join(out)


def rate(per_second: dict[int, int], width: int = 760, height: int = 170) -> str:
    """Requests over time: the log's request times in at most 120 equal buckets."""
    if not per_second:
        return '<p class="none">no request times in the log</p>'
    start, end = min(per_second), max(per_second) + 1
    buckets = min(120, end - start)
    size = (end - start) / buckets
    counts = [0] * buckets
    for second, n in per_second.items():
        counts[min(int((second - start) / size), buckets - 1)] += n
    left, bottom, top_pad = 50, 34, 10
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max(counts) or 1
    bw = plot_w / buckets
    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             _y_axis(left, top_pad, plot_h, top, width - 10)]
    for i, n in enumerate(counts):
        h = plot_h * n / top
        parts.append(f'<rect class="req" x="{left + i * bw:.1f}" y="{top_pad + plot_h - h:.1f}" '
                     f'width="{max(bw - 0.5, 0.5):.2f}" height="{h:.1f}"><title>{clock(start + i * size)}: '
                     f'{n:,} requests</title></rect>')
    parts.append(_x_axis(start, end, left, plot_w, height - bottom + 16))
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">requests per '
                 f'{number(size)} s (UTC)</text></svg>')
    return "".join(parts)


def sliding_counts(times: Sequence[float], period: float) -> list[int]:
    """For each of the ascending ``times``: the requests in the ``period`` seconds ending at it,
    itself included (a time ``t`` is inside when ``t + period > now``, as in traffic.window)."""
    out, first = [], 0
    for i, now in enumerate(times):
        while times[first] + period <= now:
            first += 1
        out.append(i - first + 1)
    return out


def _columns(times: Sequence[float], values: list[int], start: float, span: float, plot_w: int) -> list[tuple[int, int]]:
    """(pixel column, highest value in it) for the columns that have times."""
    best: dict[int, int] = {}
    for ts, v in zip(times, values):
        col = min(int((ts - start) / span * plot_w), plot_w - 1)
        if v > best.get(col, -1):
            best[col] = v
    return sorted(best.items())


def timeline(times: Sequence[float], marks: Iterable[tuple[float, str]], windows: Sequence[Window],
             width: int = 900) -> str:
    """One caller's requests: per window period a panel with the requests in the trailing window
    at each request, the limits of that period as dashed lines, and the findings (and throttled
    answers) as ticks along the top."""
    times = sorted(times)
    if not times:
        return '<p class="none">no request times</p>'
    start, end = times[0], times[-1]
    span = max(end - start, 1e-3)
    left, plot_w, panel_h, gap = 56, width - 66, 110, 26
    periods = sorted({w.period for w in windows})
    marks = sorted(marks)
    lane = 16 if marks else 0
    height = lane + len(periods) * (panel_h + gap) + 20
    parts = [f'<svg class="chart timeline" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for ts, code in marks:
        x = left + (ts - start) / span * plot_w
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="2" y2="{lane - 2}" stroke="{MARK_COLOURS.get(code, "#868e96")}" '
                     f'stroke-width="2"><title>{esc(code)} at {clock(ts, True)}</title></line>')
    for p, period in enumerate(periods):
        y0 = lane + p * (panel_h + gap) + 6
        counts = sliding_counts(times, period)
        limits = [w for w in windows if w.period == period]
        peak = max(counts)
        shown = [w for w in limits if w.limit <= max(peak, min(x.limit for x in limits)) * 1.25]
        top = max([peak] + [w.limit for w in shown]) * 1.1
        parts.append(_y_axis(left, y0, panel_h, top, left + plot_w))
        points = []
        for col, v in _columns(times, counts, start, span, plot_w):
            points.append(f"{left + col:.0f},{y0 + panel_h * (1 - v / top):.1f}")
        parts.append(f'<polyline class="load" points="{" ".join(points)}"/>')
        for k, w in enumerate(shown):
            y = y0 + panel_h * (1 - w.limit / top)
            colour = LIMIT_COLOURS[k % len(LIMIT_COLOURS)]
            parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" '
                         f'stroke-dasharray="6 4"/><text x="{left + plot_w - 4}" y="{y - 3:.1f}" text-anchor="end" '
                         f'fill="{colour}">{esc(w.name)} limit {w.limit:,} / {number(w.period)} s</text>')
        parts.append(f'<text x="{left + 4}" y="{y0 + 10}" class="panel">requests in the last {number(period)} s '
                     f'(peak {peak:,})</text>')
    parts.append(_x_axis(start, start + span, left, plot_w, height - 6))
    parts.append("</svg>")
    return "".join(parts)
