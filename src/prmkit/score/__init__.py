"""Scoring traces with a PRM: the Scorer protocol, one-pass batched scoring, aggregation."""

from prmkit.score.aggregate import AGGREGATIONS, aggregate, aggregate_all
from prmkit.score.scorer import PRMScorer, Scorer, length_buckets, to_scored

__all__ = [
    "AGGREGATIONS",
    "PRMScorer",
    "Scorer",
    "aggregate",
    "aggregate_all",
    "length_buckets",
    "to_scored",
]
