"""PRM training on ``transformers.Trainer``: the backbone heads (``tokcls``, ``labeltok``,
``implicit``) with prmkit's collation.

The Trainer brings what a well-kept training engine has: bf16 mixed precision (autocast over
float32 master weights), gradient accumulation and clipping, warm-up and decay, gradient
checkpointing, the fused AdamW, checkpoints that resume after a kill with the same final
weights, and data parallelism when started with ``torchrun``/``accelerate launch`` (DDP, or
FSDP through the accelerate config). prmkit keeps what a PRM needs:

* batches are length-sorted groups of traces (or up to a token budget), laid out padded or
  **packed** into rows without padding (:func:`prmkit.prm.batch.packed_batch`): one dataset
  item is one micro-batch;
* the loss is read only at the step-tag positions (:func:`prmkit.prm.heads.step_outputs`):
  BCE on (soft) labels, ``error_weight`` on wrong steps, the outcome logit for ``implicit``;
* the eval loss is the mean over labelled steps (traces for ``implicit``), as
  :func:`prmkit.train.loop.fit` always had, and early stopping keeps the best evaluation.

The ``probe`` head keeps its own loop on cached features (:func:`prmkit.train.loop.fit_probe`).

Example:
    >>> result = fit_trainer(prm, examples, held, lr=2e-5, packing=True, bf16="auto")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from prmkit.errors import ConfigError
from prmkit.prm.batch import ModelBatch, batch_groups, packed_batch, padded_batch
from prmkit.prm.heads import PRM, eval_mode, resolve_packing, step_outputs
from prmkit.train.collate import Example
from prmkit.train.state import latest_checkpoint

__all__ = [
    "FitResult",
    "batch_loss",
    "eval_loss",
    "fit_trainer",
    "micro_batches",
    "weighted_bce",
]


@dataclasses.dataclass
class FitResult:
    """What :func:`prmkit.train.loop.fit` did.

    Attributes:
        optimizer_steps: Optimizer steps taken (with gradient accumulation: updates, not
            micro-batches); counted from the start of the run, resumed or not.
        epochs_run: Passes over the training data begun.
        best_eval_loss: The lowest eval loss (the weights kept); ``None`` without an eval set.
        stopped_early: Training stopped because the eval loss stopped improving.
        history: One entry per evaluation (or per log line without an eval set): ``epoch``,
            ``step``, ``train_loss`` (the last logged training loss) and, with an eval set,
            ``eval_loss``.
        seconds: Wall time, feature caching included.
        tokens_per_second: Training tokens (real, not padding) per second of optimizer steps
            in this process; ``None`` for the probe.
        resumed_from: The checkpoint training resumed from, if any.
    """

    optimizer_steps: int = 0
    epochs_run: int = 0
    best_eval_loss: float | None = None
    stopped_early: bool = False
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    tokens_per_second: float | None = None
    resumed_from: str | None = None


def weighted_bce(
    logits: torch.Tensor, targets: torch.Tensor, error_weight: float = 1.0
) -> torch.Tensor:
    """BCE with logits; targets below 0.5 (wrong steps) weigh ``error_weight`` times more."""
    if error_weight == 1.0:
        return F.binary_cross_entropy_with_logits(logits, targets)
    weight = torch.where(targets < 0.5, error_weight, 1.0).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, targets, weight=weight)


def batch_loss(
    prm: PRM, batch: ModelBatch, group: Sequence[Example], error_weight: float = 1.0
) -> tuple[torch.Tensor, int]:
    """The loss of one micro-batch and the number of terms it averages.

    ``tokcls``/``labeltok``: BCE of the step logits at the labelled tag positions against the
    (soft) targets (``n`` = labelled steps). ``implicit``: BCE of the outcome logit (the sum of
    step rewards) against the outcome label (``n`` = traces; ``error_weight`` unused).
    """
    values = step_outputs(prm, batch)
    if prm.spec.head == "implicit":
        logits = torch.stack([v.sum() for v in values])
        targets = torch.tensor([e.outcome for e in group], device=logits.device)
        return weighted_bce(logits.float(), targets.float()), len(group)
    logits = torch.cat([v[e.label_steps] for v, e in zip(values, group, strict=True)])
    targets = torch.tensor([t for e in group for t in e.targets], device=logits.device)
    return weighted_bce(logits.float(), targets.float(), error_weight), len(targets)


def eval_loss(
    prm: PRM,
    examples: Sequence[Example],
    batch_size: int = 4,
    error_weight: float = 1.0,
    *,
    packing: bool = False,
    max_batch_tokens: int | None = None,
    row_tokens: int | None = None,
) -> float:
    """The mean loss per labelled step (per trace for ``implicit``) over ``examples``, in
    eval mode without gradients: the quantity early stopping compares."""
    collate = _Collate(prm.pad_id(), packing, row_tokens)
    total, count = 0.0, 0
    with torch.no_grad(), eval_mode(prm.model):
        for group in micro_batches(examples, batch_size, max_batch_tokens, packing):
            batch = collate([group])["batch"].to(prm.device)
            loss, n = batch_loss(prm, batch, group, error_weight)
            total += float(loss) * n
            count += n
    return total / max(1, count)


def micro_batches(
    examples: Sequence[Example], batch_size: int, max_batch_tokens: int | None, packing: bool
) -> list[list[Example]]:
    """Length-sorted groups: ``batch_size`` traces at most and, if set, ``max_batch_tokens``
    tokens (real tokens when packed, padded ones otherwise)."""
    lengths = [len(e.enc.input_ids) for e in examples]
    groups = batch_groups(lengths, batch_size, max_batch_tokens, packing)
    return [[examples[i] for i in g] for g in groups]


class _Collate:
    """One dataset item (a group of examples) -> the model input and the examples."""

    def __init__(self, pad_id: int, packing: bool, row_tokens: int | None) -> None:
        self.pad_id, self.packing, self.row_tokens = pad_id, packing, row_tokens

    def __call__(self, items: list[list[Example]]) -> dict[str, Any]:
        group = [e for item in items for e in item]
        encs = [e.enc for e in group]
        if self.packing:
            batch = packed_batch(encs, self.pad_id, row_tokens=self.row_tokens)
        else:
            batch = padded_batch(encs, self.pad_id)
        return {"batch": batch, "examples": group}


def _trainer_class() -> type:
    """The Trainer subclass, built on first use (transformers imports slowly)."""
    from transformers import Trainer

    class PRMTrainer(Trainer):
        """``Trainer`` with prmkit's loss at the step tags and its per-label eval loss."""

        def __init__(
            self,
            *args: Any,
            prm: PRM,
            error_weight: float,
            eval_examples: Sequence[Example],
            batch_size: int,
            max_batch_tokens: int | None,
            collate: _Collate,
            log_fn: Callable[[str], None],
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.prm, self.error_weight = prm, error_weight
            self.eval_examples, self.batch_size = eval_examples, batch_size
            self.max_batch_tokens = max_batch_tokens
            self.collate, self.log_fn = collate, log_fn
            # our loss is a mean per micro-batch: the Trainer divides it by the accumulation
            self.model_accepts_loss_kwargs = False
            self.tokens = 0
            self.step_seconds = 0.0
            self._mark: tuple[float, int] | None = None

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            prm = dataclasses.replace(self.prm, model=model)
            loss, _ = batch_loss(prm, inputs["batch"], inputs["examples"], self.error_weight)
            if model.training:
                self.tokens += inputs["batch"].n_tokens
            return (loss, None) if return_outputs else loss

        def evaluate(
            self,
            eval_dataset: Any = None,
            ignore_keys: Any = None,
            metric_key_prefix: str = "eval",
        ) -> dict[str, float]:
            """The mean loss per labelled step (per trace for ``implicit``) over the eval
            set: the quantity early stopping compares."""
            with self.autocast_smart_context_manager():
                value = eval_loss(
                    dataclasses.replace(self.prm, model=self.model),
                    self.eval_examples,
                    self.batch_size,
                    self.error_weight,
                    packing=self.collate.packing,
                    max_batch_tokens=self.max_batch_tokens,
                    row_tokens=self.collate.row_tokens,
                )
            metrics = {f"{metric_key_prefix}_loss": value}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(
                self.args, self.state, self.control, metrics
            )
            return metrics

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            now = time.perf_counter()
            if "loss" in logs and self._mark is not None:
                seconds, tokens = now - self._mark[0], self.tokens - self._mark[1]
                self.step_seconds += seconds
                logs["tokens_per_s"] = round(tokens / max(seconds, 1e-9), 1)
            if "loss" in logs or self._mark is None:
                self._mark = (now, self.tokens)
            super().log(logs, start_time)
            shown = {
                k: v
                for k, v in logs.items()
                if not k.startswith("train_") and k not in ("epoch", "total_flos")
            }
            if shown and self.is_world_process_zero():
                shown["epoch"] = logs.get("epoch", self.state.epoch or 0.0)
                self.log_fn(
                    f"step={self.state.global_step} "
                    + " ".join(
                        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in shown.items()
                    )
                )

    return PRMTrainer


def fit_trainer(
    prm: PRM,
    train: Sequence[Example],
    held: Sequence[Example] = (),
    *,
    lr: float = 1e-4,
    epochs: int = 1,
    batch_size: int = 4,
    max_steps: int = 0,
    eval_every: int = 0,
    patience: int = 2,
    weight_decay: float = 0.0,
    error_weight: float = 1.0,
    lr_decay: bool | None = None,
    seed: int = 0,
    grad_accum: int = 1,
    max_grad_norm: float = 1.0,
    warmup: float = 0.0,
    scheduler: Literal["linear", "cosine", "constant"] = "linear",
    bf16: bool | Literal["auto"] = "auto",
    gradient_checkpointing: bool = False,
    packing: bool | Literal["auto"] = "auto",
    max_batch_tokens: int | None = None,
    row_tokens: int | None = None,
    optim: str = "auto",
    work_dir: str | Path | None = None,
    save_every: int = 0,
    resume: bool = False,
    log_every: int = 10,
    log: Callable[[str], None] = lambda _: None,
) -> FitResult:
    """Train ``prm``'s backbone head in place with ``transformers.Trainer``.

    Args:
        train, held, lr, epochs, max_steps, eval_every, patience, weight_decay, error_weight,
            seed, log: As in :func:`prmkit.train.loop.fit`.
        batch_size: Traces per micro-batch (length-sorted).
        lr_decay: ``False``: constant learning rate after warm-up; otherwise ``scheduler``.
        grad_accum: Micro-batches per optimizer step.
        max_grad_norm: Gradient clipping norm (0 = off).
        warmup: Linear warm-up: a fraction of the run (< 1) or a number of steps (>= 1).
        scheduler: Decay after warm-up.
        bf16: bf16 autocast over float32 master weights; ``"auto"``: where the device
            computes bf16 natively (never on an AVX2-only CPU, where it is emulated).
        gradient_checkpointing: Recompute activations in the backward pass (memory for time).
        packing: Lay each micro-batch out without padding; ``"auto"``: when the model reads
            packed rows as separate sequences (:func:`prmkit.prm.heads.packing_supported`).
        max_batch_tokens: Cap on a micro-batch's tokens (real when packed, padded otherwise).
        row_tokens: Packed row capacity (``None``: the longest trace of the micro-batch).
        optim: A Trainer ``optim`` name; ``"auto"``: the Trainer's default (fused AdamW).
        work_dir: Where checkpoints go (resume needs it); ``None``: a temporary folder,
            deleted at the end.
        save_every: Checkpoint every N optimizer steps without an eval set (0 = each epoch).
            With an eval set, a checkpoint is written at every evaluation (the best is kept).
        resume: Continue from the newest complete checkpoint in ``work_dir``.
        log_every: Log loss, learning rate, grad norm and tokens/s every N optimizer steps.

    Raises:
        ConfigError: no examples, a head this engine does not train, or resume without
            ``work_dir``.
    """
    from transformers import EarlyStoppingCallback, TrainingArguments

    from prmkit.models.precision import resolve_bf16

    if prm.spec.head == "probe":
        raise ConfigError(
            "the Trainer engine trains backbone heads",
            got="probe",
            expected="tokcls, labeltok or implicit",
            fix="train a probe with prmkit.train.loop.fit (cached features)",
        )
    if resume and work_dir is None:
        raise ConfigError(
            "resume needs the run's work_dir",
            got=None,
            expected="the folder the interrupted run saved its checkpoints to",
            fix="pass work_dir=... (prmkit train uses <out>.state)",
        )
    start = time.perf_counter()
    device = prm.device
    use_packing = resolve_packing(prm.model, packing)
    use_bf16 = resolve_bf16(bf16, device.type)
    groups = micro_batches(train, batch_size, max_batch_tokens, use_packing)
    eval_groups = micro_batches(held, batch_size, max_batch_tokens, use_packing) if held else []
    collate = _Collate(prm.pad_id(), use_packing, row_tokens)
    temp = None
    if work_dir is None:
        temp = tempfile.mkdtemp(prefix="prmkit-train-")
        work_dir = temp
    strategy = ("steps" if eval_every else "epoch") if held else "no"
    if held:
        save = strategy  # the best evaluation's weights are restored from its checkpoint
    elif temp is not None:
        save = "no"  # nobody can resume from a temporary folder: do not write checkpoints
    else:
        save = "steps" if save_every else "epoch"
    args = TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=1,  # one item = one micro-batch of traces
        per_device_eval_batch_size=1,
        gradient_accumulation_steps=grad_accum,
        learning_rate=lr,
        weight_decay=weight_decay,
        max_grad_norm=max_grad_norm,
        num_train_epochs=epochs,
        max_steps=max_steps or -1,
        lr_scheduler_type=(  # "constant" keeps the warm-up too
            "constant_with_warmup" if lr_decay is False or scheduler == "constant" else scheduler
        ),
        warmup_steps=warmup,
        bf16=use_bf16,
        activation_checkpointing=gradient_checkpointing,
        eval_strategy=strategy,
        eval_steps=eval_every or None,
        save_strategy=save,
        save_steps=(eval_every if held else save_every) or None,
        save_total_limit=2,
        save_only_model=False,
        load_best_model_at_end=bool(held),
        metric_for_best_model="eval_loss" if held else None,
        greater_is_better=False if held else None,
        logging_strategy="steps",
        logging_steps=log_every,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        restore_callback_states_from_checkpoint=True,  # early stopping's count survives resume
        remove_unused_columns=False,
        dataloader_pin_memory=False,
        use_cpu=device.type == "cpu",
        **({} if optim == "auto" else {"optim": optim}),
    )
    callbacks = []
    early = None
    if held and patience:
        early = EarlyStoppingCallback(patience, early_stopping_threshold=1e-6)
        callbacks.append(early)
    trainer = _trainer_class()(
        model=prm.model,
        args=args,
        train_dataset=groups,
        eval_dataset=eval_groups or None,
        data_collator=collate,
        callbacks=callbacks,
        prm=prm,
        error_weight=error_weight,
        eval_examples=held,
        batch_size=batch_size,
        max_batch_tokens=max_batch_tokens,
        collate=collate,
        log_fn=log,
    )
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our log line replaces its dict print
    checkpoint = latest_checkpoint(work_dir) if resume else None
    if resume and checkpoint is not None:
        log(f"resuming from {checkpoint}")
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    prm.model.eval()
    state = trainer.state
    history = _history(state.log_history)
    result = FitResult(
        optimizer_steps=state.global_step,
        epochs_run=max(1, math.ceil(state.epoch or 0)),
        best_eval_loss=state.best_metric if held else None,
        stopped_early=bool(early and early.early_stopping_patience_counter >= patience),
        history=history,
        seconds=time.perf_counter() - start,
        tokens_per_second=trainer.tokens / trainer.step_seconds if trainer.step_seconds else None,
        resumed_from=str(checkpoint) if checkpoint else None,
    )
    return result


def _history(log_history: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """One entry per evaluation (the last training loss before it), or per training log line
    when there was no evaluation."""
    evals = [h for h in log_history if "eval_loss" in h]
    out: list[dict[str, float]] = []
    last_loss = math.nan
    for h in log_history:
        if "loss" in h:
            last_loss = float(h["loss"])
            if not evals:
                out.append({"epoch": float(h["epoch"]), "step": h["step"], "train_loss": last_loss})
        if "eval_loss" in h:
            out.append(
                {
                    "epoch": float(h["epoch"]),
                    "step": h["step"],
                    "train_loss": last_loss,
                    "eval_loss": float(h["eval_loss"]),
                }
            )
    return out
