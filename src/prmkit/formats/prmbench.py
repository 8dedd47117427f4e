"""PRMBench (``prmtest_classified``): PRM800K solutions with injected errors of 9 classes.

One JSONL row: ``{"original_question", "modified_question", "original_process",
"modified_process": [step, ...], "modified_steps": [...], "error_steps": [3, 4],
"reason": "...", "idx": "prm_test_p1_0", "question": "...", "classification": "circular"}``
(``multi_solutions`` rows add ``ground_truth`` and ``original_response``). ``error_steps`` are
1-based indices into ``modified_process``.

Reading gives one :class:`~prmkit.records.LabeledTrace` per row: every step is labelled (0.0 for
an error step, 1.0 otherwise), ``first_error = min(error_steps) - 1`` (-1 when none), ``prompt`` is
``modified_question``, and every other field of the row is kept in ``meta`` under its own name, so
writing back restores the row. The id is ``f"{classification}_{idx}"`` as in PRMBench's own
loader, since ``idx`` is unique only together with ``classification``.

What the real data needs (the shared copy: 6216 rows, 83,456 steps in ``modified_process``):

- Five (idx, classification) pairs repeat, with different ``modified_process``. Exact duplicate
  rows are dropped (counted); rows with distinct content keep a suffixed id (``..._p2_863#2``) by
  default, or are dropped as in PRMBench's loader with ``on_repeated_pair="first"``
  (``prmkit eval prmbench`` scores only a pair's first trace either way).
- 100 rows name error steps past the end of ``modified_process``. By default those indices are
  ignored (counted), as PRMBench's evaluation does; ``out_of_range="drop"`` drops the row,
  ``"error"`` raises :class:`~prmkit.errors.RecordError`.
- 15 steps (in 3 rows) are blank. prmkit records hold no blank step, so they are removed
  (counted), the labels follow their steps, and ``meta["blank_steps_removed"]`` lists their
  1-based positions (PRMBench scores them; ``prmkit eval prmbench`` counts them as unscored).
- Step text is kept unchanged ("1. ..." and "Step 1. ..." prefixes included);
  ``strip_numbering=True`` removes a leading "k. " / "Step k. " whose k is the step's position.

With ``add_correct=True`` the reader also yields, once per ``idx``, the unmodified
``original_process`` of its ``redundency`` row as an all-correct trace of class ``correct``
(PRMBench's loader does the same).

Example:
    >>> from prmkit.formats import prmbench
    >>> traces = list(prmbench.read("../shared/data/prmbench"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from prmkit.errors import DataFormatError, RecordError
from prmkit.formats.common import (
    ConversionReport,
    answer_from_steps,
    check_choice,
    check_threshold,
    known_hard_labels,
    labeled_record,
    own_report,
    require,
    require_str_list,
    write_rows,
)
from prmkit.io import iter_jsonl
from prmkit.records import LabeledTrace, Trace

__all__ = ["BLANK_KEY", "NAME", "READ_OPTIONS", "WRITE_OPTIONS", "input_files", "read", "write"]

NAME = "prmbench"
READ_OPTIONS: tuple[str, ...] = (
    "on_repeated_pair",
    "out_of_range",
    "strip_numbering",
    "add_correct",
)
WRITE_OPTIONS: tuple[str, ...] = ("threshold",)

_NUMBERING = re.compile(r"^(?:Step\s+)?(\d+)\.\s+")
_MAPPED = ("modified_question", "modified_process")
BLANK_KEY = "blank_steps_removed"
"""``meta`` key of the 1-based positions in ``modified_process`` of the blank steps removed."""


def input_files(path: str | os.PathLike[str]) -> list[Path]:
    """The JSONL files to read: ``path`` itself, or every ``*.jsonl`` in a folder, sorted."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DataFormatError(
                "no .jsonl files in folder",
                got=str(path),
                expected="PRMBench's folder of .jsonl files",
                fix="pass the folder holding the PRMBench files, or one file",
            )
        return files
    return [path]


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _strip_number(step: str, position: int) -> str:
    match = _NUMBERING.match(step)
    if match and int(match.group(1)) == position:
        return step[match.end() :]
    return step


