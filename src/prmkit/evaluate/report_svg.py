"""The inline SVG plots of ``prmkit report``: plain strings, no plotting library, no scripts.

Every plot is a ``<svg>`` element with fixed pixel size, hover ``<title>`` s on its marks and all
text escaped. :mod:`prmkit.evaluate.report` places them on the page.

Example:
    >>> svg = histogram_svg({0: 3, 2: 1})
    >>> svg.startswith("<svg") and svg.count("<rect") == 3  # steps 0, 1 (empty) and 2
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "COLORS",
    "bon_svg",
    "calibration_svg",
    "histogram_svg",
    "tokens_svg",
    "trace_svg",
]

COLORS = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
]


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _open(w: int, h: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'role="img" aria-label="{_e(label)}">'
    )


def _axes(
    w: int,
    h: int,
    pad: int,
    x_ticks: list[tuple[float, str]],
    y_ticks: list[tuple[float, str]],
    x_label: str,
    y_label: str,
) -> list[str]:
    out = [
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#444"/>',
        f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad}" stroke="#444"/>',
    ]
    for x, text in x_ticks:
        out.append(
            f'<text x="{x:.1f}" y="{h - pad + 16}" font-size="11" '
            f'text-anchor="middle">{_e(text)}</text>'
        )
    for y, text in y_ticks:
        out.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(
            f'<text x="{pad - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end">{_e(text)}</text>'
        )
    out.append(
        f'<text x="{(w + pad) / 2:.0f}" y="{h - 6}" font-size="12" '
        f'text-anchor="middle">{_e(x_label)}</text>'
    )
    out.append(
        f'<text x="14" y="{h / 2:.0f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {h / 2:.0f})">{_e(y_label)}</text>'
    )
    return out


def _legend(x: float, entries: Sequence[tuple[str, str, str, str]]) -> list[str]:
    """(name, color, dash, marker) rows at the top right; marker: '', 'circle', 'square', ..."""
    out = []
    for i, (name, color, dash, marker) in enumerate(entries):
        y = 20 + 18 * i
        out.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 25}" y2="{y}" stroke="{color}" '
            f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
        )
        if marker:
            out.append(_marker(marker, x + 12.5, y, color, ""))
        out.append(f'<text x="{x + 30}" y="{y + 4}" font-size="11">{_e(name)}</text>')
    return out


def _marker(kind: str, x: float, y: float, color: str, title: str) -> str:
    tip = f"<title>{_e(title)}</title>" if title else ""
    if kind == "square":
        return (
            f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{color}">'
            f"{tip}</rect>"
        )
    if kind == "triangle":
        return f'<path d="M{x:.1f},{y - 5:.1f} l5,9 l-10,0 z" fill="{color}">{tip}</path>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}">{tip}</circle>'


def _percent_range(values: Sequence[float]) -> tuple[float, float]:
    lo = max(0.0, math.floor(min(values) / 10) * 10)
    hi = min(100.0, math.ceil(max(values) / 10) * 10)
    return (lo, hi) if hi > lo else (max(0.0, lo - 10), max(lo, 10.0))


def bon_svg(result: Mapping[str, Any], methods: Sequence[str] | None = None) -> str:
    """Accuracy vs N (log2 axis) with bootstrap bands, pass@N and the pass@1 baseline."""
    w, h, pad = 640, 340, 50
    curves = result["curves"]
    default = ("pass", "majority", "prm_min", "prm_prod", "prm_last", "prm_mean", "weighted_min")
    methods = list(methods or [m for m in default if m in curves])
    ns = result["ns"]
    lx = [math.log2(n) for n in ns]
    x0, x1 = min(lx), max(lx) if max(lx) > min(lx) else min(lx) + 1
    vals = [v for m in methods for row in curves[m] for v in (row["ci"][0], row["ci"][1])]
    vals.append(result["pass@1"]["mean"])
    lo, hi = _percent_range(vals)

    def sx(n: float) -> float:
        return pad + (math.log2(n) - x0) / (x1 - x0) * (w - pad - 160)

    def sy(v: float) -> float:
        return h - pad - (v - lo) / (hi - lo) * (h - pad - 10)

    parts = [_open(w, h, "accuracy vs N")]
    y_ticks = [(sy(v), f"{v:.0f}") for v in range(int(lo), int(hi) + 1, 10)]
    parts += _axes(
        w, h, pad, [(sx(n), str(n)) for n in ns], y_ticks, "N (solutions per problem)", "accuracy %"
    )
    base = result["pass@1"]["mean"]
    parts.append(
        f'<line x1="{pad}" y1="{sy(base):.1f}" x2="{w - 160}" y2="{sy(base):.1f}" '
        f'stroke="#555" stroke-dasharray="2,3"/>'
    )
    legend = [("pass@1", "#555", "2,3", "")]
    for i, m in enumerate(methods):
        color = COLORS[i % len(COLORS)]
        rows = curves[m]
        band = [(sx(r["n"]), sy(r["ci"][1])) for r in rows] + [
            (sx(r["n"]), sy(r["ci"][0])) for r in reversed(rows)
        ]
        parts.append(
            '<polygon points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in band)
            + f'" fill="{color}" fill-opacity="0.10" stroke="none"/>'
        )
        dash = "6,4" if m == "pass" else ""
        pts = " ".join(f"{sx(r['n']):.1f},{sy(r['mean']):.1f}" for r in rows)
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
        )
        for r in rows:
            parts.append(
                f'<circle cx="{sx(r["n"]):.1f}" cy="{sy(r["mean"]):.1f}" r="3" '
                f'fill="{color}"><title>{_e(m)} N={r["n"]}: {r["mean"]:.1f} '
                f"[{r['ci'][0]:.1f}, {r['ci'][1]:.1f}]</title></circle>"
            )
        legend.append((m if m != "pass" else "pass@N", color, dash, ""))
    parts += _legend(w - 150, legend)
    parts.append("</svg>")
    return "\n".join(parts)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks inside [lo, hi] (both > 0); the two ends when there are fewer than two."""
    ticks = []
    for exp in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            t = m * 10.0**exp
            if lo <= t <= hi:
                ticks.append(t)
    return ticks if len(ticks) >= 2 else [lo, hi]


