"""Step-level beam search as in search-and-learn: ``n`` active continuations every round.

Each round every active beam is continued by one step so that the round produces ``n`` new
steps in all: the first round samples ``n`` first steps from the prompt; later rounds continue
the kept beams, ``n / len(kept)`` times each (the first ``n % len(kept)`` once more), which is
``m`` times each when ``n / m`` beams are kept. Only the new steps are scored. A child that ended
its solution is completed; of the unfinished children (duplicates dropped first with
``filter_duplicates``) the ``n / m`` best by aggregated score are kept (ties: the earlier child).
The search stops when a round leaves no unfinished child, or after ``max_steps`` rounds (the
last one completes every solution).

The candidates are ``n`` completed solutions: the ``n`` best (``sort_completed=True``, prmkit's
default) or the first ``n`` completed (search-and-learn's default), repeated in order up to ``n``
when fewer completed. The record is the highest-scoring candidate; the weighted and majority
answers are in ``meta["selection"]`` (:mod:`prmkit.search.select`).

Example:
    >>> result = beam_search(problem, generator, scorer, n=8, m=4)  # doctest: +SKIP
    >>> result.record.meta["selection"]["majority"]["answer"]  # doctest: +SKIP
    '7'
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import ConfigError
from prmkit.generate.protocol import Generator
from prmkit.records import Problem
from prmkit.search.engine import Beam, Rounds, SearchResult
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


def _first_unique(beams: list[Beam]) -> list[Beam]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for b in beams:
        if b.state.steps not in seen:
            seen.add(b.state.steps)
            out.append(b)
    return out


def beam_search(
    problem: Problem,
    generator: Generator,
    scorer: IncrementalScorer,
    *,
    n: int = 8,
    m: int = 4,
    filter_duplicates: bool = False,
    sort_completed: bool = True,
    **kwargs: Any,
) -> SearchResult:
    """Beam search one problem; ``kwargs`` pass to :class:`~prmkit.search.engine.Rounds`.

    Args:
        problem: The problem.
        generator: The policy.
        scorer: The incremental PRM.
        n: Continuations per round, and candidates at the end.
        m: Beam width: ``n / m`` beams are kept each round.
        filter_duplicates: Drop unfinished children whose steps equal an earlier child's.
        sort_completed: Candidates are the ``n`` best completed (else the first ``n``).
        kwargs: ``max_steps``, ``step_tokens``, ``final_tokens``, ``temperature``, ``top_p``,
            ``top_k``, ``aggregation``, ``seed``, ``cut_steps``.

    Raises:
        ConfigError: ``m`` does not divide ``n``, or a bad setting (see ``Rounds``).
    """
    check_budget(n, m)
    run = Rounds(problem, generator, scorer, **kwargs)
    keep = n // m
    active: list[Beam] = [run.root()]
    completed: list[Beam] = []
    for rnd in range(run.max_steps):
        if not active:
            break
        k = len(active)
        counts = [n // k + (i < n % k) for i in range(k)]
        kids = run.expand(list(zip(active, counts, strict=True)), rnd)
        # search-and-learn's order: the round's n beams are the kept ones repeated in turn
        children = [kids[i][c] for c in range(max(counts)) for i in range(k) if c < len(kids[i])]
        completed += [b for b in children if b.done]
        unfinished = [b for b in children if not b.done]
        if filter_duplicates:
            unfinished = _first_unique(unfinished)
        top = sorted(range(len(unfinished)), key=lambda i: (-unfinished[i].score, i))[:keep]
        active = [unfinished[i] for i in sorted(top)]
    finished = sorted(completed, key=lambda b: -b.score)  # stable: ties keep completion order
    pool = finished[:n] if sort_completed else completed[:n]
    candidates = [pool[i % len(pool)] for i in range(n)] if pool else []
    settings = {"n": n, "m": m, "filter_duplicates": filter_duplicates}
    settings["sort_completed"] = sort_completed
    return run.result("beam", candidates, finished, settings)
