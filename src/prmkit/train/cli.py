"""``prmkit train --data labeled.jsonl --base smollm2 --head tokcls|labeltok|probe|implicit``.

Parses the command line into a :class:`~prmkit.train.run.TrainConfig` and calls
:func:`prmkit.train.train` (progress on stderr).

Example:
    prmkit train --data labeled.jsonl --base smollm2 --head probe --out runs/prm-probe \\
        epochs=20 lr=1e-3
"""

from __future__ import annotations

import argparse
import sys

from prmkit.config import add_config_arguments, stage_config
from prmkit.train.run import TrainConfig, train

__all__ = ["TrainConfig", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``key=value`` and the shortcuts ``--data --base --head --out``."""
    add_config_arguments(parser, TrainConfig, ["data", "base", "head", "out"])


def run(args: argparse.Namespace) -> int:
    """Train and save a PRM checkpoint."""
    train(stage_config(TrainConfig, args), log=lambda m: print(m, file=sys.stderr))
    return 0
