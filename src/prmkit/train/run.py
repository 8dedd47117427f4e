"""The training stage: LabeledTrace records in, a PRM checkpoint and its report out.

:func:`train` reads the records (a file, or records given in memory), builds the PRM for the
configured head, fits it with the one training engine (:mod:`prmkit.train.loop`), and writes the
checkpoint (safetensors + ``prm_spec.json`` + tokenizer) with ``train_report.json`` beside it.

The PRM-spec keys (``max_length``, ``aggregation``, ``beta``, ``probe_layer``, ``probe_hidden``)
take their defaults from :class:`~prmkit.prm.spec.PRMSpec` itself, the one place they are
defined; the ``format`` (:data:`~prmkit.prm.spec.FORMATS`) supplies how the input is rendered
(step tag, joins, chat template), and ``step_tag`` overrides its tag when set.

Example:
    >>> from prmkit.train import TrainConfig, train
    >>> cfg = TrainConfig(out="runs/prm", head="probe", probe_layer=16, lr=1e-3, epochs=20)
    >>> report = train(cfg, records=labeled_traces)  # doctest: +SKIP
    >>> report["fit"]["best_eval_loss"]  # doctest: +SKIP
    0.52
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError
from prmkit.prm.spec import PRMSpec
from prmkit.records import LabeledTrace, read_nonempty

__all__ = ["SPEC_KEYS", "TrainConfig", "train"]

SPEC_KEYS = (
    "max_length",
    "aggregation",
    "beta",
    "probe_layer",
    "probe_hidden",
    "probe_features",
)
"""The :class:`TrainConfig` keys that are PRMSpec fields (``step_tag`` too, when set)."""


def _spec_default(name: str, help: str, **bounds: float) -> Any:
    """A config field whose default is PRMSpec's default for the same field."""
    default = next(f.default for f in dataclasses.fields(PRMSpec) if f.name == name)
    return option(default, f"{help} (PRMSpec field; default = PRMSpec's)", **bounds)


