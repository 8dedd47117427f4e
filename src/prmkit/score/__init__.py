"""Scoring traces with a PRM: one-pass batched scoring, incremental scoring for search,
aggregation, and the ``prmkit score`` stage (:func:`score`).

Example:
    >>> from prmkit.score import ScoreConfig, score
    >>> scored = score(ScoreConfig(prm="runs/prm", traces="traces.jsonl"))  # doctest: +SKIP
    >>> scored[0].step_scores  # doctest: +SKIP
    [0.93, 0.12]
"""

from prmkit.score.aggregate import AGGREGATIONS, aggregate, aggregate_all
from prmkit.score.incremental import (
    IncrementalPRMScorer,
    IncrementalScorer,
    ScoreCost,
    ScoreState,
)
from prmkit.score.run import ScoreConfig, score
from prmkit.score.scorer import PRMScorer, Scorer, length_buckets, to_scored
from prmkit.score.text import text_trace

__all__ = [
    "AGGREGATIONS",
    "IncrementalPRMScorer",
    "IncrementalScorer",
    "PRMScorer",
    "ScoreConfig",
    "ScoreCost",
    "ScoreState",
    "Scorer",
    "aggregate",
    "aggregate_all",
    "length_buckets",
    "score",
    "text_trace",
    "to_scored",
]

from prmkit._stages import callable_stage

callable_stage(__name__, "score")
