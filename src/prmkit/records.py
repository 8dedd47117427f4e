"""The record types that flow between stages, their validation, and JSONL/Parquet IO.

Every stage reads and writes one of these records:

=============  ===========================================  =================================
record         fields                                       written by -> read by
=============  ===========================================  =================================
Problem        id, prompt, answer, meta                     data, tasks -> generate
Trace          + problem_id, steps, answer (final), meta    generate, convert -> annotate
LabeledTrace   + labels, first_error, label_source          annotate, convert -> train, eval
ScoredTrace    + step_scores, prm (labels optional)         score -> evaluate, search
=============  ===========================================  =================================

Each serialized record carries ``kind`` and ``schema_version``. Unknown keys are errors.

Example:
    >>> t = LabeledTrace(id="t0", problem_id="p0", prompt="1+1?", steps=["1+1=2", "So 2."],
    ...                  answer="2", labels=[1.0, 1.0], first_error=-1, label_source="exact")
    >>> LabeledTrace.from_dict(t.to_dict()) == t
    True
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from prmkit.errors import DataFormatError, RecordError
from prmkit.io import atomic_write, check_input_file, iter_jsonl, loads_strict

__all__ = [
    "SCHEMA_VERSION",
    "LabeledTrace",
    "Problem",
    "Record",
    "ScoredTrace",
    "Trace",
    "first_error_from_labels",
    "iter_records",
    "read_nonempty",
    "read_records",
    "write_records",
]

SCHEMA_VERSION = 1

R = TypeVar("R", bound="Record")


def _fail(where: str | None, name: str, what: str, got: Any, expected: str, fix: str) -> None:
    loc = f"{where} field '{name}'" if where else f"field '{name}'"
    raise RecordError(what, got=got, expected=expected, fix=fix, where=loc)


def _check_str(where: str | None, name: str, value: Any, *, nonempty: bool = False) -> None:
    if not isinstance(value, str):
        _fail(
            where, name, "wrong type", type(value).__name__, "a string", f"store '{name}' as text"
        )
    if nonempty and not value.strip():
        _fail(where, name, "empty value", value, "non-empty text", f"give '{name}' a value")


def _check_meta(where: str | None, value: Any) -> None:
    if not isinstance(value, dict):
        _fail(where, "meta", "wrong type", type(value).__name__, "a JSON object", "use {} for none")


def _check_steps(where: str | None, steps: Any) -> None:
    if not isinstance(steps, list):
        _fail(
            where,
            "steps",
            "wrong type",
            type(steps).__name__,
            "a list of strings",
            "store the solution as a list of step strings",
        )
    if not steps:
        _fail(
            where,
            "steps",
            "no steps",
            steps,
            "at least one step",
            "drop traces without steps, or segment the solution text first",
        )
    for i, step in enumerate(steps):
        if not isinstance(step, str):
            _fail(
                where,
                f"steps[{i}]",
                "wrong type",
                type(step).__name__,
                "a string",
                "store every step as text",
            )
        if not step.strip():
            _fail(
                where,
                f"steps[{i}]",
                "empty step",
                step,
                "non-blank step text",
                "remove blank steps (prmkit.steps.split never produces them)",
            )


def _check_score(where: str | None, name: str, value: Any, *, unit: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, name, "wrong type", value, "a number", "store numbers, not strings")
    if not math.isfinite(value):
        _fail(where, name, "not finite", value, "a finite number", "replace NaN/inf scores")
    if unit and not 0.0 <= value <= 1.0:
        _fail(
            where,
            name,
            "out of range",
            value,
            "a value in [0, 1]",
            "map labels to 1 = correct, 0 = wrong (soft values in between)",
        )


@dataclass(kw_only=True)
class Record:
    """Shared serialization for all record types (not used directly)."""

    KIND: ClassVar[str] = ""

    def validate(self, where: str | None = None) -> None:
        """Raise :class:`RecordError` if a field is missing, mistyped or inconsistent."""
        raise NotImplementedError

    def __post_init__(self) -> None:
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict with ``kind`` and ``schema_version``."""
        out: dict[str, Any] = {"kind": self.KIND, "schema_version": SCHEMA_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, list) else value
        return out

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any], where: str | None = None) -> R:
        """Build and validate a record; ``where`` names the file and line for errors.

        A dict whose ``kind`` names a subclass of ``cls`` builds that subclass, so reading a
        file of LabeledTraces as ``Trace`` keeps the labels.
        """
        if not isinstance(data, dict):
            raise RecordError(
                "record is not an object",
                got=type(data).__name__,
                expected="a JSON object",
                fix="write one object per record",
                where=where,
            )
        kind = data.get("kind", cls.KIND)
        target = _KINDS.get(kind) if isinstance(kind, str) else None
        if target is None or not issubclass(target, cls):
            allowed = sorted(k for k, c in _KINDS.items() if issubclass(c, cls))
            _fail(
                where,
                "kind",
                "unexpected record kind",
                kind,
                f"one of {allowed}",
                f"pass a file of {cls.__name__} records",
            )
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            _fail(
                where,
                "schema_version",
                "unsupported schema version",
                version,
                f"an integer <= {SCHEMA_VERSION}",
                "upgrade prmkit to read newer files",
            )
        names = {f.name for f in fields(target)}
        unknown = sorted(set(data) - names - {"kind", "schema_version"})
        if unknown:
            _fail(
                where,
                unknown[0],
                "unknown key",
                unknown,
                f"only {sorted(names)}",
                "remove the key, or put free-form data under 'meta'",
            )
        required = [f.name for f in fields(target) if f.name not in _OPTIONAL]
        missing = [n for n in required if n not in data]
        if missing:
            _fail(
                where, missing[0], "missing key", sorted(data), f"keys {required}", f"add {missing}"
            )
        kwargs = {k: v for k, v in data.items() if k in names}
        record = object.__new__(target)
        for name, value in kwargs.items():
            setattr(record, name, value)
        for f in fields(target):
            if f.name not in kwargs:
                setattr(
                    record,
                    f.name,
                    f.default_factory() if callable(f.default_factory) else f.default,
                )
        record.validate(where)
        return record