def _short(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def tokens_svg(
    points: Sequence[Mapping[str, Any]],
    baselines: Sequence[tuple[str, float]] = (),
) -> str:
    """Accuracy vs policy tokens per problem (log axis), one series per name.

    Args:
        points: ``{"series", "tokens", "accuracy", "marker", "title"}`` each; the points of one
            series are joined by a line in token order, colored by series.
        baselines: ``(name, accuracy)`` drawn as dotted horizontal lines (no token cost known).

    Example:
        >>> svg = tokens_svg([{"series": "beam", "tokens": 900, "accuracy": 40.0}], [("pass@1", 20)])
        >>> "beam" in svg and "pass@1" in svg
        True
    """
    w, h, pad = 640, 340, 50
    right = 190
    toks = [float(p["tokens"]) for p in points if p["tokens"] > 0]
    t0, t1 = (min(toks), max(toks)) if toks else (1.0, 1.0)
    t0, t1 = t0 / 1.25, t1 * 1.25  # room around the outermost points
    lo, hi = _percent_range([p["accuracy"] for p in points] + [v for _, v in baselines])

    def sx(t: float) -> float:
        return pad + (math.log(max(t, t0)) - math.log(t0)) / math.log(t1 / t0) * (w - pad - right)

    def sy(v: float) -> float:
        return h - pad - (v - lo) / (hi - lo) * (h - pad - 10)

    parts = [_open(w, h, "accuracy vs policy tokens")]
    parts += _axes(
        w,
        h,
        pad,
        [(sx(t), _short(t)) for t in _log_ticks(t0, t1)],
        [(sy(v), f"{v:.0f}") for v in range(int(lo), int(hi) + 1, 10)],
        "policy tokens per problem (log scale)",
        "accuracy %",
    )
    legend = []
    for i, (name, value) in enumerate(baselines):
        dash = "2,3" if i % 2 == 0 else "8,3,2,3"
        parts.append(
            f'<line x1="{pad}" y1="{sy(value):.1f}" x2="{w - right}" y2="{sy(value):.1f}" '
            f'stroke="#555" stroke-dasharray="{dash}"><title>{_e(name)}: {value:.1f}</title>'
            "</line>"
        )
        legend.append((name, "#555", dash, ""))
    series: dict[str, list[Mapping[str, Any]]] = {}
    for p in points:
        series.setdefault(p["series"], []).append(p)
    for i, (name, group) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        group = sorted(group, key=lambda p: p["tokens"])
        if len(group) > 1:
            pts = " ".join(f"{sx(p['tokens']):.1f},{sy(p['accuracy']):.1f}" for p in group)
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            )
        for p in group:
            title = p.get("title") or f"{name}: {p['accuracy']:.1f}% at {p['tokens']:.0f} tokens"
            parts.append(
                _marker(p.get("marker", "circle"), sx(p["tokens"]), sy(p["accuracy"]), color, title)
            )
        legend.append((name, color, "", group[0].get("marker", "circle")))
    parts += _legend(w - right + 15, legend)
    parts.append("</svg>")
    return "\n".join(parts)


