"""Final-answer selection over N scored solutions: naive, PRM-weighted and majority.

The three rules of search-and-learn's evaluation (``sal/utils/math.py``), over the same list of
candidates (a list may hold one solution more than once; each copy counts):

* ``naive``: the candidate with the highest aggregated PRM score (ties: the earliest);
* ``weighted``: the answer group with the largest sum of scores (ties: the group seen first);
* ``majority``: the answer group with the most members (ties: the group seen first).

Answer groups come from :func:`prmkit.tasks.vote.group_answers` (math-verify equivalence); a
candidate without an answer belongs to no group, so it never wins a vote (it can still be the
naive pick). A group is represented by its first member.

Example:
    >>> s = select_answers(["5", "6", "6", "7", "7", "7"], [0.9, 0.6, 0.6, 0.25, 0.25, 0.25])
    >>> (s.naive, s.weighted, s.majority)
    (0, 1, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prmkit.errors import DataFormatError
from prmkit.tasks.vote import group_answers

__all__ = ["RULES", "Selection", "select_answers"]

RULES = ("naive", "weighted", "majority")
"""The selection rules, in the order tables show them."""


@dataclass(frozen=True)
class Selection:
    """The pick of each rule, as an index into the candidates (-1: no pick).

    Attributes:
        naive: The highest-scoring candidate (-1 only when there are no candidates).
        weighted: The first member of the group with the largest score sum.
        majority: The first member of the largest group.
        weight: The winning group's score sum (0.0 without a pick).
        votes: The winning group's size (0 without a pick).
    """

    naive: int
    weighted: int
    majority: int
    weight: float = 0.0
    votes: int = 0

    def pick(self, rule: str) -> int:
        """The index a rule picked.

        Raises:
            DataFormatError: an unknown rule.
        """
        if rule not in RULES:
            raise DataFormatError(
                "unknown answer-selection rule",
                got=rule,
                expected=f"one of {list(RULES)}",
                fix="pick a listed rule",
            )
        return int(getattr(self, rule))


def select_answers(answers: Sequence[str | None], scores: Sequence[float]) -> Selection:
    """Apply the three rules to candidates with final ``answers`` and aggregated ``scores``.

    Raises:
        DataFormatError: ``answers`` and ``scores`` differ in length.
    """
    if len(answers) != len(scores):
        raise DataFormatError(
            "one score per answer is needed",
            got={"answers": len(answers), "scores": len(scores)},
            expected="equal lengths",
            fix="pass the aggregated score of every candidate",
        )
    if not answers:
        return Selection(-1, -1, -1)
    naive = max(range(len(scores)), key=lambda i: (scores[i], -i))
    groups = group_answers(answers)
    first: dict[int, int] = {}
    weight: dict[int, float] = {}
    votes: dict[int, int] = {}
    for i, g in enumerate(groups):
        if g is None:
            continue
        first.setdefault(g, i)
        weight[g] = weight.get(g, 0.0) + float(scores[i])
        votes[g] = votes.get(g, 0) + 1
    if not first:
        return Selection(naive, -1, -1)
    order = sorted(first)  # groups are numbered in order of first appearance
    best_w = max(order, key=lambda g: (weight[g], -g))
    best_v = max(order, key=lambda g: (votes[g], -g))
    return Selection(naive, first[best_w], first[best_v], weight[best_w], votes[best_v])