@dataclass
class TrainConfig:
    """Settings of ``prmkit train`` (:func:`train`)."""

    data: str = option("", "LabeledTrace records to train on (.jsonl or .parquet)")
    out: str = option("", "checkpoint directory to write (new, empty, or a checkpoint)")
    overwrite: bool = option(False, "replace an existing checkpoint at 'out'")
    base: str = option("smollm2", "base model: 'smollm2' or a local Hugging Face directory")
    adapter: str = option(
        "", "LoRA adapter merged into the base first, e.g. the policy's warm-up ('' = none)"
    )
    head: Literal["tokcls", "labeltok", "probe", "implicit"] = option("tokcls", "PRM head")
    format: Literal["trl", "qwen_prm", "math_shepherd"] = option(
        "trl", "input format from prmkit.prm.FORMATS (step tag, joins, chat template)"
    )
    step_tag: str | None = option(None, "override the format's step tag (null = the format's)")
    add_tag_token: bool = option(False, "add the step tag to the vocabulary as a special token")
    max_length: int = _spec_default("max_length", "inputs are cut to this many tokens", ge=1)
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
    aggregation: Literal["min", "prod", "last", "mean"] = _spec_default(
        "aggregation", "default aggregation stored in the spec"
    )
    beta: float = _spec_default("beta", "implicit head: log-ratio scale", gt=0)
    probe_layer: int = _spec_default(
        "probe_layer", "probe head: hidden layer fed to the MLP (-1 = last)"
    )
    probe_hidden: int = _spec_default("probe_hidden", "probe head: MLP width (0 = linear)", ge=0)
    probe_features: Literal["hidden", "logprobs", "hidden+logprobs"] = _spec_default(
        "probe_features",
        "probe head: hidden state, the backbone's own token log-prob statistics, or both",
    )
    lora_r: int = option(0, "LoRA rank (0 = full fine-tuning)", ge=0)
    lora_alpha: int = option(16, "LoRA alpha", ge=1)
    lora_targets: list[str] = option(["q_proj", "v_proj"], "LoRA target modules")
    lr: float = option(1e-4, "learning rate (the probe usually wants ~1e-3)", gt=0)
    weight_decay: float = option(0.0, "AdamW weight decay", ge=0)
    epochs: int = option(1, "passes over the training data", ge=1)
    batch_size: int = option(
        4, "traces per optimizer step, length-bucketed (probe: x32 feature rows)", ge=1
    )
    max_steps: int = option(0, "stop after this many optimizer steps (0 = no limit)", ge=0)
    eval_data: str = option("", "separate eval records ('' = split eval_fraction off data)")
    eval_fraction: float = option(
        0.1, "fraction of data held out for eval/early stopping", ge=0, lt=1
    )
    eval_every: int = option(0, "evaluate every N optimizer steps (0 = once per epoch)", ge=0)
    patience: int = option(2, "early stopping: evaluations without improvement (0 = off)", ge=0)
    seed: int = option(0, "random seed", ge=0)
    device: str = option("cpu", "torch device (cpu, cuda; under torchrun each rank's own GPU)")
    # the Trainer engine (tokcls, labeltok, implicit); the probe ignores these
    bf16: bool | Literal["auto"] = option(
        "auto", "bf16 autocast over fp32 weights; auto = where the device computes bf16 natively"
    )
    packing: bool | Literal["auto"] = option(
        "auto",
        "pack each batch's traces into rows without padding; auto = where the model supports it",
    )
    max_batch_tokens: int = option(
        0, "cap on tokens per batch: real when packed, padded otherwise (0 = none)", ge=0
    )
    grad_accum: int = option(1, "batches per optimizer step (gradient accumulation)", ge=1)
    max_grad_norm: float = option(1.0, "gradient clipping norm (0 = off)", ge=0)
    warmup: float = option(0.0, "linear warm-up: a fraction of the run (< 1) or steps", ge=0)
    scheduler: Literal["linear", "cosine", "constant"] = option(
        "linear", "learning-rate decay after warm-up"
    )
    gradient_checkpointing: bool = option(False, "recompute activations (less memory, ~30% slower)")
    optim: str = option("auto", "Trainer optimizer name; auto = fused AdamW")
    log_every: int = option(10, "log loss, lr, grad norm and tokens/s every N steps", ge=1)
    state_dir: str = option("", "where the run's checkpoints go for resume ('' = <out>.state)")
    save_every: int = option(
        0,
        "checkpoint every N steps without an eval set (0 = each epoch; with one: each eval)",
        ge=0,
    )
    resume: bool = option(False, "continue the run whose checkpoints are in state_dir")
    keep_state: bool = option(False, "keep state_dir after the final checkpoint is saved")

    def __post_init__(self) -> None:
        check_ranges(self)

    def spec(self) -> PRMSpec:
        """The PRMSpec this config trains: the format, the head, the spec keys.

        Example:
            >>> TrainConfig(head="probe", probe_layer=16).spec().probe_layer
            16
        """
        overrides = {k: getattr(self, k) for k in SPEC_KEYS}
        if self.step_tag is not None:
            overrides["step_tag"] = self.step_tag
        return PRMSpec.from_format(self.format, head=self.head, **overrides)


def _records(
    path: str, given: Sequence[LabeledTrace] | None, key: str, required: bool
) -> list[LabeledTrace] | None:
    """Records given in memory or read from ``path`` (never both); ``None`` when neither."""
    if given is not None and path:
        raise ConfigError(
            f"records given twice for '{key}'",
            got=path,
            expected=f"records in memory or '{key}', not both",
            fix=f"leave '{key}' empty when passing records",
        )
    if given is not None:
        if not given:
            raise ConfigError(
                "no labelled traces to train on",
                got=0,
                expected="at least one LabeledTrace",
                fix="pass the output of prmkit annotate or check",
            )
        return list(given)
    if path:
        return read_nonempty(
            path,
            LabeledTrace,
            noun="labelled traces",
            fix="pass the output of prmkit annotate or check (did it write nothing?)",
        )
    if required:
        raise ConfigError(
            f"missing '{key}'",
            got="",
            expected="a path, or records in memory",
            fix=f"pass --{key} PATH (or records=... in Python)",
        )
    return None


def _is_main_process() -> bool:
    """Rank 0 of a ``torchrun``/``accelerate launch`` job, or a plain single process."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _rank_device(device: str) -> str:
    """``cuda`` under ``torchrun``/``accelerate launch`` is each rank's own GPU (LOCAL_RANK)."""
    import os

    local = os.environ.get("LOCAL_RANK")
    return f"cuda:{local}" if device == "cuda" and local is not None else device


