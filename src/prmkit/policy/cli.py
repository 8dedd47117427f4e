"""``prmkit warmup``: train (or fetch from the cache) the default policy's LoRA adapter, then
evaluate it on held-out 4-step problems with the exact checker.

The stage is :func:`prmkit.policy.run_warmup`; this module only parses and calls it.

Example:
    prmkit warmup --config recipes/warmup.yaml
    prmkit warmup --config recipes/warmup.yaml eval_problems=0     # train/cache only
    prmkit warmup --config recipes/warmup.yaml lr=5e-4 n_examples=600
"""

from __future__ import annotations

import argparse
import json
import logging

from prmkit.config import add_config_arguments, stage_config
from prmkit.policy.stage import WarmupConfig, run_warmup, warmup_from_config

__all__ = ["WarmupConfig", "add_arguments", "run", "warmup_from_config"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--config`` and the ``key=value`` overrides."""
    add_config_arguments(parser, WarmupConfig)


def run(args: argparse.Namespace) -> int:
    """Train or fetch the adapter, print its path, evaluate it."""
    cfg = stage_config(WarmupConfig, args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run_warmup(cfg)
    print(f"adapter: {result.adapter}")
    if result.evaluation is not None:
        print(result.evaluation.summary())
        print(json.dumps(result.evaluation.as_dict()))
    return 0
