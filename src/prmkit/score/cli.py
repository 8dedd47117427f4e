"""``prmkit score --prm CKPT --traces traces.jsonl --out scored.jsonl``: calls :func:`score`.

Reads Trace (or LabeledTrace) records, scores every step in one forward pass per trace, writes
ScoredTrace records with the aggregates (min, prod, last, mean) under ``meta.prm_aggregates``.
``--ray auto`` scores shards on Ray workers, one PRM replica each (docs/scale.md).
"""

from __future__ import annotations

import argparse
import sys
import time

from prmkit.config import add_config_arguments, stage_config
from prmkit.errors import ConfigError
from prmkit.score.run import ScoreConfig, score_with_report

__all__ = ["ScoreConfig", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``key=value`` overrides and the flags ``--prm --traces --out --ray``."""
    add_config_arguments(
        parser,
        ScoreConfig,
        {
            "--prm": "prm",
            "--traces": "traces",
            "--out": "out",
            "--trust-remote-code": "trust_remote_code",
            "--ray": "ray.address",
            "--ray-workers": "ray.workers",
        },
    )


def run(args: argparse.Namespace) -> int:
    """Score the traces and write ScoredTrace records."""
    cfg = stage_config(ScoreConfig, args)
    if not cfg.out:
        raise ConfigError("missing 'out'", got="", expected="a path", fix="pass --out PATH")
    start = time.perf_counter()
    scored, report = score_with_report(cfg)
    if report is not None:
        print(report.line(), file=sys.stderr)
    steps = sum(len(t.steps) for t in scored)
    print(
        f"scored {len(scored)} traces ({steps} steps) in {time.perf_counter() - start:.1f}s "
        f"-> {cfg.out}",
        file=sys.stderr,
    )
    return 0
