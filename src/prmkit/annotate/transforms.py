"""Step labels from Monte Carlo values, with no new rollouts.

A Monte Carlo labeling stores, in ``meta["annotation"]["values"]``, the value of every state of the
trace: ``values[t]`` is the fraction of rollouts from the first ``t`` steps that reach a correct
answer (``values[0]``: the problem's pass rate, when estimated; ``values[T]``: 1.0 or 0.0, whether
the trace's own answer is right; ``None``: not estimated). Every transform here maps those values
to per-step labels, so switching label schemes costs nothing:

* ``hard`` (Math-Shepherd): step i is correct iff some rollout after it succeeds,
  ``values[i+1] > 0``.
* ``soft`` (Math-Shepherd): ``values[i+1]``.
* ``rpe`` (GenPRM relative progress): step i is correct iff
  ``values[i+1] / values[i] >= epsilon`` (default 0.8); needs ``values[0]`` for the first step.
* ``pav`` (process advantage, PAV, Setlur et al. 2024): progress ``A_i = Q(i+1) - Q(i)`` in
  [-1, 1] under a prover, written as the label ``(1 + A_i) / 2`` (0.5 = no progress); the raw
  progress is kept in ``meta["annotation"]["progress"]``. The prover is the rollouts' policy
  (``prover_k=1``, ``Q = values``) or its Best-of-K, whose value under an answer checker is
  ``Q = 1 - (1 - values) ** prover_k`` (the paper's BoK(pi) provers), with no new rollouts.

Example:
    >>> hard_labels([0.5, 0.75, 0.0, 0.0])
    [1.0, 0.0, 0.0]
    >>> rpe_labels([0.5, 0.75, 0.25, 0.0])
    [1.0, 0.0, 0.0]
    >>> pav_progress([0.5, 0.75, 0.25, 0.0])
    [0.25, -0.5, -0.25]
    >>> pav_progress([0.5, 0.75], prover_k=2)
    [0.1875]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from prmkit.errors import ConfigError, RecordError
from prmkit.records import LabeledTrace, first_error_from_labels

__all__ = [
    "LABEL_SCHEMES",
    "hard_labels",
    "labels_from_values",
    "pav_progress",
    "relabel",
    "rpe_labels",
    "soft_labels",
]

LABEL_SCHEMES: tuple[str, ...] = ("hard", "soft", "rpe", "pav")

Values = Sequence[float | None]


def hard_labels(values: Values) -> list[float | None]:
    """``1.0`` where some rollout after the step succeeds, ``0.0`` where none does."""
    return [None if v is None else float(v > 0) for v in values[1:]]


def soft_labels(values: Values) -> list[float | None]:
    """The fraction of successful rollouts after each step."""
    return [None if v is None else float(v) for v in values[1:]]


def _need_root(values: Values, scheme: str) -> None:
    if values[0] is None:
        raise ConfigError(
            f"the '{scheme}' labels need the problem's pass rate (values[0])",
            got=list(values),
            expected="a Monte Carlo labeling with the root value",
            fix="rerun Monte Carlo with estimate_root=true (stored rollouts are "
            "reused; only the root's are drawn)",
        )


def rpe_labels(values: Values, epsilon: float = 0.8) -> list[float | None]:
    """GenPRM relative progress: step i is correct iff ``values[i+1] / values[i] >= epsilon``.

    As GenPRM, once a state's value is 0 (no rollout succeeds) every later step is wrong too,
    whatever later values say: ``[0.5, 0.5, 0, 0.25, 0.25, 0]`` gives ``[1, 0, 0, 0, 0]``.
    """
    _need_root(values, "rpe")
    out: list[float | None] = []
    dead = False
    for before, after in itertools.pairwise(values):
        dead = dead or before == 0
        if dead:
            out.append(0.0)
        elif after is None or before is None:
            out.append(None)
        else:
            out.append(float(after / before >= epsilon))
    return out


def pav_progress(values: Values, prover_k: int = 1) -> list[float | None]:
    """Process advantage of each step under the Best-of-``prover_k`` prover (``None`` if unknown).

    ``Q(t) = 1 - (1 - values[t]) ** prover_k``; with ``prover_k=1`` (the rollouts' policy),
    ``Q = values`` and the progress is ``values[i+1] - values[i]``.
    """
    _need_root(values, "pav")
    if isinstance(prover_k, bool) or not isinstance(prover_k, int) or prover_k < 1:
        raise ConfigError(
            "prover_k must be a positive integer",
            got=prover_k,
            expected="an integer >= 1 (1 = the rollouts' policy itself)",
            fix="e.g. prover_k=4 for a Best-of-4 prover",
        )
    q = [None if v is None else 1.0 - (1.0 - float(v)) ** prover_k for v in values]
    return [None if a is None or b is None else a - b for b, a in itertools.pairwise(q)]


def labels_from_values(
    values: Values, scheme: str = "hard", *, epsilon: float = 0.8, prover_k: int = 1
) -> tuple[list[float | None], int, dict[str, Any]]:
    """``(labels, first_error, extra meta)`` of a label scheme.

    ``first_error`` is the first step whose hard label is 0 for ``hard``/``soft``/``pav`` (where
    the Monte Carlo value drops to 0) and the first 0 label for ``rpe``. ``prover_k`` is the
    ``pav`` prover's K (ignored by the other schemes).
    """
    if scheme not in LABEL_SCHEMES:
        raise ConfigError(
            "unknown label scheme",
            got=scheme,
            expected=f"one of {LABEL_SCHEMES}",
            fix="e.g. label=hard",
        )
    hard = hard_labels(values)
    first_error = first_error_from_labels(hard)
    extra: dict[str, Any] = {}
    if scheme == "hard":
        labels = hard
    elif scheme == "soft":
        labels = soft_labels(values)
    elif scheme == "rpe":
        labels = rpe_labels(values, epsilon)
        first_error = first_error_from_labels(labels)
        extra["epsilon"] = epsilon
    else:
        progress = pav_progress(values, prover_k)
        labels = [None if a is None else (1.0 + a) / 2.0 for a in progress]
        extra["progress"] = progress
        extra["prover_k"] = prover_k
    return labels, first_error, extra


_SCHEME_KEYS = ("epsilon", "progress", "prover_k")
"""Annotation keys one label scheme adds (``rpe``, ``pav``); :func:`relabel` drops stale ones."""


def _values(trace: LabeledTrace) -> list[float | None]:
    values = trace.meta.get("annotation", {}).get("values")
    if not isinstance(values, list) or len(values) != len(trace.steps) + 1:
        raise RecordError(
            "no Monte Carlo values in the trace's annotation",
            got=trace.meta.get("annotation"),
            expected=f"meta.annotation.values with {len(trace.steps) + 1} entries",
            fix="label the traces with --method mc first",
            where=f"trace {trace.id}",
        )
    return values


def relabel(
    trace: LabeledTrace, scheme: str, *, epsilon: float = 0.8, prover_k: int = 1
) -> LabeledTrace:
    """The same trace with labels recomputed from its stored Monte Carlo values."""
    labels, first_error, extra = labels_from_values(
        _values(trace), scheme, epsilon=epsilon, prover_k=prover_k
    )
    meta = dict(trace.meta)
    kept = {k: v for k, v in meta["annotation"].items() if k not in _SCHEME_KEYS}
    meta["annotation"] = {**kept, "label": scheme, **extra}
    return LabeledTrace(
        **trace.trace_fields() | {"meta": meta},
        labels=labels,
        first_error=first_error,
        label_source=trace.label_source,
    )