def _labels(
    row: dict[str, Any], n: int, where: str, out_of_range: str, report: ConversionReport
) -> list[float] | None:
    errors = require(row, "error_steps", list, where, "a list of 1-based step indices")
    for i, e in enumerate(errors):
        if isinstance(e, bool) or not isinstance(e, int):
            raise RecordError(
                "wrong type",
                got=e,
                expected="an integer step index",
                fix="error_steps are 1-based integers",
                where=f"{where} field 'error_steps[{i}]'",
            )
    bad = [e for e in errors if not 1 <= e <= n]
    if bad:
        if out_of_range == "error":
            raise RecordError(
                "error index out of range",
                got=bad,
                expected=f"1-based step indices in [1, {n}]",
                fix="correct error_steps, or set out_of_range=ignore or drop",
                where=f"{where} field 'error_steps'",
            )
        if out_of_range == "drop":
            report.drop("rows with error_steps out of range")
            return None
        report.lose("out-of-range error_steps ignored", len(bad))
        if len(bad) == len(errors):
            report.lose("rows whose only error steps are out of range, labelled all correct")
    wrong = set(errors)
    return [0.0 if k + 1 in wrong else 1.0 for k in range(n)]


def _trace(
    row: dict[str, Any],
    trace_id: str,
    where: str,
    *,
    strip_numbering: bool,
    out_of_range: str,
    report: ConversionReport,
) -> LabeledTrace | None:
    idx = require(row, "idx", str, where)
    require(row, "classification", str, where)
    prompt = require(row, "modified_question", str, where)
    steps = require_str_list(row, "modified_process", where)
    if not steps:
        report.drop("rows with an empty modified_process")
        return None
    labels = _labels(row, len(steps), where, out_of_range, report)
    if labels is None:
        return None
    keep = [k for k, step in enumerate(steps) if step.strip()]
    if not keep:
        report.drop("rows whose steps are all blank")
        return None
    blank = [k + 1 for k, step in enumerate(steps) if not step.strip()]
    if blank:
        report.lose("blank steps removed", len(blank))
        report.lose("error labels on removed blank steps", sum(labels[k - 1] == 0.0 for k in blank))
    if strip_numbering:
        stripped = [_strip_number(steps[k], k + 1) for k in keep]
        report.change(
            "step numbering prefixes stripped",
            sum(a != steps[k] for a, k in zip(stripped, keep, strict=True)),
        )
        steps = stripped
    else:
        steps = [steps[k] for k in keep]
    labels = [labels[k] for k in keep]
    meta = {key: value for key, value in row.items() if key not in _MAPPED}
    if blank:
        meta[BLANK_KEY] = blank
    return labeled_record(
        source=NAME,
        where=where,
        id=trace_id,
        problem_id=idx,
        prompt=prompt,
        steps=steps,
        labels=labels,
        answer=answer_from_steps(steps),
        meta=meta,
    )


def _correct_trace(row: dict[str, Any], where: str) -> LabeledTrace | None:
    """The unmodified solution of a row, as an all-correct trace (PRMBench's ``correct``)."""
    idx = row["idx"]
    original = require_str_list(row, "original_process", where)
    steps = [s for s in original if s.strip()]
    if not steps:
        return None
    meta: dict[str, Any] = {"idx": idx, "classification": "correct", "error_steps": []}
    if len(steps) < len(original):
        meta[BLANK_KEY] = [k + 1 for k, s in enumerate(original) if not s.strip()]
    prompt = require(row, "original_question", str, where)
    return labeled_record(
        source=NAME,
        where=where,
        id=f"correct_{idx}",
        problem_id=idx,
        prompt=prompt,
        steps=steps,
        labels=[1.0] * len(steps),
        answer=answer_from_steps(steps),
        meta=meta,
    )


