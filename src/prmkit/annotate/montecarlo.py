"""Monte Carlo step labels (Math-Shepherd): roll each step prefix out k times to the end.

The value of the prefix ``steps[:t]`` is the fraction of its ``k`` rollouts whose final answer is
correct. Step ``i`` is labelled from the value after it, ``values[i+1]``: hard (some rollout
succeeds) or soft (the fraction), or a scheme of :mod:`prmkit.annotate.transforms`. The last step's
value needs no rollouts: it is whether the trace's own answer is correct.

Options:

* ``stop_at_zero``: stop after the first step whose value is 0 (the Qwen / SCAN practice); the
  later steps are not estimated and their labels are ``None``.
* ``adaptive``: choose k per problem from its pass rate (in the spirit of GenPRM's adaptive rollout
  count): draw ``probe_k`` rollouts from the bare problem, and use the smallest k for which a
  prefix as good as the start would see a correct rollout with probability ``confidence``,
  clamped to ``[k_min, k_max]``. Hard problems get more rollouts, easy ones fewer.
* ``estimate_root``: also estimate ``values[0]``, the problem's pass rate (needed by the ``rpe``
  and ``pav`` labels; shared by all traces of a problem).

Example:
    >>> labeler = MonteCarloLabeler(engine, k=8, label="soft")  # doctest: +SKIP
    >>> [t.labels for t in labeler.label(traces)]  # doctest: +SKIP
    [[1.0, 0.625, 0.0], ...]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prmkit.annotate.protocol import Cost, labeled
from prmkit.annotate.rollouts import RolloutEngine, State
from prmkit.annotate.transforms import LABEL_SCHEMES, labels_from_values
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, Trace

__all__ = ["AdaptiveK", "MonteCarloLabeler"]


@dataclass(frozen=True)
class AdaptiveK:
    """Rollouts per prefix chosen from the problem's pass rate.

    Attributes:
        probe_k: Rollouts from the bare problem that estimate its pass rate ``p``.
        k_min: Fewest rollouts per prefix.
        k_max: Most rollouts per prefix (also used when ``p`` is 0).
        confidence: Wanted chance of at least one correct rollout from a prefix as good as the
            start: ``k = ceil(log(1 - confidence) / log(1 - p))``.
    """

    probe_k: int = 8
    k_min: int = 2
    k_max: int = 32
    confidence: float = 0.9

    def k_for(self, pass_rate: float) -> int:
        """The k for a problem of pass rate ``pass_rate``.

        Example:
            >>> AdaptiveK().k_for(0.5), AdaptiveK().k_for(0.1), AdaptiveK().k_for(0.0)
            (4, 22, 32)
        """
        if pass_rate <= 0:
            return self.k_max
        if pass_rate >= 1:
            return self.k_min
        k = math.ceil(math.log(1 - self.confidence) / math.log(1 - pass_rate))
        return max(self.k_min, min(self.k_max, k))


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(
            f"{name} must be positive", got=value, expected="an integer >= 1", fix=f"e.g. {name}=8"
        )


class MonteCarloLabeler:
    """Math-Shepherd Monte Carlo labels.

    Args:
        engine: Draws and stores the rollouts.
        k: Rollouts per step prefix (ignored for prefixes when ``adaptive`` is set).
        label: ``hard``, ``soft``, ``rpe`` or ``pav`` (see :mod:`prmkit.annotate.transforms`).
        epsilon: The ``rpe`` threshold.
        prover_k: The ``pav`` prover: Best-of-``prover_k`` of the rollouts' policy (1: the policy
            itself); see :func:`~prmkit.annotate.transforms.pav_progress`.
        stop_at_zero: Stop after the first step whose value is 0.
        adaptive: Choose k per problem from its pass rate.
        estimate_root: Also estimate the problem's pass rate (``k`` rollouts, or the adaptive
            probe's); forced on for ``rpe`` and ``pav``.
    """

    name = "mc"

    def __init__(
        self,
        engine: RolloutEngine,
        *,
        k: int = 8,
        label: str = "hard",
        epsilon: float = 0.8,
        prover_k: int = 1,
        stop_at_zero: bool = False,
        adaptive: AdaptiveK | None = None,
        estimate_root: bool = False,
    ) -> None:
        _positive("k", k)
        _positive("prover_k", prover_k)
        if label not in LABEL_SCHEMES:
            raise ConfigError(
                "unknown label scheme",
                got=label,
                expected=f"one of {LABEL_SCHEMES}",
                fix="e.g. label=hard",
            )
        self.engine = engine
        self.k = k
        self.label_scheme = label
        self.epsilon = epsilon
        self.prover_k = prover_k
        self.stop_at_zero = stop_at_zero
        self.adaptive = adaptive
        self.estimate_root = estimate_root or adaptive is not None or label in ("rpe", "pav")

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Label ``traces`` (all of them batched together; see the module doc)."""
        costs = [Cost() for _ in traces]
        values: list[list[float | None]] = [[None] * (len(t.steps) + 1) for t in traces]
        for i, trace in enumerate(traces):
            values[i][-1] = float(self.engine.check_trace(trace))
        ks = [self.k] * len(traces)
        if self.estimate_root:
            root_k = self.adaptive.probe_k if self.adaptive else self.k
            roots = self.engine.rollouts([(State.of(t, 0), root_k) for t in traces])
            for i, rollouts in enumerate(roots):
                costs[i].add(rollouts)
                values[i][0] = sum(r.correct for r in rollouts) / len(rollouts)
                if self.adaptive:
                    ks[i] = self.adaptive.k_for(values[i][0])
        if self.stop_at_zero:
            self._walk(traces, values, ks, costs)
        else:
            requests = [
                (i, t) for i, trace in enumerate(traces) for t in range(1, len(trace.steps))
            ]
            self._estimate(traces, requests, values, ks, costs)
        out = []
        for trace, vals, k, cost in zip(traces, values, ks, costs, strict=True):
            if self.stop_at_zero:
                _blank_after_first_zero(vals)
            labels, first_error, extra = labels_from_values(
                vals, self.label_scheme, epsilon=self.epsilon, prover_k=self.prover_k
            )
            out.append(
                labeled(
                    trace,
                    labels,
                    first_error,
                    "mc",
                    cost,
                    method="mc",
                    label=self.label_scheme,
                    k=k,
                    values=vals,
                    stop_at_zero=self.stop_at_zero,
                    **extra,
                )
            )
        return out

    def _estimate(
        self,
        traces: Sequence[Trace],
        requests: list[tuple[int, int]],
        values: list[list[float | None]],
        ks: list[int],
        costs: list[Cost],
    ) -> None:
        """Estimate ``values[i][t]`` for each ``(i, t)`` in ``requests``, in one batch."""
        results = self.engine.rollouts([(State.of(traces[i], t), ks[i]) for i, t in requests])
        for (i, t), rollouts in zip(requests, results, strict=True):
            costs[i].add(rollouts)
            values[i][t] = sum(r.correct for r in rollouts) / len(rollouts)

    def _walk(
        self,
        traces: Sequence[Trace],
        values: list[list[float | None]],
        ks: list[int],
        costs: list[Cost],
    ) -> None:
        """Prefix by prefix, all traces at once, each stopping at its first zero value."""
        t = 1
        active = [i for i, trace in enumerate(traces) if len(trace.steps) > 1]
        while active:
            self._estimate(traces, [(i, t) for i in active], values, ks, costs)
            t += 1
            active = [i for i in active if values[i][t - 1] != 0 and t < len(traces[i].steps)]


def _blank_after_first_zero(values: list[float | None]) -> None:
    """With early stopping the final-answer value after a zero was never needed: drop it."""
    for t in range(1, len(values)):
        if values[t] == 0:
            for u in range(t + 1, len(values)):
                values[u] = None
            return
