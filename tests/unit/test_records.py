"""Records: round trips through JSONL and Parquet, and every bad-input case named in issue 2."""

from __future__ import annotations

import json

import pytest

from prmkit.errors import DataFormatError, RecordError
from prmkit.records import (
    LabeledTrace,
    Problem,
    ScoredTrace,
    Trace,
    first_error_from_labels,
    iter_records,
    read_records,
    write_records,
)


def _labeled(**over):
    base = dict(
        id="t1",
        problem_id="p1",
        prompt="3+4, then double?",
        steps=["3 + 4 = 7", "7 * 2 = 15"],
        answer="15",
        labels=[1.0, 0.0],
        first_error=1,
        label_source="exact",
        meta={"seed": 3},
    )
    base.update(over)
    return LabeledTrace(**base)


def _records():
    return [
        Problem(id="p1", prompt="3+4, then double?", answer="14", meta={"n_steps": 2}),
        Trace(id="t0", problem_id="p1", prompt="q", steps=["a", "b"], answer=None),
        _labeled(),
        _labeled(id="t2", labels=[0.7, None], first_error=-1, label_source="mc"),
        ScoredTrace(
            id="t3",
            problem_id="p1",
            prompt="q",
            steps=["a", "b"],
            answer="14",
            step_scores=[0.9, -1.5],
            prm="probe",
            labels=[1.0, 1.0],
            first_error=-1,
        ),
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip_keeps_every_record_and_its_type(tmp_path, suffix):
    problems = [r for r in _records() if isinstance(r, Problem)]
    traces = [r for r in _records() if isinstance(r, Trace)]
    assert write_records(tmp_path / f"p{suffix}", problems) == 1
    assert write_records(tmp_path / f"t{suffix}", traces) == 4
    assert read_records(tmp_path / f"p{suffix}", Problem) == problems
    back = read_records(tmp_path / f"t{suffix}", Trace)
    assert back == traces
    assert [type(r) for r in back] == [Trace, LabeledTrace, LabeledTrace, ScoredTrace]


def test_jsonl_line_has_kind_and_schema_version(tmp_path):
    path = tmp_path / "x.jsonl"
    write_records(path, [_labeled()])
    row = json.loads(path.read_text())
    assert row["kind"] == "labeled_trace"
    assert row["schema_version"] == 1
    assert row["labels"] == [1.0, 0.0]


def test_streaming_reads_lazily(tmp_path):
    path = tmp_path / "x.jsonl"
    write_records(path, [_labeled(id=f"t{i}") for i in range(5)])
    with path.open("a") as f:
        f.write("{broken\n")
    it = iter_records(path, LabeledTrace)
    assert [next(it).id for _ in range(5)] == [f"t{i}" for i in range(5)]
    with pytest.raises(DataFormatError):
        next(it)


def _write_line(tmp_path, obj_or_text):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_labeled(id="ok").to_dict())
    text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text)
    path.write_text(good + "\n" + text + "\n", encoding="utf-8")
    return path


def _bad(**over):
    row = _labeled().to_dict()
    row.update(over)
    return row


@pytest.mark.parametrize(
    ("line", "error", "fragments"),
    [
        ('{"id": "t1", "steps": [', DataFormatError, ["bad.jsonl:2", "malformed JSON"]),
        ("[1, 2]", DataFormatError, ["bad.jsonl:2", "not a JSON object"]),
        (_bad(steps="3 + 4 = 7"), RecordError, ["bad.jsonl:2", "'steps'", "a list of strings"]),
        (_bad(id=7), RecordError, ["'id'", "wrong type", "a string"]),
        (_bad(labels=[1.0]), RecordError, ["'labels'", "labels count != steps count", "2 labels"]),
        (_bad(labels=[1.0, "0"]), RecordError, ["'labels[1]'", "a number"]),
        (_bad(labels=[1.0, 1.5]), RecordError, ["'labels[1]'", "[0, 1]"]),
        (_bad(first_error=2), RecordError, ["'first_error'", "out of range", "[0, 1]"]),
        (_bad(first_error=-2), RecordError, ["'first_error'", "out of range"]),
        (_bad(first_error="1"), RecordError, ["'first_error'", "an integer"]),
        (_bad(steps=[], labels=[], first_error=-1), RecordError, ["'steps'", "no steps"]),
        (_bad(steps=["ok", "  "]), RecordError, ["'steps[1]'", "empty step"]),
        (_bad(extra=1), RecordError, ["'extra'", "unknown key", "meta"]),
        (_bad(kind="problem"), RecordError, ["'kind'", "unexpected record kind"]),
        (_bad(schema_version=99), RecordError, ["schema_version", "upgrade prmkit"]),
        (
            {k: v for k, v in _bad().items() if k != "problem_id"},
            RecordError,
            ["missing key", "problem_id"],
        ),
    ],
)
def test_bad_input_names_file_line_field_and_expectation(tmp_path, line, error, fragments):
    path = _write_line(tmp_path, line)
    with pytest.raises(error) as info:
        read_records(path, LabeledTrace)
    message = str(info.value)
    assert "bad.jsonl:2" in message
    for fragment in fragments:
        assert fragment in message


def test_non_utf8_bytes_are_located(tmp_path):
    path = tmp_path / "latin.jsonl"
    good = json.dumps(_labeled().to_dict()).encode()
    path.write_bytes(good + b"\n" + good.replace(b"3 + 4", b"3 \xe9 4") + b"\n")
    with pytest.raises(DataFormatError) as info:
        read_records(path, LabeledTrace)
    assert "latin.jsonl:2" in str(info.value)
    assert "UTF-8" in str(info.value)


def test_constructor_validates_too():
    with pytest.raises(RecordError, match="labels count != steps count"):
        _labeled(labels=[1.0, 1.0, 1.0])
    with pytest.raises(RecordError, match="scores count"):
        ScoredTrace(id="s", problem_id="p", prompt="q", steps=["a"], step_scores=[], prm="x")
    with pytest.raises(RecordError, match="not finite"):
        ScoredTrace(
            id="s", problem_id="p", prompt="q", steps=["a"], step_scores=[float("nan")], prm="x"
        )


def test_write_is_atomic_and_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "out.jsonl"
    write_records(path, [_labeled()])
    before = path.read_text()

    def exploding():
        yield _labeled(id="new")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_records(path, exploding())
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_unknown_extension_is_rejected(tmp_path):
    with pytest.raises(DataFormatError, match=r"\.jsonl or \.parquet"):
        write_records(tmp_path / "x.csv", [])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataFormatError, match="file not found"):
        read_records(tmp_path / "none.jsonl", Trace)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [([1.0, 1.0], -1), ([1.0, 0.0, None], 1), ([0.2, 1.0], 0), ([None, 0.6, 0.4], 2), ([], -1)],
)
def test_first_error_from_labels(labels, expected):
    assert first_error_from_labels(labels) == expected
