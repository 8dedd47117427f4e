"""Binary search for the first error (OmegaPRM): Monte Carlo only at midpoints.

First the bare problem is rolled out (the root: ``k`` rollouts per problem, in one call for all
problems before any midpoint, charged to the problem's first searched trace and shared by the
others through the content-keyed store). If its value is
not above ``min_root_value`` (default 0: no rollout solves the problem), the policy cannot tell a
good prefix from a bad one there: the searched traces of that problem get ``None`` labels,
``meta["annotation"]["unsolvable"] = True`` and their problem joins
:attr:`BinarySearchLabeler.unsolvable_problems`.

Otherwise the bare problem is known good (value > 0), and a trace whose final answer is wrong has
a first wrong step in ``(lo, hi]`` (``lo = 0`` steps known good, ``hi`` = the whole trace known
bad). If rollouts from the midpoint prefix ``steps[:m]`` can still reach the right answer (value
> 0), the first ``m`` steps are taken as correct and the error lies after them; if none can
(value 0), it lies in the first ``m``. Halving the interval finds it in at most
``ceil(log2(steps))`` estimates of ``k`` rollouts each, plus the root's, where per-step Monte Carlo
needs ``steps - 1``.

A trace whose final answer is right is labelled all-correct with no rollouts (as OmegaPRM and
Math-Shepherd's outcome check do); set ``search_correct=True`` to search those too, treating the
whole trace as the bad end only if the search finds a zero. A one-step wrong trace is wrong at
step 0 with no rollouts.

Labels: 1.0 before the first error, 0.0 at it, ``None`` after it.

Example:
    >>> labeler = BinarySearchLabeler(engine, k=8)  # doctest: +SKIP
    >>> meta = labeler.label([trace])[0].meta["annotation"]  # doctest: +SKIP
    >>> meta["root_value"], meta["probes"]  # doctest: +SKIP
    (0.625, [[4, 0.5], [6, 0.0], [5, 0.125]])
"""

from __future__ import annotations

from collections.abc import Sequence

from prmkit.annotate.protocol import Cost, labeled
from prmkit.annotate.rollouts import RolloutEngine, State
from prmkit.config import check_range
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, Trace

__all__ = ["BinarySearchLabeler", "first_error_labels"]


def first_error_labels(n_steps: int, first_error: int) -> list[float | None]:
    """1.0 before ``first_error``, 0.0 at it, ``None`` after (all 1.0 when it is -1).

    Example:
        >>> first_error_labels(4, 2)
        [1.0, 1.0, 0.0, None]
    """
    if first_error < 0:
        return [1.0] * n_steps
    return [1.0] * first_error + [0.0] + [None] * (n_steps - first_error - 1)


def _mean(rollouts: Sequence) -> float:
    return sum(r.correct for r in rollouts) / len(rollouts)


class BinarySearchLabeler:
    """First-error labels by binary search over step prefixes.

    Args:
        engine: Draws and stores the rollouts.
        k: Rollouts per probed prefix (and for the root).
        search_correct: Also search traces whose final answer is right.
        min_root_value: Search only problems whose root value is above this (in ``[0, 1)``);
            the others' searched traces get ``None`` labels.
    """

    name = "binary"

    def __init__(
        self,
        engine: RolloutEngine,
        *,
        k: int = 8,
        search_correct: bool = False,
        min_root_value: float = 0.0,
    ) -> None:
        if k < 1:
            raise ConfigError(
                "k must be positive", got=k, expected="an integer >= 1", fix="e.g. k=8"
            )
        check_range("min_root_value", min_root_value, ge=0, lt=1)
        self.engine = engine
        self.k = k
        self.search_correct = search_correct
        self.min_root_value = min_root_value
        self.unsolvable_problems: list[str] = []
        """Problems whose root value was not above ``min_root_value`` (all calls, each once)."""

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Label ``traces``; all searches advance together, one batched probe per round."""
        n = len(traces)
        costs = [Cost() for _ in traces]
        probes: list[list[list[float]]] = [[] for _ in traces]
        root: list[float | None] = [None] * n
        correct = [self.engine.check_trace(t) for t in traces]
        searched = [self.search_correct or not ok for ok in correct]
        lo = [0] * n
        hi = [len(t.steps) for t in traces]
        active = [i for i in range(n) if searched[i] and hi[i] > 1]
        self._roots(traces, active, root, costs)
        active = [i for i in active if self._solvable(root[i])]
        while active:
            mids = [(lo[i] + hi[i]) // 2 for i in active]
            results = self.engine.rollouts(
                [(State.of(traces[i], m), self.k) for i, m in zip(active, mids, strict=True)]
            )
            for i, m, rollouts in zip(active, mids, results, strict=True):
                costs[i].add(rollouts)
                value = _mean(rollouts)
                probes[i].append([m, value])
                if value > 0:
                    lo[i] = m
                else:
                    hi[i] = m
            active = [i for i in active if hi[i] - lo[i] > 1]
        out = []
        for i, trace in enumerate(traces):
            unsolvable = root[i] is not None and not self._solvable(root[i])
            if unsolvable:
                labels: list[float | None] = [None] * len(trace.steps)
                first_error = -1  # records allow no "unknown"; the flag says it
                if trace.problem_id not in self.unsolvable_problems:
                    self.unsolvable_problems.append(trace.problem_id)
            else:
                # a right answer with no zero found anywhere: no error
                no_error = not searched[i] or (correct[i] and hi[i] == len(trace.steps))
                first_error = -1 if no_error else hi[i] - 1
                labels = first_error_labels(len(trace.steps), first_error)
            out.append(
                labeled(
                    trace,
                    labels,
                    first_error,
                    "binary",
                    costs[i],
                    method="binary",
                    k=self.k,
                    root_value=root[i],
                    min_root_value=self.min_root_value,
                    unsolvable=unsolvable,
                    probes=probes[i],
                    final_answer_correct=correct[i],
                )
            )
        return out

    def _roots(
        self,
        traces: Sequence[Trace],
        active: list[int],
        root: list[float | None],
        costs: list[Cost],
    ) -> None:
        """Estimate each active trace's problem root in one call; charge it to its first trace."""
        first: dict[str, int] = {}
        for i in active:
            first.setdefault(traces[i].problem_id, i)
        results = self.engine.rollouts([(State.of(traces[i], 0), self.k) for i in first.values()])
        values = {}
        for (pid, i), rollouts in zip(first.items(), results, strict=True):
            costs[i].add(rollouts)
            values[pid] = _mean(rollouts)
        for i in active:
            root[i] = values[traces[i].problem_id]

    def _solvable(self, root_value: float | None) -> bool:
        return root_value is not None and root_value > self.min_root_value
