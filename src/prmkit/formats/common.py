"""What every format module shares: the conversion report, the lossy-conversion warning, and
small helpers for reading raw rows and turning labels into the hard labels other formats store.

A reader or writer takes an optional :class:`ConversionReport`. It counts into it what it read,
wrote, dropped, lost or changed. When the caller passes no report, the function makes its own and
emits one :class:`LossyConversionWarning` at the end if anything was dropped, lost or changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prmkit.errors import ConfigError, RecordError
from prmkit.io import atomic_write
from prmkit.records import LabeledTrace, ScoredTrace, Trace, first_error_from_labels

__all__ = [
    "ConversionReport",
    "LossyConversionWarning",
    "hard_labels",
    "known_hard_labels",
    "labeled_only",
    "labeled_record",
    "problem_id_for",
    "write_rows",
]


class LossyConversionWarning(UserWarning):
    """A conversion dropped records, lost label information or altered text (counts inside)."""


@dataclass
class ConversionReport:
    """Counts of one conversion: records read and written, and what did not survive.

    Attributes:
        src_format: Format read (``""`` when only writing).
        dst_format: Format written (``""`` when only reading).
        in_path: File or folder read.
        out_path: File written.
        read: Records (rows) read from the input, before any drop.
        written: Records (rows) written.
        steps_read: Steps in the records read.
        steps_written: Steps in the rows written.
        dropped: Reason -> number of records dropped for it.
        lost: What -> how many steps/labels/values were lost (cut, rounded, ignored).
        changed: What -> how many items were altered or renamed without losing information.

    Example:
        >>> r = ConversionReport()
        >>> r.lose("steps cut after the first wrong step", 812)
        >>> r.lose("soft labels rounded to bools", 3410)
        >>> r.summary_of_losses()
        'lost: 812 steps cut after the first wrong step, 3,410 soft labels rounded to bools'
    """

    src_format: str = ""
    dst_format: str = ""
    in_path: str = ""
    out_path: str = ""
    read: int = 0
    written: int = 0
    steps_read: int = 0
    steps_written: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records dropped for ``reason``."""
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    def lose(self, what: str, n: int = 1) -> None:
        """Count ``n`` items of information lost (``what`` reads like "steps cut after ...")."""
        if n:
            self.lost[what] = self.lost.get(what, 0) + n

    def change(self, what: str, n: int = 1) -> None:
        """Count ``n`` items altered without loss (renamed ids, added step prefixes)."""
        if n:
            self.changed[what] = self.changed.get(what, 0) + n

    @property
    def n_dropped(self) -> int:
        """Total records dropped."""
        return sum(self.dropped.values())

    @property
    def lossy(self) -> bool:
        """Whether anything was dropped, lost or changed."""
        return bool(self.dropped or self.lost or self.changed)

    def summary_of_losses(self) -> str:
        """One line listing drops, losses and changes with their counts ('' if none)."""
        parts = []
        for title, counts in (
            ("dropped", self.dropped),
            ("lost", self.lost),
            ("changed", self.changed),
        ):
            if counts:
                items = ", ".join(f"{n:,} {what}" for what, n in counts.items())
                parts.append(f"{title}: {items}")
        return "; ".join(parts)

    def summary(self, losses: bool = True) -> str:
        """A short human-readable report: counts, then (``losses``) drops, losses and changes."""
        src = f"{self.src_format} " if self.src_format else ""
        dst = f"{self.dst_format} " if self.dst_format else ""
        line = (
            f"read {self.read:,} {src}records ({self.steps_read:,} steps) from {self.in_path}; "
            f"wrote {self.written:,} {dst}records ({self.steps_written:,} steps) "
            f"to {self.out_path}"
        )
        lossy = self.summary_of_losses() if losses else ""
        return f"{line}\n{lossy}" if lossy else line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return {
            "src_format": self.src_format,
            "dst_format": self.dst_format,
            "in_path": self.in_path,
            "out_path": self.out_path,
            "read": self.read,
            "written": self.written,
            "steps_read": self.steps_read,
            "steps_written": self.steps_written,
            "dropped": dict(self.dropped),
            "lost": dict(self.lost),
            "changed": dict(self.changed),
        }

    def warn(self, stacklevel: int = 3) -> None:
        """Emit one :class:`LossyConversionWarning` with every count, if anything was lossy."""
        if self.lossy:
            fmts = " -> ".join(f for f in (self.src_format, self.dst_format) if f)
            prefix = f"{fmts} conversion" if fmts else "conversion"
            warnings.warn(
                f"{prefix}: {self.summary_of_losses()}",
                LossyConversionWarning,
                stacklevel=stacklevel,
            )


def own_report(report: ConversionReport | None, **fields: str) -> tuple[ConversionReport, bool]:
    """The caller's report, or a fresh one (then ``True``: the callee must warn at the end)."""
    if report is not None:
        return report, False
    return ConversionReport(**fields), True


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    allowed = tuple(choices)
    if value not in allowed:
        raise ConfigError(
            f"bad value for option '{name}'",
            got=value,
            expected=f"one of {list(allowed)}",
            fix=f"set {name} to one of those",
        )


def check_threshold(threshold: Any) -> None:
    """Raise :class:`ConfigError` unless ``threshold`` is a number in (0, 1]."""
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0.0 < threshold <= 1.0
    ):
        raise ConfigError(
            "bad value for option 'threshold'",
            got=threshold,
            expected="a number in (0, 1]",
            fix="labels >= threshold count as correct; 0.5 is the usual value",
        )


