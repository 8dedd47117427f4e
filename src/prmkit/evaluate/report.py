"""The run report: one self-contained HTML page and a Markdown summary of a run's results.

Reads every ``*.json`` under RUN_DIR that carries a ``"benchmark"`` key and shows the kinds it
knows, in pipeline order: ``policy`` (the sampling policy's pass@1 / maj@N / pass@N and where its
solutions first go wrong), ``annotation`` (automatic step labels against exact ones, with their
cost), ``processbench``, ``prmbench``, ``steps``, ``bon`` (from ``prmkit eval ... --output``) and
``search_vs_bon`` (from ``prmkit search --compare-bon``). A result of any other kind is listed as
"not shown"; JSON without a ``"benchmark"`` key (configs, checkpoints) is not a result and is
ignored; a file that is not valid JSON, or a known result missing a field, is a
:class:`~prmkit.errors.DataFormatError` naming the file. The per-step view reads labelled
ScoredTrace files (``--traces FILE``, default: ``*scored*.jsonl`` under RUN_DIR).

Writes ``report.html`` (inline CSS and SVG, no scripts, no external resources) and ``report.md``.
The schemas of the ``policy`` and ``annotation`` results are in ``docs/evaluate.md``.
:func:`write_report` is the stage (``prmkit report RUN_DIR``, :mod:`prmkit.evaluate.report_cli`,
settings in :class:`ReportConfig`); :func:`build_report` and the renderers are its parts.

Example:
    >>> paths = write_report("runs/demo")  # doctest: +SKIP
    >>> [p.name for p in paths]  # doctest: +SKIP
    ['report.html', 'report.md']
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prmkit.config import check_range, check_ranges, option
from prmkit.errors import DataFormatError, PrmkitError
from prmkit.evaluate.report_svg import (
    bon_svg,
    calibration_svg,
    histogram_svg,
    tokens_svg,
    trace_svg,
)
from prmkit.io import atomic_write, read_json

__all__ = [
    "KINDS",
    "ReportConfig",
    "build_report",
    "render_html",
    "render_markdown",
    "write_report",
]

KINDS: dict[str, tuple[str, ...]] = {
    "policy": ("pass@1", "maj@N", "pass@N", "n", "first_errors", "traces"),
    "annotation": ("methods", "reference"),
    "processbench": ("subsets", "mean_f1"),
    "prmbench": ("overall", "classes", "groups", "threshold"),
    "steps": ("auroc", "ece", "last_step_min", "n_steps"),
    "bon": ("ns", "curves", "pass@1", "n_problems"),
    "search_vs_bon": ("method", "n_problems", "search", "best_of_n", "budget"),
}
"""The result kinds the page shows, in page order, with the top-level keys each must have."""

_ANNOTATION_KEYS = (
    "first_error_acc",
    "step_acc",
    "rollouts_per_trace",
    "tokens_per_trace",
    "traces",
)
_WIDE = 6  # tables with more columns are set compact
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1rem}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;text-align:right;
border-bottom:1px solid #eee}th{vertical-align:bottom}
th:first-child,td:first-child{text-align:left}td:first-child{white-space:nowrap}
table.compact{font-size:.85rem}table.compact td,table.compact th{padding:.2rem .4rem}
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


def _need(obj: Any, keys: Sequence[str], where: str) -> None:
    """Raise a DataFormatError naming ``where`` unless ``obj`` is a dict with every key."""
    missing = [k for k in keys if k not in obj] if isinstance(obj, dict) else list(keys)
    if missing:
        raise DataFormatError(
            "result is missing fields",
            got=missing,
            expected="the fields " + ", ".join(keys),
            fix="rewrite the file with the stage that makes it (schemas: docs/evaluate.md)",
            where=where,
        )


# --------------------------------------------------------------------------- loading


Results = dict[str, list[tuple[str, dict[str, Any]]]]


def _find_results(run_dir: Path) -> tuple[Results, list[tuple[str, str]]]:
    """Results by kind (in :data:`KINDS` order), and ``(file, kind)`` of unknown kinds.

    Raises:
        DataFormatError: a JSON file cannot be parsed, or a known result lacks a field.
    """
    found: Results = {kind: [] for kind in KINDS}
    unknown = []
    for path in sorted(run_dir.rglob("*.json")):
        name = path.relative_to(run_dir).as_posix()
        data = read_json(path)
        if not isinstance(data, dict) or "benchmark" not in data:
            continue
        kind = data["benchmark"]
        if isinstance(kind, str) and kind in found:
            _need(data, KINDS[kind], name)
            found[kind].append((name, data))
        else:
            unknown.append((name, str(kind)))
    return found, unknown


def _sample_traces(paths: Sequence[Path], limit: int) -> list[Any]:
    """Up to ``limit`` labelled traces, about half with an error, from the first files."""
    from prmkit.records import ScoredTrace, iter_records

    if limit <= 0:
        return []
    errors: list[Any] = []
    correct: list[Any] = []
    for path in paths:
        for trace in iter_records(path, ScoredTrace):
            if trace.labels is None:
                continue
            (correct if trace.first_error in (None, -1) else errors).append(trace)
            if len(errors) >= limit and len(correct) >= limit:
                break
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
    """Collect what the page shows.

    Returns:
        ``{"run_dir", "results": {kind: [(file, result)]}, "not_shown": [(file, kind)],
        "threshold", "threshold_source", "traces"}``.

    Raises:
        PrmkitError: RUN_DIR is not a folder, or holds no result of a known kind.
        DataFormatError: a JSON file cannot be parsed, or a known result lacks a field.
        ConfigError: ``n_traces`` < 0.
    """
    check_range("n_traces", n_traces, ge=0)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PrmkitError(
            "run folder not found",
            got=str(run_dir),
            expected="a folder",
            fix="pass the folder holding the eval outputs",
        )
    results, not_shown = _find_results(run_dir)
    if not any(results.values()):
        raise PrmkitError(
            "no eval results in the run folder",
            got=str(run_dir) + (f" (unknown kinds only: {not_shown})" if not_shown else ""),
            expected="JSON files with a 'benchmark' key of " + ", ".join(KINDS),
            fix="run prmkit eval with --output FILE inside the run folder",
        )
    trace_paths = (
        [Path(p) for p in traces] if traces is not None else sorted(run_dir.rglob("*scored*.jsonl"))
    )
    threshold, source = 0.5, "default 0.5"
    for _, r in results["processbench"]:
        if r.get("threshold") is not None:
            threshold, source = r["threshold"], r["threshold_source"]
            break
    return {
        "run_dir": str(run_dir),
        "results": results,
        "not_shown": not_shown,
        "threshold": threshold,
        "threshold_source": source,
        "traces": _sample_traces(trace_paths, n_traces),
    }


# --------------------------------------------------------------------------- sections


@dataclass
class _Section:
    """One part of the page: a table with notes, then plots (HTML only)."""

    title: str
    source: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, svg)


def _policy(src: str, r: dict[str, Any]) -> _Section:
    n = r["n"]
    try:
        hist = {int(step): int(c) for step, c in r["first_errors"].items()}
    except (AttributeError, TypeError, ValueError):
        raise DataFormatError(
            "first_errors is not a {step: count} map",
            got=r["first_errors"],
            expected='e.g. {"0": 3, "2": 1} (0-based steps)',
            fix="write the counts of wrong samples by their first wrong step",
            where=f"{src} field 'first_errors'",
        ) from None
    wrong = sum(hist.values())
    row = [_fmt(r["pass@1"]), _fmt(r["maj@N"]), _fmt(r["pass@N"]), str(n), str(r["traces"])]
    notes = [
        f"{wrong} of {r['traces']} samples have a wrong step; first wrong step (0-based): "
        + (", ".join(f"{s}: {c}" for s, c in sorted(hist.items())) or "none")
    ]
    figures = [("First wrong step of the policy's samples", histogram_svg(hist))] if hist else []
    return _Section(
        "Policy",
        src,
        ["pass@1 %", f"maj@{n} %", f"pass@{n} %", "samples / problem", "samples"],
        [row],
        notes,
        figures,
    )


def _annotation(src: str, r: dict[str, Any]) -> _Section:
    rows = []
    for name, m in r["methods"].items():
        _need(m, _ANNOTATION_KEYS, f"{src} methods[{name!r}]")
        rows.append(
            [
                name,
                _fmt(m["first_error_acc"]),
                _fmt(m["step_acc"]),
                _fmt(m["rollouts_per_trace"]),
                _fmt(m["tokens_per_trace"], 0),
                str(m["traces"]),
            ]
        )
    notes = [
        f"agreement with the {r['reference']!r} labels of the same traces (first wrong step "
        "equal; step labels equal, unlabelled steps skipped); cost: policy rollouts and tokens "
        "per trace"
    ]
    header = [
        "method",
        "first-error agreement %",
        "step-label agreement %",
        "rollouts / trace",
        "policy tokens / trace",
        "traces",
    ]
    return _Section("Annotation cost", src, header, rows, notes)


def _processbench(src: str, r: dict[str, Any]) -> _Section:
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
    notes = list(r.get("notes", []))
    if r.get("threshold") is not None:
        notes.insert(0, f"threshold {r['threshold']:.6g} ({r['threshold_source']})")
    header = ["subset", "acc_error", "acc_correct", "F1", "n_error", "n_correct"]
    return _Section("ProcessBench", src, header, rows, notes)


def _prmbench(src: str, r: dict[str, Any]) -> _Section:
    entries = [("overall", r["overall"]), *r["classes"].items()]
    rows = [
        [n, _fmt(s["prm_score"]), _fmt(s["f1"]), _fmt(s["negative_f1"]), str(s["n_traces"])]
        for n, s in entries
    ]
    notes = [
        f"threshold {r['threshold']}",
        "groups: " + ", ".join(f"{g} {_fmt(v)}" for g, v in r["groups"].items()),
        *r.get("notes", []),
    ]
    header = ["class", "PRMScore", "F1", "negative F1", "traces"]
    return _Section("PRMBench", src, header, rows, notes)


def _steps(src: str, r: dict[str, Any]) -> _Section:
    rows = [
        ["AUROC", _fmt(r["auroc"], 4)],
        ["ECE", _fmt(r["ece"], 4)],
        ["last-step minimum share", _fmt(r["last_step_min"]["share"], 4)],
        ["labelled steps", str(r["n_steps"])],
    ]
    figures = []
    if r.get("calibration"):
        figures.append(("Calibration", calibration_svg(r["calibration"])))
    return _Section(
        "Step metrics", src, ["metric", "value"], rows, list(r.get("notes", [])), figures
    )


def _bon(src: str, r: dict[str, Any]) -> _Section:
    methods = list(r["curves"])
    rows = [
        [str(n), *(_fmt(r["curves"][m][i]["mean"]) for m in methods)] for i, n in enumerate(r["ns"])
    ]
    p1 = r["pass@1"]
    notes = [
        f"pass@1 {_fmt(p1['mean'])} [{_fmt(p1['ci'][0])}, {_fmt(p1['ci'][1])}] over "
        f"{r['n_problems']} problems; 95% bootstrap intervals in the plot",
        *r.get("notes", []),
    ]
    figures = [("Accuracy vs N", bon_svg(r))]
    if r.get("policy_tokens"):
        shown = [m for m in methods if m == "majority" or m.startswith("prm_")]
        points = _bon_token_points(src, r, shown, label=False)
        baselines = [(f"pass@1 ({src})", float(p1["mean"]))]
        figures.append(("Accuracy vs policy tokens", tokens_svg(points, baselines)))
        notes.append(
            f"{r['policy_tokens']['per_sample']:.0f} policy completion tokens per solution on "
            "average; N solutions cost N times that"
        )
    return _Section("Best-of-N accuracy (%)", src, ["N", *methods], rows, notes, figures)


def _bon_token_points(
    src: str, r: dict[str, Any], methods: list[str], *, label: bool
) -> list[dict[str, Any]]:
    """The accuracy-vs-N curves of ``methods`` placed at their policy tokens per problem."""
    names = {"majority": "maj@N"}
    points = []
    for m in methods:
        name = names.get(m, f"prm@N {m.removeprefix('prm_')}")
        series = f"{name} ({src})" if label else name
        for i, n in enumerate(r["ns"]):
            tokens = r["policy_tokens"]["by_n"][i]
            accuracy = r["curves"][m][i]["mean"]
            points.append(
                {
                    "series": series,
                    "tokens": tokens,
                    "accuracy": accuracy,
                    "title": f"{series}, N = {n}: {accuracy:.1f}% at {tokens:.0f} tokens/problem",
                }
            )
    return points


def _run_label(r: dict[str, Any]) -> str:
    settings = r.get("settings") or {}
    keys = ("k",) if r["method"] == "greedy" else ("n", "m")
    shown = " ".join(f"{k}={settings[k]}" for k in keys if k in settings)
    return f"{r['method']} {shown}".strip()


def _search(items: list[tuple[str, dict[str, Any]]], report: dict[str, Any]) -> _Section:
    """All ``search_vs_bon`` results in one table and one accuracy-vs-tokens plot."""
    rows, notes, points = [], [], []
    for src, r in items:
        s, b, budget = r["search"], r["best_of_n"], r["budget"]
        _need(s, ("accuracy", "compute"), f"{src} field 'search'")
        _need(b, ("accuracy_prm", "accuracy_majority", "n_mean", "compute"), f"{src} 'best_of_n'")
        _need(budget, ("search_tokens", "bon_tokens"), f"{src} field 'budget'")
        k = max(r["n_problems"], 1)
        s_tok, b_tok = budget["search_tokens"] / k, budget["bon_tokens"] / k
        label = _run_label(r)
        rows.append(
            [
                label,
                str(r["n_problems"]),
                _fmt(s["accuracy"]),
                _fmt(s["accuracy_weighted"]) if "accuracy_weighted" in s else "-",
                _fmt(s["accuracy_majority"]) if "accuracy_majority" in s else "-",
                _fmt(b["accuracy_prm"]),
                _fmt(b["accuracy_majority"]),
                _fmt(b["n_mean"]),
                f"{s_tok:.0f} / {b_tok:.0f}",
                f"{s['compute'].get('prm_tokens', 0) / k:.0f} / "
                f"{b['compute'].get('prm_tokens', 0) / k:.0f}",
            ]
        )
        notes.append(
            f"{src}: {label}, tokens matched on {r.get('match', 'completion')}, aggregation "
            f"{r.get('aggregation', '?')}, {b.get('discarded_samples', 0)} best-of-N samples "
            "drawn past the budget and discarded"
        )
        where = f"{label} ({src})"
        points += [
            {
                "series": f"{r['method']} search",
                "tokens": s_tok,
                "accuracy": s["accuracy"],
                "title": f"{where}: {s['accuracy']:.1f}% at {s_tok:.0f} tokens/problem",
            },
            {
                "series": "best-of-N, PRM pick",
                "tokens": b_tok,
                "accuracy": b["accuracy_prm"],
                "marker": "square",
                "title": f"best-of-N PRM at the budget of {where}: {b['accuracy_prm']:.1f}%, "
                f"N = {b['n_mean']:.1f}, {b_tok:.0f} tokens/problem",
            },
            {
                "series": "best-of-N, majority",
                "tokens": b_tok,
                "accuracy": b["accuracy_majority"],
                "marker": "triangle",
                "title": f"best-of-N majority at the budget of {where}: "
                f"{b['accuracy_majority']:.1f}%, {b_tok:.0f} tokens/problem",
            },
        ]
    baselines = [(f"pass@1 ({src})", float(r["pass@1"])) for src, r in report["results"]["policy"]]
    baselines += [
        (f"pass@1 ({src})", float(r["pass@1"]["mean"])) for src, r in report["results"]["bon"]
    ]
    notes.append(
        "best-of-N points: whole samples from the same policy at each search's own token budget, "
        "picked by the same PRM (square) or by majority (triangle); pass@1 lines have no token "
        "cost on this axis"
    )
    aggregation = next((r.get("aggregation") for _, r in items if r.get("aggregation")), "min")
    untimed = []
    for src, r in report["results"]["bon"]:
        if not r.get("policy_tokens"):
            untimed.append(src)
            continue
        shown = [m for m in ("majority", f"prm_{aggregation}") if m in r["curves"]]
        points += _bon_token_points(src, r, shown, label=True)
        notes.append(
            f"{src}: the best-of-N curves (maj@N, prm@N {aggregation}) for N = "
            f"{', '.join(map(str, r['ns']))}, at N times the mean solution length"
        )
    if untimed:
        notes.append(
            "the accuracy-vs-N curves of "
            + ", ".join(untimed)
            + " are not on this plot: those results carry no token counts"
        )
    header = [
        "run",
        "problems",
        "search % (top PRM score)",
        "search % (PRM-weighted vote)",
        "search % (majority of its N)",
        "best-of-N PRM %",
        "best-of-N majority %",
        "best-of-N mean N",
        "policy tokens / problem: search / best-of-N",
        "PRM tokens / problem: search / best-of-N",
    ]
    return _Section(
        "Search vs best-of-N at equal policy tokens",
        ", ".join(src for src, _ in items),
        header,
        rows,
        notes,
        [("Accuracy vs policy tokens", tokens_svg(points, baselines))],
    )


_BUILDERS = {
    "policy": _policy,
    "annotation": _annotation,
    "processbench": _processbench,
    "prmbench": _prmbench,
    "steps": _steps,
    "bon": _bon,
}


def _sections(report: Mapping[str, Any]) -> list[_Section]:
    out = []
    for kind, items in report["results"].items():
        if kind == "search_vs_bon":
            if items:
                out.append(_search(items, dict(report)))
            continue
        out += [_BUILDERS[kind](src, r) for src, r in items]
    return out


# --------------------------------------------------------------------------- rendering


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    # allow breaks after underscores so long method names can wrap in narrow columns
    head = "".join(f"<th>{_e(c).replace('_', '_<wbr>')}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    cls = ' class="compact"' if len(header) > _WIDE else ""
    return (
        f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _not_shown(report: Mapping[str, Any]) -> list[str]:
    return [f"not shown: {name} (benchmark {kind})" for name, kind in report["not_shown"]]


def render_html(report: Mapping[str, Any]) -> str:
    """The self-contained page."""
    body = [f'<h1>prmkit report</h1><p class="muted">{_e(report["run_dir"])}</p>']
    body += [f'<p class="note">{_e(line)}</p>' for line in _not_shown(report)]
    for sec in _sections(report):
        body.append(f'<h2>{_e(sec.title)}</h2><p class="muted">{_e(sec.source)}</p>')
        body.append(_html_table(sec.header, sec.rows))
        body += [f'<p class="note">{_e(n)}</p>' for n in sec.notes]
        for caption, svg in sec.figures:
            body.append(f'<h3>{_e(caption)}</h3><div class="scroll">{svg}</div>')
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
                f'<div class="scroll">{trace_svg(t, report["threshold"])}</div></div>'
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>prmkit report</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def render_markdown(report: Mapping[str, Any]) -> str:
    """The Markdown summary: the same tables and notes, no plots."""
    lines = [f"# prmkit report\n\n`{report['run_dir']}`\n"]
    shown = _not_shown(report)
    if shown:
        lines += [f"- {line}" for line in shown] + [""]
    for sec in _sections(report):
        lines.append(f"## {sec.title}\n\n`{sec.source}`\n\n{_md_table(sec.header, sec.rows)}\n")
        lines += [f"- {n}" for n in sec.notes]
        lines.append("")
    return "\n".join(lines)


def write_report(
    run_dir: str | os.PathLike[str],
    traces: Sequence[str | os.PathLike[str]] | None = None,
    n_traces: int = 6,
    out_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Build the report and write ``report.html`` and ``report.md`` (atomically).

    Args:
        run_dir: The folder holding the result JSON files.
        traces: Labelled ScoredTrace files for the per-step view (default: ``*scored*.jsonl``).
        n_traces: Sample traces to show.
        out_dir: Where to write (default: ``run_dir``).

    Returns:
        The two paths written.

    Example:
        >>> write_report("runs/demo")  # doctest: +SKIP
        [PosixPath('runs/demo/report.html'), PosixPath('runs/demo/report.md')]
    """
    report = build_report(run_dir, traces, n_traces)
    out = Path(out_dir if out_dir is not None else run_dir)
    paths = [out / "report.html", out / "report.md"]
    for path, text in zip(paths, (render_html(report), render_markdown(report)), strict=True):
        with atomic_write(path) as f:
            f.write(text)
    return paths


@dataclass
class ReportConfig:
    """Settings of ``prmkit report`` (the arguments of :func:`write_report`)."""

    run_dir: str = option("", "folder with the result JSON files (see docs/evaluate.md)")
    traces: list[str] | None = option(
        None,
        "labelled ScoredTrace files for the per-step view (null: *scored*.jsonl under run_dir)",
    )
    n_traces: int = option(6, "sample traces to show", ge=0)
    out_dir: str | None = option(None, "where to write report.html and report.md (null: run_dir)")

    def __post_init__(self) -> None:
        check_ranges(self)
