"""Property-based fuzzing of every reader and of ``prmkit convert``.

A valid row of each format is mutated at one random place (a field, a list item, a nested key,
or the whole row): the value is replaced by an arbitrary JSON value (NaN and infinities
included, as Python's ``json`` writes them), deleted, or joined by an extra key. Whatever the
input:

- only :class:`~prmkit.errors.PrmkitError` subclasses are raised (never a bare ``KeyError``,
  ``TypeError``, ... that would reach the user as a traceback);
- a failed conversion leaves no output file (and no temporary file) behind; a successful one
  writes a complete file that reads back;
- a record that is read is valid, survives a strict JSON round trip, and says what the input
  says (no silent coercion of a wrong value).

Hypothesis runs derandomized with a modest number of examples, so CI is stable and fast.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from prmkit.cli import main
from prmkit.errors import PrmkitError
from prmkit.formats import FORMATS, ConversionReport, read
from prmkit.records import LabeledTrace, Problem, Record, ScoredTrace, Trace, read_records
from prmkit.tasks.gsm8k import load_gsm8k
from prmkit.tasks.math500 import load_math500

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLE = FIXTURES / "data"

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# the command-line runs cost more (argparse, atomic writes, a read-back): 14 tests of 30
FUZZ_CLI = settings(FUZZ, max_examples=30)

# ------------------------------------------------------------------------------ strategies

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["", " ", "\n\n", "+", "-", "ки", "Step 1:", "# Answer\n\n4", "#### 4"])
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value: () is the value itself, then keys and indices, depth first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one place replaced by an arbitrary JSON value, deleted, or grown (a new key
    in an object, a new item in a list)."""
    value = copy.deepcopy(base)
    path = draw(st.sampled_from(_paths(value)))
    action = draw(st.sampled_from(["replace", "replace", "delete", "add_key"]))
    new = draw(JSON_VALUES)
    if not path:
        return new if action != "add_key" or not isinstance(value, dict) else {**value, "x": new}
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = new
    elif action == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][draw(st.text(max_size=6))] = new
    elif isinstance(parent[last], list):
        parent[last].append(new)
    else:
        parent[last] = new
    return value


# ------------------------------------------------------------------------------ helpers


def _jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _first_line(path: Path, n: int = 1) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:n]]


def _strict_round_trip(record: Record) -> None:
    """A record read from anywhere validates and survives strict JSON unchanged."""
    record.validate()
    text = json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False)
    assert type(record).from_dict(json.loads(text)) == record


def _read_or_typed_error(fn, *args, **kwargs) -> list | None:
    """``list(fn(...))``, or ``None`` when it raised a PrmkitError; any other error fails."""
    try:
        return list(fn(*args, **kwargs))
    except PrmkitError:
        return None


def _labeled_ok(trace: Trace) -> None:
    _strict_round_trip(trace)
    assert isinstance(trace, LabeledTrace)
    assert len(trace.labels) == len(trace.steps) >= 1
    assert all(label is None or 0.0 <= label <= 1.0 for label in trace.labels)


# ------------------------------------------------------------------------------ base rows

PROCESSBENCH_ITEMS = json.loads((SAMPLE / "processbench" / "math.json").read_text())[:2]
PRMBENCH_ROW = _first_line(SAMPLE / "prmbench" / "prm800k_test_p1_4o_circular.jsonl")[0]
PRM800K_ROWS = _first_line(FIXTURES / "formats" / "prm800k.jsonl", 2)
MATH_SHEPHERD_ROW = _first_line(FIXTURES / "formats" / "math_shepherd.jsonl")[0]
TRL_ROW = {"prompt": "2+2?", "completions": ["2+2=4", "So 4."], "labels": [True, False], "id": "t1"}
OPENRLHF_ROW = {
    "input": "2+2? 2+2=4 ки\nSo 4. ки",
    "value": ["+", "-"],
    "prompt": "2+2?",
    "id": "t",
}
NATIVE_ROWS = [
    LabeledTrace(
        id="t1",
        problem_id="p1",
        prompt="2+2?",
        steps=["2+2=4", "So 4."],
        answer="4",
        labels=[1.0, None],
        first_error=-1,
        label_source="exact",
        meta={"k": [1, 2]},
    ).to_dict(),
    ScoredTrace(
        id="t2",
        problem_id="p1",
        prompt="2+2?",
        steps=["2+2=5"],
        step_scores=[0.25],
        prm="x",
        labels=[0.0],
        first_error=0,
    ).to_dict(),
]
# records as other importers leave them, so the writers' use of ``meta`` gets fuzzed too
NATIVE_ROWS += [
    next(iter(read(fmt, path, report=ConversionReport()))).to_dict()
    for fmt, path in (
        ("prmbench", SAMPLE / "prmbench" / "prm800k_test_p1_4o_redundency.jsonl"),
        ("prm800k", FIXTURES / "formats" / "prm800k.jsonl"),
        ("processbench", SAMPLE / "processbench" / "math.json"),
    )
]
GSM8K_ROW = _first_line(SAMPLE / "gsm8k" / "test.jsonl")[0]
MATH500_ROW = _first_line(SAMPLE / "math500" / "test.jsonl")[0]


