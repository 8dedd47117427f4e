"""SCAN (Ding et al. 2025, "Self-Denoising Monte Carlo Annotation"): filter first, then label.

The rules follow the reference code (github.com/yyDing1/SCAN-PRM, ``src/eval_prm/main_datasyn.py``
and ``dataset/SCAN-Base/process.py``):

1. Self-confidence ``SC``: the share of correct samples among ``sc_samples`` (128) of the policy's
   own answers to the bare problem. Here they are rollouts from the empty prefix, shared by every
   trace of the problem through the store (and by Monte Carlo's root estimates).
2. Problems with ``SC < sc_threshold`` (0.75) are filtered *before* any step rollout: their traces
   come back with ``None`` labels and ``meta["annotation"]["scan_filtered"] = True`` (nothing is
   lost; :attr:`ScanLabeler.filtered_problems` lists them).
3. A trace whose final answer is right is labelled all 1.0, with no step rollouts.
4. A wrong trace is rolled out step by step, ``k`` (8) rollouts from each prefix, until the first
   prefix of value 0; the step that ends it is the first error ``e``.
5. Labels (:func:`scan_labels`): 1.0 before the error, 0.0 at it, ``None`` after (the reference
   cuts the trace there); the ``tolerance`` (2) steps just before it get the soft label
   ``min(1, MC / SC)``, the value after the step relative to the problem's self-confidence.

Example:
    >>> scan_labels([0.5, 0.75, 0.375, 0.125, 0.0, None])
    ([1.0, 0.75, 0.25, 0.0, None], 3)
"""

from __future__ import annotations

from collections.abc import Sequence

from prmkit.annotate.protocol import Cost, labeled
from prmkit.annotate.rollouts import RolloutEngine, State
from prmkit.config import check_range
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, Trace

__all__ = ["ScanLabeler", "scan_labels"]


def scan_labels(
    values: Sequence[float | None], tolerance: int = 2
) -> tuple[list[float | None], int]:
    """SCAN's labels from Monte Carlo values: ``(labels, first_error)``.

    ``values[0]`` is the self-confidence, ``values[t]`` the value after ``t`` steps. The first
    error is the first step after which the value is 0 (-1 if none: all 1.0). The ``tolerance``
    steps before it get ``min(1, values[t+1] / values[0])``; the steps after it ``None``.
    """
    n = len(values) - 1
    first_error = next((t - 1 for t in range(1, n + 1) if values[t] == 0), -1)
    if first_error < 0:
        return [1.0] * n, -1
    labels: list[float | None] = [1.0] * first_error + [0.0] + [None] * (n - first_error - 1)
    sc = values[0]
    for t in range(max(0, first_error - tolerance), first_error):
        value = values[t + 1]
        if sc is None or value is None:
            raise ConfigError(
                "SCAN's soft labels need the self-confidence and the values before the error",
                got=list(values),
                expected="values[0] and every value up to the first 0",
                fix="label with ScanLabeler (or Monte Carlo with estimate_root=True)",
            )
        labels[t] = min(1.0, value / sc)
    return labels, first_error


class ScanLabeler:
    """SCAN labels: self-confidence filter, then Monte Carlo on the wrong traces only.

    Args:
        engine: Draws and stores the rollouts.
        k: Rollouts per step prefix (the reference: 8).
        sc_samples: Rollouts from the bare problem that estimate its self-confidence (128).
        sc_threshold: Keep problems with self-confidence at least this (0.75); a problem with
            self-confidence 0 is always filtered.
        tolerance: Steps before the first error that get the soft label (2).
    """

    name = "scan"

    def __init__(
        self,
        engine: RolloutEngine,
        *,
        k: int = 8,
        sc_samples: int = 128,
        sc_threshold: float = 0.75,
        tolerance: int = 2,
    ) -> None:
        check_range("k", k, ge=1)
        check_range("sc_samples", sc_samples, ge=1)
        check_range("sc_threshold", sc_threshold, ge=0, le=1)
        check_range("tolerance", tolerance, ge=0)
        self.engine = engine
        self.k = k
        self.sc_samples = sc_samples
        self.sc_threshold = sc_threshold
        self.tolerance = tolerance
        self.filtered_problems: list[str] = []
        """Problems below the threshold, whose traces got ``None`` labels (all calls, once each)."""

    def _kept(self, sc: float) -> bool:
        return sc > 0 and sc >= self.sc_threshold

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Label ``traces`` (batched: one round of roots, then one round per step)."""
        costs = [Cost() for _ in traces]
        values: list[list[float | None]] = [[None] * (len(t.steps) + 1) for t in traces]
        roots = self.engine.rollouts([(State.of(t, 0), self.sc_samples) for t in traces])
        kept = []
        for i, rollouts in enumerate(roots):
            costs[i].add(rollouts)
            sc = sum(r.correct for r in rollouts) / len(rollouts)
            values[i][0] = sc
            kept.append(self._kept(sc))
        for i, trace in enumerate(traces):
            if kept[i]:
                values[i][-1] = float(self.engine.check_trace(trace))
        # the walk: wrong traces of kept problems, prefix by prefix, to the first zero
        t = 1
        active = [i for i, trace in enumerate(traces) if kept[i] and values[i][-1] == 0]
        active = [i for i in active if t < len(traces[i].steps)]
        while active:
            results = self.engine.rollouts([(State.of(traces[i], t), self.k) for i in active])
            for i, rollouts in zip(active, results, strict=True):
                costs[i].add(rollouts)
                values[i][t] = sum(r.correct for r in rollouts) / len(rollouts)
            t += 1
            active = [i for i in active if values[i][t - 1] != 0 and t < len(traces[i].steps)]
        out = []
        for i, trace in enumerate(traces):
            if kept[i]:
                labels, first_error = scan_labels(values[i], self.tolerance)
                if first_error >= 0:  # the final-answer value after an earlier zero: not needed
                    values[i][first_error + 2 :] = [None] * (len(trace.steps) - first_error - 1)
            else:
                labels, first_error = [None] * len(trace.steps), -1
                if trace.problem_id not in self.filtered_problems:
                    self.filtered_problems.append(trace.problem_id)
            out.append(
                labeled(
                    trace,
                    labels,
                    first_error,
                    "scan",
                    costs[i],
                    method="scan",
                    k=self.k,
                    sc_samples=self.sc_samples,
                    sc_threshold=self.sc_threshold,
                    tolerance=self.tolerance,
                    self_confidence=values[i][0],
                    scan_filtered=not kept[i],
                    values=values[i],
                )
            )
        return out
