"""Synthetic slips: each slipped solution is wrong where the slip is, right before it, carries
the wrong value after it, and is labelled by the exact checker."""

from __future__ import annotations

import random

import pytest

from prmkit.errors import ConfigError
from prmkit.tasks.arithmetic import generate, gold_solution
from prmkit.tasks.arithmetic_slips import SlipConfig, slip_solution, slip_traces


@pytest.mark.parametrize("kind", ["result", "operand", "operation", "skip"])
def test_a_slip_is_the_first_error_and_the_answer_is_carried(kind):
    problems = generate(30, seed=3, n_steps=4)
    made = 0
    for p in problems:
        rng = random.Random(0)
        steps = slip_solution(p, rng, kind, at=1)
        if steps is None:
            continue
        made += 1
        gold = gold_solution(p)
        assert steps[0] == gold[0] and steps[1] != gold[1] and len(steps) == len(gold)
        t = slip_traces([p], per_problem=0, correct_per_problem=1)[0]
        assert t.first_error == -1 and t.steps == gold
    assert made >= 20


def test_slip_traces_are_labelled_by_the_checker_and_deterministic():
    problems = generate(20, seed=4, n_steps=4)
    a = slip_traces(problems, per_problem=3, seed=7)
    b = slip_traces(problems, per_problem=3, seed=7)
    assert [t.steps for t in a] == [t.steps for t in b]
    gold = [t for t in a if t.meta["synthetic"]["kind"] is None]
    slips = [t for t in a if t.meta["synthetic"]["kind"] is not None]
    assert len(gold) == 20 and len(slips) >= 50
    assert all(t.first_error == -1 and t.label_source == "exact" for t in gold)
    assert all(t.first_error >= 0 for t in slips)  # a slip never lands on a gold value
    assert all(t.labels[t.first_error] == 0.0 for t in slips)
    assert all(not t.meta["exact_check"]["answer_correct"] for t in slips)
    assert a[0].prompt.endswith('end with "The answer is N."')  # the policy's own prompt


def test_unknown_kinds_are_refused():
    with pytest.raises(ConfigError, match="slip kinds"):
        SlipConfig(kinds=["typo"])
