"""prmkit.rewards.prof: PROF's process-consistency filter, against a port of the reference code.

The oracle below is the reference's selection (amazon-science/PROF-GRPO at commit 8164ec2,
prof_grpo/prof_grpo_both/prof_ray_trainer.py: compute_verify_step_level_score and
filter_trajectories), rewritten over plain lists: same arithmetic, same sorts, same rounding.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from prmkit.errors import ConfigError, DataFormatError
from prmkit.rewards.prof import consistency_scores, prof_filter, prof_select


def reference_scores(step_scores, outcomes):
    """compute_verify_step_level_score: 2 * mean(v - batch mean) * (2 * gt - 1); 0 if no step."""
    flat = [v for s in step_scores for v in s]
    mu = sum(flat) / len(flat)
    out = []
    for s, gt in zip(step_scores, outcomes, strict=True):
        out.append(0.0 if not s else sum((v - mu) * 2 * (2 * gt - 1) for v in s) / len(s))
    return out, [len(s) for s in step_scores]


def reference_filter(uids, scores_ic, len_segs, seq_reward, prof_filter_n, coef):
    """filter_trajectories (reward model enabled), verbatim logic over lists."""
    groups = defaultdict(list)
    for idx, (uid, prm_val, len_seg, gt) in enumerate(
        zip(uids, scores_ic, len_segs, seq_reward, strict=True)
    ):
        prm_critic = prm_val - coef * ((len_seg < 2) or (len_seg > 30))
        groups[uid].append((idx, prm_critic, gt))
    kept = []
    for items in groups.values():
        n_remove = min(prof_filter_n, len(items))
        if n_remove <= 0:
            kept.extend(i[0] for i in items)
            continue
        pos = [i for i in items if i[2] == 1]
        neg = [i for i in items if i[2] == 0]
        delta = len(pos) - len(neg)
        n_pos_to_remove = min(n_remove, round((delta + n_remove) / 2))
        kept_pos, kept_neg = list(pos), list(neg)
        if n_pos_to_remove > 0:
            pos.sort(key=lambda x: x[1])
            num_pos = min(n_pos_to_remove, len(pos))
            removed = {i[0] for i in pos[:num_pos]}
            kept_pos = [i for i in pos if i[0] not in removed]
            n_neg = n_remove - num_pos
            if n_neg > 0 and len(neg) > 0:
                neg.sort(key=lambda x: x[1])
                removed = {i[0] for i in neg[: min(n_neg, len(neg))]}
                kept_neg = [i for i in neg if i[0] not in removed]
        elif len(neg) > 0:
            neg.sort(key=lambda x: x[1])
            removed = {i[0] for i in neg[: min(n_remove, len(neg))]}
            kept_neg = [i for i in neg if i[0] not in removed]
        kept.extend(i[0] for i in kept_pos + kept_neg)
    return kept


def random_batch(rng: random.Random):
    n_groups, size = rng.randint(1, 4), rng.choice([4, 6, 8, 12, 16])
    uids = [g for g in range(n_groups) for _ in range(size)]
    outcomes = [rng.randint(0, 1) for _ in uids]
    steps = [[round(rng.random(), 3) for _ in range(rng.choice([0, 1, 2, 3, 5, 31]))] for _ in uids]
    steps[0] = steps[0] or [0.5]  # the batch has at least one step
    return uids, outcomes, steps, rng.randint(0, size), rng.choice([0.0, 10.0])


def test_the_selection_equals_the_reference_on_random_batches():
    rng = random.Random(0)
    for _ in range(400):
        uids, outcomes, steps, n_remove, coef = random_batch(rng)
        scores, lens = reference_scores(steps, outcomes)
        want = reference_filter(uids, scores, lens, outcomes, n_remove, coef)
        got = prof_filter(uids, outcomes, steps, n_remove, length_penalty=coef)
        assert got == sorted(want)  # the same responses; ours in input order (deliberate)
        assert consistency_scores(outcomes, steps) == pytest.approx(scores)


def test_consistency_is_high_for_agreement_and_its_centre_never_changes_the_choice():
    outcomes, steps = [1, 1, 0, 0], [[0.9, 0.8], [0.1], [0.2], [0.95]]
    scores = consistency_scores(outcomes, steps, center=0.5)
    assert scores == pytest.approx([2 * 0.35, 2 * -0.4, -2 * -0.3, -2 * 0.45])
    for center in (None, 0.0, 0.5, 3.0):
        assert prof_select(outcomes, steps, 2, center=center) == [0, 2]


def test_removal_balances_correct_and_wrong():
    # 6 correct, 2 wrong, remove 4: round((4 + 4) / 2) = 4 correct go, the lowest-scored ones
    outcomes = [1, 1, 1, 1, 1, 1, 0, 0]
    steps = [[0.9], [0.1], [0.8], [0.2], [0.7], [0.3], [0.6], [0.4]]
    assert prof_select(outcomes, steps, 4) == [0, 2, 6, 7]
    # all wrong: the ones the PRM likes most go
    assert prof_select([0, 0, 0, 0], [[0.9], [0.1], [0.8], [0.2]], 2) == [1, 3]
    # nothing to remove, or more than the group: everything / nothing stays
    assert prof_select([1, 0], [[0.5], [0.5]], 0) == [0, 1]
    assert prof_select([1, 0], [[0.5], [0.5]], 5) == []


def test_python_rounding_of_half_is_kept():
    """round(0.5) == 0 in Python (and in the reference): 1 correct, 1 wrong, remove 1 -> the
    wrong one goes; round(1.5) == 2 -> with 2 correct, 1 wrong, remove 2, both correct go."""
    assert prof_select([1, 0], [[0.1], [0.2]], 1) == [0]
    assert prof_select([1, 1, 0], [[0.1], [0.2], [0.3]], 2) == [2]


def test_length_penalty_removes_too_short_or_too_long_processes_first():
    outcomes = [1, 1, 1, 1]
    steps = [[0.9], [0.5, 0.5], [0.6, 0.6], [0.7] * 31]
    assert prof_select(outcomes, steps, 2) == [0, 3]
    assert prof_select(outcomes, steps, 2, length_penalty=10.0) == [1, 2]


def test_mode_correct_removes_wrong_responses_at_random_with_the_given_rng():
    outcomes = [1, 1, 0, 0, 0, 0]
    steps = [[0.9], [0.1], [0.1], [0.2], [0.3], [0.4]]
    picks = {
        tuple(prof_select(outcomes, steps, 2, mode="correct", rng=random.Random(s)))
        for s in range(20)
    }
    assert all(0 in p and 1 in p for p in picks)  # round((-2 + 2) / 2) = 0: no correct removed
    assert len(picks) > 1  # the wrong ones go at random, not by PRM score
    assert prof_select(outcomes, steps, 2, mode="correct", rng=random.Random(3)) == prof_select(
        outcomes, steps, 2, mode="correct", rng=random.Random(3)
    )


def test_deliberate_differences_from_the_reference_are_pinned():
    # the reference drops a response whose reward is neither 0 nor 1 from a filtered group
    outcomes, steps, uids = [1, 0.5, 0], [[0.9], [0.5], [0.1]], ["a", "a", "a"]
    scores, lens = reference_scores(steps, [1, 0.5, 0])
    assert reference_filter(uids, scores, lens, outcomes, 1, 0.0) == [0]  # 1 removed, 1 dropped
    with pytest.raises(DataFormatError, match="not 0 or 1"):
        prof_filter(uids, outcomes, steps, 1)
    # the reference lists kept correct, then kept wrong (sorted by consistency); we keep order
    outcomes, steps, uids = [0, 1, 0, 1], [[0.1], [0.9], [0.2], [0.8]], ["a"] * 4
    scores, lens = reference_scores(steps, outcomes)
    assert reference_filter(uids, scores, lens, outcomes, 0, 0.0) == [0, 1, 2, 3]
    assert reference_filter(uids, scores, lens, outcomes, 2, 0.0) == [1, 0]
    assert prof_filter(uids, outcomes, steps, 2) == [0, 1]


def test_errors():
    with pytest.raises(DataFormatError, match="differ in number"):
        prof_select([1, 0], [[0.5]], 1)
    with pytest.raises(DataFormatError, match="group ids and outcomes"):
        prof_filter(["a"], [1, 0], [[0.5], [0.5]], 1)
    with pytest.raises(ConfigError, match="n_remove"):
        prof_select([1], [[0.5]], -1)
    with pytest.raises(ConfigError, match="unknown PROF mode"):
        prof_select([1], [[0.5]], 1, mode="incorrect")
    assert consistency_scores([1, 0], [[], []]) == [0.0, 0.0]
