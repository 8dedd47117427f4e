"""PRMBench: PRMScore per error class and overall, from step scores and step labels.

The protocol of ssmisya/PRMBench (``mr_eval/tasks/prmtest_classified`` and its table script):

- a step is *predicted correct* when its score is strictly above the threshold (0.5);
- the confusion counts take **correct steps as the positive class**: TP = correct step predicted
  correct, FN = correct step predicted wrong, TN = wrong step predicted wrong, FP = wrong step
  predicted correct;
- ``f1`` = F1 of the positive class, ``negative_f1`` = F1 with wrong steps as positive;
- ``PRMScore = 0.5 * f1 + 0.5 * negative_f1``;
- per class, from that class's counts; a class with no wrong steps (``multi_solutions``, and the
  unmodified ``correct`` solutions) scores its positive ``f1`` alone;
- overall, from the counts pooled over every class **except** ``correct`` (as in PRMBench, whose
  unmodified solutions only feed their own class).

Classes are also averaged into PRMBench's three groups (simplicity, soundness, sensitivity).

Example:
    >>> c = Confusion(tp=3, fp=1, tn=1, fn=1)
    >>> round(prm_score(c), 4)  # 0.5 * 0.75 + 0.5 * 0.5
    0.625
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prmkit.config import check_range
from prmkit.errors import RecordError
from prmkit.records import ScoredTrace, read_nonempty

__all__ = [
    "CORRECT_CLASS",
    "GROUPS",
    "Confusion",
    "confusion_of_trace",
    "evaluate_prmbench",
    "f1_score",
    "prm_score",
    "run_prmbench",
]

CORRECT_CLASS = "correct"
"""The class of unmodified solutions; reported on its own, left out of the overall score."""

GROUPS: dict[str, tuple[str, ...]] = {
    "simplicity": ("redundency", "circular"),
    "soundness": ("counterfactual", "step_contradiction", "domain_inconsistency", "confidence"),
    "sensitivity": ("missing_condition", "deception", "multi_solutions"),
}
"""PRMBench's three groups of error classes (class names spelled as in its data)."""


