"""PRM-guided search over the Generator protocol: beam search, DVTS, reward-guided greedy.

One function, :func:`search`, runs the method ``SearchConfig.method`` names; the algorithms
follow huggingface/search-and-learn (``n`` continuations per beam-search round, DVTS subtrees
that continue their best child until it finishes, naive / PRM-weighted / majority answers over
``n`` candidates), and :func:`apply_preset` gives its settings. Each step is scored once
(:class:`prmkit.score.IncrementalPRMScorer`: the PRM's KV cache of the prefix is kept, only
new tokens run), and every output record carries the exact compute in ``meta["compute"]``.
:func:`compare_with_best_of_n` runs best-of-N at the same policy tokens. :func:`run_search` is
the whole ``prmkit search`` stage: load the models, search, write the records.

Example:
    >>> from prmkit.score import IncrementalPRMScorer
    >>> from prmkit.search import SearchConfig, search
    >>> scorer = IncrementalPRMScorer.from_checkpoint("runs/prm")  # doctest: +SKIP
    >>> cfg = SearchConfig(method="beam", n=8, m=4)
    >>> (result,) = search([problem], generator, scorer, cfg)  # doctest: +SKIP
    >>> result.record.meta["selection"]["majority"]["answer"]  # doctest: +SKIP
    '7'
"""

from prmkit.search.compare import (
    check_correct,
    compare_with_best_of_n,
    mark_correct,
    matched_best_of_n,
)
from prmkit.search.config import SearchConfig, check_budget
from prmkit.search.engine import Beam, Compute, Rounds, SearchResult, round_seed
from prmkit.search.methods import search
from prmkit.search.presets import PRESETS, apply_preset, preset
from prmkit.search.run import run_search, summary_text
from prmkit.search.select import Selection, select_answers

__all__ = [
    "PRESETS",
    "Beam",
    "Compute",
    "Rounds",
    "SearchConfig",
    "SearchResult",
    "Selection",
    "apply_preset",
    "check_budget",
    "check_correct",
    "compare_with_best_of_n",
    "mark_correct",
    "matched_best_of_n",
    "preset",
    "round_seed",
    "run_search",
    "search",
    "select_answers",
    "summary_text",
]

from prmkit._stages import callable_stage

callable_stage(__name__, "search")