_OPTIONAL = {"meta", "answer", "labels", "first_error", "label_source"}


@dataclass(kw_only=True)
class Problem(Record):
    """A problem with a checkable answer.

    Example:
        ``{"kind": "problem", "schema_version": 1, "id": "arith-7", "prompt": "Tom has 3 ...",
        "answer": "12", "meta": {"task": "arithmetic", "n_steps": 2}}``
    """

    KIND: ClassVar[str] = "problem"
    id: str
    prompt: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self, where: str | None = None) -> None:
        _check_str(where, "id", self.id, nonempty=True)
        _check_str(where, "prompt", self.prompt, nonempty=True)
        _check_str(where, "answer", self.answer)
        _check_meta(where, self.meta)


@dataclass(kw_only=True)
class Trace(Record):
    """A solution to a problem, split into steps.

    ``answer`` is the final answer the solution arrives at (``None`` if it states none).
    """

    KIND: ClassVar[str] = "trace"
    id: str
    problem_id: str
    prompt: str
    steps: list[str]
    answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self, where: str | None = None) -> None:
        _check_str(where, "id", self.id, nonempty=True)
        _check_str(where, "problem_id", self.problem_id, nonempty=True)
        _check_str(where, "prompt", self.prompt)
        _check_steps(where, self.steps)
        if self.answer is not None:
            _check_str(where, "answer", self.answer)
        _check_meta(where, self.meta)

    def trace_fields(self) -> dict[str, Any]:
        """The fields of a plain :class:`Trace`, for building a richer record from this one."""
        return {f.name: getattr(self, f.name) for f in fields(Trace)}


def _check_labels(where: str | None, labels: Any, n_steps: int, first_error: Any) -> None:
    if not isinstance(labels, list):
        _fail(
            where,
            "labels",
            "wrong type",
            type(labels).__name__,
            "a list of numbers in [0, 1] or null",
            "store one label per step",
        )
    if len(labels) != n_steps:
        _fail(
            where,
            "labels",
            "labels count != steps count",
            len(labels),
            f"{n_steps} labels (one per step)",
            "give exactly one label per step; null = unknown",
        )
    for i, label in enumerate(labels):
        if label is not None:
            _check_score(where, f"labels[{i}]", label, unit=True)
    _check_first_error(where, first_error, n_steps)


def _check_first_error(where: str | None, first_error: Any, n_steps: int) -> None:
    if isinstance(first_error, bool) or not isinstance(first_error, int):
        _fail(
            where,
            "first_error",
            "wrong type",
            first_error,
            "an integer (-1 = no error)",
            "store the 0-based index of the first wrong step",
        )
    if not -1 <= first_error < n_steps:
        _fail(
            where,
            "first_error",
            "out of range",
            first_error,
            f"-1 (no error) or a step index in [0, {n_steps - 1}]",
            "use 0-based step indices; -1 when every step is correct",
        )


@dataclass(kw_only=True)
class LabeledTrace(Trace):
    """A trace with one label per step.

    ``labels[i]`` is 1.0 for a correct step, 0.0 for a wrong one, a value in between for a soft
    (e.g. Monte Carlo) estimate, or ``None`` when unknown (steps after the first error).
    ``first_error`` is the 0-based index of the first wrong step, -1 if none.

    Example:
        ``{"kind": "labeled_trace", "schema_version": 1, "id": "t1", "problem_id": "p1",
        "prompt": "...", "steps": ["3 + 4 = 7", "7 * 2 = 15"], "answer": "15", "meta": {},
        "labels": [1.0, 0.0], "first_error": 1, "label_source": "exact"}``
    """

    KIND: ClassVar[str] = "labeled_trace"
    labels: list[float | None]
    first_error: int = -1
    label_source: str = ""

    def validate(self, where: str | None = None) -> None:
        super().validate(where)
        _check_labels(where, self.labels, len(self.steps), self.first_error)
        _check_str(where, "label_source", self.label_source)


