"""Format readers/writers and ``prmkit convert``: real ProcessBench and PRMBench records (the
shipped sample everywhere, the full shared copies when present), hand-written fixtures in the
published PRM800K and Math-Shepherd layouts, round trips, and the lossy-conversion report."""

from __future__ import annotations

import inspect
import json
import warnings
from dataclasses import fields
from pathlib import Path

import pytest

from prmkit.errors import ConfigError, RecordError
from prmkit.formats import (
    FORMATS,
    ConversionReport,
    ConvertOptions,
    LossyConversionWarning,
    convert,
    read,
    write,
)
from prmkit.formats import prm800k as prm800k_format
from prmkit.formats.processbench import labels_for
from prmkit.records import LabeledTrace, ScoredTrace, Trace, read_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _quiet_read(fmt: str, path: Path, **options) -> tuple[list, ConversionReport]:
    report = ConversionReport()
    return list(read(fmt, path, report=report, **options)), report


# Expected counts on the shipped sample (tests/fixtures/data) and on the full shared copies.
PB_COUNTS = {
    "sample": {"n": 5, "wrong": 4, "ones": 10, "zeros": 4, "nulls": 4, "steps": 18},
    "full": {"n": 1000, "wrong": 594, "ones": 3774, "zeros": 594, "nulls": 2137, "steps": 6505},
}
PRMBENCH_COUNTS = {
    "sample": {
        "read": 7,
        "steps": 73,
        "suffixed": ["multi_solutions_prm_test_p2_1053#2"],
        "ignored": 3,
        "only_out_of_range": 1,
        "out_of_range_rows": 2,
        "blank": 1,
        "zeros": 14,
        "ones": 58,
        "error_at": r"prm800k_test_p1_4o_missing_condition\.jsonl:1 field 'error_steps': "
        r"error index out of range; got \[8\]",
        "correct": 1,
        "trl_true": 50,
        "trl_false": 4,
        "trl_cut": 18,
        # rows with no out-of-range error and no blank step: they round-trip exactly
        "round_trip": {
            "prm800k_test_p1_4o_circular.jsonl": [1],
            "prm800k_test_p1_4o_redundency.jsonl": [1],
            "prm_test_p12_multi_solutions.jsonl": [1],
        },
    },
    "full": {
        "read": 6216,
        "steps": 83456,
        "suffixed": [f"multi_solutions_prm_test_p2_{n}#2" for n in (1053, 1058, 863, 889, 997)],
        "ignored": 151,
        "only_out_of_range": 16,
        "out_of_range_rows": 100,
        "blank": 15,
        "zeros": 13149,
        "ones": 70292,
        "error_at": r"prm800k_test_p1_4o_circular\.jsonl:54 field 'error_steps': "
        r"error index out of range; got \[34\]",
        "correct": 758,
        "trl_true": 43462,
        "trl_false": 6035,
        "trl_cut": 33944,
        "round_trip": {"prm800k_test_p1_4o_confidence.jsonl": [1, 2, 3]},
    },
}


@pytest.fixture(scope="module")
def processbench(real_data: tuple[str, Path]) -> tuple[Path, dict]:
    """The ProcessBench MATH file (sample, then full) and its expected counts."""
    name, root = real_data
    return root / "processbench" / "math.json", PB_COUNTS[name]


@pytest.fixture(scope="module")
def prmbench(real_data: tuple[str, Path]) -> tuple[Path, dict]:
    """The PRMBench folder (sample, then full) and its expected counts."""
    name, root = real_data
    return root / "prmbench", PRMBENCH_COUNTS[name]


@pytest.fixture(scope="module")
def prmbench_read(prmbench: tuple[Path, dict]) -> tuple[list[LabeledTrace], ConversionReport]:
    return _quiet_read("prmbench", prmbench[0])


# ---------------------------------------------------------------------------- ProcessBench


