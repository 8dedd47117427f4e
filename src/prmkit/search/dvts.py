"""Diverse verifier tree search (DVTS): the budget ``n`` split into ``n / m`` independent subtrees.

Each subtree keeps one beam and continues it ``m`` times per round, keeping its best child by
aggregated score (reward-guided greedy within the subtree). The subtrees never compete, so one
high-scoring line of reasoning cannot take over the whole budget, which keeps the final
candidates diverse. The answer is the best finished subtree.

Example:
    >>> result = dvts(problem, generator, scorer, n=8, m=4)  # doctest: +SKIP
    >>> len(result.finished)  # doctest: +SKIP
    2
"""

from __future__ import annotations

from typing import Any

from prmkit.generate.protocol import Generator
from prmkit.records import Problem
from prmkit.search.beam import check_budget
from prmkit.search.engine import SearchResult, tree_search
from prmkit.search.incremental import IncrementalScorer

__all__ = ["dvts"]


def dvts(
    problem: Problem,
    generator: Generator,
    scorer: IncrementalScorer,
    *,
    n: int = 8,
    m: int = 4,
    **kwargs: Any,
) -> SearchResult:
    """DVTS on one problem; ``kwargs`` pass to :func:`~prmkit.search.engine.tree_search`.

    Raises:
        ConfigError: ``m`` does not divide ``n``.
    """
    check_budget(n, m)
    return tree_search(
        problem,
        generator,
        scorer,
        method="dvts",
        groups=n // m,
        keep=1,
        width=m,
        settings={"n": n, "m": m},
        **kwargs,
    )
