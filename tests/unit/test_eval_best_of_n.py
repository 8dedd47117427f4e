"""Best-of-N: exact enumeration by hand, fractional ties, sampling vs exact, bootstrap, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prmkit.errors import PrmkitError, RecordError
from prmkit.evaluate.best_of_n import best_of_n, evaluate_best_of_n, group_problems
from prmkit.records import ScoredTrace, write_records


def _sol(pid, j, answer, correct, scores, **kw):
    return ScoredTrace(
        id=f"{pid}/{j}",
        problem_id=pid,
        prompt="q",
        steps=[f"s{i}" for i in range(len(scores))],
        step_scores=scores,
        prm="t",
        answer=answer,
        meta={"correct": correct},
        **kw,
    )


def _curve(out, method):
    return {row["n"]: row["mean"] for row in out["curves"][method]}


def test_hand_enumerated_problem():
    # A is right (score .9); B is wrong twice (.5, .6)
    sols = [
        _sol("p", 0, "A", True, [0.95, 0.9]),
        _sol("p", 1, "B", False, [0.5]),
        _sol("p", 2, " B ", False, [0.7, 0.6]),
    ]
    out = best_of_n(group_problems(sols), n_bootstrap=50)
    assert out["ns"] == [1, 2, 3]
    for method in out["curves"]:
        assert _curve(out, method)[1] == pytest.approx(100 / 3), method
    assert _curve(out, "majority") == pytest.approx({1: 100 / 3, 2: 100 / 3, 3: 0.0})
    assert _curve(out, "prm_min") == pytest.approx({1: 100 / 3, 2: 200 / 3, 3: 100.0})
    # weighted by min: {A,B}: .9 > .5/.6 -> A; {B,B}: B; all three: B has 1.1 > .9
    assert _curve(out, "weighted_min") == pytest.approx({1: 100 / 3, 2: 200 / 3, 3: 0.0})
    # weighted by last (= min here except sol 0: .9): same; by mean: A .925 vs B .5 + .65
    assert _curve(out, "weighted_mean")[3] == 0.0
    assert _curve(out, "pass") == pytest.approx({1: 100 / 3, 2: 200 / 3, 3: 100.0})
    assert out["pass@1"]["mean"] == pytest.approx(100 / 3)
    assert all(row["exact"] for rows in out["curves"].values() for row in rows)


def test_ties_count_fractionally():
    sols = [_sol("p", 0, "1", True, [0.5]), _sol("p", 1, "2", False, [0.5])]
    out = best_of_n(group_problems(sols), n_bootstrap=10)
    assert _curve(out, "prm_min")[2] == pytest.approx(50.0)
    assert _curve(out, "majority")[2] == pytest.approx(50.0)


def test_missing_answers_never_win_a_vote():
    sols = [
        _sol("p", 0, None, False, [0.99]),
        _sol("p", 1, None, False, [0.98]),
        _sol("p", 2, "7", True, [0.1]),
    ]
    out = best_of_n(group_problems(sols), n_bootstrap=10)
    assert _curve(out, "majority")[3] == 100.0
    assert _curve(out, "prm_min")[3] == 0.0  # the PRM picks an answerless solution
    only_none = [_sol("q", 0, None, False, [0.5]), _sol("q", 1, "", False, [0.5])]
    out = best_of_n(group_problems(only_none), n_bootstrap=10)
    assert _curve(out, "majority")[2] == 0.0


def _random_problem(rng, pid, n):
    answers = rng.integers(0, 4, size=n)
    return [
        _sol(pid, j, str(a), bool(a == 0), [float(x) for x in rng.random(3)])
        for j, a in enumerate(answers)
    ]


def test_sampled_subsets_agree_with_full_enumeration():
    rng = np.random.default_rng(1)
    sols = _random_problem(rng, "p", 14)
    problems = group_problems(sols)
    k = 6  # C(14, 6) = 3003 subsets
    sampled = best_of_n(problems, ns=[k], n_subsets=1500, n_bootstrap=10, seed=3)
    exact = best_of_n(problems, ns=[k], n_subsets=5000, n_bootstrap=10)
    assert exact["curves"]["majority"][0]["exact"] and not sampled["curves"]["majority"][0]["exact"]
    for method in ("majority", "prm_min", "weighted_prod"):
        assert sampled["curves"][method][0]["mean"] == pytest.approx(
            exact["curves"][method][0]["mean"], abs=3.0
        )
    # exact prm_min by brute force
    p = problems[0]
    vals = []
    for subset in itertools.combinations(range(14), k):
        s = p.scores["min"][list(subset)]
        tied = s == s.max()
        vals.append(p.correct[list(subset)][tied].mean())
    assert exact["curves"]["prm_min"][0]["mean"] == pytest.approx(100 * np.mean(vals))


def test_bootstrap_interval_and_default_ns():
    rng = np.random.default_rng(0)
    sols = [s for i in range(30) for s in _random_problem(rng, f"p{i}", 6)]
    out = best_of_n(group_problems(sols), n_subsets=30, n_bootstrap=300, seed=0)
    assert out["ns"] == [1, 2, 4, 6] and out["n_problems"] == 30
    for rows in out["curves"].values():
        for row in rows:
            assert row["ci"][0] <= row["mean"] <= row["ci"][1]
    lo, hi = out["pass@1"]["ci"]
    assert lo < out["pass@1"]["mean"] < hi
    same = [
        s
        for i in range(5)
        for s in [_sol(f"q{i}", 0, "1", True, [0.9]), _sol(f"q{i}", 1, "2", False, [0.1])]
    ]
    flat = best_of_n(group_problems(same), n_bootstrap=50)
    assert flat["curves"]["prm_min"][1]["ci"] == [100.0, 100.0]


def test_uneven_counts_use_the_smallest_as_n_max():
    sols = [_sol("a", j, "1", True, [0.5]) for j in range(4)] + [
        _sol("b", j, "1", True, [0.5]) for j in range(3)
    ]
    out = best_of_n(group_problems(sols), n_bootstrap=10)
    assert out["ns"] == [1, 2, 3] and out["notes"]
    with pytest.raises(PrmkitError, match="N out of range"):
        best_of_n(group_problems(sols), ns=[4])


def test_input_errors():
    with pytest.raises(RecordError, match="both correct and wrong"):
        group_problems([_sol("p", 0, "5", True, [0.5]), _sol("p", 1, "5", False, [0.5])])
    no_flag = _sol("p", 0, "5", True, [0.5])
    no_flag.meta = {}
    with pytest.raises(RecordError, match="not a bool"):
        group_problems([no_flag])
    with pytest.raises(PrmkitError, match="negative"):
        best_of_n(group_problems([_sol("p", 0, "5", True, [-0.5])]))


def test_correctness_from_labels_and_file_round_trip(tmp_path):
    sols = [
        _sol("p", 0, "1", True, [0.9], labels=[1.0], first_error=-1),
        _sol("p", 1, "2", True, [0.2], labels=[0.0], first_error=0),
    ]
    for s in sols:
        s.meta = {}
    path = tmp_path / "s.jsonl"
    write_records(path, sols)
    out = evaluate_best_of_n(path, correct_from="labels", n_bootstrap=10)
    assert out["pass@1"]["mean"] == 50.0
    assert _curve(out, "prm_min")[2] == 100.0
    from_records = evaluate_best_of_n(sols, correct_from="labels", n_bootstrap=10)
    assert from_records["curves"] == out["curves"]


def test_equivalent_answers_vote_together():
    """search-and-learn groups answers by a canonical form; prmkit by math-verify equivalence.
    Keyed by ``answer.strip()``, the three ways of writing 1/2 split and 3 won the vote."""
    sols = [
        _sol("p", 0, "\\frac{1}{2}", True, [0.3]),
        _sol("p", 1, "0.5", True, [0.3]),
        _sol("p", 2, "1/2", True, [0.3]),
        _sol("p", 3, "3", False, [0.4]),
        _sol("p", 4, " 3", False, [0.4]),
    ]
    (problem,) = group_problems(sols)
    assert problem.answer_ids.tolist() == [0, 0, 0, 1, 1]
    out = best_of_n([problem], ns=[5], n_bootstrap=10)
    assert _curve(out, "majority")[5] == 100.0  # 3 votes against 2
    assert _curve(out, "weighted_min")[5] == 100.0  # 0.9 against 0.8
    assert _curve(out, "prm_min")[5] == 0.0  # the single best solution says 3


def test_equivalent_answers_marked_both_correct_and_wrong_are_refused():
    with pytest.raises(RecordError, match="both correct and wrong"):
        group_problems(
            [_sol("p", 0, "\\frac{1}{2}", True, [0.5]), _sol("p", 1, "0.5", False, [0.5])]
        )


def test_answers_are_grouped_once_per_problem(monkeypatch):
    """The vote groups come from one group_answers call per problem, never per subset or N."""
    import prmkit.tasks.accuracy as accuracy

    calls = []

    def counting(answers, **kwargs):
        calls.append(list(answers))
        return bon_group(answers, **kwargs)

    bon_group = accuracy.group_answers
    monkeypatch.setattr(accuracy, "group_answers", counting)
    rng = np.random.default_rng(2)
    sols = [s for i in range(3) for s in _random_problem(rng, f"p{i}", 6)]
    best_of_n(group_problems(sols), n_subsets=5, n_bootstrap=10)
    assert len(calls) == 3 and all(len(a) == 6 for a in calls)


def test_vote_ties_split_evenly_where_search_and_learn_takes_the_first():
    """An exact tie of weighted sums (0.25 + 0.5 = 0.75 both ways) counts 1/2; search-and-learn
    returns the first-inserted answer."""
    sols = [
        _sol("p", 0, "1", True, [0.25]),
        _sol("p", 1, "2", False, [0.75]),
        _sol("p", 2, "1", True, [0.5]),
    ]
    out = best_of_n(group_problems(sols), ns=[3], n_bootstrap=10)
    assert _curve(out, "weighted_min")[3] == pytest.approx(50.0)


def test_run_reports_answer_grouping(tmp_path):
    sols = [_sol("p", 0, "\\frac{1}{2}", True, [0.5]), _sol("p", 1, "0.5", True, [0.5])]
    path = tmp_path / "s.jsonl"
    write_records(path, sols)
    out = evaluate_best_of_n(path, n_bootstrap=10)
    grouping = out["answer_grouping"]
    assert grouping["groups"] == 1 and grouping["answers"] == 2 and grouping["failures"] == 0
    assert grouping["comparisons"] >= 1


def test_difference_from_majority_is_paired():
    """The PRM's pick minus the majority vote, with its own (paired) bootstrap interval."""
    import numpy as np

    from prmkit.evaluate.best_of_n import ProblemSamples, best_of_n

    problems = []
    for i in range(40):
        # two answers, one vote each: majority is a tie (0.5 when one is right); the PRM picks
        # the first solution, right on odd problems
        right = bool(i % 2)
        problems.append(
            ProblemSamples(
                id=f"p{i}",
                correct=np.array([right, False]),
                answer_ids=np.array([0, 1]),
                answer_correct=np.array([right, False]),
                scores={agg: np.array([0.9, 0.1]) for agg in ("min", "prod", "last", "mean")},
            )
        )
    result = best_of_n(problems, ns=[2], n_bootstrap=200)
    assert result["curves"]["majority"][0]["mean"] == pytest.approx(25.0)
    diff = result["vs_majority"]["prm_min"][0]
    assert diff["mean"] == pytest.approx(25.0)
    assert 0 < diff["ci"][0] < 25 < diff["ci"][1] and diff["significant"]
