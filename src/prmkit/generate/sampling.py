"""Token sampling with one random stream per sample, so results never depend on batching.

Every sample (prefix ``i``, sample ``j``) draws its own uniforms from a generator seeded with
:func:`row_seed`. A token is picked by inverse-CDF sampling: the first vocabulary index whose
cumulative probability exceeds ``u``. One uniform per token, drawn ahead of time, means that the
same sample gets the same tokens whether it runs alone, in a batch of 64, in any chunk, with or
without prefix reuse - as long as the logits are the same.

Example:
    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0, 10.0]])
    >>> sample_next(logits, torch.tensor([0.5], dtype=torch.float64), temperature=1.0).tolist()
    [2]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from prmkit.errors import ConfigError
from prmkit.generate.protocol import SamplingParams

if TYPE_CHECKING:
    import torch

__all__ = ["check_params", "draw_uniforms", "filter_logits", "row_seed", "sample_next"]


def check_params(params: SamplingParams, n: int) -> None:
    """Raise :class:`ConfigError` for values no backend can honour."""
    checks = [
        ("n", n, isinstance(n, int) and n >= 1, "an integer >= 1"),
        ("temperature", params.temperature, params.temperature >= 0, ">= 0 (0 = greedy)"),
        ("top_p", params.top_p, 0 < params.top_p <= 1, "a value in (0, 1]"),
        ("top_k", params.top_k, params.top_k >= 0, ">= 0 (0 = off)"),
        ("max_new_tokens", params.max_new_tokens, params.max_new_tokens >= 1, ">= 1"),
    ]
    for name, value, ok, expected in checks:
        if not ok:
            raise ConfigError(
                f"invalid sampling parameter '{name}'",
                got=value,
                expected=expected,
                fix=f"set {name} to a valid value",
            )


def row_seed(seed: int, prefix_index: int, sample_index: int) -> int:
    """The seed of sample ``sample_index`` of prefix ``prefix_index`` in a call seeded ``seed``."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFFFFFF, prefix_index, sample_index])
    return int(state.generate_state(1, dtype=np.uint64)[0] >> 1)


def draw_uniforms(seeds: Sequence[int], steps: int) -> torch.Tensor:
    """``(len(seeds), steps)`` float64 uniforms in [0, 1), row ``r`` from ``seeds[r]``."""
    import torch

    out = torch.empty(len(seeds), steps, dtype=torch.float64)
    for r, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(seed)
        out[r] = torch.rand(steps, generator=gen, dtype=torch.float64)
    return out


def filter_logits(
    logits: torch.Tensor, *, temperature: float, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """Scale by temperature and mask (to ``-inf``) tokens outside top-k / the top-p nucleus.

    ``logits`` is ``(rows, vocab)``. Top-p keeps the smallest set of most likely tokens whose
    probability reaches ``top_p`` (always at least one token).
    """
    import torch

    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (rows, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # probability mass ranked above each token
        drop_sorted = before >= top_p
        drop_sorted[:, 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    uniforms: torch.Tensor,
    *,
    temperature: float,
    top_k: int = 0,
    top_p: float = 1.0,
) -> torch.Tensor:
    """One token per row: greedy when ``temperature == 0``, else inverse-CDF with ``uniforms``.

    Args:
        logits: ``(rows, vocab)`` next-token logits.
        uniforms: ``(rows,)`` float64 values in [0, 1), one per row.
        temperature: Softmax temperature; 0 picks the argmax.
        top_k: Keep only the k most likely tokens (0 = off).
        top_p: Nucleus mass to keep (1 = off).

    Returns:
        ``(rows,)`` int64 token ids.
    """
    import torch

    if temperature == 0:
        return torch.argmax(logits, dim=-1)
    probs = torch.softmax(
        filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p), dim=-1
    )
    cdf = torch.cumsum(probs.double(), dim=-1)  # (rows, vocab)
    target = (uniforms.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)  # (rows, 1)
    picked = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    return picked.clamp_(max=logits.shape[-1] - 1)
