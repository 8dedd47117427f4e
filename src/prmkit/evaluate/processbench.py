"""ProcessBench: find the earliest wrong step; F1 of the two accuracies, per subset.

The protocol of QwenLM/ProcessBench: a prediction is the 0-based index of the first wrong step,
-1 if the solution has none. For each subset (one data file: ``gsm8k``, ``math``, ...):

- ``acc_error``: percent of samples with an error (label >= 0) whose prediction equals the label;
- ``acc_correct``: percent of samples without an error (label == -1) predicted -1;
- ``f1``: their harmonic mean, ``2 * a * b / (a + b)`` (0 when both are 0);

and ``mean_f1`` is the unweighted mean of the subsets' F1. A PRM's step scores become a
prediction as the first step whose score is below a threshold. That threshold is chosen on a
declared split (:func:`choose_threshold`) and stored with the result; choosing it on the evaluated
data is refused (:class:`ThresholdSelectionError`) unless asked for as an oracle. A scored trace
must have the data's own step texts (compared by a hash per step).

Example:
    >>> r = subset_metrics([-1, -1, 2, 0], [-1, 1, 2, 1])
    >>> r.acc_correct, r.acc_error, r.f1
    (50.0, 50.0, 50.0)
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prmkit.config import check_range
from prmkit.errors import DataFormatError, PrmkitError, RecordError
from prmkit.io import iter_jsonl, read_json
from prmkit.records import Record, ScoredTrace, Trace, read_records

__all__ = [
    "Sample",
    "SubsetResult",
    "ThresholdSelectionError",
    "choose_threshold",
    "evaluate_predictions",
    "evaluate_processbench",
    "first_error_prediction",
    "harmonic_f1",
    "load_predictions",
    "load_subset",
    "predictions_from_scores",
    "step_digests",
    "subset_metrics",
    "subset_name",
]


class ThresholdSelectionError(PrmkitError, ValueError):
    """A threshold would be chosen on the data it is evaluated on, or cannot be chosen."""


@dataclass(frozen=True)
class Sample:
    """One ProcessBench sample: its id, the true first-error index (-1 = none), its step count,
    and a hash of each step's text (:func:`step_digests`; empty = not checked)."""

    id: str
    label: int
    n_steps: int
    step_digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubsetResult:
    """The metrics of one subset (percentages; ``None`` where undefined, see :func:`harmonic_f1`)."""

    acc_error: float | None
    acc_correct: float | None
    f1: float | None
    n_error: int
    n_correct: int
    n_missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "acc_error": self.acc_error,
            "acc_correct": self.acc_correct,
            "f1": self.f1,
            "n_error": self.n_error,
            "n_correct": self.n_correct,
            "n_missing": self.n_missing,
        }


def subset_name(path: str | os.PathLike[str]) -> str:
    """The subset name of a data file: its file name up to the first dot (``math.json`` -> ``math``)."""
    return Path(path).name.split(".", 1)[0]


def harmonic_f1(acc_error: float | None, acc_correct: float | None) -> float | None:
    """ProcessBench F1: the harmonic mean of the two accuracies (in percent).

    ``None`` (undefined) when either accuracy is undefined (its side of the subset is empty);
    0 when both are 0 (the limit of ``2ab/(a+b)``, and what a predictor that is always wrong gets).
    """
    if acc_error is None or acc_correct is None:
        return None
    if acc_error + acc_correct == 0:
        return 0.0
    return 2 * acc_error * acc_correct / (acc_error + acc_correct)


