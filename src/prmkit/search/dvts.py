"""Diverse verifier tree search (DVTS) as in search-and-learn: ``n / m`` independent subtrees.

Each subtree holds one beam. Each round the beam is continued ``m`` times, only the new steps
are scored, and the beam becomes its best child by aggregated score (ties: the earlier child),
finished or not. A subtree ends when its chosen child has finished (ended the solution, or the
last round), or when its text holds ``boxed{`` (a boxed final answer, as search-and-learn); the
other subtrees go on. The subtrees never compete, so one high-scoring line of reasoning cannot
take over the whole budget.

The candidates are the ``m`` children of each subtree's last expansion (``n`` in all, the
chosen one among them, the siblings possibly unfinished), as search-and-learn returns them; the
record is the highest-scoring one, and the weighted and majority answers are in
``meta["selection"]``.

Example:
    >>> result = dvts(problem, generator, scorer, n=8, m=4)  # doctest: +SKIP
    >>> len(result.candidates)  # doctest: +SKIP
    8
"""

from __future__ import annotations

from typing import Any

from prmkit.generate.protocol import Generator
from prmkit.records import Problem
from prmkit.search.beam import check_budget
from prmkit.search.engine import Beam, Rounds, SearchResult
from prmkit.search.incremental import IncrementalScorer
from prmkit.steps import join_steps

__all__ = ["dvts", "subtree_search"]


def subtree_search(
    run: Rounds, method: str, groups: int, width: int, settings: dict[str, Any]
) -> SearchResult:
    """``groups`` subtrees, each continuing its best of ``width`` children until it finishes."""
    current = [run.root(g) for g in range(groups)]
    last_children: list[list[Beam]] = [[] for _ in range(groups)]
    alive = list(range(groups))
    for rnd in range(run.max_steps):
        if not alive:
            break
        kids = run.expand([(current[g], width) for g in alive], rnd)
        still = []
        for g, children in zip(alive, kids, strict=True):
            if not children:  # every completion was empty: the subtree ends where it is
                continue
            best = max(range(len(children)), key=lambda i: (children[i].score, -i))
            chosen = children[best]
            current[g], last_children[g] = chosen, children
            if "boxed{" in join_steps(list(chosen.state.steps)):
                chosen.done = True
            if not chosen.done:
                still.append(g)
        alive = still
    candidates = [b for g in range(groups) for b in last_children[g]]
    finished = sorted((b for b in candidates if b.done), key=lambda b: -b.score)
    return run.result(method, candidates, finished, settings)


def dvts(
    problem: Problem,
    generator: Generator,
    scorer: IncrementalScorer,
    *,
    n: int = 8,
    m: int = 4,
    **kwargs: Any,
) -> SearchResult:
    """DVTS on one problem; ``kwargs`` pass to :class:`~prmkit.search.engine.Rounds`.

    Raises:
        ConfigError: ``m`` does not divide ``n``, or a bad setting (see ``Rounds``).
    """
    check_budget(n, m)
    run = Rounds(problem, generator, scorer, **kwargs)
    return subtree_search(run, "dvts", n // m, m, {"n": n, "m": m})
