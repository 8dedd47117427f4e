"""Reward-guided greedy search: one beam; each round the best of ``k`` candidate next steps.

Example:
    >>> result = greedy_search(problem, generator, scorer, k=4)  # doctest: +SKIP
    >>> result.record.steps  # doctest: +SKIP
    ['Tom buys 4 more: 3 + 4 = 7', 'The answer is 7.']
"""

from __future__ import annotations

from typing import Any

from prmkit.generate.protocol import Generator
from prmkit.records import Problem
from prmkit.search.engine import SearchResult, tree_search
from prmkit.search.incremental import IncrementalScorer

__all__ = ["greedy_search"]


def greedy_search(
    problem: Problem,
    generator: Generator,
    scorer: IncrementalScorer,
    *,
    k: int = 4,
    **kwargs: Any,
) -> SearchResult:
    """Greedy search on one problem; ``kwargs`` pass to
    :func:`~prmkit.search.engine.tree_search`.

    Raises:
        ConfigError: ``k`` is not a positive integer.
    """
    return tree_search(
        problem,
        generator,
        scorer,
        method="greedy",
        groups=1,
        keep=1,
        width=k,
        settings={"k": k},
        **kwargs,
    )
