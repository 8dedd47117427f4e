"""``beam_search(problem, ...)``: one problem, :func:`prmkit.search.search` with ``method="beam"``.

A thin wrapper kept until ``prmkit.demo`` calls :func:`prmkit.search.search`; new code uses that.
"""

from __future__ import annotations

from typing import Literal

from prmkit.generate.protocol import Generator, SamplingParams
from prmkit.records import Problem
from prmkit.score.incremental import IncrementalScorer
from prmkit.search.config import SearchConfig
from prmkit.search.engine import SearchResult
from prmkit.search.methods import search

__all__ = ["beam_search"]


def beam_search(
    problem: Problem,
    generator: Generator,
    scorer: IncrementalScorer,
    *,
    n: int = 8,
    m: int = 4,
    max_steps: int = 12,
    step_tokens: int = 96,
    final_tokens: int = 256,
    temperature: float = 0.8,
    top_p: float = 1.0,
    top_k: int = 0,
    aggregation: Literal["min", "prod", "last", "mean"] | None = None,
    seed: int = 0,
    cut_steps: Literal["continue", "finish"] = "continue",
    filter_duplicates: bool = False,
    sort_completed: bool = True,
) -> SearchResult:
    """Beam search one problem (``final_tokens`` is ``sampling.max_new_tokens``).

    Raises:
        ConfigError: ``m`` does not divide ``n``, or another bad setting.
    """
    cfg = SearchConfig(
        method="beam",
        n=n,
        m=m,
        max_steps=max_steps,
        step_tokens=step_tokens,
        sampling=SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=final_tokens,
            seed=seed,
        ),
        aggregation=aggregation,
        cut_steps=cut_steps,
        filter_duplicates=filter_duplicates,
        sort_completed=sort_completed,
    )
    (result,) = search([problem], generator, scorer, cfg)
    return result
