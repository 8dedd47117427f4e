"""Ground-truth labels from an exact step checker (the built-in arithmetic task's).

No policy calls: the checker says where the first wrong step is. Labels are 1.0 before it, 0.0 at
it, ``None`` after it (what follows a wrong step is not graded). These are the reference every
other labeler is measured against in ``bench/annotate``.

Example:
    >>> labeler = ExactLabeler(checker, problems)  # doctest: +SKIP
    >>> labeler.label([trace])[0].first_error  # doctest: +SKIP
    2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prmkit.annotate.binary_search import first_error_labels
from prmkit.annotate.protocol import Cost, StepChecker, labeled
from prmkit.errors import RecordError
from prmkit.records import LabeledTrace, Problem, Trace

__all__ = ["ExactLabeler"]


class ExactLabeler:
    """Labels from an exact :class:`~prmkit.annotate.protocol.StepChecker`.

    Args:
        checker: The step checker.
        problems: Problems by id.
    """

    name = "exact"

    def __init__(self, checker: StepChecker, problems: Mapping[str, Problem]) -> None:
        self.checker = checker
        self.problems = problems

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Check every trace; no rollouts."""
        out = []
        for trace in traces:
            problem = self.problems.get(trace.problem_id)
            if problem is None:
                raise RecordError(
                    "trace refers to an unknown problem",
                    got=trace.problem_id,
                    expected="a problem id present in the problems file",
                    fix="pass the problems file the traces were generated from",
                    where=f"trace {trace.id}",
                )
            first_error = self.checker.first_error(problem, trace.steps)
            out.append(
                labeled(
                    trace,
                    first_error_labels(len(trace.steps), first_error),
                    first_error,
                    "exact",
                    Cost(),
                    method="exact",
                )
            )
        return out
