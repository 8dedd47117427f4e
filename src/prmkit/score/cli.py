"""``prmkit score --prm CKPT --traces traces.jsonl --out scored.jsonl``.

Reads Trace (or LabeledTrace) records, scores every step in one forward pass per trace, writes
ScoredTrace records with the aggregates (min, prod, last, mean) under ``meta.prm_aggregates``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from prmkit.cli import add_config_arguments, stage_config
from prmkit.config import Dtype, check_ranges, option

__all__ = ["ScoreConfig", "add_arguments", "run"]


@dataclass
class ScoreConfig:
    """Settings of ``prmkit score``."""

    prm: str = option("", "PRM checkpoint directory (with prm_spec.json)")
    traces: str = option("", "input Trace/LabeledTrace records (.jsonl or .parquet)")
    out: str = option("", "output ScoredTrace records (.jsonl or .parquet)")
    batch_size: int = option(8, "traces per forward pass (length-bucketed)", ge=1)
    max_batch_tokens: int = option(0, "cap on padded tokens per batch (0 = none)", ge=0)
    device: str = option("cpu", "torch device")
    dtype: Dtype = option("float32", "torch dtype")
    trust_remote_code: bool = option(False, "allow a checkpoint's own model code (opt-in)")
    spec: str = option(
        "",
        "a prm_spec.json to use instead of the checkpoint's own (for a plain "
        "local model directory such as a Math-Shepherd or Qwen2.5-Math-PRM copy)",
    )

    def __post_init__(self) -> None:
        check_ranges(self)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--prm``, ``--traces``, ``--out`` shortcuts plus config overrides."""
    parser.add_argument("--prm", help="PRM checkpoint directory")
    parser.add_argument("--traces", help="input traces")
    parser.add_argument("--out", help="output scored traces")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow the checkpoint's own model code"
    )
    add_config_arguments(parser, ScoreConfig)


def run(args: argparse.Namespace) -> int:
    """Score the traces and write ScoredTrace records."""
    from prmkit.errors import ConfigError
    from prmkit.records import Trace, read_nonempty, write_records
    from prmkit.score.scorer import PRMScorer

    for name in ("prm", "traces", "out"):
        if getattr(args, name, None):
            args.overrides = [*args.overrides, f"{name}={getattr(args, name)}"]
    if getattr(args, "trust_remote_code", False):
        args.overrides = [*args.overrides, "trust_remote_code=true"]
    cfg = stage_config(ScoreConfig, args)
    for name in ("prm", "traces", "out"):
        if not getattr(cfg, name):
            raise ConfigError(
                f"missing '{name}'", got="", expected="a path", fix=f"pass --{name} PATH"
            )
    traces = read_nonempty(
        cfg.traces,
        Trace,
        noun="traces",
        fix="pass the output of prmkit generate (did an earlier stage write nothing?)",
    )
    start = time.perf_counter()
    spec = None
    if cfg.spec:
        from prmkit.io import read_json
        from prmkit.prm.spec import PRMSpec

        spec = PRMSpec.from_dict(read_json(cfg.spec), where=cfg.spec)
    scorer = PRMScorer.from_checkpoint(
        cfg.prm,
        spec=spec,
        device=cfg.device,
        dtype=cfg.dtype,
        trust_remote_code=cfg.trust_remote_code,
        batch_size=cfg.batch_size,
        max_batch_tokens=cfg.max_batch_tokens or None,
    )
    scored = scorer.score_records(traces, prm_name=cfg.prm)
    n = write_records(cfg.out, scored)
    steps = sum(len(t.steps) for t in traces)
    print(
        f"scored {n} traces ({steps} steps) in {time.perf_counter() - start:.1f}s -> {cfg.out}",
        file=sys.stderr,
    )
    return 0