def require(
    row: dict[str, Any], key: str, types: type | tuple[type, ...], where: str, what: str = ""
) -> Any:
    """``row[key]`` if present and of ``types`` (bool is never an int); else a RecordError."""
    if key not in row:
        raise RecordError(
            f"missing key '{key}'",
            got=sorted(row),
            expected=what or f"a '{key}' key",
            fix=f"add '{key}' to every record",
            where=where,
        )
    value = row[key]
    kinds = types if isinstance(types, tuple) else (types,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(t.__name__ for t in kinds)
        raise RecordError(
            "wrong type",
            got=type(value).__name__,
            expected=what or f"{names}",
            fix=f"store '{key}' as {names}",
            where=f"{where} field '{key}'",
        )
    return value


def require_str_list(row: dict[str, Any], key: str, where: str) -> list[str]:
    """``row[key]`` as a list of strings, else a RecordError naming the bad item."""
    value = require(row, key, list, where, "a list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RecordError(
                "wrong type",
                got=type(item).__name__,
                expected="a string",
                fix=f"store every item of '{key}' as text",
                where=f"{where} field '{key}[{i}]'",
            )
    return value


def problem_id_for(prompt: str) -> str:
    """A stable problem id from the prompt text (same prompt, same id)."""
    return "p-" + hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:12]


def answer_from_steps(steps: list[str]) -> str | None:
    """The final answer after a ``# Answer`` heading in the last step (PRM800K style), or None."""
    _, sep, tail = steps[-1].rpartition("# Answer")
    return tail.strip() if sep and tail.strip() else None


def labeled_only(records: Iterable[Trace], report: ConversionReport) -> Iterator[LabeledTrace]:
    """Yield records as :class:`LabeledTrace`; traces without labels are dropped and counted.

    A :class:`ScoredTrace` that carries labels is kept (its scores are dropped and counted).
    """
    for record in records:
        if isinstance(record, LabeledTrace):
            yield record
        elif isinstance(record, ScoredTrace) and record.labels is not None:
            report.lose("step scores of scored traces not written", len(record.step_scores))
            yield LabeledTrace(
                **record.trace_fields(),
                labels=record.labels,
                first_error=-1 if record.first_error is None else record.first_error,
                label_source=record.label_source or "",
            )
        else:
            report.drop("records without step labels")


def hard_labels(
    labels: list[float | None],
    threshold: float,
    report: ConversionReport,
    *,
    truncate_after_error: bool,
) -> list[bool]:
    """Turn labels into bools (``label >= threshold``), cutting where that is impossible.

    The list is cut at the first unknown (``None``) label, and, if ``truncate_after_error``, right
    after the first wrong step. Soft labels (not 0 or 1) that are kept are counted as rounded.
    The result may be shorter than ``labels``; the caller keeps the matching steps.
    """
    out: list[bool] = []
    rounded = 0
    for i, label in enumerate(labels):
        if label is None:
            report.lose("steps cut at an unknown (null) label", len(labels) - i)
            break
        ok = label >= threshold
        if label not in (0.0, 1.0):
            rounded += 1
        out.append(ok)
        if not ok and truncate_after_error and i + 1 < len(labels):
            report.lose("steps cut after the first wrong step", len(labels) - i - 1)
            break
    report.lose(f"soft labels rounded at threshold {threshold}", rounded)
    return out


def known_hard_labels(
    record: LabeledTrace, threshold: float, report: ConversionReport, *, truncate_after_error: bool
) -> list[bool] | None:
    """:func:`hard_labels` of ``record``, or ``None`` (dropped and counted) when none is known."""
    flags = hard_labels(record.labels, threshold, report, truncate_after_error=truncate_after_error)
    if not flags:
        report.drop("records whose first label is unknown")
        return None
    return flags


def labeled_record(
    *,
    source: str,
    where: str,
    id: str,
    problem_id: str,
    prompt: str,
    steps: list[str],
    labels: list[float | None],
    first_error: int | None = None,
    answer: str | None = None,
    meta: dict[str, Any] | None = None,
) -> LabeledTrace:
    """A validated LabeledTrace read from format ``source``; errors name ``where``.

    ``first_error`` defaults to the first label below 0.5.
    """
    return LabeledTrace.from_dict(
        {
            "kind": "labeled_trace",
            "id": id,
            "problem_id": problem_id,
            "prompt": prompt,
            "steps": steps,
            "answer": answer,
            "meta": meta or {},
            "labels": labels,
            "first_error": first_error_from_labels(labels) if first_error is None else first_error,
            "label_source": source,
        },
        where=where,
    )


RowOf = Callable[[LabeledTrace, ConversionReport], "tuple[dict[str, Any], int] | None"]


def write_rows(
    path: str | os.PathLike[str],
    records: Iterable[Trace],
    report: ConversionReport | None,
    *,
    dst_format: str,
    row_of: RowOf,
) -> int:
    """The writer loop every JSONL format shares: one row per labelled record, atomically.

    ``row_of(record, report)`` returns ``(row, steps_written)``, or ``None`` to skip the record
    (having counted why in ``report``). Returns the number of rows written.
    """
    report, owned = own_report(report, dst_format=dst_format, out_path=str(path))
    count = 0
    with atomic_write(path) as handle:
        for record in labeled_only(records, report):
            built = row_of(record, report)
            if built is None:
                continue
            row, n_steps = built
            handle.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
            count += 1
            report.steps_written += n_steps
    report.written += count
    if owned:
        report.warn()
    return count
