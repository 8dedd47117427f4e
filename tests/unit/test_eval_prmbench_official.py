"""PRMBench against an independent re-implementation of its official scoring.

The reference below is written from the behaviour of ssmisya/PRMBench (the loader and
``evaluate_function`` of ``mr_eval/tasks/prmtest_classified/task.py``, and PRMScore as the paper's
table script ``form_latex_strs.ipynb`` computes it): the first row of each (idx, classification)
pair, every step of ``modified_process`` (blank ones too), out-of-range error indices ignored,
precision/recall/F1 with -1 when a denominator is 0, ``multi_solutions`` by its F1 alone, every
other class and the overall pool by ``0.5 * F1 + 0.5 * negative F1``, a negative PRMScore shown
as 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prmkit.evaluate.prmbench import GROUPS, Confusion, evaluate_prmbench, prm_score
from prmkit.formats import ConversionReport
from prmkit.formats import prmbench as prmbench_format
from prmkit.records import ScoredTrace
from prmkit.score.scorer import to_scored

CLASSES = [c for members in GROUPS.values() for c in members]


def _ref_f1(tp: int, fp: int, fn: int) -> float:
    precision = tp / (tp + fp) if tp + fp else -1.0
    recall = tp / (tp + fn) if tp + fn else -1.0
    total = precision + recall
    return 2 * precision * recall / total if total != 0 else -1.0


def _ref_score(name: str, tp: int, fp: int, tn: int, fn: int) -> float:
    pos = _ref_f1(tp, fp, fn)
    value = pos if name == "multi_solutions" else 0.5 * pos + 0.5 * _ref_f1(tn, fn, fp)
    return max(value, 0.0)


def _rows(folder: Path) -> list[dict]:
    return [
        json.loads(line)
        for file in sorted(folder.glob("*.jsonl"))
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _items(rows: list[dict]) -> dict[str, tuple[list[str], list[int], str]]:
    """PRMBench's loader: id -> (steps, 1-based error steps, class), first row of a pair wins."""
    items: dict[str, tuple[list[str], list[int], str]] = {}
    for row in rows:
        idx, name = row["idx"], row["classification"]
        if name == "redundency":
            items.setdefault(f"correct_{idx}", (row["original_process"], [], "correct"))
        items.setdefault(f"{name}_{idx}", (row["modified_process"], row["error_steps"], name))
    return items


def _reference(items, scores, *, skip_blank: bool) -> dict[str, float]:
    """Percent PRMScore per class and ``overall`` (without ``correct``), PRMBench's way."""
    counts: dict[str, list[int]] = {}
    total = [0, 0, 0, 0]
    for key, (steps, errors, name) in items.items():
        wrong = {e - 1 for e in errors}
        c = counts.setdefault(name, [0, 0, 0, 0])  # tp, fp, tn, fn
        for i, step in enumerate(steps):
            if skip_blank and not step.strip():
                continue
            predicted_correct = scores[key][i] > 0.5
            slot = (
                (1 if predicted_correct else 2) if i in wrong else (0 if predicted_correct else 3)
            )
            c[slot] += 1
            if name != "correct":
                total[slot] += 1
    out = {name: 100 * _ref_score(name, *c) for name, c in counts.items()}
    out["overall"] = 100 * _ref_score("overall", *total)
    return out


def _prmkit(folder: Path, items, scores) -> dict:
    """Convert with the default options (plus ``add_correct``), score, evaluate by default."""
    traces = []
    for t in prmbench_format.read(folder, add_correct=True, report=ConversionReport()):
        if t.id in items:
            steps = items[t.id][0]
            step_scores = [float(scores[t.id][i]) for i, s in enumerate(steps) if s.strip()]
        else:  # a repeated pair's later row (``<id>#2``): PRMBench never scores it
            step_scores = [0.9] * len(t.steps)
        traces.append(to_scored(t, step_scores, "random"))
    return evaluate_prmbench(traces)


def _random_scores(items, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.random(len(steps)) for key, (steps, _, _) in items.items()}


def _compare(result: dict, reference: dict) -> dict[str, float]:
    diffs = {"overall": result["overall"]["prm_score"] - reference["overall"]}
    for name, r in result["classes"].items():
        if name != "correct":
            diffs[name] = r["prm_score"] - reference[name]
    return diffs


