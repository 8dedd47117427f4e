"""``prmkit eval processbench|prmbench|steps|bon``: parse the benchmark's config, call
:func:`~prmkit.evaluate.stage.run_eval`, print the table.

Examples:
    prmkit eval processbench --data ../shared/data/processbench/math.json --predictions p.jsonl
    prmkit eval processbench --data math.json --scores scored.jsonl --threshold-from dev.jsonl \\
        --output result.json
    prmkit eval prmbench --scores prmbench_scored.jsonl --threshold 0.5 --output prmbench.json
    prmkit eval steps --scores scored.jsonl --output steps.json
    prmkit eval bon --scores samples_scored.jsonl ns=[1,4,16] --output bon.json
"""

from __future__ import annotations

import argparse
import inspect

from prmkit.config import add_config_arguments, stage_config
from prmkit.evaluate.format import format_result
from prmkit.evaluate.stage import CONFIGS, run_eval

__all__ = ["add_arguments", "run"]

_HELP = {
    "processbench": "ProcessBench: first-error F1 per subset",
    "prmbench": "PRMBench: PRMScore per error class and overall",
    "steps": "step AUROC, calibration error, last-step-minimum share",
    "bon": "best-of-N: pass@N, maj@N, prm@N, weighted vote vs N",
}
_SHORTCUTS = {
    "processbench": {
        "--data": "data",
        "--predictions": "predictions",
        "--scores": "scores",
        "--threshold": "threshold",
        "--threshold-from": "threshold_from",
        "--oracle-threshold": "oracle_threshold",
        "--allow-missing": "allow_missing",
        "--judge": "judge.model",
        "--judge-adapter": "judge.adapter",
        "--judge-base-url": "judge_base_url",
        "--judge-votes": "judge_votes",
        "--judge-max-new-tokens": "judge_sampling.max_new_tokens",
        "--judge-template": "judge_template",
        "--judge-store": "judge_store",
        "--judge-batch": "judge_batch",
        "--predictions-out": "predictions_out",
        "--output": "output",
    },
    "prmbench": ["scores", "threshold", "class_key", "repeated_pairs", "output"],
    "steps": {"--scores": "scores", "--bins": "n_bins", "--output": "output"},
    "bon": {
        "--scores": "scores",
        "--correct-from": "correct_from",
        "--correct-key": "correct_key",
        "--ns": "ns",
        "--subsets": "n_subsets",
        "--bootstrap": "n_bootstrap",
        "--seed": "seed",
        "--output": "output",
    },
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One subcommand per benchmark, each with ``--config``, ``key=value`` and its flags."""
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="BENCHMARK")
    for name, cls in CONFIGS.items():
        p = sub.add_parser(name, help=_HELP[name], description=inspect.cleandoc(cls.__doc__ or ""))
        add_config_arguments(p, cls, _SHORTCUTS[name])


def run(args: argparse.Namespace) -> int:
    """Run one benchmark; print its table (``output`` writes the result as JSON)."""
    cls = CONFIGS[args.eval_command]
    result = run_eval(stage_config(cls, args))
    print(format_result(cls.benchmark, result))
    return 0
