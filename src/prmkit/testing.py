"""Helpers for tests: tiny random-weight models built from a config (never downloaded).

Example:
    >>> model = build_tiny_lm(vocab_size=100)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_tiny_lm"]


def build_tiny_lm(vocab_size: int, *, seed: int = 0, hidden: int = 64, layers: int = 2) -> Any:
    """A tiny random-weight Llama-architecture causal LM (SmolLM2's architecture family)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()
