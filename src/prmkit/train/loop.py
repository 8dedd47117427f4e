"""Training PRMs: build the model for a head, fit it on step labels, keep the best on eval.

* ``tokcls``, ``labeltok``: the step logit at each labelled tag position is trained with binary
  cross-entropy against the (possibly soft) label; for a 2-way softmax this is exactly soft
  cross-entropy, so a 0.7 label trains the probability toward 0.7.
* ``probe``: the backbone is frozen; its hidden states at the step positions are computed once
  (cached features) and only the small MLP is trained.
* ``implicit``: the outcome logit ``beta * sum log pi/pi_ref`` over the response is trained with
  cross-entropy on the outcome label (1 = no wrong step); step rewards come out for free.

Full fine-tuning, or LoRA (``lora_r > 0``, peft; merged into the weights when saved).

Example:
    >>> prm = build_prm(spec, "smollm2")  # doctest: +SKIP
    >>> result = fit(prm, train_examples, eval_examples, lr=1e-4, epochs=1)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from prmkit.errors import ConfigError
from prmkit.prm.heads import (
    PRM,
    ProbeHead,
    eval_mode,
    hidden_features,
    pad_batch,
    step_outputs,
    truncate_for_probe,
)
from prmkit.prm.spec import PRMSpec
from prmkit.train.collate import Example, batches

__all__ = ["FitResult", "build_prm", "fit", "probe_features"]


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
) -> PRM:
    """A fresh PRM for ``spec.head`` on the base model ``base`` ("smollm2" or a local dir).

    Args:
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
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model.to(device)
    probe = ref = None
    if spec.head == "probe":
        model.requires_grad_(False)
        model.eval()
        spec = spec.replace(probe_layer=truncate_for_probe(model, spec.probe_layer))
        probe = ProbeHead(model.config.hidden_size, spec.probe_hidden).to(device)
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
    spec = spec.replace(base=base)
    return PRM(spec=spec, tokenizer=tokenizer, model=model, probe=probe, ref_model=ref, source=base)


@dataclass
class FitResult:
    """What :func:`fit` did."""

    optimizer_steps: int = 0
    epochs_run: int = 0
    best_eval_loss: float | None = None
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def weighted_bce(
    logits: torch.Tensor, targets: torch.Tensor, error_weight: float = 1.0
) -> torch.Tensor:
    """BCE with logits; targets below 0.5 (wrong steps) weigh ``error_weight`` times more."""
    if error_weight == 1.0:
        return F.binary_cross_entropy_with_logits(logits, targets)
    weight = torch.where(targets < 0.5, error_weight, 1.0).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, targets, weight=weight)


def _batch_loss(prm: PRM, group: Sequence[Example], error_weight: float = 1.0) -> torch.Tensor:
    encs = [e.enc for e in group]
    ids, mask = pad_batch(encs, prm.pad_id(), prm.device)
    values = step_outputs(prm, ids, mask, encs)
    if prm.spec.head == "implicit":  # outcome labels: no step classes to weigh
        logits = torch.stack([v.sum() for v in values])
        targets = torch.tensor([e.outcome for e in group], device=logits.device)
        error_weight = 1.0
    else:
        logits = torch.cat([v[e.label_steps] for v, e in zip(values, group, strict=True)])
        targets = torch.tensor([t for e in group for t in e.targets], device=logits.device)
    return weighted_bce(logits.float(), targets.float(), error_weight)


