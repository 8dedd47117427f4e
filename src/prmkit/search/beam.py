"""Step-level beam search (as in search-and-learn): ``n`` beams, beam width ``m``.

Each round the ``n / m`` kept beams are each continued ``m`` times by one step (``n`` new steps
in all), only the new steps are scored, and the ``n / m`` best unfinished beams by aggregated
score are kept. Finished solutions are collected until there are ``n / m`` of them; the answer is
the finished one with the highest score.

Example:
    >>> result = beam_search(problem, generator, scorer, n=8, m=4)  # doctest: +SKIP
    >>> result.record.meta["compute"]["policy_completion_tokens"]  # doctest: +SKIP
    1874
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import ConfigError
from prmkit.generate.protocol import Generator
from prmkit.records import Problem
from prmkit.search.engine import SearchResult, tree_search
from prmkit.search.incremental import IncrementalScorer

__all__ = ["beam_search", "check_budget"]


def check_budget(n: int, m: int) -> None:
    """Raise :class:`ConfigError` unless ``m`` divides ``n`` (both positive).

    Example:
        >>> check_budget(8, 4)
    """
    if not (isinstance(n, int) and isinstance(m, int) and 1 <= m <= n and n % m == 0):
        raise ConfigError(
            "n must be a positive multiple of the beam width m",
            got={"n": n, "m": m},
            expected="1 <= m <= n and n % m == 0",
            fix="e.g. n=16 m=4",
        )


def beam_search(
    problem: Problem,
    generator: Generator,
    scorer: IncrementalScorer,
    *,
    n: int = 8,
    m: int = 4,
    **kwargs: Any,
) -> SearchResult:
    """Beam search one problem; ``kwargs`` pass to :func:`~prmkit.search.engine.tree_search`.

    Raises:
        ConfigError: ``m`` does not divide ``n``.
    """
    check_budget(n, m)
    return tree_search(
        problem,
        generator,
        scorer,
        method="beam",
        groups=1,
        keep=n // m,
        width=m,
        settings={"n": n, "m": m},
        **kwargs,
    )
