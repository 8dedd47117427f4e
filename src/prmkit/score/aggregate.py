"""Trace scores from step scores: min, prod, last, mean.

Example:
    >>> aggregate([0.9, 0.5, 0.8], "min")
    0.5
    >>> round(aggregate([0.9, 0.5, 0.8], "prod"), 2)
    0.36
    >>> aggregate_all([0.5, 1.0])
    {'min': 0.5, 'prod': 0.5, 'last': 1.0, 'mean': 0.75}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from prmkit.errors import ConfigError, DataFormatError

__all__ = ["AGGREGATIONS", "aggregate", "aggregate_all", "check_aggregation"]

from prmkit.prm.spec import AGGREGATIONS


def check_aggregation(how: str) -> str:
    """``how`` if it names an aggregation (:data:`~prmkit.prm.spec.AGGREGATIONS`).

    Raises:
        ConfigError: an unknown aggregation.
    """
    if how not in AGGREGATIONS:
        raise ConfigError(
            "unknown aggregation",
            got=how,
            expected=f"one of {list(AGGREGATIONS)}",
            fix="pick a listed aggregation",
        )
    return how


def aggregate(scores: Sequence[float], how: str) -> float:
    """One trace score from its step scores.

    Raises:
        ConfigError: unknown aggregation.
        DataFormatError: no scores.
    """
    check_aggregation(how)
    if not scores:
        raise DataFormatError(
            "no step scores to aggregate",
            got=list(scores),
            expected="at least one score",
            fix="score traces with steps",
        )
    if how == "min":
        return float(min(scores))
    if how == "prod":
        return float(math.prod(scores))
    if how == "last":
        return float(scores[-1])
    return float(sum(scores) / len(scores))


def aggregate_all(scores: Sequence[float]) -> dict[str, float]:
    """Every aggregation of :data:`AGGREGATIONS`, by name."""
    return {how: aggregate(scores, how) for how in AGGREGATIONS}
