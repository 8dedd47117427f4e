"""Reward-guided greedy search: one beam; each round the best of ``k`` candidate next steps.

It is DVTS with a single subtree (:func:`prmkit.search.dvts.subtree_search`): the best child is
continued until it finishes; the candidates are the ``k`` children of the last expansion.

Example:
    >>> result = greedy_search(problem, generator, scorer, k=4)  # doctest: +SKIP
    >>> result.record.steps  # doctest: +SKIP
    ['Tom buys 4 more: 3 + 4 = 7', 'The answer is 7.']
"""

from __future__ import annotations

from typing import Any

from prmkit.generate.protocol import Generator
from prmkit.records import Problem
from prmkit.search.dvts import subtree_search
from prmkit.search.engine import Rounds, SearchResult, check_positive
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
    """Greedy search on one problem; ``kwargs`` pass to :class:`~prmkit.search.engine.Rounds`.

    Raises:
        ConfigError: ``k`` is not a positive integer, or a bad setting (see ``Rounds``).
    """
    check_positive("k", k)
    run = Rounds(problem, generator, scorer, **kwargs)
    return subtree_search(run, "greedy", 1, k, {"k": k})
