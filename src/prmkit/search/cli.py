"""``prmkit search``: PRM-guided search (beam, DVTS, greedy), optionally against best-of-N.

Writes one ScoredTrace per problem (the naive pick: the highest-scoring candidate) with the
exact compute in ``meta["compute"]``, the naive, PRM-weighted and majority answers in
``meta["selection"]``, and ``meta["correct"]`` (``correct_weighted``, ``correct_majority``) when
the problem has an answer. ``--preset search-and-learn`` starts from search-and-learn's settings
(:mod:`prmkit.search.presets`); YAML keys and ``key=value`` overrides still win. With
``--compare-bon`` it also runs best-of-N at the same policy tokens per problem and writes the
accuracies to ``compare_out`` (a JSON with ``"benchmark": "search_vs_bon"``).

Example:
    prmkit search --method beam --problems problems.jsonl --prm runs/prm --policy smollm2 \\
        --out runs/search/beam.jsonl n=8 m=4 adapter=~/.cache/prmkit/adapters/xyz \\
        --compare-bon --compare-out runs/search/beam_vs_bon.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from dataclasses import dataclass
from typing import Any, Literal

from prmkit.cli import add_config_arguments, stage_config
from prmkit.config import Dtype, check_ranges, option
from prmkit.errors import ConfigError
from prmkit.search.presets import PRESETS, preset_config

__all__ = ["SearchConfig", "add_arguments", "run"]

METHODS = ("beam", "dvts", "greedy")


@dataclass
class SearchConfig:
    """Config of ``prmkit search``."""

    method: Literal["beam", "dvts", "greedy"] = option("beam", "search method")
    preset: Literal["prmkit", "search-and-learn"] = option(
        "prmkit", "settings to start from; keys you give override it (see docs/search.md)"
    )
    problems: str = option("", "input: Problem records (JSONL/Parquet) or JSONL with 'prompt'")
    prm: str = option("", "PRM checkpoint directory (prmkit train output)")
    policy: str = option("smollm2", "policy model: 'smollm2' or a local HF directory")
    adapter: str | None = option(None, "LoRA adapter directory merged into the policy")
    out: str = option("search.jsonl", "output: one ScoredTrace per problem")
    n: int = option(8, "beam/dvts: total beams per round (the budget)", ge=1)
    m: int = option(4, "beam/dvts: beam width (children per kept beam)", ge=1)
    k: int = option(4, "greedy: candidate steps per round", ge=1)
    max_steps: int = option(12, "rounds; the last one completes each solution", ge=1)
    step_tokens: int = option(96, "token budget of one step", ge=1)
    final_tokens: int = option(256, "token budget of the last round's continuation", ge=1)
    temperature: float = option(0.8, "sampling temperature (0 = greedy)", ge=0)
    top_p: float = option(1.0, "nucleus sampling mass (1 = off)", gt=0, le=1)
    top_k: int = option(0, "top-k sampling (0 = off)", ge=0)
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
    seed: int = option(0, "seed; the same seed and inputs give the same output", ge=0)
    limit: int | None = option(None, "use only the first N problems", ge=1)
    prm_mode: Literal["auto", "kv", "recompute"] = option(
        "auto", "incremental scoring: kv cache of the prefix, or recompute (see docs/search.md)"
    )
    prm_batch_size: int = option(16, "PRM rows per forward pass", ge=1)
    batch_size: int = option(32, "policy rows decoded together", ge=1)
    device: str = option("cpu", "torch device for both models")
    dtype: Dtype = option("float32", "torch dtype for both models")
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


_FLAGS = ("method", "preset", "problems", "prm", "policy", "out", "compare_out")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``key=value`` overrides, and flags for the common keys."""
    add_config_arguments(parser, SearchConfig)
    parser.add_argument("--method", choices=METHODS, default=None, help="search method")
    parser.add_argument(
        "--preset", choices=PRESETS, default=None, help="settings to start from (default prmkit)"
    )
    parser.add_argument("--problems", default=None, help="Problem records file")
    parser.add_argument("--prm", default=None, help="PRM checkpoint directory")
    parser.add_argument("--policy", default=None, help="policy: smollm2 or a local HF dir")
    parser.add_argument("--out", default=None, help="output ScoredTrace file")
    parser.add_argument(
        "--compare-bon", action="store_true", help="also run best-of-N at equal policy tokens"
    )
    parser.add_argument("--compare-out", default=None, help="comparison JSON path")


def _given_keys(args: argparse.Namespace) -> set[str]:
    """The config keys the user set: the ``--config`` file's, the overrides' and the flags'."""
    import yaml

    keys = {f for f in _FLAGS if getattr(args, f, None) is not None}
    if getattr(args, "config", None):
        with open(args.config, encoding="utf-8") as fh:
            keys |= set(yaml.safe_load(fh) or {})
    keys |= {item.partition("=")[0].strip() for item in getattr(args, "overrides", None) or ()}
    return keys


def _config(args: argparse.Namespace) -> SearchConfig:
    cfg = stage_config(SearchConfig, args)
    changes: dict[str, Any] = {
        f: getattr(args, f) for f in _FLAGS if getattr(args, f, None) is not None
    }
    if getattr(args, "compare_bon", False):
        changes["compare_bon"] = True
    cfg = dataclasses.replace(cfg, **changes)
    if cfg.preset != "prmkit":
        given = _given_keys(args)
        values = preset_config(cfg.preset, cfg.method)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in values.items() if k not in given})
    for key in ("problems", "prm"):
        if not getattr(cfg, key):
            raise ConfigError(
                f"no {key} given",
                got=getattr(cfg, key),
                expected=f"--{key} PATH (or {key}=PATH)",
                fix=f"pass the {key} path",
            )
    return cfg


