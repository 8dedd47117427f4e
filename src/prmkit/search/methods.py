"""One search function, three methods (``SearchConfig.method``), as in search-and-learn.

* ``beam``: ``n`` active continuations every round. The first round samples ``n`` first steps
  from the prompt; later rounds continue the kept beams, ``n / len(kept)`` times each (the first
  ``n % len(kept)`` once more), which is ``m`` times each when ``n / m`` beams are kept. A child
  that ended its solution is completed; of the unfinished children (duplicates dropped first
  with ``filter_duplicates``) the ``n / m`` best by aggregated score are kept (ties: the earlier
  child). The search stops when a round leaves no unfinished child, or after ``max_steps``
  rounds (the last one completes every solution). The candidates are ``n`` completed solutions:
  the ``n`` best (``sort_completed=True``, prmkit's default) or the first ``n`` completed
  (search-and-learn's default), repeated in order up to ``n`` when fewer completed.
* ``dvts`` (diverse verifier tree search): ``n / m`` independent subtrees of one beam each. Each
  round the beam is continued ``m`` times and becomes its best child (ties: the earlier child),
  finished or not. A subtree ends when its chosen child has finished (ended the solution, or the
  last round) or its text holds ``boxed{`` (a boxed final answer, as search-and-learn); the
  others go on, so one high-scoring line of reasoning cannot take over the whole budget. The
  candidates are the ``m`` children of each subtree's last expansion (``n`` in all, the chosen
  one among them, the siblings possibly unfinished), as search-and-learn returns them.
* ``greedy`` (reward-guided greedy): DVTS with a single subtree of width ``k``.

Only the new steps of a round are scored (:class:`~prmkit.score.incremental.IncrementalScorer`).
The record of a problem is its highest-scoring candidate; the weighted and majority answers are
in ``meta["selection"]`` (:mod:`prmkit.search.select`), the exact cost in ``meta["compute"]``.

Example:
    >>> from prmkit.score import IncrementalPRMScorer  # doctest: +SKIP
    >>> scorer = IncrementalPRMScorer.from_checkpoint("runs/prm")  # doctest: +SKIP
    >>> cfg = SearchConfig(method="dvts", n=8, m=4)
    >>> (result,) = search([problem], generator, scorer, cfg)  # doctest: +SKIP
    >>> result.record.meta["selection"]["majority"]["answer"]  # doctest: +SKIP
    '7'
"""

from __future__ import annotations

from collections.abc import Sequence

from prmkit.errors import ConfigError
from prmkit.generate.protocol import Generator
from prmkit.records import Problem
from prmkit.score.incremental import IncrementalPRMScorer, IncrementalScorer
from prmkit.search.config import SearchConfig
from prmkit.search.engine import Beam, Rounds, SearchResult
from prmkit.steps import join_steps

__all__ = ["search"]


def search(
    problems: Sequence[Problem],
    generator: Generator,
    scorer: IncrementalScorer,
    cfg: SearchConfig | None = None,
) -> list[SearchResult]:
    """Search each problem with the method and settings of ``cfg``; one result per problem.

    Reads ``cfg.method`` and its settings (``n``, ``m``, ``k``, ``max_steps``, ``step_tokens``,
    ``sampling``, ``aggregation``, ``cut_steps``, ``filter_duplicates``, ``sort_completed``);
    the file and model keys are :func:`~prmkit.search.run_search`'s. A problem's result depends
    only on it and the settings, not on the other problems (see
    :func:`~prmkit.search.engine.round_seed`).

    Args:
        problems: The problems; each ``prompt`` goes to both the policy and the PRM.
        generator: The policy.
        scorer: The incremental PRM.
        cfg: The settings (default: ``SearchConfig()``, beam search ``n=8 m=4``).

    Returns:
        One :class:`~prmkit.search.engine.SearchResult` per problem, in order: the record (the
        naive pick as a ScoredTrace), the candidates, each rule's pick and the exact compute.

    Raises:
        ConfigError: ``aggregation`` unset and the scorer has no PRM spec to take it from.

    Example:
        >>> cfg = SearchConfig(method="greedy", k=4, max_steps=8)
        >>> results = search(problems, generator, scorer, cfg)  # doctest: +SKIP
        >>> results[0].record.meta["compute"]["policy_completion_tokens"]  # doctest: +SKIP
        412
    """
    cfg = cfg if cfg is not None else SearchConfig()
    aggregation = _aggregation(cfg, scorer)
    out = []
    for problem in problems:
        run = Rounds(
            problem,
            generator,
            scorer,
            max_steps=cfg.max_steps,
            step_tokens=cfg.step_tokens,
            sampling=cfg.sampling,
            aggregation=aggregation,
            cut_steps=cfg.cut_steps,
        )
        if cfg.method == "beam":
            out.append(_beam(run, cfg))
        elif cfg.method == "dvts":
            out.append(_subtrees(run, "dvts", cfg.n // cfg.m, cfg.m, {"n": cfg.n, "m": cfg.m}))
        else:
            out.append(_subtrees(run, "greedy", 1, cfg.k, {"k": cfg.k}))
    return out


def _aggregation(cfg: SearchConfig, scorer: IncrementalScorer) -> str:
    """The configured aggregation, or the PRM spec's default."""
    if cfg.aggregation is not None:
        return cfg.aggregation
    if isinstance(scorer, IncrementalPRMScorer):
        return scorer.prm.spec.aggregation
    raise ConfigError(
        "no aggregation for this scorer",
        got={"aggregation": None, "scorer": type(scorer).__name__},
        expected="aggregation set, or a scorer with a PRM spec (IncrementalPRMScorer)",
        fix="set aggregation=min (or prod, last, mean)",
    )


def _first_unique(beams: list[Beam]) -> list[Beam]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for b in beams:
        if b.state.steps not in seen:
            seen.add(b.state.steps)
            out.append(b)
    return out


def _beam(run: Rounds, cfg: SearchConfig) -> SearchResult:
    """Beam search one problem (the module doc says how)."""
    n, keep = cfg.n, cfg.n // cfg.m
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
        if cfg.filter_duplicates:
            unfinished = _first_unique(unfinished)
        top = sorted(range(len(unfinished)), key=lambda i: (-unfinished[i].score, i))[:keep]
        active = [unfinished[i] for i in sorted(top)]
    finished = sorted(completed, key=lambda b: -b.score)  # stable: ties keep completion order
    pool = finished[:n] if cfg.sort_completed else completed[:n]
    candidates = [pool[i % len(pool)] for i in range(n)] if pool else []
    settings = {
        "n": n,
        "m": cfg.m,
        "filter_duplicates": cfg.filter_duplicates,
        "sort_completed": cfg.sort_completed,
    }
    return run.result("beam", candidates, finished, settings)


def _subtrees(
    run: Rounds, method: str, groups: int, width: int, settings: dict[str, int]
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