def subset_metrics(labels: Sequence[int], predictions: Sequence[int | None]) -> SubsetResult:
    """Accuracy on erroneous samples, on correct samples, and their F1, for one subset.

    Args:
        labels: True first-error indices (-1 = no error).
        predictions: Predicted indices, aligned with ``labels``; ``None`` = missing, counted as
            wrong (callers decide whether a missing prediction is allowed at all).

    Example:
        >>> subset_metrics([-1, -1], [-1, -1]).acc_error is None  # no erroneous samples
        True
    """
    if len(labels) != len(predictions):
        raise PrmkitError(
            "labels and predictions differ in length",
            got=len(predictions),
            expected=f"{len(labels)} predictions",
            fix="align them by id",
        )
    n_error = n_correct = hit_error = hit_correct = missing = 0
    for label, pred in zip(labels, predictions, strict=True):
        missing += pred is None
        if label == -1:
            n_correct += 1
            hit_correct += pred == -1
        else:
            n_error += 1
            hit_error += pred == label
    acc_error = 100.0 * hit_error / n_error if n_error else None
    acc_correct = 100.0 * hit_correct / n_correct if n_correct else None
    return SubsetResult(
        acc_error, acc_correct, harmonic_f1(acc_error, acc_correct), n_error, n_correct, missing
    )


def step_digests(steps: Sequence[str]) -> tuple[str, ...]:
    """A short hash of each step's exact text, to match scored traces to the data."""
    return tuple(hashlib.blake2b(s.encode("utf-8"), digest_size=8).hexdigest() for s in steps)


def first_error_prediction(step_scores: Sequence[float], threshold: float) -> int:
    """The first step whose score is below ``threshold`` (strictly), else -1.

    Example:
        >>> first_error_prediction([0.9, 0.4, 0.2], 0.5)
        1
    """
    for i, score in enumerate(step_scores):
        if score < threshold:
            return i
    return -1


# --------------------------------------------------------------------------- loading


def _raw_sample(obj: Any, where: str) -> Sample:
    if not isinstance(obj, dict):
        raise DataFormatError(
            "sample is not an object",
            got=type(obj).__name__,
            expected="a ProcessBench object {id, steps, label}",
            fix="pass the ProcessBench JSON file",
            where=where,
        )
    if "kind" in obj:  # a prmkit LabeledTrace / ScoredTrace with labels
        record = Record.from_dict(obj, where=where)
        label = getattr(record, "first_error", None)
        if getattr(record, "labels", None) is None or label is None:
            raise RecordError(
                "record has no labels",
                got=obj.get("kind"),
                expected="a labeled_trace, or a scored_trace with labels",
                fix="label the traces first (prmkit annotate / check)",
                where=where,
            )
        return Sample(record.id, label, len(record.steps), step_digests(record.steps))
    for key in ("id", "steps", "label"):
        if key not in obj:
            raise DataFormatError(
                f"missing key '{key}'",
                got=sorted(obj),
                expected="ProcessBench keys id, steps, label",
                fix="pass the ProcessBench JSON file",
                where=where,
            )
    sid, steps, label = obj["id"], obj["steps"], obj["label"]
    if not isinstance(sid, str) or not sid:
        raise DataFormatError(
            "bad id",
            got=sid,
            expected="a non-empty string",
            fix="give every sample an id",
            where=f"{where} field 'id'",
        )
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise DataFormatError(
            "bad steps",
            got=steps,
            expected="a non-empty list of step texts",
            fix="give every sample its steps",
            where=f"{where} field 'steps'",
        )
    if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
        raise DataFormatError(
            "bad label",
            got=label,
            expected=f"-1 or a step index in [0, {len(steps) - 1}]",
            fix="use the 0-based index of the earliest wrong step",
            where=f"{where} field 'label'",
        )
    return Sample(sid, label, len(steps), step_digests(steps))


