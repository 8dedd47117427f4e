"""Step-level metrics of a PRM: AUROC, expected calibration error, and the last-step-minimum share.

- **AUROC** over labelled steps: the probability that a random correct step (label >= 0.5) scores
  higher than a random wrong step, ties counting one half (the Mann-Whitney statistic, computed
  from mid-ranks).
- **ECE** (expected calibration error): steps are put in ``n_bins`` equal-width bins of score
  over [0, 1] (the last bin closed); ECE = sum over bins of (bin size / n) * |mean label - mean
  score|. Soft labels are used as they are.
- **Last-step-minimum share**: among traces with at least two steps, the share whose lowest score
  is on the last step (strictly lower than every earlier step). A PRM trained on outcome-derived
  labels tends to put its doubt on the final step and judge the answer, not the process (Qwen,
  "The Lessons of Developing Process Reward Models in Mathematical Reasoning", 2025).

Example:
    >>> auroc([0.9, 0.8, 0.3, 0.8], [1, 1, 0, 0])
    0.875
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from prmkit.config import check_range
from prmkit.errors import PrmkitError
from prmkit.records import ScoredTrace, read_nonempty

__all__ = [
    "auroc",
    "calibration_bins",
    "evaluate_steps",
    "expected_calibration_error",
    "last_step_min_share",
    "step_metrics",
]


def auroc(scores: Sequence[float], positives: Sequence[bool | int]) -> float | None:
    """Area under the ROC curve (ties count 1/2); ``None`` if only one class is present."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=float)
    # mid-rank of each run of equal scores (1-based ranks)
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    mid = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mid, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _check_unit(scores: np.ndarray) -> None:
    if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
        raise PrmkitError(
            "scores outside [0, 1] cannot be calibrated",
            got=[float(scores.min()), float(scores.max())],
            expected="probabilities in [0, 1]",
            fix="score with a probability head (or apply a sigmoid first)",
        )


def calibration_bins(
    scores: Sequence[float], targets: Sequence[float], n_bins: int = 10
) -> list[dict[str, Any]]:
    """Per equal-width bin: ``{lo, hi, n, mean_score, mean_label}`` (means ``None`` when empty)."""
    check_range("n_bins", n_bins, ge=1)
    s = np.asarray(scores, dtype=float)
    t = np.asarray(targets, dtype=float)
    _check_unit(s)
    # bin b holds b/n <= s < (b+1)/n with the edges computed as b/n, so 0.57 lands in bin 57 of
    # 100 (int(0.57 * 100) is 56: 0.57 * 100 = 56.99999999999999)
    edges = np.array([b / n_bins for b in range(n_bins + 1)])
    idx = np.minimum(np.searchsorted(edges, s, side="right") - 1, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        out.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "n": n,
                "mean_score": float(s[mask].mean()) if n else None,
                "mean_label": float(t[mask].mean()) if n else None,
            }
        )
    return out


def expected_calibration_error(
    scores: Sequence[float], targets: Sequence[float], n_bins: int = 10
) -> float | None:
    """Binned ECE (see the module docstring); ``None`` for no steps.

    Example:
        >>> expected_calibration_error([0.05, 0.95], [0.0, 1.0])  # doctest: +ELLIPSIS
        0.05...
    """
    n = len(scores)
    if n == 0:
        return None
    total = 0.0
    for b in calibration_bins(scores, targets, n_bins):
        if b["n"]:
            total += b["n"] / n * abs(b["mean_label"] - b["mean_score"])
    return total


def last_step_min_share(step_scores: Iterable[Sequence[float]]) -> dict[str, Any]:
    """Share of traces (>= 2 steps) whose minimum score is strictly on the last step."""
    on_last = counted = single = 0
    for scores in step_scores:
        if len(scores) < 2:
            single += 1
            continue
        counted += 1
        on_last += scores[-1] < min(scores[:-1])
    return {
        "share": on_last / counted if counted else None,
        "n_traces": counted,
        "n_on_last": on_last,
        "n_single_step_skipped": single,
    }


def step_metrics(traces: Iterable[ScoredTrace], n_bins: int = 10) -> dict[str, Any]:
    """All step metrics of scored traces.

    AUROC and ECE use the steps with a label (``None`` labels, e.g. after a first error, are
    skipped and counted); the last-step-minimum share uses every trace.

    Returns:
        ``{"auroc", "ece", "n_steps", "n_unlabelled_steps", "n_positive_steps",
        "calibration": [bins], "last_step_min": {...}, "notes"}``.

    Raises:
        ConfigError: ``n_bins`` < 1.
    """
    check_range("n_bins", n_bins, ge=1)
    scores: list[float] = []
    labels: list[float] = []
    all_scores: list[list[float]] = []
    unlabelled = 0
    for trace in traces:
        all_scores.append(trace.step_scores)
        if trace.labels is None:
            unlabelled += len(trace.step_scores)
            continue
        for score, label in zip(trace.step_scores, trace.labels, strict=True):
            if label is None:
                unlabelled += 1
            else:
                scores.append(score)
                labels.append(label)
    positives = [label >= 0.5 for label in labels]
    in_unit = all(0.0 <= s <= 1.0 for s in scores)
    return {
        "auroc": auroc(scores, positives),
        "ece": expected_calibration_error(scores, labels, n_bins) if in_unit else None,
        "n_steps": len(scores),
        "n_unlabelled_steps": unlabelled,
        "n_positive_steps": sum(positives),
        "calibration": calibration_bins(scores, labels, n_bins) if in_unit else None,
        "last_step_min": last_step_min_share(all_scores),
        "notes": [] if in_unit else ["scores outside [0, 1]: ECE and calibration not computed"],
    }


def evaluate_steps(
    scores: str | os.PathLike[str] | Iterable[ScoredTrace], n_bins: int = 10
) -> dict[str, Any]:
    """Step metrics (:func:`step_metrics`) of scored traces, given as records or their file.

    Raises:
        DataFormatError: the file holds no traces.
        ConfigError: ``n_bins`` < 1.

    Example:
        >>> result = evaluate_steps("scored.jsonl")  # doctest: +SKIP
        >>> result["auroc"], result["ece"], result["last_step_min"]["share"]  # doctest: +SKIP
        (0.71, 0.08, 0.2)
    """
    if isinstance(scores, (str, os.PathLike)):
        scores = read_nonempty(
            scores,
            ScoredTrace,
            noun="scored traces",
            fix="pass the output of prmkit score (did an earlier stage write nothing?)",
        )
    return step_metrics(scores, n_bins)


from prmkit._stages import callable_stage  # noqa: E402  (prmkit.evaluate.step_metrics(...) runs evaluate_steps)

callable_stage(__name__, "evaluate_steps")
