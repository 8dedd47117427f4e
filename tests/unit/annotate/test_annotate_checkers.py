"""Final-answer checking of GSM8K- and MATH-500-style problems (regression rows from issue 10)."""

from __future__ import annotations

import pytest

from prmkit.annotate.checkers import TaskAnswerChecker
from prmkit.errors import CheckerError
from prmkit.records import Problem

GSM8K = Problem(
    id="gsm8k-test-0",
    prompt="Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4. How many are left?",
    answer="9",
    meta={"task": "gsm8k", "split": "test", "index": 0, "gold_steps": ["16 - 3 - 4 = 9"]},
)
MATH500 = Problem(
    id="math500-0",
    prompt="What is $\\frac{2}{4}$ in lowest terms?",
    answer="\\frac{1}{2}",
    meta={"task": "math500", "index": 0, "subject": "Algebra", "level": 1},
)


@pytest.mark.parametrize(
    "problem, solution, answer, correct",
    [
        (GSM8K, "16 - 3 - 4 = 9\n\nThe answer is 9.", "9", True),
        (GSM8K, "16 - 3 = 13\n\n#### 1,300", "1300", False),
        (GSM8K, "She has $9 left. The answer is $9.", "9", True),
        (GSM8K, "xq 7 zz", None, False),  # no stated answer: wrong, not a failure
        (MATH500, "Halve it.\n\nSo the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", True),
        (MATH500, "The answer is $\\boxed{0.5}$.", "0.5", True),
        (MATH500, "The answer is \\boxed{\\frac{2}{3}}.", "\\frac{2}{3}", False),
    ],
)
def test_task_checker_on_gsm8k_and_math500(problem, solution, answer, correct):
    checker = TaskAnswerChecker()
    check = checker.check(problem, solution)
    assert (check.answer, check.correct) == (answer, correct)
    assert checker.stats.calls == 1 and checker.stats.correct == int(correct)


def test_task_checker_counts_failures_when_lenient():
    bad_gold = Problem(id="m", prompt="q", answer="\\\\", meta={"task": "math500"})  # unparsable
    with pytest.raises(CheckerError, match="math-verify"):
        TaskAnswerChecker().check(bad_gold, "The answer is \\boxed{x^2}.")
    lenient = TaskAnswerChecker(lenient=True)
    assert lenient.check(bad_gold, "The answer is \\boxed{x^2}.").correct is False
    assert lenient.stats.failures == 1
    assert "1 failures" in lenient.stats.summary()
