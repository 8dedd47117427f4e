"""The scoring rows of bench/gpu/run.py: prmkit's PRMScorer (packed, padded) and two plain
transformers baselines, timed on the same model and the same encoded traces.

Example:
    >>> scores, seconds = timed(lambda: scorer.score_encoded(encs), device)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from prmkit.prm.formats import Encoded

__all__ = ["dense_batches", "dense_forward", "plain_padded_scores", "timed", "warmup_subset"]

T = TypeVar("T")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """``fn()`` and its wall time, with the device synchronised before and after."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def warmup_subset(encs: Sequence[Encoded], n: int, n_longest: int = 32) -> list[Encoded]:
    """The ``n_longest`` longest traces (the allocator grows to its peak) and the first ones
    in input order, ``n`` at most."""
    longest = sorted(range(len(encs)), key=lambda i: -len(encs[i].input_ids))[:n_longest]
    chosen = list(dict.fromkeys([*longest, *range(len(encs))]))[:n]
    return [encs[i] for i in chosen]


def plain_padded_scores(
    model: Any,
    encs: Sequence[Encoded],
    pad_id: int,
    batch_size: int,
    positive_index: int = 1,
    max_seconds: float | None = None,
) -> list[list[float]]:
    """Baseline 3: what plain transformers code does. Traces in input order, ``batch_size`` at a
    time, right-padded to the batch's longest, ``model(input_ids, attention_mask).logits``,
    the positive-class probability read at the step positions on the host.

    With ``max_seconds``, stops after the batch that passes it (the copy to the host of each
    batch synchronises): the scores of the first traces only.
    """
    device = next(model.parameters()).device
    out: list[list[float]] = []
    start = time.perf_counter()
    with torch.inference_mode():
        for at in range(0, len(encs), batch_size):
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
            chunk = encs[at : at + batch_size]
            width = max(len(e.input_ids) for e in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, e in enumerate(chunk):
                ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
                mask[i, : len(e.input_ids)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            probs = logits.float().softmax(-1)[..., positive_index].cpu()  # (batch, width)
            out.extend(probs[i, e.step_positions].tolist() for i, e in enumerate(chunk))
    return out


def dense_batches(
    vocab: int, n_batches: int, batch_size: int, length: int, device: torch.device, seed: int = 0
) -> list[torch.Tensor]:
    """Random ``(batch_size, length)`` token ids for :func:`dense_forward`, on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, vocab, (batch_size, length), generator=gen).to(device)
        for _ in range(n_batches)
    ]


def dense_forward(model: Any, batches: Sequence[torch.Tensor]) -> None:
    """Baseline 4: forward passes over full rows of random ids, no padding and no mask (the
    card's practical ceiling for this model)."""
    with torch.inference_mode():
        for ids in batches:
            model(input_ids=ids)
