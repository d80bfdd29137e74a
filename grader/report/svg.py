"""Small inline SVG charts: learning curves and the score histogram.

Written by hand rather than with matplotlib: the charts are a few polylines and rectangles,
inline SVG keeps each page one self-contained file, and matplotlib's import would cost a
few hundred milliseconds per report run. Every label goes through `escape`; every
coordinate is a float we computed, so nothing from a submission reaches the markup raw.
"""
from __future__ import annotations

import math
from typing import Sequence

from markupsafe import Markup, escape

from .fmt import number

PALETTE = ("#1f6fb2", "#d2691e", "#2e8b57", "#8e44ad", "#b22222", "#555555")
MAX_POINTS = 400  # per polyline; longer runs keep each bucket's min and max so spikes stay


def _points(values: Sequence) -> list[float | None]:
    if type(values) is list and set(map(type, values)) <= {float}:  # a curve as JSON gives it
        return [v if math.isfinite(v) else None for v in values]
    out = []
    for v in values if isinstance(values, (list, tuple)) else ():
        f = number(v)
        out.append(f if f is not None and math.isfinite(f) else None)
    return out


def _thin(pts: list[tuple[int, float | None]]) -> list[tuple[int, float | None]]:
    """Keep at most ~MAX_POINTS points, keeping each bucket's extremes so a spike survives."""
    if len(pts) <= MAX_POINTS:
        return pts
    step = math.ceil(len(pts) / (MAX_POINTS / 2))
    kept = []
    for i in range(0, len(pts), step):
        bucket = [p for p in pts[i:i + step] if p[1] is not None]
        if not bucket:
            kept.append(pts[i])
            continue
        lo, hi = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
        kept.extend(sorted({lo, hi}))
    return kept


def _y_top(curves: list[list[float | None]], floor: float, cap: float | None) -> float:
    finite = [v for c in curves for v in c if v is not None]
    top = max(finite + [floor])
    if cap is not None:
        top = min(top, cap)
    return top * 1.08 if top > 0 else 1.0


def line_chart(curves: list[dict], key: str, *, title: str, ref: float | None = None,
               ref_label: str = "", y_max: float | None = None, cap: float | None = None,
               width: int = 340, height: int = 170) -> Markup:
    """One chart of `curve[key]` per curve, with an optional dashed reference line.

    Values above `cap` are drawn at the top edge with a red mark (a spike stays visible
    without squashing the rest of the curve); NaN/inf are drawn the same way, as they are
    the biggest spike of all.
    """
    pairs = [(_points(c.get(key)), c.get("label")) for c in curves if isinstance(c, dict)]
    pairs = [(s, label) for s, label in pairs if s]
    series = [s for s, _ in pairs]
    if not series:
        return Markup("")
    left, right, top, bottom = 42, 10, 22, 26
    pw, ph = width - left - right, height - top - bottom
    n = max(len(s) for s in series)
    ymax = y_max if y_max is not None else _y_top(series, (ref or 0) * 1.2, cap)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - min(max(v, 0.0), ymax) / ymax)

    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<title>{escape(title)}</title>',
             f'<text x="{left}" y="14" class="ct">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>']
    for frac in (0, 0.5, 1):
        v = ymax * frac
        parts.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{v:.2g}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}" class="tick">epoch 1</text>')
    parts.append(f'<text x="{left + pw}" y="{height - 8}" class="tick" text-anchor="end">{n}</text>')
    for k, (s, _label) in enumerate(pairs):
        parts.extend(_series_svg(s, x, y, ymax, PALETTE[k % len(PALETTE)]))
    if ref is not None and 0 < ref <= ymax:  # drawn last: a plateau on it must not hide it
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(ref):.1f}" y2="{y(ref):.1f}" class="ref"/>')
        parts.append(f'<text x="{left + pw - 2}" y="{y(ref) - 3:.1f}" class="tick" text-anchor="end">'
                     f'{escape(ref_label)}</text>')
    parts.append(_legend([label for _, label in pairs], left + 45, left + pw - 30, height))
    parts.append("</svg>")
    return Markup("".join(parts))