def search_fn(cfg: SearchConfig, generator: Any, scorer: Any, aggregation: str) -> Any:
    """``problem -> SearchResult`` for the configured method."""
    from prmkit.search.beam import beam_search
    from prmkit.search.dvts import dvts
    from prmkit.search.greedy import greedy_search

    common = {
        "max_steps": cfg.max_steps,
        "step_tokens": cfg.step_tokens,
        "final_tokens": cfg.final_tokens,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "top_k": cfg.top_k,
        "aggregation": aggregation,
        "seed": cfg.seed,
        "cut_steps": cfg.cut_steps,
    }
    if cfg.method == "beam":
        fn = functools.partial(
            beam_search,
            n=cfg.n,
            m=cfg.m,
            filter_duplicates=cfg.filter_duplicates,
            sort_completed=cfg.sort_completed,
            **common,
        )
    elif cfg.method == "dvts":
        fn = functools.partial(dvts, n=cfg.n, m=cfg.m, **common)
    else:
        fn = functools.partial(greedy_search, k=cfg.k, **common)
    return lambda problem: fn(problem, generator, scorer)


def run(args: argparse.Namespace) -> int:
    """Run the stage; returns the exit code."""
    from tqdm import tqdm

    from prmkit.generate.cli import read_problems
    from prmkit.generate.transformers_backend import TransformersGenerator
    from prmkit.io import write_json
    from prmkit.records import write_records
    from prmkit.search.beam import check_budget
    from prmkit.search.compare import compare_with_best_of_n, mark_correct
    from prmkit.search.incremental import IncrementalPRMScorer

    cfg = _config(args)
    if cfg.method != "greedy":
        check_budget(cfg.n, cfg.m)
    problems = read_problems(cfg.problems, cfg.limit)
    scorer = IncrementalPRMScorer.from_checkpoint(
        cfg.prm,
        device=cfg.device,
        dtype=cfg.dtype,
        mode=cfg.prm_mode,
        batch_size=cfg.prm_batch_size,
    )
    aggregation = cfg.aggregation or scorer.prm.spec.aggregation
    generator = TransformersGenerator.from_pretrained(
        cfg.policy,
        adapter=cfg.adapter,
        dtype=cfg.dtype,
        device=cfg.device,
        batch_size=cfg.batch_size,
        system=cfg.system,
        chat=cfg.chat,
    )
    search = search_fn(cfg, generator, scorer, aggregation)
    bar = tqdm(problems, desc=f"search {cfg.method}", unit="problem", file=sys.stderr)
    if cfg.compare_bon:
        result, records, bon_records = compare_with_best_of_n(
            list(bar),
            generator,
            scorer,
            search,
            method=cfg.method,
            match=cfg.match,
            aggregation=aggregation,
            settings=dataclasses.asdict(cfg),
            max_n=cfg.bon_max_n,
            max_new_tokens=cfg.final_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=cfg.top_k,
            seed=cfg.seed,
        )
        write_json(cfg.compare_out, result)
        if cfg.bon_out:
            write_records(cfg.bon_out, bon_records)
        print(_table(cfg.method, result))
        print(
            f"at {result['budget']['search_tokens']} vs {result['budget']['bon_tokens']} "
            f"{cfg.match} tokens; wrote {cfg.compare_out}"
        )
    else:
        records = []
        for problem in bar:
            r = search(problem)
            if r.record is None:
                continue
            if cfg.check and problem.answer:
                mark_correct(problem, r)
            records.append(r.record)
    n = write_records(cfg.out, records)
    total = {
        key: sum(r.meta["compute"][key] for r in records)
        for key in (
            "policy_completion_tokens",
            "policy_prompt_tokens",
            "policy_prompt_tokens_prefix_cached",
            "prm_tokens",
        )
    }
    print(
        f"wrote {n} solutions for {len(problems)} problems to {cfg.out} "
        f"({total['policy_completion_tokens']} policy completion tokens; prompt tokens "
        f"{total['policy_prompt_tokens']} as reported, "
        f"{total['policy_prompt_tokens_prefix_cached']} with prefix-cache credit; "
        f"{total['prm_tokens']} PRM tokens, scorer mode {scorer.mode})"
    )
    checked = [r for r in records if "correct" in r.meta]
    if checked and not cfg.compare_bon:
        acc = {
            rule: 100.0 * sum(bool(r.meta[key]) for r in checked) / len(checked)
            for rule, key in _RULE_KEYS
        }
        print(f"accuracy over {len(checked)} checked problems: " + _accuracies(acc))
    return 0


_RULE_KEYS = (
    ("naive", "correct"),
    ("weighted", "correct_weighted"),
    ("majority", "correct_majority"),
)


def _accuracies(acc: dict[str, float]) -> str:
    return ", ".join(f"{rule} {value:.1f}%" for rule, value in acc.items())


def _table(method: str, result: dict[str, Any]) -> str:
    """The comparison's accuracies: one row per answer rule, search vs best-of-N."""
    s, b = result["search"], result["best_of_n"]
    lines = [f"{'answer':<10} {method + ' %':>10} {'best-of-N %':>12}"]
    for rule, s_key, b_key in (
        ("naive", "accuracy", "accuracy_prm"),
        ("weighted", "accuracy_weighted", "accuracy_weighted"),
        ("majority", "accuracy_majority", "accuracy_majority"),
    ):
        lines.append(f"{rule:<10} {s[s_key]:>10.1f} {b[b_key]:>12.1f}")
    return "\n".join(lines)
