"""The checkers annotation uses, by task: final answers for rollouts, exact steps for ground truth.

:class:`TaskAnswerChecker` reads a problem's ``meta["task"]``: built-in ``arithmetic`` problems are
checked with :mod:`prmkit.tasks.arithmetic_check` (the last ``The answer is N`` line against the
gold answer); other tasks (GSM8K, MATH-500, ...) go to :mod:`prmkit.tasks.answers`
(``extract_answer``, then ``verify_answer`` with a timeout). :class:`ArithmeticStepChecker` is the
exact per-step checker of the built-in task.

Example:
    >>> from prmkit.tasks.arithmetic import build_problem
    >>> p = build_problem(3, [("+", 4)], id="p")
    >>> TaskAnswerChecker().check(p, "3 + 4 = 7\\n\\nThe answer is 7.").correct
    True
    >>> ArithmeticStepChecker().first_error(p, ["3 + 4 = 8", "The answer is 8."])
    0
"""

from __future__ import annotations

from collections.abc import Sequence

from prmkit.annotate.protocol import AnswerCheck
from prmkit.records import Problem

__all__ = ["ArithmeticStepChecker", "TaskAnswerChecker"]


class TaskAnswerChecker:
    """Final-answer checking by the problem's task (an :class:`AnswerChecker`).

    Args:
        timeout_s: math-verify's timeout per call, in seconds (non-arithmetic tasks).
        lenient: Count undecidable checks (gold answer unparsable, timeout, math-verify error) in
            :attr:`stats` as wrong instead of raising :class:`~prmkit.errors.CheckerError`.
    """

    def __init__(self, *, timeout_s: int = 5, lenient: bool = False) -> None:
        from prmkit.tasks.answers import VerifyStats

        self.timeout_s = timeout_s
        self.lenient = lenient
        self.stats = VerifyStats()
        """Counts of the non-arithmetic checks made so far (show ``stats.summary()``)."""

    def check(self, problem: Problem, solution: str) -> AnswerCheck:
        """Extract the final answer of ``solution`` and compare it with the gold answer."""
        if problem.meta.get("task") == "arithmetic":
            from prmkit.tasks.arithmetic_check import check_solution

            result = check_solution(problem, solution)
            return AnswerCheck(result.final_answer, result.answer_correct)
        from prmkit.tasks.answers import extract_answer, verify_answer

        answer = extract_answer(solution)
        correct = verify_answer(
            answer,
            problem.answer,
            timeout_s=self.timeout_s,
            lenient=self.lenient,
            stats=self.stats,
        )
        return AnswerCheck(answer, correct)


class ArithmeticStepChecker:
    """The exact step checker of the built-in arithmetic task (a :class:`StepChecker`)."""

    def first_error(self, problem: Problem, steps: Sequence[str]) -> int:
        """Index of the first wrong step (-1 if none); see :mod:`prmkit.tasks.arithmetic_check`."""
        from prmkit.tasks.arithmetic_check import check_steps

        return check_steps(problem, list(steps)).first_error