def test_processbench_rule_on_real_math(processbench: tuple[Path, dict]) -> None:
    path, expect = processbench
    traces, report = _quiet_read("processbench", path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert len(traces) == report.read == expect["n"]
    assert sum(t.first_error >= 0 for t in traces) == expect["wrong"]
    labels = [label for t in traces for label in t.labels]
    assert labels.count(1.0) == expect["ones"]  # label of wrong traces + steps of correct ones
    assert labels.count(0.0) == expect["zeros"]
    assert labels.count(None) == expect["nulls"]
    assert len(labels) == report.steps_read == expect["steps"]
    for item, trace in zip(raw, traces, strict=True):
        assert trace.id == item["id"] and trace.steps == item["steps"]
        assert trace.first_error == item["label"]
        assert trace.labels == labels_for(len(item["steps"]), item["label"])
        assert trace.meta == {
            "generator": item["generator"],
            "final_answer_correct": item["final_answer_correct"],
        }
    assert not report.lossy


def test_processbench_round_trip_through_prmkit(
    processbench: tuple[Path, dict], tmp_path: Path
) -> None:
    path, expect = processbench
    with warnings.catch_warnings():
        warnings.simplefilter("error", LossyConversionWarning)
        there = convert("processbench", "prmkit", path, tmp_path / "r.jsonl")
        back = convert("prmkit", "processbench", tmp_path / "r.jsonl", tmp_path / "back.json")
    assert there.written == back.written == expect["n"]
    original = json.loads(path.read_text(encoding="utf-8"))
    assert json.loads((tmp_path / "back.json").read_text(encoding="utf-8")) == original


def test_processbench_to_trl_counts_and_one_warning(
    processbench: tuple[Path, dict], tmp_path: Path
) -> None:
    path, expect = processbench
    with pytest.warns(LossyConversionWarning) as caught:
        report = convert("processbench", "trl", path, tmp_path / "trl.jsonl")
    assert len(caught) == 1
    cut = expect["nulls"]
    assert f"{cut:,} steps cut after the first wrong step" in str(caught[0].message)
    assert report.lost == {"steps cut after the first wrong step": cut}
    rows = _lines(tmp_path / "trl.jsonl")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert len(rows) == expect["n"]
    for item, row in zip(raw, rows, strict=True):
        k = item["label"]
        expected = [True] * len(item["steps"]) if k < 0 else [True] * k + [False]
        assert row["labels"] == expected
        assert row["completions"] == item["steps"][: len(expected)]
        assert set(row) == {"prompt", "completions", "labels", "id"}


# ---------------------------------------------------------------------------- PRMBench


def test_prmbench_real_counts(
    prmbench: tuple[Path, dict], prmbench_read: tuple[list[LabeledTrace], ConversionReport]
) -> None:
    _, expect = prmbench
    traces, report = prmbench_read
    assert report.read == len(traces) == expect["read"]
    assert report.steps_read == expect["steps"]
    # repeating (idx, classification) pairs differ in content: kept under a suffixed id
    assert report.dropped == {}
    assert report.changed == {
        "rows repeating an (idx, classification) pair kept as <id>#n": len(expect["suffixed"])
    }
    assert sorted(t.id for t in traces if "#" in t.id) == expect["suffixed"]
    assert len({t.id for t in traces}) == len(traces)
    # error steps past the end are ignored; a row left without errors is labelled all correct
    assert report.lost == {
        "out-of-range error_steps ignored": expect["ignored"],
        "rows whose only error steps are out of range, labelled all correct": expect[
            "only_out_of_range"
        ],
        "blank steps removed": expect["blank"],
    }
    labels = [label for t in traces for label in t.labels]
    assert len(labels) == expect["steps"] - expect["blank"]
    assert labels.count(0.0) == expect["zeros"] and labels.count(1.0) == expect["ones"]
    circular = next(t for t in traces if t.id == "circular_prm_test_p1_0")
    assert circular.labels[2:5] == [0.0, 0.0, 0.0] and circular.first_error == 2
    assert circular.meta["classification"] == "circular" and circular.problem_id == "prm_test_p1_0"
    assert circular.steps[0].startswith("1. ")  # text kept unchanged by default


def test_prmbench_options(prmbench: tuple[Path, dict]) -> None:
    prmbench_dir, expect = prmbench
    first, report = _quiet_read(
        "prmbench", prmbench_dir, on_repeated_pair="first", out_of_range="drop"
    )
    repeated, out_of_range = len(expect["suffixed"]), expect["out_of_range_rows"]
    assert len(first) == expect["read"] - repeated - out_of_range
    assert report.dropped == {
        "rows repeating an (idx, classification) pair, content differs": repeated,
        "rows with error_steps out of range": out_of_range,
    }
    with pytest.raises(RecordError, match=expect["error_at"]):
        _quiet_read("prmbench", prmbench_dir, out_of_range="error")
    stripped, _ = _quiet_read(
        "prmbench", prmbench_dir / "prm800k_test_p1_4o_circular.jsonl", strip_numbering=True
    )
    assert stripped[0].steps[0].startswith("Let's call the price")
    with_correct, report = _quiet_read("prmbench", prmbench_dir, add_correct=True)
    correct = [t for t in with_correct if t.meta["classification"] == "correct"]
    assert len(correct) == expect["correct"] and all(t.first_error == -1 for t in correct)


def test_prmbench_exact_duplicates_dropped_and_round_trip(
    prmbench: tuple[Path, dict], tmp_path: Path
) -> None:
    prmbench_dir, expect = prmbench
    source = [
        line
        for name, numbers in expect["round_trip"].items()
        for n, line in enumerate((prmbench_dir / name).read_text().splitlines(), start=1)
        if n in numbers
    ]
    assert len(source) == 3
    (tmp_path / "pb.jsonl").write_text("\n".join([*source, source[1]]) + "\n")
    with pytest.warns(LossyConversionWarning, match="1 exact duplicate rows"):
        report = convert("prmbench", "prmkit", tmp_path / "pb.jsonl", tmp_path / "r.jsonl")
    assert report.read == 4 and report.written == 3
    convert("prmkit", "prmbench", tmp_path / "r.jsonl", tmp_path / "back.jsonl")
    assert _lines(tmp_path / "back.jsonl") == [json.loads(line) for line in source]


def test_prmbench_blank_steps_positions_kept_in_meta(sample_data: Path, tmp_path: Path) -> None:
    """PRMBench scores blank steps; records cannot hold them, so their positions stay in meta
    (for ``prmkit eval prmbench`` to count) and are not written back as a field."""
    path = sample_data / "prmbench" / "prm800k_test_p1_4o_deception.jsonl"
    (row,) = _lines(path)
    (trace,), report = _quiet_read("prmbench", path)
    assert report.lost["blank steps removed"] == 1
    assert trace.meta["blank_steps_removed"] == [16] and row["modified_process"][15] == ""
    assert len(trace.steps) == len(row["modified_process"]) - 1
    write("prmbench", tmp_path / "back.jsonl", [trace], report=ConversionReport())
    (back,) = _lines(tmp_path / "back.jsonl")
    assert "blank_steps_removed" not in back
    assert back["modified_process"] == [s for s in row["modified_process"] if s.strip()]


def test_prmbench_to_trl_counts(prmbench: tuple[Path, dict], tmp_path: Path) -> None:
    prmbench_dir, expect = prmbench
    with pytest.warns(LossyConversionWarning):
        report = convert("prmbench", "trl", prmbench_dir, tmp_path / "trl.jsonl")
    rows = _lines(tmp_path / "trl.jsonl")
    assert len(rows) == report.written == expect["read"]
    flags = [flag for row in rows for flag in row["labels"]]
    assert flags.count(True) == expect["trl_true"] and flags.count(False) == expect["trl_false"]
    assert report.lost["steps cut after the first wrong step"] == expect["trl_cut"]


def test_prmbench_write_restores_only_meta_of_the_right_type(
    sample_data: Path, tmp_path: Path
) -> None:
    """Found by fuzzing: meta['idx'] = None was written as is, and the reader refused the file."""
    path = sample_data / "prmbench" / "prm800k_test_p1_4o_circular.jsonl"
    (trace,), _ = _quiet_read("prmbench", path)
    trace.meta.update(idx=None, original_process=["a", 3], reason=["r"])
    report = ConversionReport()
    write("prmbench", tmp_path / "out.jsonl", [trace], report=report)
    (row,) = _lines(tmp_path / "out.jsonl")
    assert row["idx"] == trace.id and row["original_process"] == trace.steps
    assert row["reason"] == "" and row["classification"] == "circular"
    assert report.lost == {
        "meta['original_process'] values of the wrong type, written from the record": 1,
        "meta['reason'] values of the wrong type, written from the record": 1,
        "meta['idx'] values of the wrong type, written from the record": 1,
    }
    (back,), _ = _quiet_read("prmbench", tmp_path / "out.jsonl")
    assert back.steps == trace.steps and back.labels == trace.labels


def test_processbench_write_refuses_repeated_ids(tmp_path: Path) -> None:
    """ProcessBench's reader refuses repeated ids, so its writer does not write them."""
    traces = [_trace(["a"], [1.0], "same"), _trace(["b"], [0.0], "same")]
    with pytest.raises(RecordError, match="duplicate id; got 'same'"):
        write("processbench", tmp_path / "pb.json", traces, report=ConversionReport())
    assert list(tmp_path.iterdir()) == []
    traces[0].meta["generator"] = ["not", "text"]
    traces[1].id = "other"
    report = ConversionReport()
    write("processbench", tmp_path / "pb.json", traces, report=report)
    assert json.loads((tmp_path / "pb.json").read_text())[0]["generator"] == ""
    assert report.lost["generator values that are not text, written as ''"] == 1


# ---------------------------------------------------------------------------- PRM800K


def test_prm800k_chosen_path() -> None:
    traces, report = _quiet_read("prm800k", FIXTURES / "prm800k.jsonl")
    assert [t.id for t in traces] == ["prm800k-1", "prm800k-2", "prm800k-4"]
    phase2, phase1, gave_up = traces
    # phase 2: neutral first step -> positive; the unchosen -1 step is the last, first error
    assert phase2.labels == [1.0, 1.0, 0.0] and phase2.first_error == 2
    assert phase2.answer == "14" and phase2.meta["ratings"] == [0, 1, -1]
    assert phase2.meta["ground_truth_answer"] == "17" and phase2.meta["generation"] == 9
    # phase 1: the chosen alternative, then the human-written step (correct)
    assert phase1.steps == ["$7 \\times 6 = 42$.", "$42 - 2 = 40$.", "# Answer\n\n40"]
    assert phase1.labels == [1.0, 1.0, 1.0] and phase1.answer == "40"
    # the null rating ends the path
    assert gave_up.steps == ["The primes below $20$ are $2, 3, 5, 7, 11, 13, 17, 19$."]
    assert report.read == 5
    assert report.dropped == {
        "lines with finish_reason 'bad_problem'": 1,
        "lines with no rated step on the chosen path": 1,
    }
    assert report.lost == {
        "alternative completions off the chosen path": 3,
        "steps cut at a null rating": 1,
        "unchosen completions at the end of the path": 2,
    }
    assert report.changed == {"neutral (0) ratings mapped to positive": 1}


def test_prm800k_neutral_negative_and_skip_reasons() -> None:
    traces, report = _quiet_read(
        "prm800k",
        FIXTURES / "prm800k.jsonl",
        neutral="negative",
        skip_finish_reasons=["bad_problem", "give_up"],
    )
    assert [t.id for t in traces] == ["prm800k-1", "prm800k-2"]
    assert traces[0].labels == [0.0, 1.0, 0.0] and traces[0].first_error == 0
    assert report.dropped["lines with finish_reason 'give_up'"] == 2
    with pytest.raises(ConfigError, match="neutral"):
        _quiet_read("prm800k", FIXTURES / "prm800k.jsonl", neutral="zero")


def test_prm800k_write_restores_ratings(tmp_path: Path) -> None:
    traces, _ = _quiet_read("prm800k", FIXTURES / "prm800k.jsonl")
    prm800k_format.write(tmp_path / "out.jsonl", traces, report=ConversionReport())
    again, _ = _quiet_read("prm800k", tmp_path / "out.jsonl")
    assert [(t.steps, t.labels, t.meta["ratings"]) for t in again] == [
        (t.steps, t.labels, t.meta["ratings"]) for t in traces
    ]
    rows = _lines(tmp_path / "out.jsonl")
    assert rows[0]["label"]["steps"][2]["chosen_completion"] is None  # phase-2 style error step
    assert rows[0]["label"]["finish_reason"] == "found_error"


def test_prm800k_write_ignores_meta_it_cannot_restore(tmp_path: Path) -> None:
    """Found by fuzzing: meta ratings with a list in them, a non-text finish_reason."""
    traces, _ = _quiet_read("prm800k", FIXTURES / "prm800k.jsonl")
    traces[0].meta["ratings"] = [[], 1, -1]
    traces[1].meta["finish_reason"] = 7
    prm800k_format.write(tmp_path / "out.jsonl", traces[:2], report=ConversionReport())
    rows = _lines(tmp_path / "out.jsonl")
    assert [s["completions"][0]["rating"] for s in rows[0]["label"]["steps"]] == [1, 1, -1]
    assert rows[1]["label"]["finish_reason"] == "solution"
    again, _ = _quiet_read("prm800k", tmp_path / "out.jsonl")
    assert [t.labels for t in again] == [t.labels for t in traces[:2]]


# ---------------------------------------------------------------------------- Math-Shepherd


def test_math_shepherd_read() -> None:
    traces, report = _quiet_read("math_shepherd", FIXTURES / "math_shepherd.jsonl")
    assert [t.labels for t in traces] == [[1.0] * 3, [1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert [t.first_error for t in traces] == [-1, 2, 0]
    assert traces[1].prompt == (
        "A book costs $12 and a pen costs $3. How much do 2 books and 3 pens cost?"
    )
    assert traces[1].steps[3] == "Step 4: The answer is: 32"
    assert traces[2].meta == {"task": "MATH"} and not report.lossy


def test_math_shepherd_round_trip(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", LossyConversionWarning)
        convert("math_shepherd", "prmkit", FIXTURES / "math_shepherd.jsonl", tmp_path / "r.jsonl")
        convert("prmkit", "math_shepherd", tmp_path / "r.jsonl", tmp_path / "back.jsonl")
    assert (tmp_path / "back.jsonl").read_text() == (FIXTURES / "math_shepherd.jsonl").read_text()
    # and prmkit -> math_shepherd -> prmkit keeps the records
    records = read_records(tmp_path / "r.jsonl", LabeledTrace)
    again, _ = _quiet_read("math_shepherd", tmp_path / "back.jsonl")
    assert [(t.prompt, t.steps, t.labels) for t in again] == [
        (t.prompt, t.steps, t.labels) for t in records
    ]


def _trace(steps: list[str], labels: list, tid: str = "t1") -> LabeledTrace:
    from prmkit.records import first_error_from_labels

    return LabeledTrace(
        id=tid,
        problem_id="p1",
        prompt="What is 3 + 4, doubled?",
        steps=steps,
        labels=labels,
        first_error=first_error_from_labels(labels),
        label_source="mc",
    )


def test_math_shepherd_write_numbers_steps_and_rounds(tmp_path: Path) -> None:
    trace = _trace(["3 + 4 = 7", "7 * 2 = 15", "So 15."], [0.9, 0.2, None])
    report = ConversionReport()
    write("math_shepherd", tmp_path / "ms.jsonl", [trace], report=report)
    (row,) = _lines(tmp_path / "ms.jsonl")
    assert row["input"] == "What is 3 + 4, doubled? Step 1: 3 + 4 = 7 ки\nStep 2: 7 * 2 = 15 ки"
    assert row["label"] == "What is 3 + 4, doubled? Step 1: 3 + 4 = 7 +\nStep 2: 7 * 2 = 15 -"
    assert report.lost == {
        "steps cut at an unknown (null) label": 1,
        "soft labels rounded at threshold 0.5": 2,
    }
    assert report.changed == {"steps given a 'Step k:' prefix": 2}


# ---------------------------------------------------------------------------- TRL, OpenRLHF


def test_trl_write_truncates_rounds_and_warns_once(tmp_path: Path) -> None:
    traces = [
        _trace(["a", "b", "c", "d"], [1.0, 0.7, 0.3, 1.0]),
        _trace(["a", "b"], [0.5, 1.0], "t2"),
        _trace(["a", "b", "c"], [1.0, None, 0.0], "t3"),
    ]
    with pytest.warns(LossyConversionWarning) as caught:
        n = write("trl", tmp_path / "t.jsonl", traces)
    assert n == 3 and len(caught) == 1
    message = str(caught[0].message)
    assert "1 steps cut after the first wrong step" in message
    assert "3 soft labels rounded at threshold 0.5" in message
    assert "2 steps cut at an unknown (null) label" in message
    rows = _lines(tmp_path / "t.jsonl")
    assert [r["labels"] for r in rows] == [[True, True, False], [True, True], [True]]
    assert rows[0]["completions"] == ["a", "b", "c"]
    back, _ = _quiet_read("trl", tmp_path / "t.jsonl")
    assert back[0].labels == [1.0, 1.0, 0.0] and back[0].first_error == 2 and back[0].id == "t1"


def test_trl_threshold_and_without_id(tmp_path: Path) -> None:
    report = ConversionReport()
    write(
        "trl",
        tmp_path / "t.jsonl",
        [_trace(["a", "b"], [0.7, 0.9])],
        report=report,
        threshold=0.8,
        with_id=False,
    )
    assert _lines(tmp_path / "t.jsonl") == [
        {"prompt": "What is 3 + 4, doubled?", "completions": ["a"], "labels": [False]}
    ]


def test_openrlhf_round_trip_and_options(tmp_path: Path) -> None:
    traces = [
        _trace(["3 + 4 = 7", "7 * 2 = 15"], [1.0, 0.0]),
        _trace(["Step 1: 3 + 4 = 7", "Step 2: 7 * 2 = 14"], [0.75, 1.0], "t2"),
    ]
    write("openrlhf", tmp_path / "o.jsonl", traces, report=ConversionReport())
    rows = _lines(tmp_path / "o.jsonl")
    assert rows[0] == {
        "input": "What is 3 + 4, doubled? 3 + 4 = 7 ки\n7 * 2 = 15 ки",
        "value": ["+", "-"],
        "prompt": "What is 3 + 4, doubled?",
        "id": "t1",
    }
    back, _ = _quiet_read("openrlhf", tmp_path / "o.jsonl")
    assert [(t.id, t.prompt, t.steps) for t in back] == [(t.id, t.prompt, t.steps) for t in traces]
    assert back[1].labels == [1.0, 1.0]
    # soft values and custom keys/tokens, as OpenRLHF's --label_key/--placeholder_token allow
    write(
        "openrlhf",
        tmp_path / "s.jsonl",
        traces,
        report=ConversionReport(),
        soft_values=True,
        input_key="text",
        label_key="label",
        placeholder="<step>",
    )
    soft = _lines(tmp_path / "s.jsonl")
    assert soft[1]["label"] == [0.75, 1.0] and soft[1]["text"].count("<step>") == 2
    again, _ = _quiet_read(
        "openrlhf", tmp_path / "s.jsonl", input_key="text", label_key="label", placeholder="<step>"
    )
    assert again[1].labels == [0.75, 1.0]
    # rows without a prompt key (Math-Shepherd text) split at "Step 1:"
    (tmp_path / "ms.jsonl").write_text(
        json.dumps({"input": "Q? Step 1: a ки\nStep 2: b ки", "value": ["-", "+"]}) + "\n"
    )
    (plain,), _ = _quiet_read("openrlhf", tmp_path / "ms.jsonl")
    assert plain.prompt == "Q?" and plain.steps == ["Step 1: a", "Step 2: b"]
    assert plain.labels == [0.0, 1.0]


# ---------------------------------------------------------------------------- convert API


def test_prmkit_parquet_and_unlabeled_records(tmp_path: Path) -> None:
    plain = Trace(id="u1", problem_id="p", prompt="q", steps=["s"])
    scored = ScoredTrace(
        id="s1",
        problem_id="p",
        prompt="q",
        steps=["s", "t"],
        step_scores=[0.9, 0.1],
        prm="x",
        labels=[1.0, 0.0],
        first_error=1,
        label_source="exact",
    )
    labeled = _trace(["a"], [1.0], "l1")
    from prmkit.records import write_records

    write_records(tmp_path / "mixed.parquet", [plain, scored, labeled])
    with pytest.warns(LossyConversionWarning, match="1 records without step labels"):
        report = convert("prmkit", "trl", tmp_path / "mixed.parquet", tmp_path / "t.jsonl")
    assert report.read == 3 and report.written == 2
    assert report.lost == {"step scores of scored traces not written": 2}
    assert [r["id"] for r in _lines(tmp_path / "t.jsonl")] == ["s1", "l1"]


def test_convert_rejects_unknown_and_unused_options(tmp_path: Path) -> None:
    src = FIXTURES / "math_shepherd.jsonl"
    with pytest.raises(ConfigError, match="unknown conversion option"):
        convert("math_shepherd", "trl", src, tmp_path / "o.jsonl", nuetral="positive")
    with pytest.raises(ConfigError, match=r"'neutral' applies to: read prm800k"):
        convert("math_shepherd", "trl", src, tmp_path / "o.jsonl", neutral="positive")
    with pytest.raises(ConfigError, match="unknown input format"):
        convert("prm801k", "trl", src, tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="threshold"):
        convert("math_shepherd", "trl", src, tmp_path / "o.jsonl", threshold=1.5)
    assert not (tmp_path / "o.jsonl").exists()


def test_option_defaults_match_function_defaults() -> None:
    defaults = {
        f.name: (f.default_factory() if callable(f.default_factory) else f.default)
        for f in fields(ConvertOptions)
    }
    seen = set()
    for module in FORMATS.values():
        for fn, names in ((module.read, module.READ_OPTIONS), (module.write, module.WRITE_OPTIONS)):
            params = inspect.signature(fn).parameters
            for name in names:
                value = params[name].default
                value = list(value) if isinstance(value, tuple) else value
                assert value == defaults[name], (module.NAME, name)
                seen.add(name)
    assert seen == set(defaults)


def test_failed_conversion_leaves_no_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"prompt": "q", "completions": ["a"], "labels": [True]})
        + "\n"
        + json.dumps({"prompt": "q", "completions": ["a"], "labels": ["yes"]})
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    with pytest.raises(RecordError):
        convert("trl", "prmkit", bad, out)
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_reads_back_what_it_writes(fmt: str, tmp_path: Path) -> None:
    traces, _ = _quiet_read("math_shepherd", FIXTURES / "math_shepherd.jsonl")
    out = tmp_path / ("out.json" if fmt == "processbench" else "out.jsonl")
    write(fmt, out, traces, report=ConversionReport())
    back, _ = _quiet_read(fmt, out)
    assert [t.prompt for t in back] == [t.prompt for t in traces]
    for old, new in zip(traces, back, strict=True):
        assert new.first_error == old.first_error
        kept = len(new.steps)  # trl ends at the first wrong step
        assert new.steps == old.steps[:kept]
        if fmt == "processbench":
            assert new.labels == labels_for(len(old.steps), old.first_error)
            assert "final_answer_correct" not in new.meta  # written as null: unknown
        else:
            assert new.labels == old.labels[:kept]