def load_subset(path: str | os.PathLike[str]) -> list[Sample]:
    """Read one subset: ProcessBench JSON (a list of objects), or JSONL of ProcessBench objects
    or prmkit labelled records (``first_error`` is the label).

    Raises:
        DataFormatError: bad shape, missing keys, a label out of range, a repeated id, no samples.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise DataFormatError(
                "top level is not a list",
                got=type(data).__name__,
                expected="a JSON list of samples",
                fix="pass the ProcessBench file",
                where=str(path),
            )
        rows: Iterable[tuple[str, Any]] = ((f"{path} item {i}", o) for i, o in enumerate(data))
    else:
        rows = ((f"{path}:{n}", o) for n, o in iter_jsonl(path))
    return _unique_samples(
        ((where, _raw_sample(obj, where)) for where, obj in rows),
        empty=f"0 samples in {path}",
        fix="pass the subset file itself (did an earlier stage write nothing?)",
    )


def load_predictions(path: str | os.PathLike[str]) -> dict[str, int | None]:
    """Read JSONL ``{"id": str, "prediction": int | null}``; ids must be unique.

    -1 = no error; ``null`` = the predictor gave no usable answer (counted as wrong, as
    ProcessBench counts an unparsable critique).
    """
    out: dict[str, int | None] = {}
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        sid, pred = obj.get("id"), obj.get("prediction")
        if not isinstance(sid, str) or not sid:
            raise DataFormatError(
                "bad or missing id",
                got=sid,
                expected="a non-empty string",
                fix='write {"id": ..., "prediction": ...} per line',
                where=where,
            )
        if "prediction" not in obj:
            raise DataFormatError(
                "missing prediction",
                got=sorted(obj),
                expected='the keys "id" and "prediction" (an integer >= -1, or null)',
                fix="write the 0-based index of the first wrong step (-1 = none, null = no answer)",
                where=where,
            )
        if pred is not None and (isinstance(pred, bool) or not isinstance(pred, int) or pred < -1):
            raise DataFormatError(
                "bad or missing prediction",
                got=pred,
                expected="an integer >= -1 (-1 = no error), or null (no usable answer)",
                fix="write the 0-based index of the first wrong step",
                where=f"{where} field 'prediction'",
            )
        if sid in out:
            raise DataFormatError(
                "repeated id",
                got=sid,
                expected="one prediction per id",
                fix="remove the duplicate",
                where=where,
            )
        out[sid] = pred
    if not out:
        raise DataFormatError(
            f"0 predictions in {path}",
            expected='JSONL {"id", "prediction"} per sample',
            fix="pass the predictions file (did an earlier stage write nothing?)",
        )
    return out


def _load_scores(source: str | os.PathLike[str] | Iterable[ScoredTrace]) -> dict[str, ScoredTrace]:
    """Scored traces by id, from a file or from records; ids must be unique."""
    is_path = isinstance(source, (str, os.PathLike))
    where = str(source) if is_path else "the scored traces"
    records = read_records(source, ScoredTrace) if is_path else source
    out: dict[str, ScoredTrace] = {}
    for record in records:
        if not isinstance(record, ScoredTrace):
            raise RecordError(
                "not a scored trace",
                got=type(record).__name__,
                expected="ScoredTrace records",
                fix="pass the output of prmkit score",
            )
        if record.id in out:
            raise DataFormatError(
                "repeated id",
                got=record.id,
                expected="one scored trace per id",
                fix="remove the duplicate",
                where=where,
            )
        out[record.id] = record
    if not out:
        raise DataFormatError(
            f"0 scored traces in {where}",
            expected="ScoredTrace records",
            fix="pass the output of prmkit score (did an earlier stage write nothing?)",
        )
    return out


def _subset_of_records(name: str, records: Iterable[Sample | Trace]) -> list[Sample]:
    """The samples of a subset given as records: labelled traces (``first_error`` is the label)."""
    where = f"subset {name!r}"

    def sample_of(record: Sample | Trace) -> Sample:
        if isinstance(record, Sample):
            return record
        label = getattr(record, "first_error", None)
        if getattr(record, "labels", None) is None or label is None:
            raise RecordError(
                "record has no labels",
                got=getattr(record, "id", type(record).__name__),
                expected="a LabeledTrace, or a ScoredTrace with labels",
                fix="label the traces first (prmkit annotate / check)",
                where=where,
            )
        return Sample(record.id, label, len(record.steps), step_digests(record.steps))

    return _unique_samples(
        ((where, sample_of(r)) for r in records),
        empty=f"0 samples in subset {name!r}",
        fix="pass the subset's labelled traces",
    )


def _unique_samples(pairs: Iterable[tuple[str, Sample]], *, empty: str, fix: str) -> list[Sample]:
    """The samples of ``(where, sample)`` pairs in order; a repeated id or none is an error."""
    samples, seen = [], set()
    for where, sample in pairs:
        if sample.id in seen:
            raise DataFormatError(
                "repeated id",
                got=sample.id,
                expected="unique ids",
                fix="remove the duplicate",
                where=where,
            )
        seen.add(sample.id)
        samples.append(sample)
    if not samples:
        raise DataFormatError(
            empty,
            expected="a ProcessBench subset with at least one sample",
            fix=fix,
        )
    return samples


def predictions_from_scores(
    scores: Mapping[str, ScoredTrace], samples: Iterable[Sample], threshold: float
) -> dict[str, int]:
    """Predictions for the samples that have scores.

    Raises:
        RecordError: a scored trace has another step count than its sample.
        DataFormatError: a scored trace's step texts differ from its sample's.
    """
    out = {}
    for sample in samples:
        trace = scores.get(sample.id)
        if trace is None:
            continue
        if len(trace.step_scores) != sample.n_steps:
            raise RecordError(
                "scored trace has a different step count than the data",
                got=len(trace.step_scores),
                expected=f"{sample.n_steps} steps",
                fix="score the data's own steps (same segmentation)",
                where=f"id {sample.id!r}",
            )
        # a Sample built without texts (no digests) compares nothing
        pairs = zip(step_digests(trace.steps), sample.step_digests, strict=False)
        differ = [i for i, (ours, theirs) in enumerate(pairs) if ours != theirs]
        if differ:
            i = differ[0]
            raise DataFormatError(
                f"scored trace's step {i} differs from the data's step {i}",
                got=trace.steps[i],
                expected="the data's own step texts (same hash per step)",
                fix="score the data file itself (prmkit convert, then prmkit score)",
                where=f"id {sample.id!r}",
            )
        out[sample.id] = first_error_prediction(trace.step_scores, threshold)
    return out


# --------------------------------------------------------------------------- threshold


def choose_threshold(items: Sequence[tuple[int, Sequence[float]]]) -> tuple[float, float]:
    """The threshold maximizing ProcessBench F1 over ``items`` = (label, step_scores) pairs.

    Every threshold in an interval between consecutive breakpoints gives the same predictions;
    the candidates are the midpoints of those intervals, the smallest breakpoint (flags nothing)
    and just above the largest (flags every first step). Among equally good thresholds the
    smallest wins. Runs in O(n log n) over the candidates, not a scan per candidate.

    Returns:
        ``(threshold, f1)`` with F1 in percent.

    Raises:
        ThresholdSelectionError: no items, or the split lacks one side (all correct or all
            erroneous), so F1 is undefined for every threshold.
    """
    mins, lows, highs = [], [], []
    for label, scores in items:
        if label == -1:
            mins.append(min(scores))  # correct iff t <= min(scores)
        else:
            lo = scores[label]  # flagged iff score < t
            hi = min(scores[:label]) if label else math.inf  # no earlier step flagged
            lows.append(lo)
            highs.append(hi)
    if not mins or not lows:
        raise ThresholdSelectionError(
            "cannot choose a threshold: the split needs samples with and without an error",
            got={"n_correct": len(mins), "n_error": len(lows)},
            expected="both counts > 0",
            fix="use a larger, mixed calibration split",
        )
    mins_s = np.sort(np.asarray(mins, dtype=float))
    lo_arr, hi_arr = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    valid = lo_arr < hi_arr  # else the sample is wrong for every threshold
    lo_s, hi_s = np.sort(lo_arr[valid]), np.sort(hi_arr[valid])
    points = np.unique(np.concatenate([mins_s, lo_s, hi_s[np.isfinite(hi_s)]]))
    top = np.nextafter(points[-1], math.inf)
    candidates = np.concatenate([points[:1], (points[:-1] + points[1:]) / 2, [top]])
    n_correct, n_error = len(mins_s), len(lo_arr)
    acc_c = 100.0 * (n_correct - np.searchsorted(mins_s, candidates, "left")) / n_correct
    in_interval = np.searchsorted(lo_s, candidates, "left") - np.searchsorted(
        hi_s, candidates, "left"
    )
    acc_e = 100.0 * in_interval / n_error
    denom = acc_c + acc_e
    f1 = np.where(denom > 0, 2 * acc_c * acc_e / np.where(denom > 0, denom, 1), 0.0)
    best = int(np.argmax(f1))
    return float(candidates[best]), float(f1[best])


# --------------------------------------------------------------------------- evaluation


def evaluate_predictions(
    subsets: Mapping[str, Sequence[Sample]],
    predictions: Mapping[str, int | None],
    *,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Score predictions against labelled subsets.

    Args:
        subsets: Subset name -> its samples.
        predictions: Sample id -> predicted first-error index (-1 = none), or ``None`` for a
            sample that was asked but gave no usable answer (a judge's unparsable reply), which
            counts as wrong. Ids not in any subset are ignored and counted
            (``n_unused_predictions``).
        allow_missing: Count a sample without a prediction as wrong instead of raising.

    Returns:
        ``{"subsets": {name: SubsetResult.to_dict()}, "mean_f1", "n_unused_predictions",
        "notes"}``; ``mean_f1`` averages the defined subset F1s (``None`` if there are none) and
        ``notes`` names every subset left out and why.

    Raises:
        PrmkitError: a sample has no prediction (unless ``allow_missing``), or a prediction is
            past the sample's last step.
    """
    results, notes, used = {}, [], 0
    for name, samples in subsets.items():
        preds: list[int | None] = []
        for sample in samples:
            pred = predictions.get(sample.id)
            if sample.id not in predictions and not allow_missing:
                raise PrmkitError(
                    "no prediction for a sample",
                    got=sample.id,
                    expected="a prediction for every id in the data",
                    fix="predict every sample, or pass --allow-missing to count "
                    "missing ones as wrong",
                    where=f"subset {name!r}",
                )
            used += sample.id in predictions
            if pred is not None and not -1 <= pred < sample.n_steps:
                raise PrmkitError(
                    "prediction past the last step",
                    got=pred,
                    expected=f"-1 or an index in [0, {sample.n_steps - 1}]",
                    fix="predict 0-based step indices",
                    where=f"subset {name!r} id {sample.id!r}",
                )
            preds.append(pred)
        result = subset_metrics([s.label for s in samples], preds)
        results[name] = result.to_dict()
        if result.f1 is None:
            why = (
                "it is empty"
                if not samples
                else (
                    "it has no erroneous samples"
                    if not result.n_error
                    else "it has no correct samples"
                )
            )
            notes.append(f"subset {name!r}: F1 undefined because {why}; left out of mean_f1")
        if result.n_missing:
            notes.append(
                f"subset {name!r}: {result.n_missing} samples had no prediction "
                "and were counted as wrong"
            )
    defined = [r["f1"] for r in results.values() if r["f1"] is not None]
    return {
        "subsets": results,
        "mean_f1": sum(defined) / len(defined) if defined else None,
        "n_unused_predictions": len(predictions) - used,
        "notes": notes,
    }