def read(
    path: str | os.PathLike[str],
    *,
    report: ConversionReport | None = None,
    on_repeated_pair: Literal["suffix", "first"] = "suffix",
    out_of_range: Literal["ignore", "drop", "error"] = "ignore",
    strip_numbering: bool = False,
    add_correct: bool = False,
) -> Iterator[LabeledTrace]:
    """Yield one LabeledTrace per PRMBench row of a file, or of every ``*.jsonl`` in a folder.

    Args:
        path: A PRMBench JSONL file or the folder of them.
        report: Counts go here; without one, a warning reports what was dropped or lost.
        on_repeated_pair: For a row repeating an (idx, classification) pair with different
            content: ``"suffix"`` keeps it as ``<id>#2``, ``"first"`` drops it. Exact duplicate
            rows are always dropped.
        out_of_range: Error step indices past the last step: ``"ignore"`` them, ``"drop"`` the
            row, or raise (``"error"``).
        strip_numbering: Remove "k. " / "Step k. " prefixes that number the steps.
        add_correct: Also yield each idx's unmodified solution as class ``correct``.

    Raises:
        DataFormatError: a file is not UTF-8 or has a malformed JSON line.
        RecordError: a row misses a key, has a wrong type, or (``out_of_range="error"``) an error
            index out of range.
    """
    check_choice("on_repeated_pair", on_repeated_pair, ("suffix", "first"))
    check_choice("out_of_range", out_of_range, ("ignore", "drop", "error"))
    report, owned = own_report(report, src_format=NAME, in_path=str(path))
    seen: dict[tuple[str, str], list[str]] = {}
    correct_done: set[str] = set()
    for file in input_files(path):
        for lineno, row in iter_jsonl(file):
            where = f"{file}:{lineno}"
            report.read += 1
            steps = row.get("modified_process")
            report.steps_read += len(steps) if isinstance(steps, list) else 0
            key = (require(row, "idx", str, where), require(row, "classification", str, where))
            content = json.dumps(row, sort_keys=True, ensure_ascii=False)
            earlier = seen.setdefault(key, [])
            if content in earlier:
                report.drop("exact duplicate rows")
                continue
            earlier.append(content)
            trace_id = f"{key[1]}_{key[0]}"
            if len(earlier) > 1:
                if on_repeated_pair == "first":
                    report.drop("rows repeating an (idx, classification) pair, content differs")
                    continue
                trace_id = f"{trace_id}#{len(earlier)}"
                report.change("rows repeating an (idx, classification) pair kept as <id>#n")
            trace = _trace(
                row,
                trace_id,
                where,
                strip_numbering=strip_numbering,
                out_of_range=out_of_range,
                report=report,
            )
            if trace is not None:
                yield trace
            if add_correct and key[1] == "redundency" and key[0] not in correct_done:
                correct_done.add(key[0])
                extra = _correct_trace(row, where)
                if extra is not None:
                    report.change("unmodified solutions added as class 'correct'")
                    yield extra
    if owned:
        report.warn()


def write(
    path: str | os.PathLike[str],
    records: Iterable[Trace],
    *,
    report: ConversionReport | None = None,
    threshold: float = 0.5,
) -> int:
    """Write records as PRMBench JSONL rows (atomic); return the count written.

    ``error_steps`` are the 1-based positions of labels below ``threshold``. Fields kept in
    ``meta`` (from reading PRMBench) are restored; missing ones, and ones of a type PRMBench's
    reader would refuse (counted as lost), are filled from the record.
    """
    check_threshold(threshold)

    def row_of(record: LabeledTrace, report: ConversionReport) -> tuple[dict[str, Any], int] | None:
        hard = known_hard_labels(record, threshold, report, truncate_after_error=False)
        if hard is None:
            return None
        steps = list(record.steps[: len(hard)])
        meta = record.meta

        def restored(key: str, default: Any, ok: Callable[[Any], bool]) -> Any:
            value = meta.get(key, default)
            if ok(value):
                return value
            report.lose(f"meta['{key}'] values of the wrong type, written from the record")
            return default

        row = {
            "original_question": restored("original_question", record.prompt, _is_str),
            "modified_question": record.prompt,
            "original_process": restored("original_process", steps, _is_str_list),
            "modified_process": steps,
            "modified_steps": restored("modified_steps", [], _is_list),
            "error_steps": [k + 1 for k, ok in enumerate(hard) if not ok],
            "reason": restored("reason", "", _is_str),
            "idx": restored("idx", record.id, _is_str),
            "question": restored("question", record.prompt, _is_str),
            "classification": restored("classification", "", _is_str),
        }
        row.update({k: v for k, v in meta.items() if k not in row and k != BLANK_KEY})
        return row, len(steps)

    return write_rows(path, records, report, dst_format=NAME, row_of=row_of)
