"""PRMBench PRMScore: hand-computed counts, class rules, the overall pool, real data."""

from __future__ import annotations

import json

import pytest

from prmkit.errors import RecordError
from prmkit.evaluate.prmbench import (
    Confusion,
    confusion_of_trace,
    evaluate_prmbench,
    f1_score,
    prm_score,
)
from prmkit.records import ScoredTrace, write_records


def _t(sid, cls, scores, labels):
    fe = next((i for i, lab in enumerate(labels) if lab is not None and lab < 0.5), -1)
    return ScoredTrace(
        id=sid,
        problem_id=sid,
        prompt="q",
        steps=[f"s{i}" for i in range(len(scores))],
        step_scores=scores,
        prm="t",
        labels=labels,
        first_error=fe,
        meta={"classification": cls},
    )


def test_hand_computed_trace():
    c, skipped = confusion_of_trace([0.9, 0.4, 0.2, 0.6], [1.0, 1.0, 0.0, 1.0], 0.5)
    assert (c.tp, c.fn, c.tn, c.fp, skipped) == (2, 1, 1, 0, 0)
    assert f1_score(c.tp, c.fp, c.fn) == pytest.approx(0.8)
    assert f1_score(c.tn, c.fn, c.fp) == pytest.approx(2 / 3)
    assert prm_score(c) == pytest.approx(0.5 * 0.8 + 0.5 * 2 / 3)


def test_score_equal_to_threshold_is_predicted_wrong():
    c, _ = confusion_of_trace([0.5, 0.5], [1.0, 0.0], 0.5)
    assert (c.tp, c.fn, c.tn, c.fp) == (0, 1, 1, 0)


def test_none_labels_are_skipped_and_counted():
    c, skipped = confusion_of_trace([0.9, 0.1, 0.8], [1.0, 0.0, None], 0.5)
    assert (c.tp, c.tn, skipped) == (1, 1, 1)


def test_f1_edges():
    assert f1_score(0, 0, 0) is None
    assert f1_score(0, 3, 2) == 0.0
    # PRMBench's F1 without a denominator: precision or recall -1, and F1 0 if the other is 0
    no_wrong = Confusion(tp=4, fn=1)
    assert prm_score(no_wrong, f1_only=True) == pytest.approx(f1_score(4, 0, 1))
    assert prm_score(no_wrong) == pytest.approx(0.5 * f1_score(4, 0, 1))  # negative F1 is 0
    assert prm_score(Confusion(tp=4)) == 0.0  # negative F1 is -1: 0.5 - 0.5
    assert prm_score(Confusion(tn=2, fp=2)) == pytest.approx(0.5 * 2 / 3)  # F1 is 0
    assert prm_score(Confusion()) == 0.0  # -1, clipped


def test_classes_groups_and_overall_pool():
    traces = [
        _t("counterfactual_0", "counterfactual", [0.9, 0.4, 0.2, 0.6], [1.0, 1.0, 0.0, 1.0]),
        _t("counterfactual_1", "counterfactual", [0.9, 0.9], [1.0, 0.0]),
        _t("circular_0", "circular", [0.8, 0.1], [1.0, 0.0]),
        _t("multi_solutions_0", "multi_solutions", [0.9, 0.3], [1.0, 1.0]),
        _t("correct_0", "correct", [0.1, 0.1, 0.1], [1.0, 1.0, 1.0]),
    ]
    out = evaluate_prmbench(traces)
    cf = out["classes"]["counterfactual"]
    # counts: tp=3 fn=1 tn=1 fp=1 -> f1 = 6/8, neg = 2/4
    assert (cf["tp"], cf["fn"], cf["tn"], cf["fp"]) == (3, 1, 1, 1)
    assert cf["prm_score"] == pytest.approx(100 * (0.5 * 0.75 + 0.5 * 0.5))
    ms = out["classes"]["multi_solutions"]
    assert ms["negative_f1"] == 0.0  # a correct step predicted wrong, no wrong steps
    assert ms["prm_score"] == pytest.approx(100 * 2 / 3)  # positive F1 alone
    assert out["classes"]["circular"]["prm_score"] == pytest.approx(100.0)
    assert out["classes"]["correct"]["prm_score"] == 0.0
    overall = out["overall"]
    # pooled without 'correct': tp=3+1+1=5 fn=1+1=2 tn=1+1=2 fp=1
    assert (overall["tp"], overall["fn"], overall["tn"], overall["fp"]) == (5, 2, 2, 1)
    assert overall["n_traces"] == 4
    assert overall["prm_score"] == pytest.approx(100 * (0.5 * 10 / 13 + 0.5 * 4 / 7))
    assert out["groups"]["simplicity"] == pytest.approx(100.0)  # circular only
    assert out["groups"]["soundness"] == pytest.approx(cf["prm_score"])
    assert out["groups"]["sensitivity"] == pytest.approx(ms["prm_score"])


def test_threshold_changes_predictions():
    traces = [_t("a", "confidence", [0.7, 0.6], [1.0, 0.0])]
    assert evaluate_prmbench(traces, threshold=0.5)["overall"]["fp"] == 1
    assert evaluate_prmbench(traces, threshold=0.65)["overall"]["prm_score"] == pytest.approx(100)


def test_bad_inputs():
    no_class = _t("a", "x", [0.9], [1.0])
    no_class.meta = {}
    with pytest.raises(RecordError, match="no class"):
        evaluate_prmbench([no_class])
    unlabelled = ScoredTrace(
        id="b",
        problem_id="b",
        prompt="q",
        steps=["s"],
        step_scores=[0.9],
        prm="t",
        meta={"classification": "x"},
    )
    with pytest.raises(RecordError, match="no labels"):
        evaluate_prmbench([unlabelled])
    with pytest.raises(RecordError, match="repeated id"):
        evaluate_prmbench([_t("a", "x", [0.9], [1.0]), _t("a", "x", [0.9], [1.0])])


def test_real_prmbench_file(shared_data, tmp_path):
    path = shared_data / "prmbench" / "prm800k_test_p1_4o_counterfactual.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    oracle, constant = [], []
    for row in rows:
        steps = row["modified_process"]
        wrong = {i - 1 for i in row["error_steps"]}  # 1-indexed in PRMBench
        labels = [0.0 if i in wrong else 1.0 for i in range(len(steps))]
        sid = f"{row['classification']}_{row['idx']}"
        oracle.append(_t(sid, row["classification"], [lab for lab in labels], labels))
        constant.append(_t(sid, row["classification"], [1.0] * len(steps), labels))
    scored = tmp_path / "oracle.jsonl"
    write_records(scored, oracle)
    assert evaluate_prmbench(scored)["overall"]["prm_score"] == pytest.approx(100.0)
    out = evaluate_prmbench(constant)["overall"]
    # error_steps may repeat a step or name none past the end: count labelled wrong steps
    n_wrong = sum(lab == 0.0 for t in constant for lab in t.labels)
    n_steps = sum(len(t.steps) for t in constant)
    tp, fp = n_steps - n_wrong, n_wrong
    assert (out["tp"], out["fp"], out["tn"], out["fn"]) == (tp, fp, 0, 0)
    assert out["prm_score"] == pytest.approx(100 * 0.5 * 2 * tp / (2 * tp + fp))
