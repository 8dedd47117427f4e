"""The config of PRM-guided search: :class:`SearchConfig`, shared by :func:`~prmkit.search.search`,
:func:`~prmkit.search.run_search` and ``prmkit search``.

The policy and its sampling are the shared groups (``policy.model=...``, ``sampling.top_p=...``);
the PRM runs on the policy's device and dtype. ``sampling.max_new_tokens`` is the token budget
of a whole-solution continuation (the last round, and each best-of-N sample); ``step_tokens``
bounds the step of every other round.

Example:
    >>> cfg = SearchConfig(method="dvts", n=16, m=4)
    >>> cfg.sampling.temperature, cfg.sampling.max_new_tokens
    (0.8, 256)
    >>> SearchConfig(n=6, m=4)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    prmkit.errors.ConfigError: n must be a positive multiple of the beam width m ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError
from prmkit.generate.protocol import SamplingParams
from prmkit.models import PolicyConfig

__all__ = ["Method", "SearchConfig", "check_budget"]

Method = Literal["beam", "dvts", "greedy"]


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


@dataclass
class SearchConfig:
    """Settings of a PRM-guided search (the keys of ``prmkit search``).

    :func:`~prmkit.search.search` reads the method's settings (``method`` to ``sort_completed``);
    :func:`~prmkit.search.run_search` reads the rest too (files, models, best-of-N comparison).
    """

    method: Method = option("beam", "search method")
    preset: Literal["prmkit", "search-and-learn"] = option(
        "prmkit", "settings to start from; keys you give override it (see docs/search.md)"
    )
    problems: str = option("", "input: Problem records (JSONL/Parquet) or JSONL with 'prompt'")
    prm: str = option("", "PRM checkpoint directory (prmkit train output)")
    policy: PolicyConfig = field(
        default_factory=PolicyConfig,
        metadata={"help": "the policy model (the PRM runs on its device and dtype)"},
    )
    out: str = option("search.jsonl", "output: one ScoredTrace per problem")
    n: int = option(8, "beam/dvts: total beams per round (the budget)", ge=1)
    m: int = option(4, "beam/dvts: beam width (children per kept beam)", ge=1)
    k: int = option(4, "greedy: candidate steps per round", ge=1)
    max_steps: int = option(12, "rounds; the last one completes each solution", ge=1)
    step_tokens: int = option(96, "token budget of one step (every round but the last)", ge=1)
    sampling: SamplingParams = field(
        default_factory=lambda: SamplingParams(temperature=0.8),
        metadata={
            "help": "policy sampling; max_new_tokens is the last round's (and a best-of-N "
            "sample's) token budget, seed the base of every round's seed"
        },
    )
    aggregation: Literal["min", "prod", "last", "mean"] | None = option(
        None, "trace score from step scores (None: the PRM spec's default)"
    )
    cut_steps: Literal["continue", "finish"] = option(
        "continue", "a step cut at step_tokens: continue it, or finish the beam"
    )
    filter_duplicates: bool = option(False, "beam: drop unfinished beams with equal steps")
    sort_completed: bool = option(
        True, "beam: candidates are the n best completed (False: the first n completed)"
    )
    limit: int | None = option(None, "use only the first N problems", ge=1)
    prm_mode: Literal["auto", "kv", "recompute"] = option(
        "auto", "incremental scoring: kv cache of the prefix, or recompute (see docs/search.md)"
    )
    prm_batch_size: int = option(16, "PRM rows per forward pass", ge=1)
    batch_size: int = option(32, "policy rows decoded together", ge=1)
    system: str | None = option(None, "policy system message (None: the template's default)")
    chat: bool = option(True, "render policy prompts with the chat template")
    check: bool = option(True, "set meta['correct'] (exact checker on the arithmetic task)")
    compare_bon: bool = option(False, "also run best-of-N at equal policy tokens")
    compare_out: str = option("search_vs_bon.json", "comparison result JSON")
    match: Literal["completion", "total"] = option(
        "completion", "tokens matched: completion, or prompt + completion"
    )
    bon_max_n: int = option(64, "best-of-N: most samples per problem", ge=1)
    bon_out: str | None = option(None, "best-of-N: write its scored samples here")

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.method != "greedy":
            check_budget(self.n, self.m)
        if self.sampling.seed is None:
            raise ConfigError(
                "search needs a sampling seed",
                got=None,
                expected="an integer >= 0 (each round's seed derives from it)",
                fix="set sampling.seed=0 (or another integer)",
            )
        if self.sampling.ignore_eos:
            raise ConfigError(
                "search cannot sample past the end of a solution",
                got={"sampling.ignore_eos": True},
                expected="sampling.ignore_eos=false (a beam ends at the end token)",
                fix="remove sampling.ignore_eos",
            )
