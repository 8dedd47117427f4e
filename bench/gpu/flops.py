"""Model FLOPs and MFU for bench/gpu/run.py.

Forward FLOPs of a batch = ``2 * non_embedding_params * tokens`` (one multiply-add per weight
per token) ``+ sum over sequences of 2 * n_layers * L**2 * hidden`` (QK^T and AV, each
``2 * L**2 * hidden`` per layer, halved for the causal mask). Only real tokens count: padding is
work the card does but not work the benchmark asked for, so it lowers MFU. A training step is
3x the forward (forward + backward). MFU = FLOPs / seconds / the card's dense bf16 peak.

Example:
    >>> forward_flops(n_params=100, n_layers=2, hidden=8, lengths=[3, 4])
    2200.0
    >>> peak_flops("NVIDIA H200")
    989000000000000.0
    >>> peak_flops(None) is None
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["PEAK_BF16", "attention_flops", "forward_flops", "mfu", "non_embedding_params"]

PEAK_BF16: tuple[tuple[str, float], ...] = (
    # dense (no sparsity) bf16 tensor-core peak; the first name contained in the GPU's name wins
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
)
"""Dense bf16 peak FLOP/s by GPU name (NVIDIA data sheets, SXM unless named)."""


def non_embedding_params(model: Any) -> int:
    """Parameters outside the input embedding (the score head and norms included)."""
    embed = model.get_input_embeddings().weight
    return sum(p.numel() for p in model.parameters() if p is not embed)


def attention_flops(n_layers: int, hidden: int, lengths: Iterable[int]) -> float:
    """Causal attention FLOPs of sequences of ``lengths`` tokens: ``2 * layers * L^2 * hidden``."""
    return float(2 * n_layers * hidden * sum(n * n for n in lengths))


def forward_flops(n_params: int, n_layers: int, hidden: int, lengths: Iterable[int]) -> float:
    """FLOPs of one forward pass over sequences of ``lengths`` real tokens."""
    lengths = list(lengths)
    return 2.0 * n_params * sum(lengths) + attention_flops(n_layers, hidden, lengths)


def peak_flops(gpu_name: str | None) -> float | None:
    """The dense bf16 peak of the GPU named ``gpu_name``; ``None`` for a CPU or unknown GPU."""
    if not gpu_name:
        return None
    for key, peak in PEAK_BF16:
        if key.lower() in gpu_name.lower():
            return peak
    return None


def mfu(flops: float, seconds: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation in [0, 1]; ``None`` without a known peak."""
    if peak is None or seconds <= 0:
        return None
    return flops / seconds / peak