def _same_file(a: Any, b: Any) -> bool:
    if not isinstance(a, (str, os.PathLike)) or not isinstance(b, (str, os.PathLike)):
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def evaluate_processbench(
    data: Sequence[str | os.PathLike[str]] | Mapping[str, Iterable[Sample | Trace]],
    *,
    predictions: str | os.PathLike[str] | Mapping[str, int | None] | None = None,
    scores: str | os.PathLike[str] | Iterable[ScoredTrace] | None = None,
    threshold: float | None = None,
    threshold_from: str | os.PathLike[str] | Iterable[ScoredTrace] | None = None,
    oracle_threshold: bool = False,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """ProcessBench F1 per subset from predictions or from a PRM's step scores.

    ``data`` is the subset files (ProcessBench JSON, or JSONL of ProcessBench objects or labelled
    records; a subset is named by its file name before the first dot), or a mapping from subset
    name to labelled traces (``first_error`` is the label) or :class:`Sample` objects.

    Give either ``predictions`` (a JSONL of ``{id, prediction}``, or a mapping already made,
    e.g. by :func:`~prmkit.evaluate.judge_eval.judge_processbench`) or ``scores`` (ScoredTrace
    records, or their file) with exactly one way to set the threshold: ``threshold`` (given),
    ``threshold_from`` (ScoredTrace records with labels, or their file: the F1-maximizing
    threshold there; the split must share no file and no id with the evaluated data), or
    ``oracle_threshold`` (chosen on the evaluated data itself, pooled over subsets; the result
    says ``"threshold_source": "oracle"``).

    A given ``threshold`` must be in [0, 1] when every score is a probability; log-ratio scores
    (implicit head) take any finite threshold.

    Returns:
        The result of :func:`evaluate_predictions` plus ``threshold`` (``None`` for
        predictions), ``threshold_source`` (``"predictions"``, ``"given"``,
        ``"split:<path>"`` (``"split"`` for records) or ``"oracle"``) and ``split_f1`` /
        ``oracle_f1`` where chosen. ``n_unused_predictions`` counts predictions or scored
        traces whose id is not in the data (ignored; ``notes`` says so).

    Raises:
        ThresholdSelectionError: the threshold would come from the evaluated data without
            ``oracle_threshold``, or the choice is ambiguous / missing.
        ConfigError: a given threshold out of range.
        DataFormatError: a file holds no records, or a scored trace's steps differ from the
            data's.

    Example:
        >>> result = evaluate_processbench(  # doctest: +SKIP
        ...     ["math.json"], scores="math_scored.jsonl", threshold_from="dev_scored.jsonl"
        ... )
        >>> result["mean_f1"], result["threshold_source"]  # doctest: +SKIP
        (61.2, 'split:dev_scored.jsonl')
    """
    if not data:
        raise PrmkitError(
            "no data files",
            expected="at least one --data FILE",
            fix="pass the ProcessBench subset files",
        )
    subsets: dict[str, list[Sample]] = {}
    if isinstance(data, Mapping):
        subsets = {str(name): _subset_of_records(str(name), recs) for name, recs in data.items()}
    for path in [] if isinstance(data, Mapping) else data:
        name = subset_name(path)
        if name in subsets:
            raise PrmkitError(
                "two data files give the same subset name",
                got=str(path),
                expected="distinct file names",
                fix="rename one file",
            )
        subsets[name] = load_subset(path)
    all_ids: dict[str, str] = {}
    for name, samples in subsets.items():
        for s in samples:
            if s.id in all_ids:
                raise DataFormatError(
                    "id appears in two subsets",
                    got=s.id,
                    expected="ids unique across --data files",
                    fix="prefix ids with the subset name",
                    where=f"subsets {all_ids[s.id]!r} and {name!r}",
                )
            all_ids[s.id] = name
    if (predictions is None) == (scores is None):
        raise PrmkitError(
            "give exactly one of predictions and scores",
            got={"predictions": predictions, "scores": scores},
            expected="--predictions FILE or --scores FILE",
            fix="pass one of them",
        )
    extra: dict[str, Any] = {}
    if predictions is not None:
        if threshold is not None or threshold_from is not None or oracle_threshold:
            raise ThresholdSelectionError(
                "a threshold applies only to --scores",
                fix="drop the threshold option, or pass --scores",
            )
        preds = (
            dict(predictions) if isinstance(predictions, Mapping) else load_predictions(predictions)
        )
        t, source = None, "predictions"
    else:
        assert scores is not None
        chosen = [threshold is not None, threshold_from is not None, oracle_threshold]
        if sum(chosen) != 1:
            raise ThresholdSelectionError(
                "scores need exactly one threshold choice",
                got=sum(chosen),
                expected="one of --threshold T, --threshold-from SPLIT, --oracle-threshold",
                fix="declare the split the threshold is chosen on (--threshold-from)",
            )
        scored = _load_scores(scores)
        samples = [s for group in subsets.values() for s in group]
        if threshold is not None:
            unit = all(0.0 <= x <= 1.0 for trace in scored.values() for x in trace.step_scores)
            check_range("threshold", threshold, **({"ge": 0, "le": 1} if unit else {}))
            t, source = float(threshold), "given"
        elif threshold_from is not None:
            files = [] if isinstance(data, Mapping) else list(data)
            leaks = [p for p in [scores, *files] if _same_file(threshold_from, p)]
            leaks += [scores] if threshold_from is scores else []
            if leaks:
                raise ThresholdSelectionError(
                    "the threshold split is the evaluated data itself",
                    got=str(threshold_from),
                    expected="a separate labelled split",
                    fix="choose it on held-out data, or pass --oracle-threshold and report it "
                    "as an oracle number",
                )
            split = _load_scores(threshold_from)
            overlap = sorted(set(split) & set(all_ids))
            if overlap:
                raise ThresholdSelectionError(
                    f"the threshold split shares {len(overlap)} ids with the evaluated data",
                    got=overlap[:5],
                    expected="a split disjoint from the data",
                    fix="remove the evaluated samples from the split, or pass --oracle-threshold",
                )
            items = []
            for trace in split.values():
                if trace.labels is None:
                    raise RecordError(
                        "split trace has no labels",
                        got=trace.id,
                        expected="scored traces with labels and first_error",
                        fix="score a labelled split",
                    )
                items.append(
                    (trace.first_error if trace.first_error is not None else -1, trace.step_scores)
                )
            t, split_f1 = choose_threshold(items)
            is_path = isinstance(threshold_from, (str, os.PathLike))
            source = f"split:{threshold_from}" if is_path else "split"
            extra["split_f1"] = split_f1
        else:
            missing = [s.id for s in samples if s.id not in scored]
            if missing and not allow_missing:
                raise PrmkitError(
                    "no scores for a sample",
                    got=missing[:5],
                    expected="scores for every id",
                    fix="score every sample",
                )
            items = [(s.label, scored[s.id].step_scores) for s in samples if s.id in scored]
            predictions_from_scores(scored, samples, 0.0)  # step-count check before choosing
            t, oracle_f1 = choose_threshold(items)
            source = "oracle"
            extra["oracle_f1"] = oracle_f1
        preds = predictions_from_scores(scored, samples, t)
    unused = [k for k in (preds if scores is None else scored) if k not in all_ids]
    result = evaluate_predictions(subsets, preds, allow_missing=allow_missing)
    result["threshold"] = t
    result["threshold_source"] = source
    result.update(extra)
    result["n_unused_predictions"] = len(unused)
    if unused:
        kind = "predictions" if scores is None else "scored traces"
        result["notes"].append(
            f"ignored {len(unused)} {kind} whose ids are not in the data (first: {unused[:3]})"
        )
    if source == "oracle":
        result["notes"].append(
            "threshold chosen on the evaluated data itself (oracle): "
            "an upper bound, not a fair comparison"
        )
    return result


from prmkit._stages import callable_stage  # noqa: E402  (prmkit.evaluate.processbench(...) runs evaluate_processbench)

callable_stage(__name__, "evaluate_processbench")
