"""``prmkit check``: exact-check traces of built-in arithmetic problems into LabeledTraces.

The stage is :func:`prmkit.tasks.check_traces`; this module only parses and calls it.

Example:
    prmkit check --traces traces.jsonl --problems problems.jsonl --out labeled.jsonl
    prmkit check traces=traces.jsonl problems=problems.jsonl out=labeled.jsonl require_answer=false
"""

from __future__ import annotations

import argparse

from prmkit.config import add_config_arguments, stage_config
from prmkit.tasks.check import CheckConfig, check_traces, summarize_check

__all__ = ["CheckConfig", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``key=value`` overrides and the ``--traces/--problems/--out`` shortcuts."""
    add_config_arguments(parser, CheckConfig, ["traces", "problems", "out"])


def run(args: argparse.Namespace) -> int:
    """Check the traces, write the labels, print a summary."""
    cfg = stage_config(CheckConfig, args)
    labeled = check_traces(cfg)
    where = f"to {cfg.out}" if cfg.out is not None else "(out=null: not written)"
    print(f"wrote {len(labeled)} labeled traces {where}")
    print(summarize_check(labeled))
    return 0
