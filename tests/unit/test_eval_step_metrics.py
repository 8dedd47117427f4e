"""Step metrics: AUROC against brute-force pair counting, binned ECE by hand, last-step minimum."""

from __future__ import annotations

import random

import pytest

from prmkit.errors import PrmkitError
from prmkit.evaluate.step_metrics import (
    auroc,
    calibration_bins,
    evaluate_steps,
    expected_calibration_error,
    last_step_min_share,
    step_metrics,
)
from prmkit.records import ScoredTrace, write_records


def _pairs_auroc(scores, positives):
    pos = [s for s, y in zip(scores, positives, strict=True) if y]
    neg = [s for s, y in zip(scores, positives, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(10))
def test_auroc_matches_pair_counting_with_ties(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 60)
    scores = [rng.choice([0.1, 0.2, 0.5, 0.5, 0.9, rng.random()]) for _ in range(n)]
    positives = [rng.random() < 0.5 for _ in range(n)]
    positives[0], positives[1] = True, False
    assert auroc(scores, positives) == pytest.approx(_pairs_auroc(scores, positives))


def test_auroc_extremes():
    assert auroc([0.9, 0.8, 0.1], [1, 1, 0]) == 1.0
    assert auroc([0.1, 0.2, 0.9], [1, 1, 0]) == 0.0
    assert auroc([0.5, 0.5], [1, 0]) == 0.5
    assert auroc([0.5, 0.7], [1, 1]) is None


def test_ece_by_hand():
    scores, labels = [0.05, 0.15, 0.95, 0.95], [0.0, 0.0, 1.0, 0.0]
    # bins: |0 - .05| * 1/4 + |0 - .15| * 1/4 + |.5 - .95| * 2/4
    assert expected_calibration_error(scores, labels) == pytest.approx(0.275)
    assert expected_calibration_error([], []) is None
    assert expected_calibration_error([0.3, 0.3], [0.3, 0.3]) == pytest.approx(0.0)


def test_bin_edges():
    bins = calibration_bins([0.0, 0.1, 0.999, 1.0], [0, 0, 1, 1], n_bins=10)
    assert [b["n"] for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[2]["mean_score"] is None
    with pytest.raises(PrmkitError, match="outside"):
        calibration_bins([1.5], [1.0])


def test_last_step_min_share():
    out = last_step_min_share([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.3], [0.8, 0.7, 0.2]])
    assert out == {"share": 0.5, "n_traces": 4, "n_on_last": 2, "n_single_step_skipped": 1}
    assert last_step_min_share([[0.4]])["share"] is None


def _t(scores, labels=None):
    return ScoredTrace(
        id=str(scores),
        problem_id="p",
        prompt="q",
        steps=[f"s{i}" for i in range(len(scores))],
        step_scores=scores,
        prm="t",
        labels=labels,
        first_error=None if labels is None else -1 if 0.0 not in labels else labels.index(0.0),
    )


def test_step_metrics_collects_labelled_steps():
    traces = [_t([0.9, 0.2, 0.1], [1.0, 0.0, None]), _t([0.8, 0.7], [1.0, 1.0]), _t([0.6, 0.3])]
    out = step_metrics(traces)
    assert out["n_steps"] == 4 and out["n_unlabelled_steps"] == 3
    assert out["n_positive_steps"] == 3
    assert out["auroc"] == 1.0
    assert out["ece"] == pytest.approx(
        expected_calibration_error([0.9, 0.2, 0.8, 0.7], [1, 0, 1, 1])
    )
    assert out["last_step_min"]["n_on_last"] == 3  # every trace here dips at its end
    assert out["notes"] == []


def test_step_metrics_with_logit_scores_skips_ece():
    out = step_metrics([_t([2.0, -1.0], [1.0, 0.0])])
    assert out["auroc"] == 1.0 and out["ece"] is None and out["calibration"] is None
    assert out["notes"]


def test_calibration_bins_put_a_score_on_an_edge_into_the_bin_it_opens():
    """Issue 11 item 17: 0.57 at 100 bins is in bin 57 (int(0.57 * 100) == 56)."""
    from prmkit.evaluate.step_metrics import calibration_bins

    bins = calibration_bins([0.57, 0.3, 1.0, 0.0], [1, 0, 1, 0], 100)
    assert [i for i, b in enumerate(bins) if b["n"]] == [0, 30, 57, 99]
    assert bins[57]["lo"] == 0.57 and bins[57]["mean_score"] == 0.57


def test_evaluate_steps_takes_records_or_their_file(tmp_path):
    traces = [
        ScoredTrace(id=f"t{i}", problem_id="p", prompt="q", steps=["a", "b"], prm="t",
                    step_scores=sc, labels=lab, first_error=fe)
        for i, (sc, lab, fe) in enumerate(
            [([0.9, 0.2], [1.0, 0.0], 1), ([0.8, 0.7], [1.0, 1.0], -1)]
        )
    ]  # fmt: skip
    path = tmp_path / "scored.jsonl"
    write_records(path, traces)
    assert evaluate_steps(path) == evaluate_steps(traces) == step_metrics(traces)
    assert evaluate_steps(traces)["auroc"] == 1.0
