"""Vote groups: which final answers count as the same answer when solutions vote.

Majority and PRM-weighted votes need equal answers to fall in one group even when they are
written differently (``\\frac{1}{2}``, ``0.5`` and ``1/2``). :func:`group_answers` assigns each
answer a group id: answers equal after ``strip()`` share a group at once; any other answer joins
the first earlier group whose representative (its first member) :func:`verify_answer` finds
equivalent, else opens a new group. Groups are numbered in order of first appearance, so a tie
broken by "first group wins" is deterministic.

A missing or blank answer gets ``None``: it belongs to no group, so it never wins a vote (this is
prmkit's rule; search-and-learn lets the empty answer form a group of its own).

Example:
    >>> group_answers(["\\\\frac{1}{2}", "0.5", "3", None, " 3 "])
    [0, 0, 1, None, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

from prmkit.tasks.answers import VerifyStats, verify_answer

__all__ = ["group_answers"]


def group_answers(
    answers: Sequence[str | None], *, timeout_s: int = 5, stats: VerifyStats | None = None
) -> list[int | None]:
    """Group ids of ``answers`` by math equivalence (``None`` for no answer).

    Args:
        answers: Final answers as extracted (bare, e.g. ``"0.5"`` or LaTeX).
        timeout_s: math-verify's timeout per comparison.
        stats: Counters of the comparisons made (undecidable ones count as "different").
    """
    stats = stats if stats is not None else VerifyStats()
    by_text: dict[str, int] = {}
    representatives: list[str] = []
    out: list[int | None] = []
    for answer in answers:
        text = answer.strip() if answer is not None else ""
        if not text:
            out.append(None)
            continue
        group = by_text.get(text)
        if group is None:
            group = next(
                (
                    g
                    for g, rep in enumerate(representatives)
                    if verify_answer(text, rep, timeout_s=timeout_s, lenient=True, stats=stats)
                ),
                None,
            )
            if group is None:
                group = len(representatives)
                representatives.append(text)
            by_text[text] = group
        out.append(group)
    return out
