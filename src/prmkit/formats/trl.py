"""TRL's stepwise supervision format (``PRMTrainer``): ``prompt``, ``completions``, ``labels``.

One JSONL row: ``{"prompt": "Q?", "completions": ["step 1", "step 2"], "labels": [true, false],
"id": "t1"}``. ``completions`` are the steps, ``labels`` one bool per step. TRL ignores other
columns; ``id`` is written unless ``with_id=False``.

Writing follows TRL's PRM convention: a row ends at its first wrong step. Labels become bools
by ``threshold``; steps after the first wrong one and steps from an unknown label on are cut. One
warning counts what was cut and rounded.

Reading: ``True`` -> 1.0, ``False`` -> 0.0, ``first_error`` = first ``False``.

Example:
    >>> from prmkit.formats import trl
    >>> trl.write("out.jsonl", traces)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prmkit.errors import RecordError
from prmkit.formats.common import (
    ConversionReport,
    check_threshold,
    known_hard_labels,
    labeled_record,
    own_report,
    problem_id_for,
    require,
    require_str_list,
    write_rows,
)
from prmkit.io import iter_jsonl
from prmkit.records import LabeledTrace, Trace

__all__ = ["NAME", "READ_OPTIONS", "WRITE_OPTIONS", "read", "write"]

NAME = "trl"
READ_OPTIONS: tuple[str, ...] = ()
WRITE_OPTIONS: tuple[str, ...] = ("threshold", "with_id")


def read(
    path: str | os.PathLike[str], *, report: ConversionReport | None = None
) -> Iterator[LabeledTrace]:
    """Yield one LabeledTrace per TRL stepwise row.

    Raises:
        DataFormatError: the file is not UTF-8 or a line is malformed JSON.
        RecordError: a missing key, a wrong type (labels must be bools), or labels count !=
            completions count.
    """
    report, owned = own_report(report, src_format=NAME, in_path=str(path))
    path = Path(path)
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        prompt = require(
            row,
            "prompt",
            str,
            where,
            "a string (conversational prompts are not supported; apply the chat template first)",
        )
        steps = require_str_list(row, "completions", where)
        flags = require(row, "labels", list, where, "a list of bools")
        for i, flag in enumerate(flags):
            if not isinstance(flag, bool):
                raise RecordError(
                    "wrong type",
                    got=flag,
                    expected="true or false",
                    fix="TRL labels are bools, one per completion",
                    where=f"{where} field 'labels[{i}]'",
                )
        if len(flags) != len(steps):
            raise RecordError(
                "labels count != completions count",
                got=len(flags),
                expected=f"{len(steps)} labels",
                fix="give one label per step",
                where=f"{where} field 'labels'",
            )
        report.read += 1
        report.steps_read += len(steps)
        labels = [1.0 if flag else 0.0 for flag in flags]
        yield labeled_record(
            source=NAME,
            where=where,
            id=str(row.get("id", f"{path.stem}-{lineno}")),
            problem_id=problem_id_for(prompt),
            prompt=prompt,
            steps=steps,
            labels=labels,
        )
    if owned:
        report.warn()


def write(
    path: str | os.PathLike[str],
    records: Iterable[Trace],
    *,
    report: ConversionReport | None = None,
    threshold: float = 0.5,
    with_id: bool = True,
) -> int:
    """Write records as TRL stepwise rows, each ending at its first wrong step (atomic)."""
    check_threshold(threshold)

    def row_of(record: LabeledTrace, report: ConversionReport) -> tuple[dict[str, Any], int] | None:
        flags = known_hard_labels(record, threshold, report, truncate_after_error=True)
        if flags is None:
            return None
        row: dict[str, Any] = {
            "prompt": record.prompt,
            "completions": list(record.steps[: len(flags)]),
            "labels": flags,
        }
        if with_id:
            row["id"] = record.id
        return row, len(flags)

    return write_rows(path, records, report, dst_format=NAME, row_of=row_of)
