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
import json

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
_REPEATABLE = {"processbench": {"--data": "data"}}


def repeatable(parser: argparse.ArgumentParser, flag: str, key: str, help: str) -> None:
    """A shortcut flag for list key ``key`` that may repeat: ``--data a --data b`` is
    ``data=["a", "b"]``. Call after :func:`~prmkit.config.add_config_arguments`.

    To move into ``add_config_arguments`` (list keys there take one value per flag).
    """
    dest = f"_repeat_{key}"
    parser.add_argument(
        flag, dest=dest, action="append", default=None, metavar="VALUE",
        help=f"{help}; repeatable (same as {key}=[...])",
    )  # fmt: skip
    parser.set_defaults(_config_repeats=[*(parser.get_default("_config_repeats") or []), dest])
    shortcuts = parser.get_default("_config_shortcuts") or []
    parser.set_defaults(_config_shortcuts=[*shortcuts, (dest, key)])


def joined(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with each repeated flag's values as one JSON list (what ``key=value`` reads)."""
    for dest in getattr(args, "_config_repeats", None) or []:
        values = getattr(args, dest)
        if values is not None:
            setattr(args, dest, json.dumps(values))
    return args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One subcommand per benchmark, each with ``--config``, ``key=value`` and its flags."""
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="BENCHMARK")
    for name, cls in CONFIGS.items():
        p = sub.add_parser(name, help=_HELP[name], description=inspect.cleandoc(cls.__doc__ or ""))
        add_config_arguments(p, cls, _SHORTCUTS[name])
        for flag, key in _REPEATABLE.get(name, {}).items():
            repeatable(p, flag, key, "a subset file")


def run(args: argparse.Namespace) -> int:
    """Run one benchmark; print its table (``output`` writes the result as JSON)."""
    cls = CONFIGS[args.eval_command]
    result = run_eval(stage_config(cls, joined(args)))
    print(format_result(cls.benchmark, result))
    return 0
