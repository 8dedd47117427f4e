"""PRMBench: PRMScore per error class and overall, from step scores and step labels.

The protocol of ssmisya/PRMBench (``mr_eval/tasks/prmtest_classified/task.py`` and the table
script of its paper, ``mr_visualize/eval_res_view/draw_tabs/form_latex_strs.ipynb``):

- only the first trace of each (``meta["idx"]``, class) pair is scored, as PRMBench's loader keeps
  the first row of a pair (``repeated_pairs="all"`` scores every trace);
- a step is *predicted correct* when its score is strictly above the threshold (0.5);
- the confusion counts take **correct steps as the positive class**: TP = correct step predicted
  correct, FN = correct step predicted wrong, TN = wrong step predicted wrong, FP = wrong step
  predicted correct;
- PRMBench's F1 comes from precision and recall that are -1 when their denominator is 0, and is
  -1 when precision + recall is 0; ``PRMScore = 0.5 * F1 + 0.5 * negative F1`` (``multi_solutions``:
  F1 alone), and a negative PRMScore counts as 0. So a class with no true positive but with both
  false positives and false negatives scores 0, whatever its negative F1;
- per class, from that class's counts; overall, from the counts pooled over every class
  **except** ``correct`` (PRMBench's unmodified solutions only feed their own class);
- deliberate difference: ``correct`` scores its F1 alone. PRMBench never reports that class; its
  formula would give 0.5 * F1, or 0 to a PRM that accepts every correct step.

The ``f1`` and ``negative_f1`` reported beside PRMScore are the usual ``2TP / (2TP + FP + FN)``
(``None`` when undefined). Classes are also averaged into PRMBench's three groups.

Example:
    >>> c = Confusion(tp=3, fp=1, tn=1, fn=1)
    >>> round(prm_score(c), 4)  # 0.5 * 0.75 + 0.5 * 0.5
    0.625
    >>> prm_score(Confusion(tp=0, fp=2, tn=3, fn=1))  # PRMBench's F1 is -1: clipped
    0.0
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from prmkit.config import check_range
from prmkit.errors import ConfigError, RecordError
from prmkit.records import ScoredTrace, read_nonempty

__all__ = [
    "CORRECT_CLASS",
    "F1_ONLY_CLASSES",
    "GROUPS",
    "Confusion",
    "confusion_of_trace",
    "evaluate_prmbench",
    "f1_score",
    "prm_score",
]

CORRECT_CLASS = "correct"
"""The class of unmodified solutions; reported on its own, left out of the overall score."""

F1_ONLY_CLASSES = ("multi_solutions", CORRECT_CLASS)
"""Classes scored by their F1 alone (PRMBench: ``multi_solutions``; ``correct`` is prmkit's)."""

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


def _prmbench_f1(tp: int, fp: int, fn: int) -> float:
    """PRMBench's F1: precision and recall are -1 without a denominator, F1 -1 if they sum to 0."""
    precision = tp / (tp + fp) if tp + fp else -1.0
    recall = tp / (tp + fn) if tp + fn else -1.0
    if precision + recall == 0:
        return -1.0
    return 2 * precision * recall / (precision + recall)


def prm_score(c: Confusion, f1_only: bool = False) -> float:
    """PRMBench's PRMScore (a fraction in [0, 1]); ``f1_only`` for its F1-alone classes.

    ``0.5 * F1 + 0.5 * negative F1`` (or F1 alone) with PRMBench's F1, negative values shown as 0.
    """
    value = _prmbench_f1(c.tp, c.fp, c.fn)
    if not f1_only:
        value = 0.5 * value + 0.5 * _prmbench_f1(c.tn, c.fn, c.fp)
    return max(value, 0.0)


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


def _summary(c: Confusion, n_traces: int, f1_only: bool = False) -> dict[str, Any]:
    pos, neg = f1_score(c.tp, c.fp, c.fn), f1_score(c.tn, c.fn, c.fp)
    return {
        "prm_score": 100 * prm_score(c, f1_only),
        "f1": None if pos is None else 100 * pos,
        "negative_f1": None if neg is None else 100 * neg,
        "n_traces": n_traces,
        "tp": c.tp,
        "fp": c.fp,
        "tn": c.tn,
        "fn": c.fn,
    }


def _pair_key(trace: ScoredTrace, name: str) -> tuple[str, str, str]:
    idx = trace.meta.get("idx")
    return ("idx", idx, name) if isinstance(idx, str) else ("id", trace.id, name)


def _notes(n_repeated: int, n_blank: int) -> list[str]:
    notes = []
    if n_repeated:
        notes.append(
            f"{n_repeated} traces repeat an (idx, class) pair and were not scored "
            "(PRMBench keeps a pair's first row)"
        )
    if n_blank:
        notes.append(
            f"{n_blank} blank steps of the data are not in the records (prmkit records hold no "
            "blank step); PRMBench scores them, each adding one TP or FN to its class"
        )
    return notes


def evaluate_prmbench(
    traces: str | os.PathLike[str] | Iterable[ScoredTrace],
    threshold: float = 0.5,
    class_key: str = "classification",
    repeated_pairs: Literal["first", "all"] = "first",
) -> dict[str, Any]:
    """PRMScore per class, per group and overall (percentages).

    Args:
        traces: Scored traces with ``labels`` and the error class in ``meta[class_key]``, or
            their file.
        threshold: A step scoring above it is predicted correct; in [0, 1] when every score is a
            probability, any finite number for log-ratio (implicit head) scores.
        class_key: The ``meta`` key naming the class.
        repeated_pairs: ``"first"`` scores only the first trace of each (``meta["idx"]``, class)
            pair, as PRMBench does (a trace without ``meta["idx"]`` is its own pair);
            ``"all"`` scores every trace.

    Returns:
        ``{"overall": {...}, "classes": {name: {...}}, "groups": {name: mean PRMScore},
        "threshold", "n_unlabelled_steps", "n_repeated_pairs_skipped", "n_blank_steps_unscored",
        "notes"}``; each ``{...}`` has ``prm_score``, ``f1``, ``negative_f1`` (percent; the F1s
        ``None`` if undefined), ``n_traces`` and the counts. ``n_blank_steps_unscored`` sums
        ``meta["blank_steps_removed"]`` (written by the PRMBench reader) over the scored traces.

    Raises:
        RecordError: a trace without labels or without a class, or a repeated id.
        ConfigError: the threshold is out of range, or ``repeated_pairs`` is unknown.
        DataFormatError: the file holds no traces.

    Example:
        >>> result = evaluate_prmbench("prmbench_scored.jsonl")  # doctest: +SKIP
        >>> result["overall"]["prm_score"], result["groups"]  # doctest: +SKIP
        (52.3, {'simplicity': 48.1, 'soundness': 53.0, 'sensitivity': 55.2})
    """
    check_range("threshold", threshold)
    if repeated_pairs not in ("first", "all"):
        raise ConfigError(
            "bad value for 'repeated_pairs'",
            got=repeated_pairs,
            expected="'first' or 'all'",
            fix="use 'first' (PRMBench's rule) or 'all'",
        )
    if isinstance(traces, (str, os.PathLike)):
        traces = read_nonempty(
            traces,
            ScoredTrace,
            noun="scored traces",
            fix="pass the output of prmkit score (did an earlier stage write nothing?)",
        )
    probabilities = True
    per_class: dict[str, Confusion] = {}
    counts: dict[str, int] = {}
    total, n_total, skipped, seen = Confusion(), 0, 0, set()
    pairs: set[tuple[str, str, str]] = set()
    n_repeated = n_blank = 0
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
        pair = _pair_key(trace, name)
        if repeated_pairs == "first" and pair in pairs:
            n_repeated += 1
            continue
        pairs.add(pair)
        blank = trace.meta.get("blank_steps_removed")
        n_blank += len(blank) if isinstance(blank, list) else 0
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
    classes = {
        k: _summary(per_class[k], counts[k], k in F1_ONLY_CLASSES) for k in sorted(per_class)
    }
    groups = {}
    for group, members in GROUPS.items():
        vals = [classes[m]["prm_score"] for m in members if m in classes]
        groups[group] = sum(vals) / len(vals) if vals else None
    return {
        "overall": _summary(total, n_total),
        "classes": classes,
        "groups": groups,
        "threshold": threshold,
        "n_unlabelled_steps": skipped,
        "n_repeated_pairs_skipped": n_repeated,
        "n_blank_steps_unscored": n_blank,
        "notes": _notes(n_repeated, n_blank),
    }


from prmkit._stages import callable_stage  # noqa: E402  (prmkit.evaluate.prmbench(...) runs evaluate_prmbench)

callable_stage(__name__, "evaluate_prmbench")