def _engine_options(cfg: TrainConfig, state_dir: str) -> dict[str, Any]:
    """The Trainer engine's keyword arguments (:func:`prmkit.train.trainer.fit_trainer`)."""
    return {
        "bf16": cfg.bf16,
        "packing": cfg.packing,
        "max_batch_tokens": cfg.max_batch_tokens or None,
        "grad_accum": cfg.grad_accum,
        "max_grad_norm": cfg.max_grad_norm,
        "warmup": cfg.warmup,
        "scheduler": cfg.scheduler,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "optim": cfg.optim,
        "log_every": cfg.log_every,
        "work_dir": state_dir,
        "save_every": cfg.save_every,
        "resume": cfg.resume,
    }


def train(
    cfg: TrainConfig,
    records: Sequence[LabeledTrace] | None = None,
    eval_records: Sequence[LabeledTrace] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train a PRM and save it to ``cfg.out``; return the report written beside it.

    Args:
        cfg: The settings (``cfg.data``/``cfg.eval_data`` name files; leave them empty when
            passing records).
        records: Training records in memory instead of ``cfg.data``.
        eval_records: Eval records in memory instead of ``cfg.eval_data`` (neither: split
            ``cfg.eval_fraction`` off the training records).
        log: Called with progress lines.

    Returns:
        The ``train_report.json`` content: ``config``, ``data`` and ``eval_data`` (collation
        counts: labels trained, dropped to truncation, ...), ``train_traces``,
        ``eval_traces``, ``fit`` (:class:`~prmkit.train.loop.FitResult` as a dict).

    Raises:
        ConfigError: no output folder, no records or records given twice, a bad spec.
        CheckpointError: ``cfg.out`` is not a folder training may write (before any training).

    Example:
        >>> cfg = TrainConfig(out="runs/prm", base="smollm2", head="probe", lr=1e-3)
        >>> report = train(cfg, records=labeled_traces)  # doctest: +SKIP
    """
    from prmkit.io import write_json
    from prmkit.prm.checkpoint import check_checkpoint_target, save_prm
    from prmkit.train.collate import build_examples, split_eval
    from prmkit.train.state import prepare_state_dir

    if not cfg.out:
        raise ConfigError("missing 'out'", got="", expected="a path", fix="pass --out PATH")
    check_checkpoint_target(cfg.out, overwrite=cfg.overwrite)  # before minutes of training
    spec = cfg.spec()  # a bad spec fails before anything loads
    train_records = _records(cfg.data, records, "data", required=True)
    held_records = _records(cfg.eval_data, eval_records, "eval_data", required=False)

    from prmkit.train.loop import build_prm, fit  # torch: only once the inputs are good

    state_dir = cfg.state_dir or f"{cfg.out.rstrip('/')}.state"
    backbone = spec.head != "probe"
    if backbone and _is_main_process():
        prepare_state_dir(state_dir, resume=cfg.resume, overwrite=cfg.overwrite)
    prm = build_prm(
        spec,
        cfg.base,
        lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_targets=cfg.lora_targets,
        add_tag_token=cfg.add_tag_token,
        device=_rank_device(cfg.device),
        seed=cfg.seed,
        adapter=cfg.adapter or None,
    )
    kw = {
        "last_step_only": cfg.last_step_only,
        "until_first_error": cfg.until_first_error,
        "on_truncation": cfg.on_truncation,
    }
    examples, stats = build_examples(prm.spec, prm.tokenizer, train_records, **kw)
    eval_stats = None
    if held_records is not None:
        train_set = examples
        held, eval_stats = build_examples(prm.spec, prm.tokenizer, held_records, **kw)
    else:
        train_set, held = split_eval(examples, cfg.eval_fraction, cfg.seed)
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
        **(_engine_options(cfg, state_dir) if backbone else {}),
    )
    if not _is_main_process():  # data-parallel ranks > 0: rank 0 saves
        return {}
    save_prm(prm, cfg.out, overwrite=cfg.overwrite)
    report = {
        "config": dataclasses.asdict(cfg),
        "records": {
            "data": "memory" if records is not None else cfg.data,
            "eval_data": "memory" if eval_records is not None else cfg.eval_data,
        },
        "data": dataclasses.asdict(stats),
        "eval_data": dataclasses.asdict(eval_stats) if eval_stats else None,
        "train_traces": len(train_set),
        "eval_traces": len(held),
        "fit": dataclasses.asdict(result),
    }
    write_json(f"{cfg.out}/train_report.json", report)
    if backbone and not cfg.keep_state:
        import shutil

        shutil.rmtree(state_dir, ignore_errors=True)  # prmkit's own (marked) folder
    log(
        f"saved {cfg.out} ({result.optimizer_steps} steps, best eval loss "
        f"{result.best_eval_loss}, {result.seconds:.1f}s)"
    )
    return report
