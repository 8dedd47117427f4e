"""``prmkit problems``: write Problem records of the built-in task, GSM8K or MATH-500.

The stage is :func:`prmkit.tasks.build_problems`; this module only parses and calls it.

Example:
    prmkit problems task=arithmetic n=50 seed=0 out=problems.jsonl
    prmkit problems task=arithmetic n=20 n_steps=4 seed=1 out=heldout.jsonl
    prmkit problems task=gsm8k split=test limit=100 out=gsm8k.jsonl
    prmkit problems task=math500 out=math500.parquet
"""

from __future__ import annotations

import argparse

from prmkit.config import add_config_arguments, stage_config
from prmkit.tasks.problems import ProblemsConfig, build_problems, summarize_problems

__all__ = ["ProblemsConfig", "add_arguments", "build_problems", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--config`` and the ``key=value`` overrides."""
    add_config_arguments(parser, ProblemsConfig)


def run(args: argparse.Namespace) -> int:
    """Write the problems and print a one-paragraph summary."""
    cfg = stage_config(ProblemsConfig, args)
    problems = build_problems(cfg)
    where = f"to {cfg.out}" if cfg.out is not None else "(out=null: not written)"
    print(f"wrote {len(problems)} {cfg.task} problems {where}")
    if summary := summarize_problems(problems):
        print("  " + summary.replace("\n", "\n  "))
    return 0
