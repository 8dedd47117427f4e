"""The training engine for every PRM head: build the model, fit it on step labels, keep the best.

* ``tokcls``, ``labeltok``: the step logit at each labelled tag position is trained with binary
  cross-entropy against the (possibly soft) label; for a 2-way softmax this is exactly soft
  cross-entropy, so a 0.7 label trains the probability toward 0.7.
* ``probe``: the backbone is frozen; its hidden states at the step positions are computed once
  (:func:`step_features`, several layers in one pass if asked) and only the small MLP is trained
  on them (:func:`fit_probe`).
* ``implicit``: the outcome logit ``beta * sum log pi/pi_ref`` over the response is trained with
  cross-entropy on the outcome label (1 = no wrong step); step rewards come out for free.

The backbone heads train on ``transformers.Trainer`` (:mod:`prmkit.train.trainer`: bf16,
accumulation, clipping, warm-up, packing, resume, DDP); the probe on a small loop over cached
features (``_train_loop``). Both keep the best evaluation by one early-stopping rule. Full
fine-tuning, or LoRA (``lora_r > 0``, peft; merged into the weights when saved).

Example:
    >>> prm = build_prm(spec, "smollm2")  # doctest: +SKIP
    >>> result = fit(prm, train_examples, eval_examples, lr=1e-4, epochs=1)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from prmkit.errors import ConfigError
from prmkit.prm.formats import Encoded, length_buckets
from prmkit.prm.heads import (
    PRM,
    ProbeHead,
    batched_probe_inputs,
    eval_mode,
    make_probe,
    packing_supported,
    pad_batch,
    probe_sizes,
    truncate_for_probe,
)
from prmkit.prm.spec import PRMSpec
from prmkit.train.collate import Example
from prmkit.train.trainer import FitResult, fit_trainer, weighted_bce

__all__ = [
    "FitResult",
    "build_prm",
    "fit",
    "fit_probe",
    "probe_features",
    "step_features",
    "weighted_bce",
]


def build_prm(
    spec: PRMSpec,
    base: str,
    *,
    lora_r: int = 0,
    lora_alpha: int = 16,
    lora_targets: Sequence[str] = ("q_proj", "v_proj"),
    add_tag_token: bool = False,
    device: str = "cpu",
    seed: int = 0,
    adapter: str | None = None,
) -> PRM:
    """A fresh PRM for ``spec.head`` on the base model ``base`` ("smollm2" or a local dir).

    Args:
        adapter: A LoRA adapter (e.g. the policy's warm-up) merged into the base weights before
            the head is built: the PRM starts from the policy, as Math-Shepherd's does.
        add_tag_token: Add the (stripped) step tag to the tokenizer as a special token and grow
            the embeddings, for tags such as ``<extra_0>`` that are not in the vocabulary.
    """
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    from prmkit.models.loading import load_tokenizer, resolve_model_path

    torch.manual_seed(seed)
    path = str(resolve_model_path(base))
    tokenizer = load_tokenizer(base)
    if add_tag_token:
        tokenizer.add_special_tokens({"additional_special_tokens": [spec.step_tag.strip()]})
    if spec.head == "tokcls":
        model = AutoModelForTokenClassification.from_pretrained(
            path, num_labels=2, use_safetensors=True
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
    if adapter:
        from peft import PeftModel

        from prmkit.models.loading import check_safetensors
        from prmkit.models.policy import ADAPTER_WEIGHTS

        check_safetensors(Path(adapter), ADAPTER_WEIGHTS)
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model.to(device)
    probe = ref = None
    if spec.head == "probe":
        model.requires_grad_(False)
        model.eval()
        if "logprobs" not in spec.probe_features:
            spec = spec.replace(probe_layer=truncate_for_probe(model, spec.probe_layer))
        probe = make_probe(spec, model.config.hidden_size).to(device)
    if spec.head == "implicit":
        ref = copy.deepcopy(model).requires_grad_(False).eval()
    if lora_r and spec.head != "probe":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            target_modules=list(lora_targets),
            lora_dropout=0.0,
            modules_to_save=["score"] if spec.head == "tokcls" else None,
        )
        model = get_peft_model(model, config)
    source = f"{base}+{adapter}" if adapter else base
    spec = spec.replace(base=source)
    return PRM(
        spec=spec, tokenizer=tokenizer, model=model, probe=probe, ref_model=ref, source=source
    )


def step_features(
    model: Any,
    encs: Sequence[Encoded],
    layers: Sequence[int],
    *,
    pad_id: int,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Frozen hidden states at every step position: the probe's features, computed once.

    One forward pass per trace (length-bucketed batches of ``batch_size``), reading several
    layers at once; the probe head trains on these instead of running the backbone per epoch.
    The values are those :func:`prmkit.prm.heads.hidden_features` reads when scoring.

    Args:
        model: The frozen causal LM (its backbone runs; the LM head does not).
        encs: Encoded traces (:func:`prmkit.prm.encode`).
        layers: ``hidden_states`` indices (0 = embeddings, -1 = last, after the final norm).
        pad_id: Padding token id.
        batch_size: Traces per forward pass.
        device: Where the model is.

    Returns:
        One ``(n_steps, len(layers), hidden)`` float32 CPU tensor per trace, in input order.

    Example:
        >>> feats = step_features(prm.model, encs, [8, 16], pad_id=prm.pad_id())  # doctest: +SKIP
        >>> feats[0].shape  # (steps, layers, hidden)  # doctest: +SKIP
        torch.Size([4, 2, 576])
    """
    out: list[torch.Tensor] = [torch.empty(0)] * len(encs)
    backbone = getattr(model, "base_model", model)  # as hidden_features: no LM head
    with torch.inference_mode(), eval_mode(model):
        for group in length_buckets([len(e.input_ids) for e in encs], batch_size):
            ids, mask = pad_batch([encs[i] for i in group], pad_id, device)
            hidden = backbone(
                input_ids=ids, attention_mask=mask, output_hidden_states=True
            ).hidden_states
            stack = torch.stack([hidden[layer] for layer in layers], dim=2)  # (b, seq, L, hidden)
            for b, i in enumerate(group):
                out[i] = stack[b, encs[i].step_positions].float().cpu()
    return out


def probe_features(
    prm: PRM, examples: Sequence[Example], batch_size: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe's features at the labelled step positions and their targets.

    The features are :func:`prmkit.prm.heads.probe_inputs`, as scoring reads them, computed
    once (length-bucketed batches of ``batch_size`` traces, inference mode).

    Returns:
        ``(features (n, d), targets (n,))`` in example order.
    """
    targets = torch.tensor([t for e in examples for t in e.targets])
    if not examples:
        width = sum(probe_sizes(prm.spec, prm.model.config.hidden_size))
        return torch.empty(0, width), targets
    encs = [e.enc for e in examples]
    feats = batched_probe_inputs(prm, encs, batch_size, packing=packing_supported(prm.model))
    rows = [f[e.label_steps] for f, e in zip(feats, examples, strict=True)]
    return torch.cat(rows), targets


def _train_loop(
    module: torch.nn.Module,
    epoch_batches: Callable[[int], Sequence[Any]],
    batch_loss: Callable[[Any], torch.Tensor],
    eval_loss: Callable[[], float] | None,
    *,
    steps_per_epoch: int,
    lr: float,
    epochs: int,
    max_steps: int,
    eval_every: int,
    patience: int,
    weight_decay: float,
    lr_decay: bool,
    log: Callable[[str], None],
) -> FitResult:
    """The one training loop: AdamW on ``module``'s trainable parameters, evaluation every
    ``eval_every`` steps or once per epoch, and the one early-stopping rule.

    Early stopping: an evaluation improves when its loss is below the best so far by more than
    1e-6; training stops after ``patience`` evaluations in a row without an improvement (0 =
    never), and the weights of the best evaluation are restored at the end.
    """
    result = FitResult()
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = epochs * steps_per_epoch
    total = min(total, max_steps) if max_steps else total
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: max(0.0, 1.0 - step / total) if lr_decay else 1.0
    )
    best, best_state, bad, running = math.inf, None, 0, []

    def evaluate(epoch: int) -> bool:
        """Record an evaluation; True when early stopping says stop."""
        nonlocal best, best_state, bad
        entry = {
            "epoch": epoch + 1,
            "step": result.optimizer_steps,
            "train_loss": sum(running) / max(1, len(running)),
        }
        running.clear()
        if eval_loss is not None:
            ev = entry["eval_loss"] = eval_loss()
            if ev < best - 1e-6:
                best, bad = ev, 0
                best_state = {
                    n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad
                }
            else:
                bad += 1
        result.history.append(entry)
        log(" ".join(f"{k}={v:.4g}" for k, v in entry.items()))
        return eval_loss is not None and patience > 0 and bad >= patience

    stop, epoch = False, 0
    for epoch in range(epochs):
        module.train()
        for batch in epoch_batches(epoch):
            loss = batch_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            result.optimizer_steps += 1
            running.append(float(loss.detach()))
            if eval_every and result.optimizer_steps % eval_every == 0 and evaluate(epoch):
                stop = result.stopped_early = True
            if stop or (max_steps and result.optimizer_steps >= max_steps):
                stop = True
                break
        result.epochs_run = epoch + 1
        if not stop and not eval_every and evaluate(epoch):
            stop = result.stopped_early = True
        if stop:
            break
    if running or not result.history:
        evaluate(epoch)
    if best_state is not None:
        named = dict(module.named_parameters())
        with torch.no_grad():
            for n, value in best_state.items():
                named[n].copy_(value)
        result.best_eval_loss = best
    module.eval()
    return result


def fit_probe(
    probe: ProbeHead,
    features: torch.Tensor,
    targets: torch.Tensor,
    eval_features: torch.Tensor | None = None,
    eval_targets: torch.Tensor | None = None,
    *,
    lr: float = 1e-3,
    epochs: int = 1,
    batch_size: int = 128,
    max_steps: int = 0,
    eval_every: int = 0,
    patience: int = 2,
    weight_decay: float = 0.0,
    error_weight: float = 1.0,
    lr_decay: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
) -> FitResult:
    """Train a probe head in place on cached features (:func:`step_features`).

    The same loop and early-stopping rule as :func:`fit` (which calls this for ``probe``
    PRMs), over rows of features instead of traces: each epoch visits the rows in a seeded
    random order, ``batch_size`` rows per optimizer step.

    Args:
        probe: The head to train.
        features: ``(n, hidden)`` training features; ``targets``: their ``(n,)`` labels.
        eval_features: ``(m, hidden)`` eval features (``None``: no early stopping);
            ``eval_targets`` their labels.
        lr, epochs, max_steps, eval_every, patience, weight_decay, error_weight: As in
            :func:`fit`.
        batch_size: Feature rows per optimizer step.
        lr_decay: Decay the learning rate linearly to 0 (default: constant).
        seed: Row-order seed.
        log: Called with a line per evaluation.

    Example:
        >>> probe = ProbeHead(hidden_size=8, width=0)
        >>> x, y = torch.randn(64, 8), (torch.rand(64) > 0.5).float()
        >>> fit_probe(probe, x, y, x[:16], y[:16], epochs=3).epochs_run
        3
    """
    if len(features) == 0:
        raise ConfigError(
            "no training features",
            got=0,
            expected="at least one labelled step",
            fix="check the data file and the truncation report",
        )
    start = time.perf_counter()
    device = next(probe.parameters()).device
    x, y = features.to(device).float(), targets.to(device).float()
    gen = torch.Generator().manual_seed(seed)

    def epoch_batches(_: int) -> list[torch.Tensor]:
        order = torch.randperm(len(x), generator=gen).to(device)
        return [order[i : i + batch_size] for i in range(0, len(x), batch_size)]

    eval_loss = None
    if eval_features is not None and eval_targets is not None and len(eval_features):
        xe, ye = eval_features.to(device).float(), eval_targets.to(device).float()

        def eval_loss() -> float:
            with torch.no_grad(), eval_mode(probe):
                return float(weighted_bce(probe(xe), ye, error_weight))

    result = _train_loop(
        probe,
        epoch_batches,
        lambda idx: weighted_bce(probe(x[idx]), y[idx], error_weight),
        eval_loss,
        steps_per_epoch=math.ceil(len(x) / batch_size),
        lr=lr,
        epochs=epochs,
        max_steps=max_steps,
        eval_every=eval_every,
        patience=patience,
        weight_decay=weight_decay,
        lr_decay=lr_decay,
        log=log,
    )
    result.seconds = time.perf_counter() - start
    return result


PROBE_ROWS_PER_TRACE = 32
"""A ``probe`` PRM trains on ``batch_size * 32`` feature rows per step (about that many
traces' steps), since one row costs far less than one trace through the backbone."""


def fit(
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
    log: Callable[[str], None] = lambda _: None,
    **engine: Any,
) -> FitResult:
    """Train ``prm`` in place; with an eval set, keep the weights with the lowest eval loss.

    A ``probe`` PRM first computes the frozen backbone's features once
    (:func:`probe_features`) and then trains only the MLP on them (:func:`fit_probe`,
    ``batch_size * 32`` rows per step). The other heads train on ``transformers.Trainer``
    (:func:`prmkit.train.trainer.fit_trainer`: bf16, accumulation, clipping, warm-up,
    packing, checkpoints and resume, DDP), ``batch_size`` traces per micro-batch.

    Early stopping, for both: an evaluation improves when its loss is below the best so far
    by more than 1e-6; training stops after ``patience`` evaluations in a row without an
    improvement (0 = never), and the weights of the best evaluation are restored at the end.

    Args:
        train: Training examples.
        held: Eval examples (empty: no early stopping).
        lr: AdamW learning rate.
        epochs: Passes over ``train``.
        batch_size: Traces per micro-batch (length-bucketed).
        max_steps: Stop after this many optimizer steps (0 = no limit).
        eval_every: Evaluate every N optimizer steps (0 = once per epoch).
        patience: Stop after this many evaluations without improvement (0 = never).
        weight_decay: AdamW weight decay.
        error_weight: Loss weight of wrong steps (target < 0.5) relative to right ones, for
            class imbalance (e.g. n_right / n_wrong); 1 = plain BCE. Not used by ``implicit``.
        lr_decay: Decay the learning rate over the run; ``None``: decay when the backbone
            trains, constant for the probe.
        seed: Batch-order seed.
        log: Called with progress lines.
        **engine: Backbone heads only, passed to :func:`~prmkit.train.trainer.fit_trainer`:
            ``grad_accum``, ``max_grad_norm``, ``warmup``, ``scheduler``, ``bf16``,
            ``gradient_checkpointing``, ``packing``, ``max_batch_tokens``, ``row_tokens``,
            ``optim``, ``work_dir``, ``save_every``, ``resume``, ``log_every``.

    Raises:
        ConfigError: no training examples.
    """
    if not train:
        raise ConfigError(
            "no training examples",
            got=0,
            expected="at least one labelled trace",
            fix="check the data file and the truncation report",
        )
    torch.manual_seed(seed)
    common = {
        "lr": lr,
        "epochs": epochs,
        "max_steps": max_steps,
        "eval_every": eval_every,
        "patience": patience,
        "weight_decay": weight_decay,
        "log": log,
    }
    if prm.spec.head != "probe":
        return fit_trainer(
            prm,
            train,
            held,
            batch_size=batch_size,
            error_weight=error_weight,
            lr_decay=lr_decay,
            seed=seed,
            **common,
            **engine,
        )
    if prm.probe is None:
        raise ConfigError(
            "probe PRM without a probe head",
            got=None,
            expected="a ProbeHead",
            fix="build the PRM with build_prm(spec with head='probe', ...)",
        )
    start = time.perf_counter()
    x, y = probe_features(prm, train, batch_size)
    xe, ye = probe_features(prm, held, batch_size) if held else (None, None)
    log(
        f"cached probe features: {tuple(x.shape)} train, "
        f"{0 if xe is None else tuple(xe.shape)} eval ({time.perf_counter() - start:.1f}s)"
    )
    result = fit_probe(
        prm.probe,
        x,
        y,
        xe,
        ye,
        batch_size=batch_size * PROBE_ROWS_PER_TRACE,
        error_weight=error_weight,
        lr_decay=bool(lr_decay),
        seed=seed,
        **common,
    )
    result.seconds = time.perf_counter() - start
    return result
