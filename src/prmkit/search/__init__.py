"""PRM-guided search over the Generator protocol: beam search, DVTS, reward-guided greedy.

Each step is scored once (:mod:`prmkit.search.incremental`: the PRM's KV cache of the prefix is
kept, only new tokens run), and every output record carries the exact compute in
``meta["compute"]``. :mod:`prmkit.search.compare` runs best-of-N at the same policy tokens.

Example:
    >>> from prmkit.search import IncrementalPRMScorer, beam_search  # doctest: +SKIP
    >>> scorer = IncrementalPRMScorer.from_checkpoint("runs/prm")  # doctest: +SKIP
    >>> beam_search(problem, generator, scorer, n=8, m=4).record  # doctest: +SKIP
"""

from prmkit.search.beam import beam_search, check_budget
from prmkit.search.compare import check_correct, compare_with_best_of_n, matched_best_of_n
from prmkit.search.dvts import dvts
from prmkit.search.engine import Beam, Compute, SearchResult, round_seed, tree_search
from prmkit.search.greedy import greedy_search
from prmkit.search.incremental import (
    IncrementalPRMScorer,
    IncrementalScorer,
    ScoreCost,
    ScoreState,
)

__all__ = [
    "Beam",
    "Compute",
    "IncrementalPRMScorer",
    "IncrementalScorer",
    "ScoreCost",
    "ScoreState",
    "SearchResult",
    "beam_search",
    "check_budget",
    "check_correct",
    "compare_with_best_of_n",
    "dvts",
    "greedy_search",
    "matched_best_of_n",
    "round_seed",
    "tree_search",
]
