"""prmkit's own records (JSONL or Parquet, by extension) as a conversion format, ``prmkit``.

Reading yields whatever the file holds (Trace, LabeledTrace or ScoredTrace); writing keeps every
field, so nothing is lost. See :mod:`prmkit.records`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prmkit.formats.common import ConversionReport, own_report
from prmkit.records import Trace, iter_records, write_records

__all__ = ["NAME", "READ_OPTIONS", "WRITE_OPTIONS", "read", "write"]

NAME = "prmkit"
READ_OPTIONS: tuple[str, ...] = ()
WRITE_OPTIONS: tuple[str, ...] = ()


def read(
    path: str | os.PathLike[str], *, report: ConversionReport | None = None
) -> Iterator[Trace]:
    """Stream validated prmkit records (any Trace kind) from a .jsonl or .parquet file."""
    report, _ = own_report(report, src_format=NAME, in_path=str(path))
    for record in iter_records(path, Trace):
        report.read += 1
        report.steps_read += len(record.steps)
        yield record


def write(
    path: str | os.PathLike[str],
    records: Iterable[Trace],
    *,
    report: ConversionReport | None = None,
) -> int:
    """Atomically write records to .jsonl or .parquet; return the count written."""
    report, _ = own_report(report, dst_format=NAME, out_path=str(path))

    def counted() -> Iterator[Trace]:
        for record in records:
            report.steps_written += len(record.steps)
            yield record

    count = write_records(path, counted())
    report.written += count
    return count
