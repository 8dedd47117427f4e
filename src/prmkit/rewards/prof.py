"""PROF: process-consistency filtering of a prompt's sampled responses before the RL update.

PROF (Ye et al. 2025, "Beyond Correctness: Harmonizing Process and Outcome Rewards through RL
Training", arXiv 2509.03403; reference code ``amazon-science/PROF-GRPO`` at commit
``8164ec2``, ``prof_grpo/prof_grpo_both/prof_ray_trainer.py``: ``compute_verify_step_level_score``
and ``filter_trajectories``) samples more responses per prompt than it trains on and removes the
ones whose process score disagrees most with their outcome:

1. Consistency of each response: ``2 * mean_k (v_k - mu) * (2 * outcome - 1)``, with ``v_k`` the
   PRM's step scores and ``mu`` the mean of all step scores of the batch (0 for a response
   without steps). High for a correct response the PRM likes and for a wrong one it dislikes.
   An optional length penalty subtracts ``length_penalty`` when the step count is below
   ``min_steps`` or above ``max_steps`` (the reference's ``len_step_reward_coef``, 2 and 30).
2. Per group, ``n_remove`` responses go: ``n_pos = min(n_remove, round((n_correct -
   n_wrong + n_remove) / 2))`` of the correct ones with the lowest consistency, the rest of the
   wrong ones with the lowest consistency (the highest PRM scores), so the kept group is as
   balanced between correct and wrong as ``n_remove`` allows. ``mode="correct"`` (the paper's
   PROF-GRPO (Correct), ``prof_grpo_correct``) removes the wrong ones at random instead.

Deliberate differences from the reference, each pinned by a test (tests/unit/test_rewards_prof.py):

* Outcome labels must be 0 or 1; the reference silently drops responses with any other reward
  from a filtered group. Here that is a :class:`~prmkit.errors.DataFormatError`.
* Kept indices come back in input order; the reference lists the kept correct responses, then
  the kept wrong ones, sorted by consistency when some were removed.
* Trimming the kept batch to a multiple of the GPU count (the reference's trainer does it after
  filtering) is left to the caller.
* Ties in consistency are broken by input order (Python's stable sort, as the reference's).

Example:
    >>> prof_select([1, 1, 0, 0, 1, 0], [[0.9], [0.2], [0.8], [0.1], [0.7], [0.4]], n_remove=2)
    [0, 3, 4, 5]
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

from prmkit.errors import ConfigError, DataFormatError

__all__ = ["MODES", "consistency_scores", "prof_filter", "prof_select"]

MODES: tuple[str, ...] = ("both", "correct")


def _check(outcomes: Sequence[float], step_scores: Sequence[Sequence[float]]) -> list[int]:
    if len(outcomes) != len(step_scores):
        raise DataFormatError(
            "outcomes and step scores differ in number",
            got=(len(outcomes), len(step_scores)),
            expected="one outcome and one list of step scores per response",
            fix="pass them for the same responses, in the same order",
        )
    labels = []
    for i, o in enumerate(outcomes):
        if isinstance(o, bool) or o in (0, 1):
            labels.append(int(o))
            continue
        raise DataFormatError(
            "an outcome label is not 0 or 1",
            got=o,
            expected="1 = correct, 0 = wrong",
            fix="binarise the verifier's reward before filtering",
            where=f"response {i}",
        )
    return labels


def consistency_scores(
    outcomes: Sequence[float],
    step_scores: Sequence[Sequence[float]],
    *,
    center: float | None = None,
) -> list[float]:
    """PROF's PRM-outcome consistency of each response (module docstring, step 1).

    Args:
        outcomes: 1 (correct) or 0 (wrong) per response.
        step_scores: The PRM's step scores of each response.
        center: ``mu``; default: the mean of all the step scores given (the reference takes
            the batch's). Within one group and outcome, ``mu`` shifts every score alike, so it
            never changes which responses are removed.

    Raises:
        DataFormatError: lengths differ or a label is not 0/1.
    """
    labels = _check(outcomes, step_scores)
    if center is None:
        flat = [float(v) for s in step_scores for v in s]
        center = sum(flat) / len(flat) if flat else 0.0
    out = []
    for o, s in zip(labels, step_scores, strict=True):
        if not s:
            out.append(0.0)
            continue
        mean = sum(2.0 * (float(v) - center) for v in s) / len(s)
        out.append(mean * (2 * o - 1))
    return out


def _critic(
    scores: Sequence[float],
    step_scores: Sequence[Sequence[float]],
    length_penalty: float,
    min_steps: int,
    max_steps: int,
) -> list[float]:
    return [
        c - length_penalty * float(len(s) < min_steps or len(s) > max_steps)
        for c, s in zip(scores, step_scores, strict=True)
    ]


def _select_group(
    labels: Sequence[int],
    critic: Sequence[float],
    n_remove: int,
    mode: str,
    rng: random.Random,
) -> list[int]:
    """Kept positions of one group, in input order."""
    n = len(labels)
    n_remove = min(n_remove, n)
    if n_remove <= 0:
        return list(range(n))
    pos = sorted((i for i in range(n) if labels[i] == 1), key=lambda i: critic[i])
    neg = sorted((i for i in range(n) if labels[i] == 0), key=lambda i: critic[i])
    n_pos = min(n_remove, round((len(pos) - len(neg) + n_remove) / 2))
    removed_pos = pos[: max(min(n_pos, len(pos)), 0)]
    n_neg = min(n_remove - len(removed_pos), len(neg))
    if mode == "correct":
        removed_neg = rng.sample([i for i in range(n) if labels[i] == 0], k=n_neg)
    else:
        removed_neg = neg[:n_neg]
    removed = set(removed_pos) | set(removed_neg)
    return [i for i in range(n) if i not in removed]


def _check_settings(n_remove: int, mode: str) -> None:
    if isinstance(n_remove, bool) or not isinstance(n_remove, int) or n_remove < 0:
        raise ConfigError(
            "n_remove must be a whole number >= 0",
            got=n_remove,
            expected="responses to remove from each group (the reference's prof_filter)",
            fix="e.g. sample 12 per prompt and pass n_remove=4 to train on 8",
        )
    if mode not in MODES:
        raise ConfigError(
            "unknown PROF mode",
            got=mode,
            expected=f"one of {list(MODES)}",
            fix="'both' (filter correct and wrong by consistency) or 'correct'",
        )


def prof_select(
    outcomes: Sequence[float],
    step_scores: Sequence[Sequence[float]],
    n_remove: int,
    *,
    mode: str = "both",
    center: float | None = None,
    length_penalty: float = 0.0,
    min_steps: int = 2,
    max_steps: int = 30,
    rng: random.Random | None = None,
) -> list[int]:
    """The indices of one group's responses PROF keeps, in input order.

    Args:
        outcomes: 1 (correct) or 0 (wrong) per response of the group.
        step_scores: The PRM's step scores of each response.
        n_remove: How many responses to remove (at most the group's size).
        mode: ``both`` (PROF-GRPO) or ``correct`` (wrong responses removed at random).
        center: ``mu`` of :func:`consistency_scores`; default: this group's mean step score
            (no effect on the selection).
        length_penalty: Subtracted from the consistency of a response with fewer than
            ``min_steps`` or more than ``max_steps`` steps (the reference's runs use 10.0).
        rng: Random source of ``mode="correct"`` (default: a fresh ``random.Random(0)``).

    Raises:
        ConfigError: bad ``n_remove`` or ``mode``.
        DataFormatError: lengths differ or a label is not 0/1.
    """
    _check_settings(n_remove, mode)
    labels = _check(outcomes, step_scores)
    critic = _critic(
        consistency_scores(labels, step_scores, center=center),
        step_scores,
        length_penalty,
        min_steps,
        max_steps,
    )
    return _select_group(labels, critic, n_remove, mode, rng or random.Random(0))


def prof_filter(
    group_ids: Sequence[Hashable],
    outcomes: Sequence[float],
    step_scores: Sequence[Sequence[float]],
    n_remove: int,
    *,
    mode: str = "both",
    length_penalty: float = 0.0,
    min_steps: int = 2,
    max_steps: int = 30,
    rng: random.Random | None = None,
) -> list[int]:
    """The indices PROF keeps in a batch of groups (``group_ids``: the prompt of each response).

    Consistency is centred on the whole batch's mean step score, as in the reference;
    ``n_remove`` responses are removed from every group (:func:`prof_select`). Returns indices
    into the batch in input order.

    Example:
        >>> prof_filter(["a", "a", "b", "b"], [1, 0, 1, 1], [[0.9], [0.8], [0.3], [0.6]], 1)
        [0, 3]
    """
    _check_settings(n_remove, mode)
    if len(group_ids) != len(outcomes):
        raise DataFormatError(
            "group ids and outcomes differ in number",
            got=(len(group_ids), len(outcomes)),
            expected="one group id per response",
            fix="pass the prompt id (veRL's uid) of every response",
        )
    labels = _check(outcomes, step_scores)
    critic = _critic(
        consistency_scores(labels, step_scores), step_scores, length_penalty, min_steps, max_steps
    )
    groups: dict[Hashable, list[int]] = {}
    for i, g in enumerate(group_ids):
        groups.setdefault(g, []).append(i)
    rng = rng or random.Random(0)
    kept: list[int] = []
    for members in groups.values():
        keep = _select_group(
            [labels[i] for i in members], [critic[i] for i in members], n_remove, mode, rng
        )
        kept.extend(members[k] for k in keep)
    return sorted(kept)
