"""``prmkit generate``: sample ``n`` solutions per problem and write them as Trace records.

The stage is :func:`prmkit.generate.generate`; this module only parses and calls it.

Example:
    prmkit generate problems=problems.jsonl out=traces.jsonl n=16 sampling.temperature=0.7 \\
        policy.model=smollm2 policy.adapter=~/.cache/prmkit/adapters/xyz
    prmkit generate --problems problems.jsonl --model smollm2 --temperature 0.7
"""

from __future__ import annotations

import argparse

from prmkit.config import add_config_arguments, stage_config
from prmkit.generate.run import GenerateConfig, GenerateStats, generate, traces_for
from prmkit.tasks.problems import read_problems

# read_problems and traces_for: re-exported for callers of their old home
__all__ = ["GenerateConfig", "add_arguments", "read_problems", "run", "traces_for"]

SHORTCUTS = {
    "--problems": "problems",
    "--out": "out",
    "--model": "policy.model",
    "--adapter": "policy.adapter",
    "--dtype": "policy.dtype",
    "--device": "policy.device",
    "--temperature": "sampling.temperature",
    "--top-p": "sampling.top_p",
    "--top-k": "sampling.top_k",
    "--max-new-tokens": "sampling.max_new_tokens",
    "--seed": "sampling.seed",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--config``, the ``key=value`` overrides and the shortcut flags."""
    add_config_arguments(parser, GenerateConfig, SHORTCUTS)


def run(args: argparse.Namespace) -> int:
    """Run the stage; returns the exit code."""
    cfg = stage_config(GenerateConfig, args)
    stats = GenerateStats()
    generate(cfg, stats=stats)
    print(stats.summary(cfg.out))
    return 0
