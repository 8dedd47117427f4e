"""ProcessBench (Qwen): a JSON list of solutions with the index of the earliest wrong step.

One item: ``{"id": "math-0", "generator": "Meta-Llama-3-8B-Instruct", "problem": "...",
"steps": ["...", "..."], "final_answer_correct": false, "label": 0}``. ``label`` is the 0-based
index of the first wrong step, or -1 when every step is correct.

Reading gives one :class:`~prmkit.records.LabeledTrace` per item: steps before the first error are
labelled 1.0, the wrong step 0.0, later steps ``None`` (unknown; ProcessBench does not judge them),
``first_error = label``. ``generator`` and ``final_answer_correct`` go to ``meta``.

Writing keeps only ``first_error`` of each record: per-step labels after it and soft labels are
lost (counted). ``final_answer_correct`` comes from ``meta`` and is written as null when unknown.

Example:
    >>> from prmkit.formats import processbench
    >>> traces = list(processbench.read("math.json"))  # doctest: +SKIP
    >>> traces[0].labels, traces[0].first_error  # doctest: +SKIP
    ([0.0, None], 0)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prmkit.errors import DataFormatError, RecordError
from prmkit.formats.common import (
    ConversionReport,
    labeled_only,
    labeled_record,
    own_report,
    problem_id_for,
    require,
    require_str_list,
)
from prmkit.io import atomic_write, read_json
from prmkit.records import LabeledTrace, Trace

__all__ = ["NAME", "READ_OPTIONS", "WRITE_OPTIONS", "labels_for", "read", "write"]

NAME = "processbench"
READ_OPTIONS: tuple[str, ...] = ()
WRITE_OPTIONS: tuple[str, ...] = ()


def labels_for(n_steps: int, first_error: int) -> list[float | None]:
    """ProcessBench's rule: 1.0 before the first error, 0.0 at it, ``None`` after it.

    Example:
        >>> labels_for(4, 1)
        [1.0, 0.0, None, None]
        >>> labels_for(2, -1)
        [1.0, 1.0]
    """
    if first_error < 0:
        return [1.0] * n_steps
    return [1.0] * first_error + [0.0] + [None] * (n_steps - first_error - 1)


def read(
    path: str | os.PathLike[str], *, report: ConversionReport | None = None
) -> Iterator[LabeledTrace]:
    """Yield one LabeledTrace per ProcessBench item.

    Raises:
        DataFormatError: the file is not UTF-8, not JSON, or not a JSON list.
        RecordError: an item misses a key, has a wrong type, a duplicate id, or a ``label``
            outside ``[-1, len(steps) - 1]``.
    """
    report, owned = own_report(report, src_format=NAME, in_path=str(path))
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(
            "ProcessBench file is not a JSON list",
            got=type(data).__name__,
            expected="a JSON list of items",
            fix="pass a ProcessBench split file",
            where=str(path),
        )
    seen: set[str] = set()
    for i, item in enumerate(data):
        where = f"{path} record {i}"
        if not isinstance(item, dict):
            raise RecordError(
                "item is not an object",
                got=type(item).__name__,
                expected="a JSON object",
                fix="one object per solution",
                where=where,
            )
        item_id = require(item, "id", str, where)
        where = f"{path} record {i} (id {item_id!r})"
        if item_id in seen:
            raise RecordError(
                "duplicate id",
                got=item_id,
                expected="unique ids",
                fix="give every item its own id",
                where=f"{where} field 'id'",
            )
        seen.add(item_id)
        problem = require(item, "problem", str, where)
        steps = require_str_list(item, "steps", where)
        label = require(item, "label", int, where, "an integer step index (-1 = no error)")
        if not -1 <= label < len(steps):
            raise RecordError(
                "error index out of range",
                got=label,
                expected=f"-1 or a 0-based step index in [0, {len(steps) - 1}]",
                fix="'label' is the 0-based index of the first wrong step",
                where=f"{where} field 'label'",
            )
        meta = {}
        if "generator" in item:
            meta["generator"] = require(item, "generator", str, where)
        correct = item.get("final_answer_correct")
        if correct is not None:  # null: unknown (written so by converters from other formats)
            meta["final_answer_correct"] = require(item, "final_answer_correct", bool, where)
        report.read += 1
        report.steps_read += len(steps)
        yield labeled_record(
            source=NAME,
            where=where,
            id=item_id,
            problem_id=problem_id_for(problem),
            prompt=problem,
            steps=steps,
            labels=labels_for(len(steps), label),
            first_error=label,
            meta=meta,
        )
    if owned:
        report.warn()


def write(
    path: str | os.PathLike[str],
    records: Iterable[Trace],
    *,
    report: ConversionReport | None = None,
) -> int:
    """Write records as a ProcessBench JSON list (streamed, atomic); return the count written.

    Raises:
        RecordError: two records share an id (ProcessBench's reader refuses that file).
    """
    report, owned = own_report(report, dst_format=NAME, out_path=str(path))
    count = 0
    seen: set[str] = set()
    with atomic_write(path) as handle:
        handle.write("[")
        for record in labeled_only(records, report):
            if record.id in seen:
                raise RecordError(
                    "duplicate id",
                    got=record.id,
                    expected="unique ids (ProcessBench items are told apart by id)",
                    fix="give every record its own id before writing ProcessBench",
                    where=f"record {count} written to {path}",
                )
            seen.add(record.id)
            fe = record.first_error
            after = record.labels[fe + 1 :] if fe >= 0 else []
            report.lose(
                "step labels after the first error", sum(label is not None for label in after)
            )
            report.lose(
                "soft labels (only the first error is kept)",
                sum(label not in (None, 0.0, 1.0) for label in record.labels),
            )
            correct = record.meta.get("final_answer_correct")
            if not isinstance(correct, bool):
                report.lose("final_answer_correct unknown, written as null")
                correct = None
            generator = record.meta.get("generator", "")
            if not isinstance(generator, str):
                report.lose("generator values that are not text, written as ''")
                generator = ""
            item = {
                "id": record.id,
                "generator": generator,
                "problem": record.prompt,
                "steps": list(record.steps),
                "final_answer_correct": correct,
                "label": fe,
            }
            handle.write(",\n  " if count else "\n  ")
            handle.write(json.dumps(item, ensure_ascii=False, allow_nan=False))
            count += 1
            report.steps_written += len(record.steps)
        handle.write("\n]\n")
    report.written += count
    if owned:
        report.warn()
    return count
