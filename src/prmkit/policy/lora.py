"""The default policy warm-up: a short LoRA fine-tune on the built-in task's gold solutions.

SmolLM2-135M-Instruct alone solves almost none of the built-in arithmetic problems: it does not
write the canonical step format and its arithmetic is weak. :func:`warmup` trains a LoRA adapter
on gold worked solutions (user message = :func:`~prmkit.tasks.prompts.render_prompt`, assistant
message = the gold steps joined by a blank line, loss on the assistant tokens only), so the policy
writes the step format and solves a meaningful but imperfect share of problems with real step
errors - a policy worth supervising with a PRM.

The adapter is cached under ``<cache_dir>/warmup-<key>`` where ``key`` hashes every training
setting, the base model's identity, the prompt template and the chat template. It is written to a
temporary folder and renamed into place, so a crash never leaves a half-written adapter, and a
second call with the same settings is a cache hit that loads nothing and trains nothing.

Speed (2 CPU cores): examples are bucketed by length (little padding), LoRA sits only on the
top ``lora_layers`` blocks (the backward pass stops there), the LM head runs only on the
positions that carry a label, and matmuls run in bfloat16 autocast where the CPU supports it.

Example:
    >>> adapter = warmup(n_examples=400)  # doctest: +SKIP
    >>> from prmkit.models import load_policy
    >>> policy = load_policy("smollm2", adapter=adapter)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prmkit.errors import ConfigError, ModelLoadError
from prmkit.io import (
    make_sibling_dir,
    read_json,
    remove_stale_siblings,
    replace_dir,
    write_json,
)
from prmkit.records import Problem

__all__ = [
    "DEFAULT_TARGETS",
    "Example",
    "TrainStats",
    "adapter_key",
    "build_example",
    "default_cache_dir",
    "train_lora",
    "warmup",
]

log = logging.getLogger("prmkit.policy")

DEFAULT_TARGETS: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
"""LoRA target modules of Llama-family models: every attention and MLP projection."""

FORMAT_VERSION = 1
"""Bumped when the training data or the recipe changes in a way the settings do not show."""

INFO_FILE = "warmup.json"
"""Written beside the adapter: the settings, the cache key and the training statistics."""


@dataclass
class Example:
    """One tokenized training example.

    Attributes:
        input_ids: Prompt ids (chat template, user message, generation prompt) + solution ids.
        labels: ``-100`` on every prompt position, the token id on every solution position.
        problem_id: The source problem.
    """

    input_ids: list[int]
    labels: list[int]
    problem_id: str

    @property
    def n_prompt(self) -> int:
        """Number of masked (prompt) positions."""
        return sum(1 for x in self.labels if x == -100)


@dataclass
class TrainStats:
    """What a training run did (saved in ``warmup.json``)."""

    steps: int
    examples: int
    tokens: int
    label_tokens: int
    padded_tokens: int
    wall_s: float
    tokens_per_s: float
    losses: list[float]


def default_cache_dir() -> Path:
    """``prmkit.models.loading.cache_dir() / "adapters"``."""
    from prmkit.models.loading import cache_dir

    return cache_dir() / "adapters"


def build_example(tokenizer: Any, problem: Problem, *, system: str | None = None) -> Example:
    """Tokenize a problem's gold solution as a chat: prompt masked, solution labelled.

    The prompt is tokenized on its own, exactly as the generator encodes it at inference
    (:func:`prmkit.generate.chat.encode_prefix` of a prefix without steps), and the solution
    (steps joined by ``"\\n\\n"``, then the end-of-turn token) is appended.

    Example:
        >>> ex = build_example(tok, problem)  # doctest: +SKIP
        >>> ex.labels[: ex.n_prompt] == [-100] * ex.n_prompt  # doctest: +SKIP
        True
    """
    from prmkit.generate.chat import render_solution
    from prmkit.tasks.arithmetic import gold_solution
    from prmkit.tasks.prompts import render_prompt

    head, body = render_solution(
        tokenizer, render_prompt(problem), gold_solution(problem), system=system
    )
    prompt_ids = tokenizer.encode(head, add_special_tokens=False)
    body_ids = tokenizer.encode(body, add_special_tokens=False)
    return Example(prompt_ids + body_ids, [-100] * len(prompt_ids) + body_ids, problem.id)


def _task_settings(
    min_steps: int,
    max_steps: int,
    start_range: Sequence[int],
    add_range: Sequence[int],
    mul_range: Sequence[int],
    max_value: int,
    ops: Sequence[str],
) -> dict[str, Any]:
    return {
        "min_steps": min_steps,
        "max_steps": max_steps,
        "start_range": tuple(start_range),
        "add_range": tuple(add_range),
        "mul_range": tuple(mul_range),
        "max_value": max_value,
        "ops": tuple(ops),
    }


def _base_identity(base: str) -> dict[str, Any]:
    """What identifies the base model without loading it (name, or a local dir's config)."""
    from prmkit.models.loading import PACKAGED, find_packaged_gguf

    if base in PACKAGED:
        gguf = find_packaged_gguf(base)
        return {"name": base, "file": gguf.name, "bytes": gguf.stat().st_size}
    path = Path(base).expanduser().resolve()
    config = path / "config.json"
    if not config.exists():
        raise ModelLoadError(
            "no such model",
            got=base,
            expected=f"one of {sorted(PACKAGED)} or a local Hugging Face "
            "model directory (with config.json)",
            fix="pass 'smollm2' or a local model path",
        )
    weights = sorted((p.name, p.stat().st_size) for p in path.glob("*.safetensors"))
    digest = hashlib.sha256(config.read_bytes()).hexdigest()[:16]
    return {"path": str(path), "config": digest, "weights": weights}


def adapter_key(settings: dict[str, Any]) -> str:
    """A short stable hash of the settings (JSON with sorted keys)."""
    blob = json.dumps(settings, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _batches(examples: list[Example], batch_size: int, rng: random.Random) -> list[list[Example]]:
    """Length-bucketed batches in random order: sort by length, cut, shuffle the batches."""
    order = sorted(examples, key=lambda e: (len(e.input_ids), rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _collate(batch: list[Example], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-padded ``(input_ids, attention_mask, labels)``, each ``(batch, max_len)``."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e.labels)
    return ids, mask, labels


def _loss(model: Any, ids: Any, mask: Any, labels: Any) -> Any:
    """Mean next-token cross-entropy over labelled positions; the LM head runs only there."""
    import torch

    hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]  # position t predicts token t + 1
    keep = targets != -100  # (batch, seq - 1)
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])  # (n_labels, vocab)
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def _autocast(bf16: bool) -> Any:
    import contextlib

    import torch

    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def train_lora(
    model: Any,
    tokenizer: Any,
    examples: list[Example],
    *,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.0,
    lora_targets: Sequence[str] = DEFAULT_TARGETS,
    lora_layers: int = 0,
    lr: float = 1e-3,
    batch_size: int = 8,
    epochs: int = 1,
    warmup_steps: int = 5,
    seed: int = 0,
    bf16: bool = False,
    progress: bool = True,
) -> tuple[Any, TrainStats]:
    """Wrap ``model`` in a LoRA adapter and train it on ``examples`` (AdamW, linear decay).

    Args:
        model: A Hugging Face causal LM (its weights stay frozen).
        tokenizer: Its tokenizer (for the pad id).
        examples: Tokenized examples (:func:`build_example`).
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator (scale = alpha / r).
        lora_dropout: Dropout on the LoRA input.
        lora_targets: Module names that get an adapter.
        lora_layers: Put adapters only on the top ``lora_layers`` transformer blocks (the backward
            pass then stops there); ``0`` = every block.
        lr: Peak learning rate.
        batch_size: Examples per optimizer step.
        epochs: Passes over the examples.
        warmup_steps: Linear learning-rate warm-up steps.
        seed: Seeds the adapter init and the batch order.
        bf16: Run matmuls in bfloat16 autocast (fast on CPUs with AVX512-BF16/AMX).
        progress: Show a tqdm bar.

    Returns:
        ``(peft_model, stats)``.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    n_layers = int(model.config.num_hidden_layers)
    if not 0 <= lora_layers <= n_layers:
        raise ConfigError(
            "bad lora_layers",
            got=lora_layers,
            expected=f"0..{n_layers}",
            fix="0 adapts every block; k adapts the top k blocks",
        )
    layers = list(range(n_layers - lora_layers, n_layers)) if lora_layers else None
    torch.manual_seed(seed)
    config = LoraConfig(
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=list(lora_targets),
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = random.Random(f"prmkit-warmup:{seed}")
    plan = [b for _ in range(epochs) for b in _batches(examples, batch_size, rng)]
    total = len(plan)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total - step) / max(1, total - warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    losses: list[float] = []
    tokens = label_tokens = padded = 0
    start = time.perf_counter()
    bar = tqdm(plan, desc="warm-up", unit="batch", disable=not progress)
    for batch in bar:
        ids, mask, labels = _collate(batch, pad_id)
        with _autocast(bf16):
            loss = _loss(peft_model.get_base_model(), ids, mask, labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += int(mask.sum())
        padded += int(mask.numel())
        label_tokens += sum(len(e.labels) - e.n_prompt for e in batch)
        elapsed = time.perf_counter() - start
        bar.set_postfix(loss=f"{losses[-1]:.3f}", tok_s=f"{tokens / elapsed:.0f}")
    wall = time.perf_counter() - start
    peft_model.eval()
    stats = TrainStats(
        steps=total,
        examples=len(examples),
        tokens=tokens,
        label_tokens=label_tokens,
        padded_tokens=padded,
        wall_s=round(wall, 2),
        tokens_per_s=round(tokens / wall, 1) if wall > 0 else 0.0,
        losses=[round(x, 4) for x in losses],
    )
    return peft_model, stats


def warmup(
    base: str = "smollm2",
    *,
    n_examples: int = 400,
    min_steps: int = 2,
    max_steps: int = 6,
    start_range: Sequence[int] = (2, 30),
    add_range: Sequence[int] = (1, 30),
    mul_range: Sequence[int] = (2, 5),
    max_value: int = 300,
    ops: Sequence[str] = ("+", "-", "*"),
    system: str | None = None,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.0,
    lora_targets: Sequence[str] = DEFAULT_TARGETS,
    lora_layers: int = 0,
    lr: float = 1e-3,
    batch_size: int = 8,
    epochs: int = 1,
    warmup_steps: int = 5,
    max_seq_len: int = 512,
    seed: int = 0,
    bf16: bool | Literal["auto"] = "auto",
    threads: int = 0,
    cache_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Train (or fetch from the cache) the warm-up LoRA adapter; return its directory.

    Training problems are ``arithmetic.generate(n_examples, seed=seed, ...)`` with the given
    task settings; evaluate on another seed (see :func:`prmkit.policy.evaluate_policy`).

    Args:
        base: ``"smollm2"`` or a local Hugging Face model directory.
        n_examples: Gold solutions to train on.
        min_steps: Fewest operations per training problem.
        max_steps: Most operations per training problem.
        start_range: Range of the starting quantity.
        add_range: Range of ``+``/``-`` operands.
        mul_range: Range of ``*``/``/`` operands.
        max_value: Largest quantity in a problem.
        ops: Operations the problems use.
        system: System message of the chat template (``None``: the template's default - what
            the generator uses unless told otherwise).
        lora_r: LoRA rank.
        lora_alpha: LoRA alpha.
        lora_dropout: LoRA dropout.
        lora_targets: Modules that get an adapter.
        lora_layers: Adapt only the top k blocks (0 = all).
        lr: Peak learning rate.
        batch_size: Examples per step.
        epochs: Passes over the data.
        warmup_steps: Learning-rate warm-up steps.
        max_seq_len: Longer examples are an error (raise it, or shorten the problems).
        seed: Seed of the training problems, the adapter init and the batch order.
        bf16: bfloat16 autocast for the matmuls (numbers differ slightly from float32);
            ``"auto"`` = only where the CPU computes bf16 natively (AVX512-BF16/AMX), since
            emulated bf16 is ~20x slower than float32. The resolved choice is in the cache key.
        threads: ``torch.set_num_threads`` (0 = leave torch's default). Not part of the key.
        cache_dir: Where adapters live (default ``<prmkit cache>/adapters``).
        force: Retrain even on a cache hit (the new adapter replaces the cached one).
        progress: Show a tqdm bar.

    Returns:
        The adapter directory (peft files plus ``warmup.json``).

    Raises:
        ConfigError: bad settings, or a training example longer than ``max_seq_len``.
        ModelLoadError: the base model cannot be found.
    """
    from prmkit.models.precision import cpu_capability, resolve_bf16
    from prmkit.tasks import arithmetic
    from prmkit.tasks.prompts import load_prompt

    task = _task_settings(min_steps, max_steps, start_range, add_range, mul_range, max_value, ops)
    bf16 = resolve_bf16(bf16)
    training = {
        "n_examples": n_examples,
        "system": system,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "lora_targets": sorted(lora_targets),
        "lora_layers": lora_layers,
        "lr": lr,
        "batch_size": batch_size,
        "epochs": epochs,
        "warmup_steps": warmup_steps,
        "max_seq_len": max_seq_len,
        "seed": seed,
        "bf16": bf16,
    }
    if n_examples < 1 or batch_size < 1 or epochs < 1:
        raise ConfigError(
            "n_examples, batch_size and epochs must be >= 1",
            got=(n_examples, batch_size, epochs),
            expected="positive integers",
            fix="e.g. n_examples=400 batch_size=8 epochs=1",
        )
    settings = {
        "format": FORMAT_VERSION,
        "base": _base_identity(base),
        "task": task,
        "training": training,
        "template": load_prompt("arithmetic"),
    }
    key = adapter_key(settings)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"warmup-{key}"
    if (target / INFO_FILE).exists() and not force:
        log.info("warm-up cache hit: %s", target)
        return target
    log.info("warm-up cache miss: training %s", target)
    log.info(
        "warm-up precision: %s (CPU capability %s)",
        "bfloat16 autocast" if bf16 else "float32",
        cpu_capability(),
    )

    import torch

    from prmkit.models import load_base

    if threads:
        torch.set_num_threads(threads)
    loaded = load_base(base)
    problems = arithmetic.generate(n_examples, seed=seed, **task)
    examples = [build_example(loaded.tokenizer, p, system=system) for p in problems]
    longest = max(len(e.input_ids) for e in examples)
    if longest > max_seq_len:
        raise ConfigError(
            "a training example is longer than max_seq_len",
            got=longest,
            expected=f"<= {max_seq_len} tokens",
            fix="raise max_seq_len or lower max_steps",
        )
    peft_model, stats = train_lora(
        loaded.model,
        loaded.tokenizer,
        examples,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_targets=lora_targets,
        lora_layers=lora_layers,
        lr=lr,
        batch_size=batch_size,
        epochs=epochs,
        warmup_steps=warmup_steps,
        seed=seed,
        bf16=bf16,
        progress=progress,
    )
    log.info(
        "warm-up trained %d examples, %d tokens in %.1f s (%.0f tokens/s), final loss %.3f",
        stats.examples,
        stats.tokens,
        stats.wall_s,
        stats.tokens_per_s,
        sum(stats.losses[-10:]) / len(stats.losses[-10:]),
    )
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target, "new")
    tmp = make_sibling_dir(target, "new")  # 0777 & ~umask, like every prmkit output
    try:
        peft_model.save_pretrained(str(tmp))
        write_json(
            tmp / INFO_FILE,
            {"key": key, "base": base, "settings": settings, "stats": stats.__dict__},
        )
        if force:  # keep the old adapter until the new one is in place
            replace_dir(tmp, target)
        else:
            os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / INFO_FILE).exists():  # another process did not win the race
            raise
    return target


def read_info(adapter: str | Path) -> dict[str, Any]:
    """The ``warmup.json`` of an adapter directory (settings, key, training stats)."""
    return read_json(Path(adapter) / INFO_FILE)


def _loss_curve(losses: list[float], points: int = 8) -> list[float]:
    """A few evenly spaced running means of the loss (for logs and docs)."""
    if not losses:
        return []
    size = max(1, math.ceil(len(losses) / points))
    return [
        round(sum(c) / len(c), 3)
        for c in (losses[i : i + size] for i in range(0, len(losses), size))
    ]