@dataclass
class Confusion:
    """Step counts with correct steps as the positive class."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, other: Confusion) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn

    @property
    def n_correct_steps(self) -> int:
        return self.tp + self.fn

    @property
    def n_wrong_steps(self) -> int:
        return self.tn + self.fp


def f1_score(tp: int, fp: int, fn: int) -> float | None:
    """F1 = 2TP / (2TP + FP + FN); ``None`` when there are no positives and none predicted.

    Equal to the harmonic mean of precision and recall whenever both are defined; 0 when TP = 0.
    """
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else None


def prm_score(c: Confusion) -> float | None:
    """PRMScore (a fraction in [0, 1]): the mean of the two classes' F1.

    With no wrong steps, the positive F1 alone; with no correct steps, the negative F1 alone.
    """
    pos = f1_score(c.tp, c.fp, c.fn)
    neg = f1_score(c.tn, c.fn, c.fp)
    if c.n_wrong_steps == 0:
        return pos
    if c.n_correct_steps == 0:
        return neg
    assert pos is not None and neg is not None  # both classes present
    return 0.5 * pos + 0.5 * neg


def confusion_of_trace(
    step_scores: list[float], labels: list[float | None], threshold: float
) -> tuple[Confusion, int]:
    """Counts for one trace, and the number of steps skipped for a ``None`` label.

    A label >= 0.5 is a correct step; a score > ``threshold`` predicts correct.
    """
    c, skipped = Confusion(), 0
    for score, label in zip(step_scores, labels, strict=True):
        if label is None:
            skipped += 1
            continue
        predicted_correct = score > threshold
        if label >= 0.5:
            c.tp += predicted_correct
            c.fn += not predicted_correct
        else:
            c.fp += predicted_correct
            c.tn += not predicted_correct
    return c, skipped


def _summary(c: Confusion, n_traces: int) -> dict[str, Any]:
    score = prm_score(c)
    pos, neg = f1_score(c.tp, c.fp, c.fn), f1_score(c.tn, c.fn, c.fp)
    return {
        "prm_score": None if score is None else 100 * score,
        "f1": None if pos is None else 100 * pos,
        "negative_f1": None if neg is None else 100 * neg,
        "n_traces": n_traces,
        "tp": c.tp,
        "fp": c.fp,
        "tn": c.tn,
        "fn": c.fn,
    }


def evaluate_prmbench(
    traces: Iterable[ScoredTrace], threshold: float = 0.5, class_key: str = "classification"
) -> dict[str, Any]:
    """PRMScore per class, per group and overall (percentages).

    Args:
        traces: Scored traces with ``labels`` and the error class in ``meta[class_key]``.
        threshold: A step scoring above it is predicted correct; in [0, 1] when every score is a
            probability, any finite number for log-ratio (implicit head) scores.
        class_key: The ``meta`` key naming the class.

    Returns:
        ``{"overall": {...}, "classes": {name: {...}}, "groups": {name: mean PRMScore},
        "threshold", "n_unlabelled_steps"}``; each ``{...}`` has ``prm_score``, ``f1``,
        ``negative_f1`` (percent, ``None`` if undefined), ``n_traces`` and the counts.

    Raises:
        RecordError: a trace without labels or without a class, or a repeated id.
        ConfigError: the threshold is out of range.
    """
    check_range("threshold", threshold)
    probabilities = True
    per_class: dict[str, Confusion] = {}
    counts: dict[str, int] = {}
    total, n_total, skipped, seen = Confusion(), 0, 0, set()
    for trace in traces:
        where = f"id {trace.id!r}"
        if trace.id in seen:
            raise RecordError(
                "repeated id",
                got=trace.id,
                expected="unique trace ids",
                fix="give each (idx, classification) pair its own id",
                where=where,
            )
        seen.add(trace.id)
        if trace.labels is None:
            raise RecordError(
                "trace has no labels",
                got=trace.id,
                expected="scored traces with step labels",
                fix="score the PRMBench LabeledTraces (labels are kept)",
                where=where,
            )
        name = trace.meta.get(class_key)
        if not isinstance(name, str) or not name:
            raise RecordError(
                f"trace has no class in meta[{class_key!r}]",
                got=trace.meta,
                expected="the PRMBench classification string",
                fix="convert PRMBench with prmkit convert (it keeps the class)",
                where=where,
            )
        probabilities &= all(0.0 <= s <= 1.0 for s in trace.step_scores)
        c, n_skip = confusion_of_trace(trace.step_scores, trace.labels, threshold)
        skipped += n_skip
        per_class.setdefault(name, Confusion()).add(c)
        counts[name] = counts.get(name, 0) + 1
        if name != CORRECT_CLASS:
            total.add(c)
            n_total += 1
    if probabilities:
        check_range("threshold", threshold, ge=0, le=1)
    classes = {k: _summary(per_class[k], counts[k]) for k in sorted(per_class)}
    groups = {}
    for group, members in GROUPS.items():
        vals = [classes[m]["prm_score"] for m in members if m in classes]
        vals = [v for v in vals if v is not None]
        groups[group] = sum(vals) / len(vals) if vals else None
    return {
        "overall": _summary(total, n_total),
        "classes": classes,
        "groups": groups,
        "threshold": threshold,
        "n_unlabelled_steps": skipped,
    }


def run_prmbench(
    scores: str | os.PathLike[str], threshold: float = 0.5, class_key: str = "classification"
) -> dict[str, Any]:
    """Read ScoredTrace records and run :func:`evaluate_prmbench`.

    Raises:
        DataFormatError: the file holds no traces.
    """
    traces = read_nonempty(
        scores,
        ScoredTrace,
        noun="scored traces",
        fix="pass the output of prmkit score (did an earlier stage write nothing?)",
    )
    return evaluate_prmbench(traces, threshold, class_key)
