"""pass@k and maj@k: the one implementation, for best-of-N, the policy check and the demo.

- :func:`pass_at_k`: the unbiased estimator of "at least one of k samples is correct" from ``n``
  samples of which ``c`` are correct, ``1 - C(n - c, k) / C(n, k)`` (Chen et al. 2021, *Evaluating
  Large Language Models Trained on Code*). pass@1 is ``c / n``; pass@n is 1 when any is correct.
- :func:`maj_at_k`: the majority vote over final answers. Answers vote together when
  math-verify finds them equivalent (:func:`~prmkit.tasks.vote.group_answers`); a missing or
  blank answer never votes. A tie counts fractionally: the expected correctness under a uniform
  random tie-break (search-and-learn takes the first answer; ``Counter.most_common`` the first
  seen). With ``weights`` it is the weighted vote (e.g. by PRM score).
- :func:`vote_accuracy`: the same vote, vectorised over many subsets of one problem's samples
  (best-of-N draws hundreds), on answer group ids made once by :func:`answer_groups`.
- :func:`accuracy_at_k`: pass@1, pass@k and maj@k averaged over problems, from :class:`Attempt`
  records.

Example:
    >>> pass_at_k(4, 1, 2)  # 1 - C(3, 2) / C(4, 2)
    0.5
    >>> maj_at_k(["12", "12.0", "7", None], [True, True, False, False])
    1.0
    >>> maj_at_k(["1", "2"], [True, False])  # a tie: half right
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from prmkit.errors import PrmkitError, RecordError
from prmkit.tasks.answers import VerifyStats
from prmkit.tasks.vote import group_answers

__all__ = [
    "AccuracyAtK",
    "Attempt",
    "accuracy_at_k",
    "answer_groups",
    "maj_at_k",
    "pass_at_k",
    "vote_accuracy",
]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct: 1 - C(n-c, k) / C(n, k).

    Raises:
        PrmkitError: not ``0 <= c <= n`` and ``1 <= k <= n``.

    Example:
        >>> round(pass_at_k(10, 3, 1), 6), pass_at_k(5, 3, 3)
        (0.3, 1.0)
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise PrmkitError(
            "pass@k needs 0 <= c <= n and 1 <= k <= n",
            got={"n": n, "c": c, "k": k},
            expected="c correct of n samples, k of them drawn",
            fix="lower k to at most the number of samples",
        )
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def answer_groups(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    *,
    timeout_s: int = 5,
    stats: VerifyStats | None = None,
    where: str | None = None,
) -> tuple[list[int], list[bool]]:
    """Vote groups of one problem's answers and whether each group's answer is correct.

    Args:
        answers: Final answers (``None`` or blank: no answer).
        correct: Whether each answer is correct, aligned with ``answers``.
        timeout_s: math-verify's timeout per answer comparison.
        stats: Counts the comparisons (undecidable ones count as different answers).
        where: Names the problem in an error.

    Returns:
        ``(ids, group_correct)``: each answer's group (an index into ``group_correct``; -1 = no
        answer), groups numbered in order of first appearance.

    Raises:
        RecordError: equivalent answers are marked both correct and wrong.

    Example:
        >>> answer_groups(["1/2", "0.5", None, "3"], [True, True, False, False])
        ([0, 0, -1, 1], [True, False])
    """
    groups = group_answers(answers, timeout_s=timeout_s, stats=stats)
    ids = [-1 if g is None else g for g in groups]
    group_correct: list[bool] = []
    first: list[str | None] = []
    for answer, g, ok in zip(answers, ids, correct, strict=True):
        if g < 0:
            continue
        if g == len(group_correct):
            group_correct.append(bool(ok))
            first.append(answer)
        elif group_correct[g] != ok:
            raise RecordError(
                "equivalent answers are marked both correct and wrong",
                got=[first[g], answer],
                expected="one correctness per group of equivalent answers",
                fix="check every answer with the same checker (prmkit check)",
                where=where,
            )
    return ids, group_correct


def vote_accuracy(
    answer_ids: np.ndarray, weights: np.ndarray, group_correct: np.ndarray
) -> np.ndarray:
    """The expected correctness of the (weighted) vote in each of ``S`` sets of ``k`` samples.

    Args:
        answer_ids: (S, k) answer group ids from :func:`answer_groups` (-1 = no answer: no vote).
        weights: (S, k) each sample's vote (ones for a plain majority).
        group_correct: (G,) whether each group's answer is correct.

    Returns:
        (S,) the share of the winning groups (largest total weight, ties shared) whose answer is
        correct; 0 for a set where no sample has an answer.
    """
    n_sets, k = answer_ids.shape
    n_groups = len(group_correct)
    if n_groups == 0:
        return np.zeros(n_sets)
    rows = np.repeat(np.arange(n_sets), k)
    cols = answer_ids.ravel()
    keep = cols >= 0
    totals = np.zeros((n_sets, n_groups))  # (S, G) summed weight per group
    present = np.zeros((n_sets, n_groups), dtype=bool)
    np.add.at(totals, (rows[keep], cols[keep]), weights.ravel()[keep])
    present[rows[keep], cols[keep]] = True
    best = np.where(present, totals, -np.inf).max(axis=1, keepdims=True)
    winners = present & (totals == best)
    n_win = winners.sum(axis=1)
    hits = (winners & np.asarray(group_correct, dtype=bool)[None, :]).sum(axis=1)
    return np.where(n_win > 0, hits / np.maximum(n_win, 1), 0.0)


def maj_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    *,
    weights: Sequence[float] | None = None,
    timeout_s: int = 5,
    stats: VerifyStats | None = None,
) -> float:
    """maj@k over all the given samples: the expected correctness of the majority answer.

    Args:
        answers: The k samples' final answers (``None`` or blank: no vote).
        correct: Whether each sample's answer is correct.
        weights: Each sample's vote (default 1 each; a PRM score makes it the weighted vote).
        timeout_s: math-verify's timeout per answer comparison.
        stats: Counts the comparisons.

    Raises:
        RecordError: equivalent answers are marked both correct and wrong.

    Example:
        >>> maj_at_k(["A", "B", "B"], [True, False, False], weights=[0.9, 0.3, 0.4])
        1.0
    """
    ids, group_correct = answer_groups(answers, correct, timeout_s=timeout_s, stats=stats)
    w = np.ones(len(ids)) if weights is None else np.asarray(weights, dtype=float)
    return float(vote_accuracy(np.array([ids]), w[None, :], np.array(group_correct))[0])


@dataclass(frozen=True)
class Attempt:
    """One sampled solution as the accuracy metrics see it.

    Attributes:
        correct: The solution is correct (counts for pass@k; e.g. every step and the answer).
        answer: Its final answer (votes for maj@k; ``None``: no vote).
        answer_correct: Whether that answer is the right one.
    """

    correct: bool
    answer: str | None
    answer_correct: bool


@dataclass(frozen=True)
class AccuracyAtK:
    """Means over problems (fractions in [0, 1]) of :func:`accuracy_at_k`.

    Attributes:
        n_problems: Problems averaged.
        k: Samples per problem (the fewest any problem has).
        pass_at_1: Mean share of correct samples.
        pass_at_k: Share of problems with a correct sample among all of theirs.
        maj_at_k: Mean maj@k over all of each problem's samples.
    """

    n_problems: int
    k: int
    pass_at_1: float
    pass_at_k: float
    maj_at_k: float


def accuracy_at_k(
    problems: Iterable[Sequence[Attempt]],
    *,
    timeout_s: int = 5,
    stats: VerifyStats | None = None,
) -> AccuracyAtK:
    """pass@1, pass@k and maj@k averaged over problems, each over all of a problem's samples.

    Args:
        problems: Each problem's sampled solutions (at least one each).
        timeout_s: math-verify's timeout per answer comparison.
        stats: Counts the comparisons.

    Raises:
        PrmkitError: no problems, or a problem without samples.
        RecordError: equivalent answers of one problem marked both correct and wrong.

    Example:
        >>> right, wrong = Attempt(True, "3", True), Attempt(False, "4", False)
        >>> acc = accuracy_at_k([[right, wrong, wrong], [wrong]])
        >>> round(acc.pass_at_1, 4), acc.pass_at_k, acc.maj_at_k
        (0.1667, 0.5, 0.0)
    """
    pass1 = passk = maj = 0.0
    sizes = []
    for i, attempts in enumerate(problems):
        if not attempts:
            raise PrmkitError(
                "a problem without samples",
                got=f"problem {i}",
                expected="at least one sampled solution per problem",
                fix="leave problems without samples out",
            )
        n, c = len(attempts), sum(a.correct for a in attempts)
        sizes.append(n)
        pass1 += pass_at_k(n, c, 1)
        passk += pass_at_k(n, c, n)
        maj += maj_at_k(
            [a.answer for a in attempts],
            [a.answer_correct for a in attempts],
            timeout_s=timeout_s,
            stats=stats,
        )
    if not sizes:
        raise PrmkitError(
            "no problems",
            expected="the sampled solutions of at least one problem",
            fix="sample some problems first",
        )
    m = len(sizes)
    return AccuracyAtK(m, min(sizes), pass1 / m, passk / m, maj / m)
