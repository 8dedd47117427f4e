"""pass@k and maj@k (tasks.accuracy): the one implementation best-of-N, the policy check and the
demo share."""

from __future__ import annotations

import numpy as np
import pytest

from prmkit.errors import PrmkitError, RecordError
from prmkit.tasks.accuracy import (
    Attempt,
    accuracy_at_k,
    answer_groups,
    maj_at_k,
    pass_at_k,
    vote_accuracy,
)
from prmkit.tasks.answers import VerifyStats


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [(4, 1, 2, 0.5), (4, 0, 3, 0.0), (4, 4, 1, 1.0), (5, 3, 3, 1.0), (10, 3, 1, 0.3)],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, 1, 0), (4, 1, 5), (3, -1, 1)])
def test_pass_at_k_refuses_impossible_counts(n, c, k):
    with pytest.raises(PrmkitError, match="pass@k needs"):
        pass_at_k(n, c, k)


def test_maj_at_k_groups_equivalent_answers_and_skips_missing_ones():
    # "1/2" and "0.5" vote together (2 votes) against "3" (1 vote); None never votes
    assert maj_at_k(["1/2", "3", "0.5", None, None], [True, False, True, False, False]) == 1.0
    assert maj_at_k([None, "", " "], [False, False, False]) == 0.0


def test_maj_at_k_ties_count_fractionally_and_weights_decide():
    assert maj_at_k(["1", "2"], [True, False]) == 0.5
    assert maj_at_k(["1", "2", "3"], [True, False, False]) == pytest.approx(1 / 3)
    assert maj_at_k(["1", "2", "2"], [True, False, False], weights=[0.9, 0.4, 0.4]) == 1.0


def test_answer_groups_refuse_conflicting_correctness_and_count_comparisons():
    stats = VerifyStats()
    ids, correct = answer_groups(["2", None, "2.0", "7"], [True, False, True, False], stats=stats)
    assert (ids, correct) == ([0, -1, 0, 1], [True, False])
    with pytest.raises(RecordError, match="both correct and wrong") as info:
        answer_groups(["2", "2.0"], [True, False], where="problem 'p'")
    assert "problem 'p'" in str(info.value)


def test_vote_accuracy_is_maj_at_k_over_each_subset():
    ids = np.array([[0, 1], [1, 1], [-1, -1]])
    out = vote_accuracy(ids, np.ones(ids.shape), np.array([True, False]))
    assert out.tolist() == [0.5, 0.0, 0.0]


def test_accuracy_at_k_means_over_problems():
    right, wrong = Attempt(True, "3", True), Attempt(False, "4", False)
    # the answer is right but a step is wrong: no pass, but its vote is a right answer
    lucky = Attempt(False, "3", True)
    out = accuracy_at_k([[right, wrong, wrong], [lucky, lucky, wrong], [wrong]])
    assert (out.n_problems, out.k) == (3, 1)
    assert out.pass_at_1 == pytest.approx((1 / 3 + 0 + 0) / 3)
    assert out.pass_at_k == pytest.approx(1 / 3)
    assert out.maj_at_k == pytest.approx(1 / 3)
    with pytest.raises(PrmkitError, match="no problems"):
        accuracy_at_k([])
    with pytest.raises(PrmkitError, match="without samples"):
        accuracy_at_k([[right], []])