def _check_processbench(items: Any, traces: list[Trace]) -> None:
    assert isinstance(items, list) and len(traces) == len(items)
    for item, trace in zip(items, traces, strict=True):
        _labeled_ok(trace)
        assert (trace.id, trace.prompt, trace.steps) == (item["id"], item["problem"], item["steps"])
        assert trace.first_error == item["label"] and type(item["label"]) is int


def _check_prmbench(rows: list[Any], traces: list[Trace]) -> None:
    for trace in traces:
        _labeled_ok(trace)
    by_id = {f"{r['classification']}_{r['idx']}": r for r in rows}
    for trace in traces:
        row = by_id[trace.id.split("#")[0]]
        assert trace.prompt == row["modified_question"]
        assert trace.steps == [s for s in row["modified_process"] if s.strip()]
        wrong = {e for e in row["error_steps"] if type(e) is int}
        assert wrong == set(row["error_steps"])  # no bool or float index slipped through


def _check_trl(rows: list[Any], traces: list[Trace]) -> None:
    assert len(traces) == len(rows)
    for row, trace in zip(rows, traces, strict=True):
        _labeled_ok(trace)
        assert trace.prompt == row["prompt"] and trace.steps == row["completions"]
        assert all(type(flag) is bool for flag in row["labels"])
        assert trace.labels == [1.0 if flag else 0.0 for flag in row["labels"]]


def _check_native(rows: list[Any], traces: list[Trace]) -> None:
    assert len(traces) == len(rows)
    for row, trace in zip(rows, traces, strict=True):
        _strict_round_trip(trace)
        written = trace.to_dict()
        for key, value in row.items():
            if key != "schema_version":  # an older version is read as the current one
                assert written[key] == value, key


def _check_generic(rows: list[Any], traces: list[Trace]) -> None:
    for trace in traces:
        _labeled_ok(trace)


# format -> (valid rows to mutate, input file name, what a record read from them must satisfy)
READERS: dict[str, tuple[Any, str, Any]] = {
    "processbench": (PROCESSBENCH_ITEMS, "pb.json", _check_processbench),
    "prmbench": ([PRMBENCH_ROW], "pb.jsonl", _check_prmbench),
    "prm800k": (PRM800K_ROWS, "p.jsonl", _check_generic),
    "math_shepherd": ([MATH_SHEPHERD_ROW], "ms.jsonl", _check_generic),
    "trl": ([TRL_ROW], "trl.jsonl", _check_trl),
    "openrlhf": ([OPENRLHF_ROW], "o.jsonl", _check_generic),
    "prmkit": (NATIVE_ROWS, "r.jsonl", _check_native),
}


def test_every_format_has_a_fuzzed_reader() -> None:
    assert set(READERS) == set(FORMATS)