def probe_features(
    prm: PRM, examples: Sequence[Example], batch_size: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-backbone features at the labelled step positions and their targets.

    Returns:
        ``(features (n, hidden), targets (n,))`` in example order.
    """
    feats: list[torch.Tensor] = [torch.empty(0)] * len(examples)
    where = {id(e): i for i, e in enumerate(examples)}
    with torch.inference_mode(), eval_mode(prm.model):
        for group in batches(examples, batch_size, shuffle=False):
            encs = [e.enc for e in group]
            ids, mask = pad_batch(encs, prm.pad_id(), prm.device)
            for e, f in zip(
                group,
                hidden_features(prm.model, ids, mask, encs, prm.spec.probe_layer),
                strict=True,
            ):
                feats[where[id(e)]] = f[e.label_steps].float().cpu()
    targets = torch.tensor([t for e in examples for t in e.targets])
    width = prm.model.config.hidden_size
    return (torch.cat(feats) if feats else torch.empty(0, width)), targets


def _fit_probe(
    prm: PRM,
    train: Sequence[Example],
    held: Sequence[Example],
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    weight_decay: float,
    error_weight: float,
    log: Callable[[str], None],
) -> FitResult:
    result = FitResult()
    start = time.perf_counter()
    x, y = probe_features(prm, train, batch_size)
    xe, ye = probe_features(prm, held, batch_size) if held else (None, None)
    log(
        f"cached probe features: {tuple(x.shape)} train, "
        f"{0 if xe is None else tuple(xe.shape)} eval ({time.perf_counter() - start:.1f}s)"
    )
    probe = prm.probe
    if probe is None:
        raise ConfigError(
            "probe PRM without a probe head",
            got=None,
            expected="a ProbeHead",
            fix="build the PRM with build_prm(spec with head='probe', ...)",
        )
    device = next(probe.parameters()).device
    x, y = x.to(device), y.to(device)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, bad = math.inf, None, 0
    for epoch in range(epochs):
        probe.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), max(1, batch_size * 32)):
            idx = order[i : i + batch_size * 32].to(device)
            loss = weighted_bce(probe(x[idx]), y[idx], error_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            result.optimizer_steps += 1
            total += float(loss.detach()) * len(idx)
        entry = {"epoch": epoch + 1, "train_loss": total / max(1, len(x))}
        result.epochs_run = epoch + 1
        if xe is not None:
            probe.eval()
            with torch.no_grad():
                ev = float(weighted_bce(probe(xe.to(device)), ye.to(device), error_weight))
            entry["eval_loss"] = ev
            if ev < best - 1e-6:
                best, bad = ev, 0
                best_state = copy.deepcopy(probe.state_dict())
            else:
                bad += 1
        result.history.append(entry)
        if patience and bad >= patience:
            result.stopped_early = True
            break
    if best_state is not None:
        probe.load_state_dict(best_state)
        result.best_eval_loss = best
    probe.eval()
    result.seconds = time.perf_counter() - start
    return result


def _eval_loss(
    prm: PRM, held: Sequence[Example], batch_size: int, error_weight: float = 1.0
) -> float:
    total, count = 0.0, 0
    with torch.no_grad(), eval_mode(prm.model):
        for group in batches(held, batch_size, shuffle=False):
            n = len(group) if prm.spec.head == "implicit" else sum(len(e.targets) for e in group)
            total += float(_batch_loss(prm, group, error_weight)) * n
            count += n
    return total / max(1, count)


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
    lr_decay: bool = True,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
) -> FitResult:
    """Train ``prm`` in place; with an eval set, keep the weights with the lowest eval loss.

    Args:
        train: Training examples.
        held: Eval examples (empty: no early stopping).
        lr: AdamW learning rate.
        epochs: Passes over ``train``.
        batch_size: Traces per optimizer step (length-bucketed).
        max_steps: Stop after this many optimizer steps (0 = no limit).
        eval_every: Evaluate every N optimizer steps (0 = once per epoch).
        patience: Stop after this many evaluations without improvement (0 = never).
        weight_decay: AdamW weight decay.
        error_weight: Loss weight of wrong steps (target < 0.5) relative to right ones, for
            class imbalance (e.g. n_right / n_wrong); 1 = plain BCE. Not used by ``implicit``.
        lr_decay: Decay the learning rate linearly to 0 over the run (else constant).
        seed: Batch-order seed.
        log: Called with progress lines.

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
    if prm.spec.head == "probe":
        return _fit_probe(
            prm,
            train,
            held,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            seed=seed,
            weight_decay=weight_decay,
            error_weight=error_weight,
            log=log,
        )
    result = FitResult()
    start = time.perf_counter()
    params = [p for p in prm.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = epochs * len(batches(train, batch_size, shuffle=False))
    total = min(total, max_steps) if max_steps else total
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: max(0.0, 1.0 - step / total) if lr_decay else 1.0
    )
    best, best_state, bad, running = math.inf, None, 0, []

    def evaluate() -> bool:
        nonlocal best, best_state, bad
        entry = {"step": result.optimizer_steps, "train_loss": sum(running) / max(1, len(running))}
        running.clear()
        if held:
            ev = _eval_loss(prm, held, batch_size, error_weight)
            entry["eval_loss"] = ev
            if ev < best - 1e-6:
                best, bad = ev, 0
                best_state = {
                    n: p.detach().clone()
                    for n, p in prm.model.named_parameters()
                    if p.requires_grad
                }
            else:
                bad += 1
        result.history.append(entry)
        log(" ".join(f"{k}={v:.4g}" for k, v in entry.items()))
        return bool(held) and patience > 0 and bad >= patience

    stop = False
    for epoch in range(epochs):
        prm.model.train()
        for group in batches(train, batch_size, shuffle=True, seed=seed + epoch):
            loss = _batch_loss(prm, group, error_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            result.optimizer_steps += 1
            running.append(float(loss.detach()))
            if eval_every and result.optimizer_steps % eval_every == 0 and evaluate():
                stop = result.stopped_early = True
            if stop or (max_steps and result.optimizer_steps >= max_steps):
                stop = True
                break
        result.epochs_run = epoch + 1
        if not stop and not eval_every and evaluate():
            stop = result.stopped_early = True
        if stop:
            break
    if running or not result.history:
        evaluate()
    if best_state is not None:
        named = dict(prm.model.named_parameters())
        with torch.no_grad():
            for n, value in best_state.items():
                named[n].copy_(value)
        result.best_eval_loss = best
    prm.model.eval()
    result.seconds = time.perf_counter() - start
    return result
