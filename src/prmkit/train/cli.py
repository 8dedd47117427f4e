"""``prmkit train --data labeled.jsonl --base smollm2 --head tokcls|labeltok|probe|implicit``.

Reads LabeledTrace records, trains a PRM, writes a checkpoint (safetensors + prm_spec.json +
tokenizer) and ``train_report.json`` beside it (losses, counts of dropped labels).

Example:
    prmkit train --data labeled.jsonl --base smollm2 --head probe --out runs/prm-probe \\
        epochs=20 lr=1e-3
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from typing import Literal

from prmkit.cli import add_config_arguments, stage_config
from prmkit.config import check_ranges, option

__all__ = ["TrainConfig", "add_arguments", "run", "train"]


@dataclass
class TrainConfig:
    """Settings of ``prmkit train``."""

    data: str = option("", "LabeledTrace records to train on (.jsonl or .parquet)")
    out: str = option("", "checkpoint directory to write (new, empty, or a checkpoint)")
    overwrite: bool = option(False, "replace an existing checkpoint at 'out'")
    base: str = option("smollm2", "base model: 'smollm2' or a local Hugging Face directory")
    head: Literal["tokcls", "labeltok", "probe", "implicit"] = option("tokcls", "PRM head")
    format: Literal["trl", "qwen_prm", "math_shepherd"] = option(
        "trl", "input format from prmkit.prm.FORMATS"
    )
    step_tag: str = option("", "override the format's step tag ('' = keep)")
    add_tag_token: bool = option(False, "add the step tag to the vocabulary as a special token")
    max_length: int = option(1024, "inputs are cut to this many tokens", ge=1)
    on_truncation: Literal["error", "drop"] = option(
        "error",
        "error | drop: what to do when max_length cuts off "
        "labelled step tags (drop = drop and count them)",
    )
    last_step_only: bool = option(False, "train only on each trace's last step")
    until_first_error: bool = option(
        False, "train only the steps up to and including each trace's first error"
    )
    error_weight: float = option(
        1.0, "loss weight of wrong steps vs right ones (class imbalance; 1 = plain BCE)", gt=0
    )
    aggregation: Literal["min", "prod", "last", "mean"] = option(
        "min", "default aggregation stored in the spec"
    )
    beta: float = option(0.05, "implicit head: log-ratio scale", gt=0)
    probe_layer: int = option(-1, "probe head: hidden layer fed to the MLP (-1 = last)")
    probe_hidden: int = option(256, "probe head: MLP width (0 = linear)", ge=0)
    lora_r: int = option(0, "LoRA rank (0 = full fine-tuning)", ge=0)
    lora_alpha: int = option(16, "LoRA alpha", ge=1)
    lora_targets: list[str] = option(["q_proj", "v_proj"], "LoRA target modules")
    lr: float = option(1e-4, "learning rate (the probe usually wants ~1e-3)", gt=0)
    weight_decay: float = option(0.0, "AdamW weight decay", ge=0)
    epochs: int = option(1, "passes over the training data", ge=1)
    batch_size: int = option(4, "traces per optimizer step (length-bucketed)", ge=1)
    max_steps: int = option(0, "stop after this many optimizer steps (0 = no limit)", ge=0)
    eval_data: str = option("", "separate eval records ('' = split eval_fraction off data)")
    eval_fraction: float = option(
        0.1, "fraction of data held out for eval/early stopping", ge=0, lt=1
    )
    eval_every: int = option(0, "evaluate every N optimizer steps (0 = once per epoch)", ge=0)
    patience: int = option(2, "early stopping: evaluations without improvement (0 = off)", ge=0)
    seed: int = option(0, "random seed", ge=0)
    device: str = option("cpu", "torch device")

    def __post_init__(self) -> None:
        check_ranges(self)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--base``, ``--head``, ``--out`` shortcuts plus config overrides."""
    parser.add_argument("--data", help="LabeledTrace records")
    parser.add_argument("--base", help="base model")
    parser.add_argument("--head", choices=["tokcls", "labeltok", "probe", "implicit"])
    parser.add_argument("--out", help="checkpoint directory")
    add_config_arguments(parser, TrainConfig)


