"""ProcessBench harness: hand-computed metrics, edge cases, threshold choice and its guard rails."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from prmkit.errors import DataFormatError, PrmkitError
from prmkit.evaluate.processbench import (
    Sample,
    ThresholdSelectionError,
    choose_threshold,
    evaluate_predictions,
    evaluate_processbench,
    first_error_prediction,
    harmonic_f1,
    load_subset,
    step_digests,
    subset_metrics,
    subset_name,
)
from prmkit.records import LabeledTrace, ScoredTrace, write_records


def _write_json(path, rows):
    path.write_text(json.dumps(rows))
    return path


def _pb(sid, label, n=4):
    return {
        "id": sid,
        "steps": [f"step {i}" for i in range(n)],
        "label": label,
        "problem": "p",
        "generator": "g",
        "final_answer_correct": label == -1,
    }


def _scored(sid, scores, first_error=None, steps=None):
    labels = None
    if first_error is not None:
        labels = [1.0 if first_error == -1 or i < first_error else 0.0 for i in range(len(scores))]
    return ScoredTrace(
        id=sid,
        problem_id=sid,
        prompt="p",
        steps=steps or [f"step {i}" for i in range(len(scores))],  # the steps of _pb
        step_scores=list(scores),
        prm="test",
        labels=labels,
        first_error=first_error,
    )


def _preds(path, mapping):
    path.write_text(
        "".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in mapping.items())
    )
    return path


# --------------------------------------------------------------------------- metric


def test_hand_computed_subset():
    labels = [-1, -1, -1, 2, 0, 1, 3]
    preds = [-1, 0, -1, 2, 1, 1, -1]
    r = subset_metrics(labels, preds)
    assert r.n_correct == 3 and r.n_error == 4
    assert r.acc_correct == pytest.approx(200 / 3)
    assert r.acc_error == pytest.approx(50.0)
    assert r.f1 == pytest.approx(2 * (200 / 3) * 50 / (200 / 3 + 50))  # 57.142857...
    assert r.f1 == pytest.approx(400 / 7)


def test_prediction_must_match_label_exactly():
    # flagging a later or earlier step than the true first error is wrong
    r = subset_metrics([2, 2, 2], [1, 3, 2])
    assert r.acc_error == pytest.approx(100 / 3)


@pytest.mark.parametrize(
    ("acc_error", "acc_correct", "f1"),
    [
        (0.0, 100.0, 0.0),
        (0.0, 0.0, 0.0),
        (100.0, 100.0, 100.0),
        (50.0, 50.0, 50.0),
        (None, 80.0, None),
        (80.0, None, None),
        (None, None, None),
    ],
)
def test_harmonic_f1_edges(acc_error, acc_correct, f1):
    assert harmonic_f1(acc_error, acc_correct) == f1


def test_all_correct_subset_has_undefined_f1_and_is_left_out_of_mean():
    subsets = {
        "allok": [Sample(f"a{i}", -1, 3) for i in range(3)],
        "mixed": [Sample("m0", -1, 3), Sample("m1", 1, 3)],
    }
    preds = {"a0": -1, "a1": -1, "a2": 0, "m0": -1, "m1": 1}
    out = evaluate_predictions(subsets, preds)
    allok = out["subsets"]["allok"]
    assert allok["acc_error"] is None and allok["f1"] is None
    assert allok["acc_correct"] == pytest.approx(200 / 3)
    assert out["mean_f1"] == pytest.approx(100.0)  # only 'mixed' is defined
    assert any("allok" in n and "no erroneous samples" in n for n in out["notes"])


def test_all_wrong_subset_and_empty_subset():
    subsets = {"allbad": [Sample("b0", 0, 2), Sample("b1", 1, 2)], "empty": []}
    out = evaluate_predictions(subsets, {"b0": 0, "b1": -1})
    assert out["subsets"]["allbad"] == {
        "acc_error": 50.0,
        "acc_correct": None,
        "f1": None,
        "n_error": 2,
        "n_correct": 0,
        "n_missing": 0,
    }
    assert out["subsets"]["empty"]["f1"] is None and out["subsets"]["empty"]["n_error"] == 0
    assert out["mean_f1"] is None
    assert any("empty" in n and "is empty" in n for n in out["notes"])


def test_mean_f1_is_unweighted_over_subsets():
    small = [Sample("s0", -1, 2), Sample("s1", 0, 2)]  # F1 100
    big = [Sample(f"b{i}", -1, 2) for i in range(50)] + [Sample(f"e{i}", 0, 2) for i in range(50)]
    preds = (
        {"s0": -1, "s1": 0}
        | {f"b{i}": -1 for i in range(50)}
        | {f"e{i}": (0 if i < 25 else -1) for i in range(50)}
    )
    out = evaluate_predictions({"small": small, "big": big}, preds)
    f1_big = 2 * 100 * 50 / 150
    assert out["subsets"]["big"]["f1"] == pytest.approx(f1_big)
    assert out["mean_f1"] == pytest.approx((100 + f1_big) / 2)


def test_missing_prediction_is_an_error_unless_allowed():
    subsets = {"x": [Sample("a", -1, 2), Sample("b", 1, 2)]}
    with pytest.raises(PrmkitError, match="no prediction"):
        evaluate_predictions(subsets, {"a": -1})
    out = evaluate_predictions(subsets, {"a": -1, "zz": 0}, allow_missing=True)
    assert out["subsets"]["x"]["n_missing"] == 1
    assert out["subsets"]["x"]["acc_error"] == 0.0
    assert out["n_unused_predictions"] == 1
    assert any("counted as wrong" in n for n in out["notes"])


def test_prediction_past_last_step_is_an_error():
    with pytest.raises(PrmkitError, match="past the last step"):
        evaluate_predictions({"x": [Sample("a", 0, 2)]}, {"a": 2})


def test_first_error_prediction_is_strictly_below_threshold():
    assert first_error_prediction([0.5, 0.5], 0.5) == -1
    assert first_error_prediction([0.9, 0.49, 0.1], 0.5) == 1
    assert first_error_prediction([0.1], 0.05) == -1


# --------------------------------------------------------------------------- files


def test_subset_name_and_loading(tmp_path):
    assert subset_name("/x/gsm8k.json") == "gsm8k"
    assert subset_name("omnimath.test.jsonl") == "omnimath"
    path = _write_json(tmp_path / "math.json", [_pb("m0", -1), _pb("m1", 2)])
    steps = step_digests([f"step {i}" for i in range(4)])
    assert load_subset(path) == [Sample("m0", -1, 4, steps), Sample("m1", 2, 4, steps)]
    labeled = tmp_path / "demo.jsonl"
    write_records(
        labeled,
        [
            LabeledTrace(
                id="t0",
                problem_id="p",
                prompt="q",
                steps=["a", "b"],
                labels=[1.0, 0.0],
                first_error=1,
                label_source="exact",
            )
        ],
    )
    assert load_subset(labeled) == [Sample("t0", 1, 2, step_digests(["a", "b"]))]


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([_pb("a", 4)], "bad label"),
        ([{"id": "a", "steps": ["x"]}], "missing key 'label'"),
        ([_pb("a", -1), _pb("a", 0)], "repeated id"),
        ({"id": "a"}, "not a list"),
    ],
)
def test_bad_data_files(tmp_path, rows, fragment):
    with pytest.raises(DataFormatError, match=fragment):
        load_subset(_write_json(tmp_path / "d.json", rows))


def test_bad_prediction_files(tmp_path):
    data = _write_json(tmp_path / "d.json", [_pb("a", -1)])
    dup = tmp_path / "p.jsonl"
    dup.write_text('{"id": "a", "prediction": -1}\n{"id": "a", "prediction": 0}\n')
    with pytest.raises(DataFormatError, match="repeated id"):
        evaluate_processbench([data], predictions=dup)
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "a", "prediction": "-1"}\n')
    with pytest.raises(DataFormatError, match="bad or missing prediction"):
        evaluate_processbench([data], predictions=bad)


# --------------------------------------------------------------------------- thresholds


def _f1_at(items, t):
    return subset_metrics(
        [lab for lab, _ in items], [first_error_prediction(s, t) for _, s in items]
    ).f1


def test_choose_threshold_hand_case():
    items = [(-1, [0.9, 0.8]), (-1, [0.7, 0.6]), (1, [0.9, 0.3]), (0, [0.4, 0.9])]
    t, f1 = choose_threshold(items)
    # any t in (0.4, 0.6] gets all four right
    assert f1 == pytest.approx(100.0)
    assert 0.4 < t <= 0.6
    assert _f1_at(items, t) == pytest.approx(100.0)


@pytest.mark.parametrize("seed", range(8))
def test_choose_threshold_matches_brute_force(seed):
    rng = random.Random(seed)
    items = []
    for _ in range(40):
        n = rng.randint(1, 5)
        scores = [round(rng.random(), 2) for _ in range(n)]  # rounding makes ties
        items.append((rng.choice([-1, *range(n)]), scores))
    if not any(lab == -1 for lab, _ in items) or all(lab == -1 for lab, _ in items):
        items.append((-1, [0.5]))
        items.append((0, [0.5]))
    t, f1 = choose_threshold(items)
    assert _f1_at(items, t) == pytest.approx(f1)
    values = sorted({s for _, ss in items for s in ss})
    grid = values + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [2.0]
    assert f1 == pytest.approx(max(_f1_at(items, g) for g in grid))


def test_choose_threshold_needs_both_sides():
    with pytest.raises(ThresholdSelectionError, match="with and without an error"):
        choose_threshold([(-1, [0.9]), (-1, [0.4])])


@pytest.fixture
def scored_setup(tmp_path):
    data = _write_json(
        tmp_path / "math.json",
        [_pb("m0", -1, 3), _pb("m1", 1, 3), _pb("m2", 0, 3), _pb("m3", -1, 3)],
    )
    scores = tmp_path / "scored.jsonl"
    write_records(
        scores,
        [
            _scored("m0", [0.9, 0.8, 0.7]),
            _scored("m1", [0.8, 0.35, 0.9]),
            _scored("m2", [0.2, 0.9, 0.9]),
            _scored("m3", [0.9, 0.45, 0.9]),
        ],
    )
    split = tmp_path / "dev.jsonl"
    write_records(
        split,
        [
            _scored("d0", [0.9, 0.6], -1),
            _scored("d1", [0.9, 0.3], 1),
            _scored("d2", [0.35, 0.9], 0),
            _scored("d3", [0.7, 0.55], -1),
        ],
    )
    return data, scores, split


def test_threshold_from_declared_split(scored_setup):
    data, scores, split = scored_setup
    out = evaluate_processbench([data], scores=scores, threshold_from=split)
    assert out["threshold_source"] == f"split:{split}"
    assert 0.35 < out["threshold"] <= 0.55 and out["split_f1"] == pytest.approx(100.0)
    # at that threshold m3 (min 0.45) is flagged iff t > 0.45
    expected = 100.0 if out["threshold"] <= 0.45 else 2 * 50 * 100 / 150
    assert out["subsets"]["math"]["f1"] == pytest.approx(expected)


def test_given_threshold(scored_setup):
    data, scores, _ = scored_setup
    out = evaluate_processbench([data], scores=scores, threshold=0.5)
    assert out["threshold"] == 0.5 and out["threshold_source"] == "given"
    assert out["subsets"]["math"]["acc_correct"] == 50.0  # m3 flagged at step 1
    assert out["subsets"]["math"]["acc_error"] == 100.0


def test_choosing_on_evaluated_data_is_refused(scored_setup, tmp_path):
    data, scores, _ = scored_setup
    with pytest.raises(ThresholdSelectionError, match="evaluated data itself"):
        evaluate_processbench([data], scores=scores, threshold_from=scores)
    leaky = tmp_path / "leaky.jsonl"
    write_records(leaky, [_scored("m0", [0.9, 0.8, 0.7], -1), _scored("d9", [0.2], 0)])
    with pytest.raises(ThresholdSelectionError, match="shares 1 ids"):
        evaluate_processbench([data], scores=scores, threshold_from=leaky)
    with pytest.raises(ThresholdSelectionError, match="exactly one threshold choice"):
        evaluate_processbench([data], scores=scores)
    with pytest.raises(ThresholdSelectionError, match="exactly one threshold choice"):
        evaluate_processbench([data], scores=scores, threshold=0.5, oracle_threshold=True)


def test_records_give_the_same_result_as_files(scored_setup):
    """The entry function takes records where it takes files: scores, the split, the data."""
    from prmkit.records import read_records

    data, scores, split = scored_setup
    by_files = evaluate_processbench([data], scores=scores, threshold_from=split)
    scored, held_out = read_records(scores, ScoredTrace), read_records(split, ScoredTrace)
    labelled = []
    for row in json.loads(data.read_text()):
        n, e = len(row["steps"]), row["label"]
        labels = [1.0] * n if e == -1 else [1.0] * e + [0.0] + [None] * (n - e - 1)
        labelled.append(
            LabeledTrace(id=row["id"], problem_id=row["id"], prompt="q", steps=row["steps"],
                         labels=labels, first_error=e)
        )  # fmt: skip
    perfect = {"m0": -1, "m1": 1, "m2": 0, "m3": -1}
    samples = {"math": load_subset(data)}  # Sample objects work too
    assert evaluate_processbench(samples, predictions=perfect)["mean_f1"] == 100.0
    by_records = evaluate_processbench({"math": labelled}, scores=scored, threshold_from=held_out)
    assert by_records["threshold_source"] == "split"
    for key in ("subsets", "mean_f1", "threshold", "split_f1"):
        assert by_records[key] == by_files[key], key
    with pytest.raises(ThresholdSelectionError, match="evaluated data itself"):
        evaluate_processbench({"math": labelled}, scores=scored, threshold_from=scored)
    with pytest.raises(DataFormatError, match="0 scored traces in the scored traces"):
        evaluate_processbench([data], scores=[], threshold=0.5)


def test_oracle_threshold_is_labelled(scored_setup):
    data, scores, _ = scored_setup
    out = evaluate_processbench([data], scores=scores, oracle_threshold=True)
    assert out["threshold_source"] == "oracle"
    assert out["subsets"]["math"]["f1"] == pytest.approx(100.0) == out["oracle_f1"]
    assert 0.35 < out["threshold"] <= 0.45
    assert any("oracle" in n for n in out["notes"])


def test_step_count_mismatch_is_an_error(tmp_path):
    data = _write_json(tmp_path / "x.json", [_pb("a", -1, 3)])
    scores = tmp_path / "s.jsonl"
    write_records(scores, [_scored("a", [0.9, 0.9])])
    with pytest.raises(PrmkitError, match="different step count"):
        evaluate_processbench([data], scores=scores, threshold=0.5)


# --------------------------------------------------------------------------- real data


def test_real_math_trivial_predictors(shared_data, tmp_path):
    data = shared_data / "processbench" / "math.json"
    rows = json.loads(data.read_text())
    none = evaluate_processbench(
        [data], predictions=_preds(tmp_path / "n.jsonl", {r["id"]: -1 for r in rows})
    )
    math_ = none["subsets"]["math"]
    assert (math_["n_error"], math_["n_correct"]) == (594, 406)
    assert (math_["acc_correct"], math_["acc_error"], math_["f1"]) == (100.0, 0.0, 0.0)
    oracle = evaluate_processbench(
        [data], predictions=_preds(tmp_path / "o.jsonl", {r["id"]: r["label"] for r in rows})
    )
    assert oracle["mean_f1"] == 100.0
    first = evaluate_processbench(
        [data], predictions=_preds(tmp_path / "f.jsonl", {r["id"]: 0 for r in rows})
    )
    n0 = sum(r["label"] == 0 for r in rows)
    assert first["subsets"]["math"]["acc_error"] == pytest.approx(100 * n0 / 594)
    assert first["subsets"]["math"]["acc_correct"] == 0.0 and first["mean_f1"] == 0.0


def test_real_math_scores_with_oracle_threshold(shared_data, tmp_path):
    data = shared_data / "processbench" / "math.json"
    rows = json.loads(data.read_text())
    scores = tmp_path / "scored.jsonl"
    write_records(
        scores,
        [
            _scored(
                r["id"],
                [0.1 if i == r["label"] else 0.9 for i in range(len(r["steps"]))],
                steps=r["steps"],
            )
            for r in rows
        ],
    )
    out = evaluate_processbench([data], scores=scores, oracle_threshold=True)
    assert out["mean_f1"] == pytest.approx(100.0)
    assert 0.1 < out["threshold"] <= 0.9


def test_a_prediction_line_without_its_key_names_the_keys_found(tmp_path):
    """Was 'bad or missing prediction; got Ellipsis'."""
    from prmkit.errors import DataFormatError
    from prmkit.evaluate.processbench import load_predictions

    path = tmp_path / "preds.jsonl"
    path.write_text('{"id": "a", "pred": 2}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"missing prediction; got \['id', 'pred'\]") as exc:
        load_predictions(path)
    assert "Ellipsis" not in str(exc.value)