def _write_input(folder: Path, fmt: str, rows: Any) -> Path:
    name = READERS[fmt][1]
    path = folder / name
    if fmt == "processbench":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    else:
        lines = rows if isinstance(rows, list) else [rows]
        path.write_text(_jsonl(lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ readers


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_format_reader_never_crashes_nor_lies(fmt: str) -> None:
    base, _, check = READERS[fmt]

    @FUZZ
    @given(rows=mutated(base))
    def run(rows: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = _write_input(Path(tmp), fmt, rows)
            traces = _read_or_typed_error(read, fmt, path, report=ConversionReport())
        if traces is not None:
            as_rows = rows if isinstance(rows, list) else [rows]
            check(as_rows if fmt != "processbench" else rows, traces)

    run()


@FUZZ
@given(rows=mutated(NATIVE_ROWS), kind=st.sampled_from([Problem, Trace, LabeledTrace, ScoredTrace]))
def test_read_records_jsonl(rows: Any, kind: type[Record]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        path.write_text(_jsonl(rows if isinstance(rows, list) else [rows]), encoding="utf-8")
        records = _read_or_typed_error(read_records, path, kind)
    if records is not None:
        assert all(isinstance(r, kind) for r in records)
        _check_native(rows, records)


def _parquet_bytes(rows: list[Any]) -> bytes | None:
    """The rows as a Parquet file the way prmkit writes one (meta as JSON text), if pyarrow can
    type and store the columns; ``None`` otherwise (no file a prmkit user could have)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not all(isinstance(r, dict) for r in rows):
        return None
    shaped = []
    for row in rows:
        row = dict(row)
        if "meta" in row:
            row["meta"] = json.dumps(row["meta"], ensure_ascii=False)
        shaped.append(row)
    keys = list(dict.fromkeys(k for row in shaped for k in row))
    sink = pa.BufferOutputStream()
    try:
        pq.write_table(
            pa.Table.from_pylist([{k: row.get(k) for k in keys} for row in shaped]), sink
        )
    except (pa.ArrowException, OverflowError):
        return None
    return sink.getvalue().to_pybytes()


@FUZZ
@given(rows=mutated(NATIVE_ROWS), kind=st.sampled_from([Trace, LabeledTrace, ScoredTrace]))
def test_read_records_parquet(rows: Any, kind: type[Record]) -> None:
    raw = _parquet_bytes(rows if isinstance(rows, list) else [rows])
    assume(raw is not None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.parquet"
        path.write_bytes(raw)
        records = _read_or_typed_error(read_records, path, kind)
    if records is not None:
        for record in records:
            _strict_round_trip(record)
            assert isinstance(record, kind)


@FUZZ
@given(data=st.data(), fmt=st.sampled_from(sorted(READERS)))
def test_readers_on_arbitrary_bytes(data: st.DataObject, fmt: str) -> None:
    """Truncated, non-UTF-8 or otherwise broken bytes of a valid file: typed errors only."""
    base = READERS[fmt][0]
    good = json.dumps(base).encode() if fmt == "processbench" else _jsonl(base).encode()
    cut = data.draw(st.integers(0, len(good)))
    junk = data.draw(st.binary(max_size=12))
    raw = good[:cut] + junk + good[cut:] if data.draw(st.booleans()) else good[:cut] + junk
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / READERS[fmt][1]
        path.write_bytes(raw)
        traces = _read_or_typed_error(read, fmt, path, report=ConversionReport())
    for trace in traces or []:
        _strict_round_trip(trace)


@FUZZ
@given(row=mutated(GSM8K_ROW))
def test_gsm8k_loader(row: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "gsm8k").mkdir()
        (Path(tmp) / "gsm8k" / "test.jsonl").write_text(_jsonl([row]), encoding="utf-8")
        problems = _read_or_typed_error(load_gsm8k, "test", data_dir=tmp)
    for problem in problems or []:
        _strict_round_trip(problem)
        assert problem.prompt == row["question"].strip()


@FUZZ
@given(row=mutated(MATH500_ROW))
def test_math500_loader(row: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "math500").mkdir()
        (Path(tmp) / "math500" / "test.jsonl").write_text(_jsonl([row]), encoding="utf-8")
        problems = _read_or_typed_error(load_math500, data_dir=tmp)
    for problem in problems or []:
        _strict_round_trip(problem)
        assert problem.prompt == row["problem"].strip() and problem.answer == row["answer"]
        json.dumps(problem.meta, allow_nan=False)  # meta holds no NaN either


# ------------------------------------------------------------------------------ convert


def _convert(src: str, dst: str, source: Path, out: Path, report: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        argv = ["convert", "--from", src, "--to", dst, str(source), str(out)]
        code = main([*argv, "--report", str(report)])
    return code, err.getvalue()


def _count_rows(fmt: str, path: Path) -> int:
    if fmt == "processbench":
        return len(json.loads(path.read_text(encoding="utf-8")))
    if fmt == "prmkit" and path.suffix == ".parquet":
        return len(read_records(path, Trace))
    # split at "\n" only: str.splitlines() also breaks at U+0085 and U+2028 inside a JSON string
    return sum(1 for line in path.read_text(encoding="utf-8").split("\n") if line.strip())


def _check_converted(dst: str, out: Path, report: Path) -> None:
    """A successful conversion wrote a complete file that its own format's reader accepts."""
    written = json.loads(report.read_text(encoding="utf-8"))["written"]
    assert _count_rows(dst, out) == written
    counts = ConversionReport()
    back = _read_or_typed_error(read, dst, out, report=counts)
    assert back is not None  # what convert writes reads back
    # every row comes back, or is dropped by a rule of the reader that says so
    # (e.g. PRM800K's finish_reason 'bad_problem', PRMBench's exact duplicates)
    assert len(back) + counts.n_dropped == written
    for trace in back:
        _strict_round_trip(trace)


def _check_failed(err: str, folder: Path, out: Path, report: Path) -> None:
    """A failed conversion printed one error line and left no output or temporary file."""
    assert err.startswith("prmkit convert: error: ") and "Traceback" not in err
    assert not out.exists() and not report.exists()
    assert not (out.parent.exists() and any(out.parent.iterdir()))


def _suffix(dst: str, parquet: bool) -> str:
    if dst == "processbench":
        return ".json"
    return ".parquet" if dst == "prmkit" and parquet else ".jsonl"


@pytest.mark.parametrize("src", sorted(READERS))
def test_convert_cli_exit_codes_and_atomic_output(src: str) -> None:
    """Mutated input of every format, converted to every format on the command line."""

    @FUZZ_CLI
    @given(rows=mutated(READERS[src][0]), dst=st.sampled_from(sorted(READERS)), pq=st.booleans())
    def run(rows: Any, dst: str, pq: bool) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            source = _write_input(folder, src, rows)
            out, report = folder / "out" / f"converted{_suffix(dst, pq)}", folder / "report.json"
            code, err = _convert(src, dst, source, out, report)
            assert code in (0, 1)
            if code == 1:
                _check_failed(err, folder, out, report)
            else:
                _check_converted(dst, out, report)

    run()


# one record as each importer leaves it (meta included), and plain prmkit records
IMPORTED = NATIVE_ROWS


@pytest.mark.parametrize("dst", sorted(READERS))
def test_writers_write_what_their_readers_read(dst: str) -> None:
    """A prmkit record with one mutated field or meta value, written as every format: the
    writer refuses it with a typed error, or writes a file its own reader accepts."""

    @FUZZ_CLI
    @given(record=st.sampled_from(IMPORTED).flatmap(mutated), pq=st.booleans())
    def run(record: Any, pq: bool) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            source = _write_input(folder, "prmkit", [record])
            out, report = folder / "out" / f"converted{_suffix(dst, pq)}", folder / "report.json"
            code, err = _convert("prmkit", dst, source, out, report)
            assert code in (0, 1)
            if code == 1:
                _check_failed(err, folder, out, report)
            else:
                _check_converted(dst, out, report)

    run()


# ------------------------------------------------------------------------------ found by fuzzing

_SCORED = {
    "kind": "scored_trace",
    "id": "t",
    "problem_id": "p",
    "prompt": "q",
    "steps": ["a"],
    "step_scores": [0.5],
    "prm": "x",
}


@pytest.mark.parametrize("label_source", [[0, False], 3, {"a": 1}])
def test_scored_trace_label_source_must_be_text(tmp_path: Path, label_source: Any) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(_jsonl([{**_SCORED, "label_source": label_source}]), encoding="utf-8")
    assert _read_or_typed_error(read_records, path, ScoredTrace) is None


@pytest.mark.parametrize("first_error", ["oops", 1.5, -7, True])
def test_scored_trace_first_error_is_checked_without_labels(
    tmp_path: Path, first_error: Any
) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(_jsonl([{**_SCORED, "first_error": first_error}]), encoding="utf-8")
    assert _read_or_typed_error(read_records, path, ScoredTrace) is None