@dataclass(kw_only=True)
class ScoredTrace(Trace):
    """A trace with one PRM score per step (probability the step is correct).

    Labels are optional and kept when the scored trace was labelled, so evaluation can compare.

    Example:
        ``{"kind": "scored_trace", "schema_version": 1, "id": "t1", "problem_id": "p1",
        "prompt": "...", "steps": ["3 + 4 = 7", "7 * 2 = 15"], "answer": "15", "meta": {},
        "step_scores": [0.93, 0.12], "prm": "runs/prm-probe", "labels": [1.0, 0.0],
        "first_error": 1, "label_source": "exact"}``
    """

    KIND: ClassVar[str] = "scored_trace"
    step_scores: list[float]
    prm: str
    labels: list[float | None] | None = None
    first_error: int | None = None
    label_source: str | None = None

    def validate(self, where: str | None = None) -> None:
        super().validate(where)
        if not isinstance(self.step_scores, list) or len(self.step_scores) != len(self.steps):
            got = len(self.step_scores) if isinstance(self.step_scores, list) else self.step_scores
            _fail(
                where,
                "step_scores",
                "scores count != steps count",
                got,
                f"{len(self.steps)} scores (one per step)",
                "score every step",
            )
        for i, score in enumerate(self.step_scores):
            _check_score(where, f"step_scores[{i}]", score, unit=False)
        _check_str(where, "prm", self.prm)
        if self.label_source is not None:
            _check_str(where, "label_source", self.label_source)
        if self.labels is not None:
            fe = -1 if self.first_error is None else self.first_error
            _check_labels(where, self.labels, len(self.steps), fe)
        elif self.first_error is not None:
            _check_first_error(where, self.first_error, len(self.steps))


_KINDS: dict[str, type[Record]] = {
    cls.KIND: cls for cls in (Problem, Trace, LabeledTrace, ScoredTrace)
}


def first_error_from_labels(labels: list[float | None], threshold: float = 0.5) -> int:
    """Index of the first label below ``threshold`` (-1 if none); ``None`` labels are skipped."""
    for i, label in enumerate(labels):
        if label is not None and label < threshold:
            return i
    return -1


# --------------------------------------------------------------------------- IO


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise DataFormatError(
        "unknown file type",
        got=path.name,
        expected="a .jsonl or .parquet file",
        fix="rename the file with the right extension",
    )


def iter_records(path: str | os.PathLike[str], cls: type[R]) -> Iterator[R]:
    """Stream validated records of type ``cls`` (or a subclass) from JSONL or Parquet."""
    path = Path(path)
    if _format_of(path) == "jsonl":
        for lineno, obj in iter_jsonl(path):
            yield cls.from_dict(obj, where=f"{path}:{lineno}")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_input_file(path, "Parquet")
    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for obj in batch.to_pylist():
                row += 1
                yield _parquet_record(cls, obj, f"{path} row {row}")
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(
            f"cannot read the Parquet file after {row} rows ({exc})",
            got=str(path),
            expected="a complete Parquet file",
            fix="rewrite the file (it may be truncated or not Parquet at all)",
            where=str(path),
        ) from None


def _parquet_record(cls: type[R], obj: dict[str, Any], where: str) -> R:
    meta = obj.get("meta")
    if isinstance(meta, str):
        try:
            obj["meta"] = loads_strict(meta, where, field="meta")
        except json.JSONDecodeError:
            _fail(
                where,
                "meta",
                "malformed JSON",
                meta,
                "a JSON object string",
                "rewrite the file with prmkit",
            )
    obj = {k: v for k, v in obj.items() if v is not None or k in ("answer",)}
    return cls.from_dict(obj, where=where)


def read_records(path: str | os.PathLike[str], cls: type[R]) -> list[R]:
    """Read all records of type ``cls`` (or a subclass) from a JSONL or Parquet file."""
    return list(iter_records(path, cls))


def read_nonempty(path: str | os.PathLike[str], cls: type[R], *, noun: str, fix: str) -> list[R]:
    """:func:`read_records`, refusing a file that holds none (``0 NOUN in FILE``).

    Raises:
        DataFormatError: the file holds no records (or any reading error).
    """
    records = read_records(path, cls)
    if not records:
        raise DataFormatError(
            f"0 {noun} in {path}", expected=f"at least one {cls.KIND} record", fix=fix
        )
    return records


def write_records(path: str | os.PathLike[str], records: Iterable[Record]) -> int:
    """Atomically write records to JSONL or Parquet (by extension); return the count."""
    path = Path(path)
    if _format_of(path) == "jsonl":
        count = 0
        with atomic_write(path) as handle:
            for record in records:
                handle.write(json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False))
                handle.write("\n")
                count += 1
        return count
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for record in records:
        row = record.to_dict()
        row["meta"] = json.dumps(row["meta"], ensure_ascii=False)
        rows.append(row)
    keys = list(dict.fromkeys(k for row in rows for k in row))  # union, first-seen order
    table = pa.Table.from_pylist([{k: row.get(k) for k in keys} for row in rows])
    with atomic_write(path, "wb") as handle:
        pq.write_table(table, handle)
    return len(rows)
