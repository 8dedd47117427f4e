"""Binary search for the first error (OmegaPRM): Monte Carlo only at midpoints.

A trace whose final answer is wrong has a first wrong step. If rollouts from the prefix
``steps[:m]`` can still reach the right answer (Monte Carlo value > 0), the first ``m`` steps are
taken as correct and the error lies after them; if none can (value 0), it lies in the first ``m``.
Halving the interval ``(lo, hi]`` (``lo`` steps known good, ``hi`` steps known bad; at the start
0 and the whole trace) finds it in about ``log2(steps)`` estimates of ``k`` rollouts each, where
per-step Monte Carlo needs ``steps - 1``.

A trace whose final answer is right is labelled all-correct with no rollouts (as OmegaPRM and
Math-Shepherd's outcome check do); set ``search_correct=True`` to search those too, treating the
whole trace as the bad end only if the search finds a zero.

Labels: 1.0 before the first error, 0.0 at it, ``None`` after it.

Example:
    >>> labeler = BinarySearchLabeler(engine, k=8)  # doctest: +SKIP
    >>> labeler.label([trace])[0].meta["annotation"]["probes"]  # doctest: +SKIP
    [[4, 0.5], [6, 0.0], [5, 0.125]]
"""

from __future__ import annotations

from collections.abc import Sequence

from prmkit.annotate.protocol import Cost, labeled
from prmkit.annotate.rollouts import RolloutEngine, State
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


class BinarySearchLabeler:
    """First-error labels by binary search over step prefixes.

    Args:
        engine: Draws and stores the rollouts.
        k: Rollouts per probed prefix.
        search_correct: Also search traces whose final answer is right.
    """

    name = "binary"

    def __init__(self, engine: RolloutEngine, *, k: int = 8, search_correct: bool = False) -> None:
        if k < 1:
            raise ConfigError(
                "k must be positive", got=k, expected="an integer >= 1", fix="e.g. k=8"
            )
        self.engine = engine
        self.k = k
        self.search_correct = search_correct

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Label ``traces``; all searches advance together, one batched probe per round."""
        n = len(traces)
        costs = [Cost() for _ in traces]
        probes: list[list[list[float]]] = [[] for _ in traces]
        correct = [self.engine.check_trace(t) for t in traces]
        lo = [0] * n
        hi = [len(t.steps) for t in traces]
        active = [i for i in range(n) if hi[i] > 1 and (self.search_correct or not correct[i])]
        while active:
            mids = [(lo[i] + hi[i]) // 2 for i in active]
            results = self.engine.rollouts(
                [(State.of(traces[i], m), self.k) for i, m in zip(active, mids, strict=True)]
            )
            for i, m, rollouts in zip(active, mids, results, strict=True):
                costs[i].add(rollouts)
                value = sum(r.correct for r in rollouts) / len(rollouts)
                probes[i].append([m, value])
                if value > 0:
                    lo[i] = m
                else:
                    hi[i] = m
            active = [i for i in active if hi[i] - lo[i] > 1]
        out = []
        for i, trace in enumerate(traces):
            searched = self.search_correct or not correct[i]
            # A right answer with no zero found anywhere: no error.
            no_error = not searched or (correct[i] and hi[i] == len(trace.steps))
            first_error = -1 if no_error else hi[i] - 1
            out.append(
                labeled(
                    trace,
                    first_error_labels(len(trace.steps), first_error),
                    first_error,
                    "binary",
                    costs[i],
                    method="binary",
                    k=self.k,
                    probes=probes[i],
                    final_answer_correct=correct[i],
                )
            )
        return out