def _of_counts(name: str, tp: int, fp: int, tn: int, fn: int) -> ScoredTrace:
    """One trace whose steps give exactly these counts at threshold 0.5."""
    pairs = [(1.0, 0.9)] * tp + [(0.0, 0.9)] * fp + [(0.0, 0.1)] * tn + [(1.0, 0.1)] * fn
    labels = [lab for lab, _ in pairs]
    return ScoredTrace(
        id=f"{name}_0",
        problem_id="0",
        prompt="q",
        steps=[f"s{i}" for i in range(len(pairs))],
        step_scores=[score for _, score in pairs],
        prm="t",
        labels=labels,
        first_error=labels.index(0.0) if 0.0 in labels else -1,
        meta={"classification": name},
    )


@pytest.mark.parametrize("seed", range(200))
def test_prm_score_matches_the_official_formula_on_any_counts(seed):
    """Degenerate counts included: zeros in every slot, classes without wrong or correct steps."""
    rng = np.random.default_rng(seed)
    counts = [int(x) for x in rng.integers(0, 4, size=4) * rng.integers(0, 2, size=4)]
    if not any(counts):
        counts[int(rng.integers(0, 4))] = 1
    for name in ("counterfactual", "multi_solutions"):
        out = evaluate_prmbench([_of_counts(name, *counts)])
        expected = 100 * _ref_score(name, *counts)
        assert out["classes"][name]["prm_score"] == pytest.approx(expected), (name, counts)
        assert out["overall"]["prm_score"] == pytest.approx(100 * _ref_score("all", *counts))


def test_no_true_positive_is_clipped_to_zero():
    """F1 = -1 in PRMBench when TP = 0 and both FP and FN are not: PRMScore shows 0."""
    c = Confusion(tp=0, fp=3, tn=5, fn=4)
    assert prm_score(c) == 0.0
    traces = [
        ScoredTrace(
            id=f"deception_{i}",
            problem_id=str(i),
            prompt="q",
            steps=["a", "b", "c"],
            step_scores=scores,
            prm="t",
            labels=[1.0, 0.0, 1.0],
            first_error=1,
            meta={"classification": "deception"},
        )
        for i, scores in enumerate([[0.1, 0.9, 0.2], [0.3, 0.1, 0.4]])
    ]
    out = evaluate_prmbench(traces)
    assert out["classes"]["deception"]["tp"] == 0
    assert out["classes"]["deception"]["prm_score"] == 0.0
    assert out["overall"]["prm_score"] == 0.0
    assert out["groups"]["sensitivity"] == 0.0


def test_multi_solutions_scored_by_f1_alone_by_name():
    """PRMBench's table script picks F1 alone by the class name, even with wrong steps."""
    c = Confusion(tp=3, fp=1, tn=1, fn=1)
    trace = ScoredTrace(
        id="multi_solutions_x",
        problem_id="x",
        prompt="q",
        steps=["a", "b", "c", "d", "e", "f"],
        step_scores=[0.9, 0.9, 0.9, 0.1, 0.9, 0.1],
        prm="t",
        labels=[1.0, 1.0, 1.0, 1.0, 0.0, 0.0],
        first_error=4,
        meta={"classification": "multi_solutions"},
    )
    out = evaluate_prmbench([trace])["classes"]["multi_solutions"]
    assert (out["tp"], out["fp"], out["tn"], out["fn"]) == (c.tp, c.fp, c.tn, c.fn)
    assert out["prm_score"] == pytest.approx(100 * _ref_score("multi_solutions", 3, 1, 1, 1))


