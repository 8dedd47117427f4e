"""Aggregation, length bucketing, ScoredTrace building, the Scorer protocol."""

from __future__ import annotations

import math

import pytest

from prmkit.errors import ConfigError, DataFormatError
from prmkit.records import LabeledTrace, ScoredTrace, Trace
from prmkit.score import PRMScorer, Scorer, aggregate, length_buckets, to_scored


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("min", 0.5),
        ("prod", 0.9 * 0.5 * 0.8),
        ("last", 0.8),
        ("mean", 2.2 / 3),
    ],
)
def test_aggregations(how, expected):
    assert aggregate([0.9, 0.5, 0.8], how) == pytest.approx(expected)


def test_aggregate_errors():
    with pytest.raises(ConfigError, match="unknown aggregation"):
        aggregate([0.5], "median")
    with pytest.raises(DataFormatError, match="no step scores"):
        aggregate([], "min")


def test_length_buckets_groups_similar_lengths_and_respects_caps():
    lengths = [5, 100, 6, 90, 50]
    got = length_buckets(lengths, batch_size=2)
    assert sorted(i for b in got for i in b) == [0, 1, 2, 3, 4]
    assert got[0] == [1, 3] and all(len(b) <= 2 for b in got)
    capped = length_buckets(lengths, batch_size=8, max_batch_tokens=150)
    assert all(max(lengths[i] for i in b) * len(b) <= 150 or len(b) == 1 for b in capped)
    with pytest.raises(ConfigError):
        length_buckets(lengths, batch_size=0)


def test_to_scored_keeps_labels_and_adds_aggregates():
    trace = LabeledTrace(
        id="t",
        problem_id="p",
        prompt="q",
        steps=["a", "b"],
        labels=[1.0, 0.0],
        first_error=1,
        label_source="x",
        meta={"k": 1},
    )
    scored = to_scored(trace, [0.9, 0.2], "runs/prm")
    assert isinstance(scored, ScoredTrace) and scored.labels == [1.0, 0.0]
    assert scored.first_error == 1 and scored.meta["k"] == 1
    assert scored.meta["prm_aggregates"]["prod"] == pytest.approx(0.18)
    assert ScoredTrace.from_dict(scored.to_dict()) == scored
    plain = to_scored(Trace(id="t", problem_id="p", prompt="q", steps=["a"]), [0.4], "m")
    assert plain.labels is None and math.isclose(plain.meta["prm_aggregates"]["min"], 0.4)


def test_prm_scorer_is_a_scorer():
    assert isinstance(PRMScorer(prm=None), Scorer)


def test_score_cli_plain_model_dir_with_a_spec_file(tiny_model_dir, tmp_path):
    """A local model without prm_spec.json (Math-Shepherd style) scores through a given spec."""
    from prmkit.cli import main
    from prmkit.io import write_json
    from prmkit.prm import PRMSpec
    from prmkit.records import read_records, write_records

    spec = PRMSpec.from_format("math_shepherd", head="labeltok", max_length=256)
    write_json(tmp_path / "spec.json", spec.to_dict())
    traces = [
        Trace(id=f"t{i}", problem_id="p", prompt="2+2?", steps=["2+2=4", "So 4."][: i + 1])
        for i in range(2)
    ]
    write_records(tmp_path / "in.jsonl", traces)
    args = [
        "score",
        "--prm",
        str(tiny_model_dir),
        "--traces",
        str(tmp_path / "in.jsonl"),
        "--out",
        str(tmp_path / "out.jsonl"),
    ]
    assert main(args) == 1  # no prm_spec.json in a plain model directory
    assert main([*args, f"spec={tmp_path / 'spec.json'}"]) == 0
    scored = read_records(tmp_path / "out.jsonl", ScoredTrace)
    assert [len(s.step_scores) for s in scored] == [1, 2]
    assert scored[0].step_scores[0] == pytest.approx(scored[1].step_scores[0], abs=1e-5)
    assert all(0.0 < p < 1.0 for s in scored for p in s.step_scores)