def _series_svg(s, x, y, ymax, colour) -> list[str]:
    out, run = [], []
    pts = _thin(list(enumerate(s)))
    raw = {i for i, v in enumerate(s) if v is None}
    for i, v in pts:
        if v is None:
            if len(run) > 1:
                out.append(_polyline(run, colour))
            run = []
            continue
        run.append(f"{x(i):.1f},{y(v):.1f}")
    if len(run) > 1:
        out.append(_polyline(run, colour))
    elif len(run) == 1:
        cx, cy = run[0].split(",")
        out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
    for i, v in enumerate(s):  # off-chart and non-finite values: red ticks on the top edge
        if i in raw or (v is not None and v > ymax):
            out.append(f'<path d="M{x(i):.1f} {y(ymax) - 1:.1f} l-3 -5 h6 z" class="off"/>')
    return out


def _polyline(run: list[str], colour: str) -> str:
    return f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="1.6"/>'


def _legend(labels: list, start: float, end: float, height: int) -> str:
    """Up to four labels spread between the axis's first and last epoch labels."""
    shown = labels[:4]
    step = min(70.0, (end - start) / max(1, len(shown)))
    out, xpos = [], start
    for k, label in enumerate(shown):
        colour = PALETTE[k % len(PALETTE)]
        out.append(f'<rect x="{xpos}" y="{height - 16}" width="10" height="3" fill="{colour}"/>'
                   f'<text x="{xpos + 13}" y="{height - 12}" class="tick">'
                   f'{escape(str(label if label is not None else k + 1)[:max(3, int(step / 6) - 2)])}</text>')
        xpos += step
    return "".join(out)


BIN_WIDTHS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
MAX_BINS = 20


def bin_width(max_score: float) -> float:
    """Whole-point bins, as few as 20: 1 point up to 20 points, then 2, 5, 10, ..."""
    return next((w for w in BIN_WIDTHS if math.ceil(max_score / w) <= MAX_BINS),
                10 ** math.ceil(math.log10(max_score / MAX_BINS)))


def histogram(scores: Sequence[float], max_score: float, *, width: int = 900,
              height: int = 150) -> Markup:
    """Bars of how many students got each score band: whole-point bands (bin_width), tick
    labels on round numbers. The SVG scales to its card's width (a viewBox, width 100%)."""
    if not scores or max_score <= 0:
        return Markup("")
    w = bin_width(max_score)
    nbins = max(1, math.ceil(max_score / w - 1e-9))
    counts = [0] * nbins
    for s in scores:
        counts[min(nbins - 1, max(0, int(s // w)))] += 1
    left, right, top, bottom = 30, 10, 14, 34
    pw, ph = width - left - right, height - top - bottom
    bw, cmax = pw / nbins, max(counts)
    parts = [f'<svg id="histogram" class="chart histogram" role="img" viewBox="0 0 {width} {height}" '
             f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
             '<title>Score histogram</title>',
             f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>',
             f'<text x="{left - 4}" y="{top + 8}" class="tick" text-anchor="end">{cmax}</text>',
             f'<text x="{left - 4}" y="{top + ph}" class="tick" text-anchor="end">0</text>']
    for i, c in enumerate(counts):
        h = ph * c / cmax if cmax else 0
        lo, hi = w * i, min(w * (i + 1), max_score)
        label = f"{lo:g}–{hi:g}: {c} student{'s' if c != 1 else ''}"
        parts.append(f'<rect class="bar" x="{left + i * bw + 1:.1f}" y="{top + ph - h:.1f}" '
                     f'width="{max(bw - 2, 1):.1f}" height="{h:.1f}"><title>{label}</title></rect>')
        if c:
            parts.append(f'<text x="{left + (i + 0.5) * bw:.1f}" y="{top + ph - h - 3:.1f}" '
                         f'class="tick" text-anchor="middle">{c}</text>')
    step = 1 if nbins <= 12 else 2
    for i in range(0, nbins + 1, step):
        if w * i <= max_score + 1e-9:
            parts.append(f'<text x="{left + i * bw:.1f}" y="{top + ph + 14}" class="tick edge" '
                         f'text-anchor="middle">{w * i:g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" class="tick" text-anchor="middle">'
                 f'score (out of {max_score:g}; bars of {w:g} point{"s" if w != 1 else ""})</text></svg>')
    return Markup("".join(parts))
