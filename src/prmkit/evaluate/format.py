"""The printed tables of ``prmkit eval``: one plain-text summary per result.

Each ``format_*`` function takes the result dict of the matching entry function
(:func:`~prmkit.evaluate.processbench.evaluate_processbench`, ...) and returns the text the
command prints; :func:`format_result` picks one by benchmark name.

Example:
    >>> print(format_steps({"auroc": 0.75, "ece": 0.1, "n_steps": 8, "n_unlabelled_steps": 0,
    ...     "last_step_min": {"share": 0.5, "n_on_last": 1, "n_traces": 2}, "notes": []}))
    AUROC 0.7500  ECE 0.1000  (8 labelled steps, 0 unlabelled)
    last-step minimum share 0.5000 (1 of 2 traces with >= 2 steps)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prmkit.errors import PrmkitError

__all__ = ["format_bon", "format_prmbench", "format_processbench", "format_result", "format_steps"]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell: the first left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def format_processbench(result: dict[str, Any]) -> str:
    """The ProcessBench table: accuracies and F1 per subset, the mean F1, the threshold."""
    rows = [
        [
            name,
            _fmt(r["acc_error"]),
            _fmt(r["acc_correct"]),
            _fmt(r["f1"]),
            str(r["n_error"]),
            str(r["n_correct"]),
        ]
        for name, r in result["subsets"].items()
    ]
    rows.append(["mean", "", "", _fmt(result["mean_f1"]), "", ""])
    text = _table(["subset", "acc_error", "acc_correct", "F1", "n_error", "n_correct"], rows)
    if result["threshold"] is not None:
        text += f"\nthreshold {result['threshold']:.6g} ({result['threshold_source']})"
    return "\n".join([text, *result["notes"]])


def format_prmbench(result: dict[str, Any]) -> str:
    """The PRMBench table: PRMScore, F1 and negative F1 overall and per class, the groups."""
    entries = [("overall", result["overall"]), *result["classes"].items()]
    rows = [
        [name, _fmt(r["prm_score"]), _fmt(r["f1"]), _fmt(r["negative_f1"]), str(r["n_traces"])]
        for name, r in entries
    ]
    text = _table(["class", "PRMScore", "F1", "neg_F1", "traces"], rows)
    groups = ", ".join(f"{g} {_fmt(v)}" for g, v in result["groups"].items())
    return "\n".join(
        [text, f"groups: {groups}", f"threshold {result['threshold']}", *result["notes"]]
    )


def format_steps(result: dict[str, Any]) -> str:
    """The step-metrics summary: AUROC, ECE and the last-step-minimum share."""
    last = result["last_step_min"]
    lines = [
        f"AUROC {_fmt(result['auroc'], 4)}  ECE {_fmt(result['ece'], 4)}  "
        f"({result['n_steps']} labelled steps, {result['n_unlabelled_steps']} unlabelled)",
        f"last-step minimum share {_fmt(last['share'], 4)} "
        f"({last['n_on_last']} of {last['n_traces']} traces with >= 2 steps)",
    ]
    return "\n".join(lines + result["notes"])


def format_bon(result: dict[str, Any]) -> str:
    """The best-of-N table (mean accuracy in percent per method and N), pass@1, the vote groups."""
    methods = list(result["curves"])
    rows = []
    for i, n in enumerate(result["ns"]):
        rows.append([str(n), *(_fmt(result["curves"][m][i]["mean"]) for m in methods)])
    p1 = result["pass@1"]
    text = _table(["N", *methods], rows)
    lines = [
        text,
        f"pass@1 {_fmt(p1['mean'])} [{_fmt(p1['ci'][0])}, "
        f"{_fmt(p1['ci'][1])}] over {result['n_problems']} problems",
    ]
    grouping = result.get("answer_grouping")
    if grouping:
        lines.append(
            f"votes: {grouping['answers']} answers in {grouping['groups']} groups of equivalent "
            f"answers ({grouping['comparisons']} math-verify comparisons)"
        )
    return "\n".join([*lines, *result["notes"]])


_FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "processbench": format_processbench,
    "prmbench": format_prmbench,
    "steps": format_steps,
    "bon": format_bon,
}


def format_result(benchmark: str, result: dict[str, Any]) -> str:
    """The printed table of a ``benchmark`` (``processbench``, ``prmbench``, ``steps``, ``bon``).

    Raises:
        PrmkitError: an unknown benchmark.
    """
    if benchmark not in _FORMATS:
        raise PrmkitError(
            "no table for this benchmark",
            got=benchmark,
            expected="one of " + ", ".join(_FORMATS),
            fix="pass the name the result was made for",
        )
    return _FORMATS[benchmark](result)