def train(cfg: TrainConfig, log=print) -> dict:
    """Run a whole training from a config; return the report written beside the checkpoint."""
    from prmkit.errors import ConfigError
    from prmkit.io import write_json
    from prmkit.prm.checkpoint import check_checkpoint_target, save_prm
    from prmkit.prm.spec import PRMSpec
    from prmkit.records import LabeledTrace, read_nonempty
    from prmkit.train.collate import build_examples, split_eval
    from prmkit.train.loop import build_prm, fit

    for name in ("data", "out"):
        if not getattr(cfg, name):
            raise ConfigError(
                f"missing '{name}'", got="", expected="a path", fix=f"pass --{name} PATH"
            )
    check_checkpoint_target(cfg.out, overwrite=cfg.overwrite)  # before minutes of training
    records = {}  # read before the model loads
    for path in filter(None, (cfg.data, cfg.eval_data)):
        records[path] = read_nonempty(
            path,
            LabeledTrace,
            noun="labelled traces",
            fix="pass the output of prmkit annotate or check (did it write nothing?)",
        )
    overrides = {
        "max_length": cfg.max_length,
        "aggregation": cfg.aggregation,
        "beta": cfg.beta,
        "probe_layer": cfg.probe_layer,
        "probe_hidden": cfg.probe_hidden,
    }
    if cfg.step_tag:
        overrides["step_tag"] = cfg.step_tag
    spec = PRMSpec.from_format(cfg.format, head=cfg.head, **overrides)
    prm = build_prm(
        spec,
        cfg.base,
        lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_targets=cfg.lora_targets,
        add_tag_token=cfg.add_tag_token,
        device=cfg.device,
        seed=cfg.seed,
    )
    kw = {
        "last_step_only": cfg.last_step_only,
        "until_first_error": cfg.until_first_error,
        "on_truncation": cfg.on_truncation,
    }
    examples, stats = build_examples(prm.spec, prm.tokenizer, records[cfg.data], **kw)
    if cfg.eval_data:
        train_set = examples
        held, eval_stats = build_examples(prm.spec, prm.tokenizer, records[cfg.eval_data], **kw)
    else:
        train_set, held = split_eval(examples, cfg.eval_fraction, cfg.seed)
        eval_stats = None
    log(
        f"train {len(train_set)} traces, eval {len(held)}; dropped {stats.traces_dropped} "
        f"traces / {stats.steps_dropped_truncation} labelled steps to truncation"
    )
    result = fit(
        prm,
        train_set,
        held,
        lr=cfg.lr,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        max_steps=cfg.max_steps,
        eval_every=cfg.eval_every,
        patience=cfg.patience,
        weight_decay=cfg.weight_decay,
        error_weight=cfg.error_weight,
        seed=cfg.seed,
        log=log,
    )
    save_prm(prm, cfg.out, overwrite=cfg.overwrite)
    report = {
        "config": dataclasses.asdict(cfg),
        "data": dataclasses.asdict(stats),
        "eval_data": dataclasses.asdict(eval_stats) if eval_stats else None,
        "train_traces": len(train_set),
        "eval_traces": len(held),
        "fit": dataclasses.asdict(result),
    }
    write_json(f"{cfg.out}/train_report.json", report)
    log(
        f"saved {cfg.out} ({result.optimizer_steps} steps, best eval loss "
        f"{result.best_eval_loss}, {result.seconds:.1f}s)"
    )
    return report


def run(args: argparse.Namespace) -> int:
    """Train and save a PRM checkpoint."""
    for name in ("data", "base", "head", "out"):
        if getattr(args, name, None):
            args.overrides = [*args.overrides, f"{name}={getattr(args, name)}"]
    train(stage_config(TrainConfig, args), log=lambda m: print(m, file=sys.stderr))
    return 0