def histogram_svg(counts: Mapping[int, int], x_label: str = "first wrong step (0-based)") -> str:
    """Bars of ``{step: count}`` for every step from 0 to the largest (empty steps included)."""
    last = max(counts, default=0)
    n = last + 1
    bar, gap, pad, top, plot_h = 24, 6, 40, 18, 150
    w = max(240, pad + n * (bar + gap) + 20)
    h = top + plot_h + 44
    peak = max(counts.values(), default=0) or 1
    parts = [_open(w, h, "histogram of first-error positions")]
    base = top + plot_h
    parts.append(f'<line x1="{pad - 4}" y1="{base}" x2="{w - 10}" y2="{base}" stroke="#444"/>')
    for i in range(n):
        c = counts.get(i, 0)
        x = pad + i * (bar + gap)
        bh = plot_h * c / peak
        parts.append(
            f'<rect x="{x}" y="{base - bh:.1f}" width="{bar}" height="{bh:.1f}" '
            f'fill="#d62728" fill-opacity="0.75"><title>step {i}: {c}</title></rect>'
        )
        if c:
            parts.append(
                f'<text x="{x + bar / 2}" y="{base - bh - 4:.1f}" font-size="10" '
                f'text-anchor="middle">{c}</text>'
            )
        parts.append(
            f'<text x="{x + bar / 2}" y="{base + 14}" font-size="10" '
            f'text-anchor="middle">{i}</text>'
        )
    parts.append(
        f'<text x="{pad + n * (bar + gap) / 2:.0f}" y="{h - 8}" font-size="12" '
        f'text-anchor="middle">{_e(x_label)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def calibration_svg(bins: Sequence[Mapping[str, Any]]) -> str:
    """Reliability diagram: mean label vs mean score per bin (dot area ~ bin size)."""
    w, h, pad = 340, 340, 50
    span = w - pad - 10

    def sx(v: float) -> float:
        return pad + v * span

    def sy(v: float) -> float:
        return h - pad - v * (h - pad - 10)

    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    parts = [_open(w, h, "calibration")]
    parts += _axes(
        w,
        h,
        pad,
        [(sx(t), f"{t:g}") for t in ticks],
        [(sy(t), f"{t:g}") for t in ticks],
        "mean PRM score",
        "mean step label",
    )
    parts.append(
        f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#999" '
        f'stroke-dasharray="4,3"/>'
    )
    total = sum(b["n"] for b in bins) or 1
    for b in bins:
        if not b["n"]:
            continue
        r = 3 + 12 * math.sqrt(b["n"] / total)
        parts.append(
            f'<circle cx="{sx(b["mean_score"]):.1f}" cy="{sy(b["mean_label"]):.1f}" '
            f'r="{r:.1f}" fill="#1f77b4" fill-opacity="0.6"><title>bin '
            f"[{b['lo']:g}, {b['hi']:g}): n={b['n']}, score {b['mean_score']:.3f}, "
            f"label {b['mean_label']:.3f}</title></circle>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def trace_svg(trace: Any, threshold: float) -> str:
    """Step score bars of one trace; the true first error (red frame), the predicted one (marker)."""
    from prmkit.evaluate.processbench import first_error_prediction

    scores = trace.step_scores
    n = len(scores)
    bar, gap, h, top = 26, 6, 120, 18
    w = 40 + n * (bar + gap)
    pred = first_error_prediction(scores, threshold)
    true = trace.first_error if trace.first_error is not None else -1
    parts = [_open(w, h + 36, "step scores")]
    lo, hi = min(0.0, *scores), max(1.0, *scores)

    def sy(v: float) -> float:
        return top + (hi - v) / (hi - lo) * h

    for i, s in enumerate(scores):
        x = 30 + i * (bar + gap)
        label = trace.labels[i] if trace.labels is not None else None
        color = "#bbb" if label is None else "#2ca02c" if label >= 0.5 else "#d62728"
        y = sy(max(s, 0.0))
        parts.append(
            f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{sy(lo) - y:.1f}" '
            f'fill="{color}" fill-opacity="0.75"><title>step {i}: score {s:.3f}, '
            f"label {_e(label)}</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar / 2}" y="{h + top + 14}" font-size="10" '
            f'text-anchor="middle">{i}</text>'
        )
        if i == true:
            parts.append(
                f'<rect x="{x - 2}" y="{top - 2}" width="{bar + 4}" '
                f'height="{h + 4}" fill="none" stroke="#d62728" stroke-width="2"/>'
            )
        if i == pred:
            parts.append(
                f'<path d="M{x + bar / 2 - 6},{top - 14} l12,0 l-6,10 z" '
                f'fill="#222"><title>predicted first error</title></path>'
            )
    ty = sy(threshold)
    parts.append(
        f'<line x1="26" y1="{ty:.1f}" x2="{w - 4}" y2="{ty:.1f}" stroke="#444" '
        f'stroke-dasharray="3,3"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
