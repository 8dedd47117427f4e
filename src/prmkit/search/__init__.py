"""PRM-guided search over the Generator protocol: beam search, DVTS, reward-guided greedy.

The algorithms follow huggingface/search-and-learn (``n`` continuations per beam-search round,
DVTS subtrees that continue their best child until it finishes, naive / PRM-weighted / majority
answers over ``n`` candidates); :func:`preset` gives its settings. Each step is scored once
(:mod:`prmkit.search.incremental`: the PRM's KV cache of the prefix is kept, only new tokens
run), and every output record carries the exact compute in ``meta["compute"]``.
:mod:`prmkit.search.compare` runs best-of-N at the same policy tokens.

Example:
    >>> from prmkit.search import IncrementalPRMScorer, beam_search  # doctest: +SKIP
    >>> scorer = IncrementalPRMScorer.from_checkpoint("runs/prm")  # doctest: +SKIP
    >>> beam_search(problem, generator, scorer, n=8, m=4).record  # doctest: +SKIP
"""

from prmkit.search.beam import beam_search, check_budget
from prmkit.search.compare import (
    check_correct,
    compare_with_best_of_n,
    mark_correct,
    matched_best_of_n,
)
from prmkit.search.dvts import dvts
from prmkit.search.engine import Beam, Compute, Rounds, SearchResult, round_seed
from prmkit.search.greedy import greedy_search
from prmkit.search.incremental import (
    IncrementalPRMScorer,
    IncrementalScorer,
    ScoreCost,
    ScoreState,
)
from prmkit.search.presets import PRESETS, preset
from prmkit.search.select import Selection, select_answers

__all__ = [
    "PRESETS",
    "Beam",
    "Compute",
    "IncrementalPRMScorer",
    "IncrementalScorer",
    "Rounds",
    "ScoreCost",
    "ScoreState",
    "SearchResult",
    "Selection",
    "beam_search",
    "check_budget",
    "check_correct",
    "compare_with_best_of_n",
    "dvts",
    "greedy_search",
    "mark_correct",
    "matched_best_of_n",
    "preset",
    "round_seed",
    "select_answers",
]
