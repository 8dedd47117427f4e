"""``prmkit report RUN_DIR``: one self-contained HTML page and a Markdown summary of a run.

Reads every ``*.json`` under RUN_DIR that ``prmkit eval ... --output`` wrote (recognized by its
``"benchmark"`` key: ``processbench``, ``prmbench``, ``steps``, ``bon``) and, for the per-step
view, labelled ScoredTrace files (``--traces FILE``, default: ``*scored*.jsonl`` under RUN_DIR).
Writes ``report.html`` (inline CSS and SVG, no scripts, no external resources) and ``report.md``.

Example:
    prmkit eval bon --scores runs/demo/bon_scored.jsonl --output runs/demo/bon.json
    prmkit report runs/demo
"""

from __future__ import annotations

import argparse
import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prmkit.errors import PrmkitError
from prmkit.io import atomic_write, read_json

__all__ = ["add_arguments", "build_report", "render_html", "render_markdown", "run"]

_COLORS = [
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
_BENCHMARKS = ("processbench", "prmbench", "steps", "bon")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;text-align:right;
border-bottom:1px solid #eee}th:first-child,td:first-child{text-align:left}
.note{color:#a15c00;font-size:.9rem}.muted{color:#777;font-size:.85rem}
svg{background:#fff}.trace{margin:.6rem 0}
"""


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


# --------------------------------------------------------------------------- loading


def _find_results(run_dir: Path) -> tuple[dict[str, list[tuple[str, dict[str, Any]]]], list[str]]:
    """Results by benchmark, and the JSON files that could not be read (listed in the report)."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {b: [] for b in _BENCHMARKS}
    unreadable = []
    for path in sorted(run_dir.rglob("*.json")):
        name = str(path.relative_to(run_dir))
        try:
            data = read_json(path)
        except PrmkitError:
            unreadable.append(name)
            continue
        if isinstance(data, dict) and data.get("benchmark") in found:
            found[data["benchmark"]].append((name, data))
    return found, unreadable


def _sample_traces(paths: Sequence[Path], limit: int) -> list[Any]:
    from prmkit.records import ScoredTrace, iter_records

    errors, correct = [], []
    for path in paths:
        for trace in iter_records(path, ScoredTrace):
            if trace.labels is None:
                continue
            (correct if trace.first_error in (None, -1) else errors).append(trace)
            if len(errors) >= limit and len(correct) >= limit:
                break
    half = max(1, limit // 2)
    picked = errors[: limit - min(half, len(correct))]
    return picked + correct[: limit - len(picked)]


def build_report(
    run_dir: str | os.PathLike[str],
    traces: Sequence[str | os.PathLike[str]] | None = None,
    n_traces: int = 6,
) -> dict[str, Any]:
    """Collect what the page shows: results by benchmark, sample traces, their threshold."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PrmkitError(
            "run folder not found",
            got=str(run_dir),
            expected="a folder",
            fix="pass the folder holding the eval outputs",
        )
    results, unreadable = _find_results(run_dir)
    trace_paths = (
        [Path(p) for p in traces] if traces is not None else sorted(run_dir.rglob("*scored*.jsonl"))
    )
    threshold, source = 0.5, "default 0.5"
    for _, r in results["processbench"]:
        if r.get("threshold") is not None:
            threshold, source = r["threshold"], r["threshold_source"]
            break
    if not any(results.values()):
        raise PrmkitError(
            "no eval results in the run folder",
            got=str(run_dir),
            expected="JSON files written by `prmkit eval ... --output`",
            fix="run prmkit eval with --output FILE inside the run folder",
        )
    return {
        "run_dir": str(run_dir),
        "results": results,
        "unreadable": unreadable,
        "threshold": threshold,
        "threshold_source": source,
        "traces": _sample_traces(trace_paths, n_traces),
    }


# --------------------------------------------------------------------------- SVG


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


def bon_svg(result: dict[str, Any], methods: Sequence[str] | None = None) -> str:
    """Accuracy vs N (log2 axis) with bootstrap bands, pass@N and the pass@1 baseline."""
    w, h, pad = 640, 340, 50
    curves = result["curves"]
    methods = list(
        methods
        or [
            m
            for m in (
                "pass",
                "majority",
                "prm_min",
                "prm_prod",
                "prm_last",
                "prm_mean",
                "weighted_min",
            )
            if m in curves
        ]
    )
    ns = result["ns"]
    lx = [math.log2(n) for n in ns]
    x0, x1 = min(lx), max(lx) if max(lx) > min(lx) else min(lx) + 1
    vals = [v for m in methods for row in curves[m] for v in (row["ci"][0], row["ci"][1])]
    vals.append(result["pass@1"]["mean"])
    lo = max(0.0, math.floor(min(vals) / 10) * 10)
    hi = min(100.0, math.ceil(max(vals) / 10) * 10) if max(vals) > lo else lo + 10

    def sx(n: float) -> float:
        return pad + (math.log2(n) - x0) / (x1 - x0) * (w - pad - 160)

    def sy(v: float) -> float:
        return h - pad - (v - lo) / (hi - lo) * (h - pad - 10)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'role="img" aria-label="accuracy vs N">'
    ]
    y_ticks = [(sy(v), f"{v:.0f}") for v in range(int(lo), int(hi) + 1, 10)]
    parts += _axes(
        w, h, pad, [(sx(n), str(n)) for n in ns], y_ticks, "N (solutions per problem)", "accuracy %"
    )
    base = result["pass@1"]["mean"]
    parts.append(
        f'<line x1="{pad}" y1="{sy(base):.1f}" x2="{w - 160}" y2="{sy(base):.1f}" '
        f'stroke="#555" stroke-dasharray="2,3"/>'
    )
    legend = [("pass@1", "#555", "2,3")]
    for i, m in enumerate(methods):
        color = _COLORS[i % len(_COLORS)]
        rows = curves[m]
        band = [(sx(r["n"]), sy(r["ci"][1])) for r in rows] + [
            (sx(r["n"]), sy(r["ci"][0])) for r in reversed(rows)
        ]
        parts.append(
            '<polygon points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in band)
            + f'" fill="{color}" fill-opacity="0.12" stroke="none"/>'
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
        legend.append((m if m != "pass" else "pass@N", color, dash))
    for i, (name, color, dash) in enumerate(legend):
        y = 20 + 18 * i
        parts.append(
            f'<line x1="{w - 150}" y1="{y}" x2="{w - 125}" y2="{y}" stroke="{color}" '
            f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
        )
        parts.append(f'<text x="{w - 120}" y="{y + 4}" font-size="11">{_e(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def calibration_svg(bins: list[dict[str, Any]]) -> str:
    """Reliability diagram: mean label vs mean score per bin (dot area ~ bin size)."""
    w, h, pad = 340, 340, 50
    span = w - pad - 10

    def sx(v: float) -> float:
        return pad + v * span

    def sy(v: float) -> float:
        return h - pad - v * (h - pad - 10)

    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'role="img" aria-label="calibration">'
    ]
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
    """Step score bars of one trace; the true first error (red) and the predicted one (marker)."""
    from prmkit.evaluate.processbench import first_error_prediction

    scores = trace.step_scores
    n = len(scores)
    bar, gap, h, top = 26, 6, 120, 18
    w = 40 + n * (bar + gap)
    pred = first_error_prediction(scores, threshold)
    true = trace.first_error if trace.first_error is not None else -1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 36}" '
        f'role="img" aria-label="step scores">'
    ]
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


# --------------------------------------------------------------------------- rendering


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _sections(
    report: dict[str, Any],
) -> list[tuple[str, str, list[str], list[list[str]], list[str]]]:
    """(title, source, header, rows, notes) for every result table."""
    out = []
    res = report["results"]
    for src, r in res["processbench"]:
        rows = [
            [
                n,
                _fmt(s["acc_error"]),
                _fmt(s["acc_correct"]),
                _fmt(s["f1"]),
                str(s["n_error"]),
                str(s["n_correct"]),
            ]
            for n, s in r["subsets"].items()
        ]
        rows.append(["mean", "", "", _fmt(r["mean_f1"]), "", ""])
        t = r.get("threshold")
        notes = list(r.get("notes", []))
        if t is not None:
            notes.insert(0, f"threshold {t:.6g} ({r['threshold_source']})")
        out.append(
            (
                "ProcessBench",
                src,
                ["subset", "acc_error", "acc_correct", "F1", "n_error", "n_correct"],
                rows,
                notes,
            )
        )
    for src, r in res["prmbench"]:
        entries = [("overall", r["overall"]), *r["classes"].items()]
        rows = [
            [n, _fmt(s["prm_score"]), _fmt(s["f1"]), _fmt(s["negative_f1"]), str(s["n_traces"])]
            for n, s in entries
        ]
        notes = [
            f"threshold {r['threshold']}",
            "groups: " + ", ".join(f"{g} {_fmt(v)}" for g, v in r["groups"].items()),
        ]
        out.append(
            ("PRMBench", src, ["class", "PRMScore", "F1", "negative F1", "traces"], rows, notes)
        )
    for src, r in res["steps"]:
        last = r["last_step_min"]
        rows = [
            ["AUROC", _fmt(r["auroc"], 4)],
            ["ECE", _fmt(r["ece"], 4)],
            ["last-step minimum share", _fmt(last["share"], 4)],
            ["labelled steps", str(r["n_steps"])],
        ]
        out.append(("Step metrics", src, ["metric", "value"], rows, list(r.get("notes", []))))
    for src, r in res["bon"]:
        methods = list(r["curves"])
        rows = [
            [str(n), *(_fmt(r["curves"][m][i]["mean"]) for m in methods)]
            for i, n in enumerate(r["ns"])
        ]
        p1 = r["pass@1"]
        notes = [
            f"pass@1 {_fmt(p1['mean'])} [{_fmt(p1['ci'][0])}, {_fmt(p1['ci'][1])}] over "
            f"{r['n_problems']} problems; 95% bootstrap intervals in the plot",
            *r.get("notes", []),
        ]
        out.append(("Best-of-N accuracy (%)", src, ["N", *methods], rows, notes))
    return out


def render_html(report: dict[str, Any]) -> str:
    """The self-contained page."""
    body = [f'<h1>prmkit report</h1><p class="muted">{_e(report["run_dir"])}</p>']
    if report["unreadable"]:
        body.append(
            f'<p class="note">unreadable JSON files skipped: '
            f"{_e(', '.join(report['unreadable']))}</p>"
        )
    for title, src, header, rows, notes in _sections(report):
        body.append(f'<h2>{_e(title)}</h2><p class="muted">{_e(src)}</p>')
        body.append(_html_table(header, rows))
        body += [f'<p class="note">{_e(n)}</p>' for n in notes]
        if title.startswith("Best-of-N"):
            result = dict(report["results"]["bon"])[src]
            body.append(bon_svg(result))
        if title == "Step metrics":
            result = dict(report["results"]["steps"])[src]
            if result.get("calibration"):
                body.append("<h3>Calibration</h3>" + calibration_svg(result["calibration"]))
    if report["traces"]:
        body.append("<h2>Sample traces</h2>")
        body.append(
            f'<p class="muted">bars: step scores (green = labelled correct, red = '
            f"wrong, grey = unlabelled); red frame: true first error; black marker: "
            f"predicted first error at threshold {report['threshold']:.4g} "
            f"({_e(report['threshold_source'])}); dashed line: the threshold</p>"
        )
        for t in report["traces"]:
            body.append(
                f'<div class="trace"><div><b>{_e(t.id)}</b> '
                f'<span class="muted">{_e(t.prompt[:160])}</span></div>'
                f"{trace_svg(t, report['threshold'])}</div>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>prmkit report</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown summary: the same tables, no plots."""
    lines = [f"# prmkit report\n\n`{report['run_dir']}`\n"]
    if report["unreadable"]:
        lines.append(f"unreadable JSON files skipped: {', '.join(report['unreadable'])}\n")
    for title, src, header, rows, notes in _sections(report):
        lines.append(f"## {title}\n\n`{src}`\n\n{_md_table(header, rows)}\n")
        lines += [f"- {n}" for n in notes]
        lines.append("")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``prmkit report RUN_DIR [--traces FILE ...] [--n-traces 6] [--out-dir DIR]``."""
    parser.add_argument("run_dir", help="folder with the JSON files of `prmkit eval --output`")
    parser.add_argument(
        "--traces",
        action="append",
        default=None,
        metavar="FILE",
        help="labelled ScoredTrace files for the per-step view "
        "(default: *scored*.jsonl under RUN_DIR)",
    )
    parser.add_argument("--n-traces", type=int, default=6, help="sample traces to show")
    parser.add_argument("--out-dir", default=None, help="where to write (default: RUN_DIR)")


def run(args: argparse.Namespace) -> int:
    """Write ``report.html`` and ``report.md``."""
    report = build_report(args.run_dir, args.traces, args.n_traces)
    out = Path(args.out_dir or args.run_dir)
    with atomic_write(out / "report.html") as f:
        f.write(render_html(report))
    with atomic_write(out / "report.md") as f:
        f.write(render_markdown(report))
    print(f"wrote {out / 'report.html'} and {out / 'report.md'}")
    return 0