def test_correct_class_scores_f1_alone_a_pinned_deviation():
    """PRMBench never reports its ``correct`` class; its formula would give 0.5 * F1 (some step
    predicted wrong) or 0 (none): a PRM that accepts every correct step would score 0. prmkit
    scores the class by its F1 alone, as PRMBench does for ``multi_solutions``."""

    def correct(scores: list[float]) -> ScoredTrace:
        return ScoredTrace(
            id="correct_x",
            problem_id="x",
            prompt="q",
            steps=[f"s{i}" for i in range(len(scores))],
            step_scores=scores,
            prm="t",
            labels=[1.0] * len(scores),
            first_error=-1,
            meta={"classification": "correct"},
        )

    half = evaluate_prmbench([correct([0.9, 0.1])])["classes"]["correct"]
    assert half["prm_score"] == pytest.approx(100 * 2 / 3) == pytest.approx(half["f1"])
    assert 100 * _ref_score("correct", 1, 0, 0, 1) == pytest.approx(100 / 3)  # PRMBench: 0.5 * F1
    perfect = evaluate_prmbench([correct([0.9, 0.9])])
    assert perfect["classes"]["correct"]["prm_score"] == 100.0
    assert _ref_score("correct", 2, 0, 0, 0) == 0.0  # PRMBench's formula: 0.5 * 1 + 0.5 * -1
    assert perfect["overall"]["n_traces"] == 0  # never pooled into overall


def test_default_path_equals_the_official_code_up_to_blank_steps(real_data):
    """Sample everywhere, the full data when present: convert with the defaults, evaluate with
    the defaults, and get PRMBench's numbers exactly once blank steps are left out of both."""
    _, root = real_data
    folder = root / "prmbench"
    items = _items(_rows(folder))
    scores = _random_scores(items, seed=0)
    result = _prmkit(folder, items, scores)
    reference = _reference(items, scores, skip_blank=True)
    assert max(abs(d) for d in _compare(result, reference).values()) < 1e-9
    n_pairs = {name: sum(v[2] == name for v in items.values()) for name in CLASSES}
    for name, r in result["classes"].items():
        if name != "correct":
            assert r["n_traces"] == n_pairs[name], name
    n_blank = sum(not s.strip() for steps, _, _ in items.values() for s in steps)
    assert result["n_blank_steps_unscored"] == n_blank
    assert any("blank" in note for note in result["notes"])


def test_measured_difference_from_the_official_code_on_the_full_data(shared_data, capsys):
    """The one remaining difference, measured: PRMBench scores 15 blank steps that prmkit records
    cannot hold. Seeded uniform random scores; the numbers are quoted in docs/evaluate.md."""
    folder = shared_data / "prmbench"
    items = _items(_rows(folder))
    worst = {}
    for seed in range(3):
        scores = _random_scores(items, seed)
        result = _prmkit(folder, items, scores)
        diffs = _compare(result, _reference(items, scores, skip_blank=False))
        for name, d in diffs.items():
            worst[name] = max(worst.get(name, 0.0), abs(d))
    with capsys.disabled():
        print("\nmax |prmkit - PRMBench| PRMScore points over 3 seeds:")
        for name, d in sorted(worst.items()):
            print(f"  {name:22s} {d:.4f}")
    with_blank = {"deception", "step_contradiction", "confidence"}
    assert all(worst[name] < 1e-9 for name in worst if name not in with_blank | {"overall"})
    assert all(worst[name] < 0.05 for name in with_blank | {"overall"})


def test_cli_default_skips_repeated_pairs_and_says_so(sample_data, tmp_path, capsys):
    """``prmkit convert`` keeps a repeated pair as ``<id>#2``; ``prmkit eval prmbench`` scores
    only the first by default, and ``--repeated-pairs all`` scores both."""
    from prmkit.cli import main
    from prmkit.records import LabeledTrace, read_records, write_records

    converted = tmp_path / "prmbench.jsonl"
    argv = ["convert", "--from", "prmbench", "--to", "prmkit", str(sample_data / "prmbench")]
    assert main([*argv, str(converted)]) == 0
    traces = [
        to_scored(t, [0.9] * len(t.steps), "t") for t in read_records(converted, LabeledTrace)
    ]
    scores = tmp_path / "scored.jsonl"
    write_records(scores, traces)
    out = tmp_path / "r.json"
    assert main(["eval", "prmbench", "--scores", str(scores), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["classes"]["multi_solutions"]["n_traces"] == 1
    assert result["n_repeated_pairs_skipped"] == 1 and result["n_blank_steps_unscored"] == 1
    printed = capsys.readouterr().out
    assert "1 traces repeat an (idx, class) pair" in printed and "1 blank steps" in printed
    argv = ["eval", "prmbench", "--scores", str(scores), "--repeated-pairs", "all"]
    assert main([*argv, "--output", str(out)]) == 0
    assert json.loads(out.read_text())["classes"]["multi_solutions"]["n_traces"] == 2
