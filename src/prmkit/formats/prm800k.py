"""PRM800K (OpenAI, "Let's Verify Step by Step"): human step ratings in {-1, 0, +1}.

One JSONL line per labelled solution (see openai/prm800k's README)::

    {"labeler": "...", "timestamp": "...", "generation": 9, "is_quality_control_question": false,
     "is_initial_screening_question": false,
     "question": {"problem": "...", "ground_truth_answer": "...", ...},
     "label": {"steps": [{"completions": [{"text": "...", "rating": 0, "flagged": null}, ...],
                          "human_completion": null, "chosen_completion": 0}, ...],
               "total_time": 278270, "finish_reason": "found_error"}}

Reading follows the chosen path, one :class:`~prmkit.records.LabeledTrace` per line:

- a step with ``chosen_completion = i`` contributes ``completions[i]`` and its rating; the other
  completions (alternatives) are not on the path and are counted as lost;
- a step with a ``human_completion`` (phase 1: the labeler wrote a correct step) contributes that
  text, labelled correct;
- a step with neither ends the path. If one of its completions is rated -1 (phase 2 stops at the
  first error, which is left unchosen), the first such completion is the path's last step, so the
  trace keeps its error; otherwise the step is left out;
- a ``null`` rating on the path ends it there (counted);
- ratings map +1 -> 1.0, -1 -> 0.0, and the neutral 0 -> 1.0 with ``neutral="positive"``
  (default, as in Qwen's PRM800K baseline) or 0.0 with ``neutral="negative"``;
- lines whose ``finish_reason`` is in ``skip_finish_reasons`` (default: ``bad_problem``) and lines
  with no rated step on the path are dropped (counted).

``meta`` keeps the labeler, generation, finish reason, ground-truth answer and the raw ratings of
the path, so writing back restores neutral ratings.

Writing makes one line per record in the same layout (one completion per step, chosen; a wrong
last step left unchosen as in phase 2). Labels map to ratings by ``threshold``; unknown labels
end the path (counted).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from prmkit.errors import RecordError
from prmkit.formats.common import (
    ConversionReport,
    answer_from_steps,
    check_choice,
    check_threshold,
    known_hard_labels,
    labeled_record,
    own_report,
    problem_id_for,
    require,
    write_rows,
)
from prmkit.io import iter_jsonl
from prmkit.records import LabeledTrace, Trace

__all__ = ["NAME", "READ_OPTIONS", "WRITE_OPTIONS", "read", "write"]

NAME = "prm800k"
READ_OPTIONS: tuple[str, ...] = ("neutral", "skip_finish_reasons")
WRITE_OPTIONS: tuple[str, ...] = ("threshold",)

_META_TOP = (
    "labeler",
    "timestamp",
    "generation",
    "is_quality_control_question",
    "is_initial_screening_question",
)
_META_QUESTION = (
    "ground_truth_answer",
    "ground_truth_solution",
    "pre_generated_answer",
    "pre_generated_verifier_score",
)


def _completion(comp: Any, where: str) -> tuple[str, Any]:
    if not isinstance(comp, dict):
        raise RecordError(
            "completion is not an object",
            got=type(comp).__name__,
            expected='{"text": ..., "rating": ...}',
            fix="use PRM800K's completion objects",
            where=where,
        )
    text = require(comp, "text", str, where)
    rating = comp.get("rating")
    if rating is not None and (isinstance(rating, bool) or rating not in (-1, 0, 1)):
        raise RecordError(
            "bad rating",
            got=rating,
            expected="-1, 0, 1 or null",
            fix="PRM800K ratings are -1 (wrong), 0 (neutral), +1 (good)",
            where=f"{where} field 'rating'",
        )
    return text, rating


def _path(steps: list[Any], where: str, report: ConversionReport) -> tuple[list[str], list[int]]:
    """Texts and ratings along the chosen path."""
    texts: list[str] = []
    ratings: list[int] = []
    for j, step in enumerate(steps):
        at = f"{where} label.steps[{j}]"
        if not isinstance(step, dict):
            raise RecordError(
                "step is not an object",
                got=type(step).__name__,
                expected="a PRM800K step object",
                fix="check the file",
                where=at,
            )
        completions = step.get("completions") or []
        if not isinstance(completions, list):
            raise RecordError(
                "wrong type",
                got=type(completions).__name__,
                expected="a list",
                fix="completions is a list of objects",
                where=f"{at} field 'completions'",
            )
        chosen = step.get("chosen_completion")
        human = step.get("human_completion")
        if chosen is not None:
            if (
                isinstance(chosen, bool)
                or not isinstance(chosen, int)
                or not 0 <= chosen < len(completions)
            ):
                raise RecordError(
                    "chosen_completion out of range",
                    got=chosen,
                    expected=f"an index in [0, {len(completions) - 1}] or null",
                    fix="check the file",
                    where=f"{at} field 'chosen_completion'",
                )
            text, rating = _completion(completions[chosen], f"{at}.completions[{chosen}]")
            report.lose("alternative completions off the chosen path", len(completions) - 1)
        elif human is not None:
            if isinstance(human, str):
                text = human
            else:
                text, _ = _completion(human, f"{at}.human_completion")
            rating = 1  # labelers wrote their own step only as a correct one
            report.lose("alternative completions off the chosen path", len(completions))
        else:
            parsed = [_completion(c, f"{at}.completions[{i}]") for i, c in enumerate(completions)]
            wrong = [text for text, rating in parsed if rating == -1]
            if wrong:
                texts.append(wrong[0])
                ratings.append(-1)
                report.lose("alternative completions off the chosen path", len(parsed) - 1)
            else:
                report.lose("unchosen completions at the end of the path", len(parsed))
            report.lose("steps after a step without a chosen completion", len(steps) - j - 1)
            break
        if rating is None:
            report.lose("steps cut at a null rating", len(steps) - j)
            break
        texts.append(text)
        ratings.append(rating)
    return texts, ratings


def read(
    path: str | os.PathLike[str],
    *,
    report: ConversionReport | None = None,
    neutral: Literal["positive", "negative"] = "positive",
    skip_finish_reasons: Iterable[str] = ("bad_problem",),
) -> Iterator[LabeledTrace]:
    """Yield one LabeledTrace per PRM800K line, following the chosen path.

    Args:
        path: A PRM800K JSONL file (e.g. ``phase2_train.jsonl``).
        report: Counts go here; without one, a warning reports what was dropped or lost.
        neutral: The label of a neutral (0) rating: ``"positive"`` (1.0) or ``"negative"`` (0.0).
        skip_finish_reasons: Lines with these ``label.finish_reason`` values are dropped.

    Raises:
        DataFormatError: the file is not UTF-8 or a line is malformed JSON.
        RecordError: a missing key, a wrong type, a rating outside {-1, 0, 1, null}, or a
            ``chosen_completion`` out of range.
    """
    check_choice("neutral", neutral, ("positive", "negative"))
    skip = set(skip_finish_reasons)
    report, owned = own_report(report, src_format=NAME, in_path=str(path))
    path = Path(path)
    value = {1: 1.0, -1: 0.0, 0: 1.0 if neutral == "positive" else 0.0}
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        report.read += 1
        question = require(row, "question", dict, where)
        problem = require(question, "problem", str, f"{where} field 'question'")
        label = require(row, "label", dict, where)
        steps = require(label, "steps", list, f"{where} field 'label'")
        finish = label.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            raise RecordError(
                "wrong type",
                got=type(finish).__name__,
                expected="a string or null",
                fix="finish_reason is PRM800K's reason text, e.g. 'solution' or 'found_error'",
                where=f"{where} field 'label.finish_reason'",
            )
        report.steps_read += len(steps)
        if finish in skip:
            report.drop(f"lines with finish_reason {finish!r}")
            continue
        texts, ratings = _path(steps, where, report)
        if not texts:
            report.drop("lines with no rated step on the chosen path")
            continue
        report.change(f"neutral (0) ratings mapped to {neutral}", ratings.count(0))
        labels = [value[r] for r in ratings]
        meta = {k: row[k] for k in _META_TOP if k in row}
        meta.update({k: question[k] for k in _META_QUESTION if k in question})
        meta.update({"finish_reason": finish, "ratings": ratings})
        answer = question.get("pre_generated_answer")
        yield labeled_record(
            source=NAME,
            where=where,
            id=f"{path.stem}-{lineno}",
            problem_id=problem_id_for(problem),
            prompt=problem,
            steps=texts,
            labels=labels,
            answer=answer if isinstance(answer, str) else answer_from_steps(texts),
            meta=meta,
        )
    if owned:
        report.warn()


def _ratings(record: LabeledTrace, hard: list[bool]) -> list[int]:
    """Ratings for the kept steps: the raw ones from ``meta`` when they agree with the labels."""
    raw = record.meta.get("ratings")
    if not isinstance(raw, list) or len(raw) < len(hard):
        return [1 if ok else -1 for ok in hard]
    agree = {1: (True,), -1: (False,), 0: (True, False)}  # a neutral 0 fits either label
    raw = raw[: len(hard)]
    if all(
        not isinstance(r, bool) and isinstance(r, (int, float)) and r in agree and ok in agree[r]
        for r, ok in zip(raw, hard, strict=True)
    ):
        return [int(r) for r in raw]
    return [1 if ok else -1 for ok in hard]


def write(
    path: str | os.PathLike[str],
    records: Iterable[Trace],
    *,
    report: ConversionReport | None = None,
    threshold: float = 0.5,
) -> int:
    """Write records as PRM800K lines (atomic); return the count written."""
    check_threshold(threshold)

    def row_of(record: LabeledTrace, report: ConversionReport) -> tuple[dict[str, Any], int] | None:
        hard = known_hard_labels(record, threshold, report, truncate_after_error=False)
        if hard is None:
            return None
        ratings = _ratings(record, hard)
        steps = []
        for k, (text, rating) in enumerate(zip(record.steps[: len(ratings)], ratings, strict=True)):
            last_wrong = rating == -1 and k == len(ratings) - 1
            steps.append(
                {
                    "completions": [{"text": text, "rating": rating, "flagged": None}],
                    "human_completion": None,
                    "chosen_completion": None if last_wrong else 0,
                }
            )
        meta = record.meta
        question = {"problem": record.prompt}
        question.update({k: meta[k] for k in _META_QUESTION if k in meta})
        finish = meta.get("finish_reason")
        if not isinstance(finish, str) or not finish:  # PRM800K's reader takes text or null
            finish = "found_error" if -1 in ratings else "solution"
        row = {k: meta.get(k) for k in _META_TOP}
        row.update(
            {
                "question": question,
                "label": {"steps": steps, "total_time": None, "finish_reason": finish},
            }
        )
        return row, len(steps)

    return write_rows(path, records, report, dst_format=NAME, row_of=row_of)
