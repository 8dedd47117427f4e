"""The search stage: load the policy and the PRM, search every problem, write the records.

Writes one ScoredTrace per problem (the naive pick: the highest-scoring candidate) with the
exact compute in ``meta["compute"]``, the naive, PRM-weighted and majority answers in
``meta["selection"]``, and ``meta["correct"]`` (``correct_weighted``, ``correct_majority``) when
the problem has an answer. With ``compare_bon`` it also runs best-of-N at the same policy
tokens per problem and writes the accuracies to ``compare_out`` (a JSON with ``"benchmark":
"search_vs_bon"``, :mod:`prmkit.search.compare`).

Example:
    >>> from prmkit.search import SearchConfig, run_search, summary_text
    >>> cfg = SearchConfig(method="dvts", problems="problems.jsonl", prm="runs/prm", n=16, m=4)
    >>> summary = run_search(cfg)  # doctest: +SKIP
    >>> print(summary_text(summary))  # doctest: +SKIP
    wrote 20 solutions for 20 problems to search.jsonl (...)
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from prmkit.errors import ConfigError
from prmkit.records import Problem
from prmkit.search.config import SearchConfig

__all__ = ["run_search", "summary_text"]

_TOTALS = (
    "policy_completion_tokens",
    "policy_prompt_tokens",
    "policy_prompt_tokens_prefix_cached",
    "prm_tokens",
)
_RULE_KEYS = (
    ("naive", "correct"),
    ("weighted", "correct_weighted"),
    ("majority", "correct_majority"),
)


def run_search(
    cfg: SearchConfig, problems: Sequence[Problem] | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Run ``prmkit search``: search every problem, write ``cfg.out`` (and the comparison).

    Args:
        cfg: The settings; ``cfg.prm`` and, without ``problems``, ``cfg.problems`` are needed.
            A preset is applied when the config is built (:func:`~prmkit.search.apply_preset`).
        problems: The problems (default: read ``cfg.problems``, the first ``cfg.limit``).
        progress: Show a progress bar on stderr.

    Returns:
        What the command prints (:func:`summary_text`): ``method``, ``out``, ``n_records``,
        ``n_problems``, ``compute`` (the totals of the records), ``scorer_mode``, ``accuracy``
        (percent per rule over the checked problems, ``None`` when none was checked or with
        ``compare_bon``), ``n_checked``, ``match`` and ``comparison`` (the ``search_vs_bon``
        result with ``compare_bon``, else ``None``), ``compare_out``.

    Raises:
        ConfigError: no problems or PRM given.
        DataFormatError: a malformed problems file.
    """
    from tqdm import tqdm

    from prmkit.generate.transformers_backend import TransformersGenerator
    from prmkit.io import write_json
    from prmkit.records import write_records
    from prmkit.score.incremental import IncrementalPRMScorer
    from prmkit.search.compare import compare_with_best_of_n, mark_correct
    from prmkit.search.methods import _aggregation, search
    from prmkit.tasks import read_problems

    for key, given in (("problems", problems is not None or cfg.problems), ("prm", cfg.prm)):
        if not given:
            raise ConfigError(
                f"no {key} given",
                got=getattr(cfg, key),
                expected=f"--{key} PATH (or {key}=PATH)",
                fix=f"pass the {key} path",
            )
    if problems is None:
        problems = read_problems(cfg.problems, cfg.limit)
    policy = cfg.policy
    scorer = IncrementalPRMScorer.from_checkpoint(
        cfg.prm,
        device=policy.device,
        dtype=policy.dtype,
        mode=cfg.prm_mode,
        batch_size=cfg.prm_batch_size,
    )
    generator = TransformersGenerator.from_config(  # sets policy.threads first
        policy,
        batch_size=cfg.batch_size,
        system=cfg.system,
        chat=cfg.chat,
    )
    bar = tqdm(
        problems, desc=f"search {cfg.method}", unit="problem", file=sys.stderr, disable=not progress
    )
    comparison = None
    if cfg.compare_bon:
        s = cfg.sampling
        comparison, records, bon_records = compare_with_best_of_n(
            list(bar),
            generator,
            scorer,
            lambda problem: search([problem], generator, scorer, cfg)[0],
            method=cfg.method,
            match=cfg.match,
            aggregation=_aggregation(cfg, scorer),
            settings=dataclasses.asdict(cfg),
            max_n=cfg.bon_max_n,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            seed=s.seed,
        )
        write_json(cfg.compare_out, comparison)
        if cfg.bon_out:
            write_records(cfg.bon_out, bon_records)
    else:
        records = []
        for problem in bar:
            (r,) = search([problem], generator, scorer, cfg)
            if r.record is None:
                continue
            if cfg.check and problem.answer:
                mark_correct(problem, r)
            records.append(r.record)
    n = write_records(cfg.out, records)
    checked = [r for r in records if "correct" in r.meta]
    accuracy = None
    if checked and not cfg.compare_bon:
        accuracy = {
            rule: 100.0 * sum(bool(r.meta[key]) for r in checked) / len(checked)
            for rule, key in _RULE_KEYS
        }
    return {
        "method": cfg.method,
        "out": cfg.out,
        "n_records": n,
        "n_problems": len(problems),
        "compute": {key: sum(r.meta["compute"][key] for r in records) for key in _TOTALS},
        "scorer_mode": scorer.mode,
        "accuracy": accuracy,
        "n_checked": len(checked),
        "match": cfg.match,
        "comparison": comparison,
        "compare_out": cfg.compare_out if cfg.compare_bon else None,
    }


def summary_text(summary: dict[str, Any]) -> str:
    """The lines ``prmkit search`` prints for a :func:`run_search` summary."""
    lines = []
    comparison = summary["comparison"]
    if comparison is not None:
        lines.append(_table(summary["method"], comparison))
        budget = comparison["budget"]
        lines.append(
            f"at {budget['search_tokens']} vs {budget['bon_tokens']} "
            f"{summary['match']} tokens; wrote {summary['compare_out']}"
        )
    total = summary["compute"]
    lines.append(
        f"wrote {summary['n_records']} solutions for {summary['n_problems']} problems to "
        f"{summary['out']} ({total['policy_completion_tokens']} policy completion tokens; prompt "
        f"tokens {total['policy_prompt_tokens']} as reported, "
        f"{total['policy_prompt_tokens_prefix_cached']} with prefix-cache credit; "
        f"{total['prm_tokens']} PRM tokens, scorer mode {summary['scorer_mode']})"
    )
    if summary["accuracy"] is not None:
        shown = ", ".join(f"{rule} {value:.1f}%" for rule, value in summary["accuracy"].items())
        lines.append(f"accuracy over {summary['n_checked']} checked problems: " + shown)
    return "\n".join(lines)


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
