"""Moved to :mod:`prmkit.score.incremental`; this name stays until ``prmkit.demo`` imports it there."""

from prmkit.score.incremental import (
    IncrementalPRMScorer,
    IncrementalScorer,
    ScoreCost,
    ScoreState,
)

__all__ = ["IncrementalPRMScorer", "IncrementalScorer", "ScoreCost", "ScoreState"]
