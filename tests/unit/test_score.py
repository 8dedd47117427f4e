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
