"""Helpers for tests: tiny random-weight models built from a config (never downloaded).

Example:
    >>> model = build_tiny_lm(vocab_size=100)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

__all__ = ["build_tiny_lm", "build_tiny_tokcls", "labeled_trace", "store_count", "store_rows"]


def store_rows(path: str | os.PathLike[str]) -> list[tuple]:
    """Every rollout of a store file as comparable rows (all columns but the informative
    ``trace_id`` and ``prefix_len``), in key order: two stores are equal when these are."""
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT namespace, state, idx, text, answer, correct, prompt_tokens, "
            "completion_tokens, finish_reason, seed FROM rollouts ORDER BY namespace, state, idx"
        ).fetchall()


def store_count(path: str | os.PathLike[str]) -> int:
    """Rollouts committed to a store file so far (0 before it exists); safe while a job writes."""
    try:
        with sqlite3.connect(path, timeout=0.05) as db:
            return db.execute("SELECT COUNT(*) FROM rollouts").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def labeled_trace(
    i: int,
    labels: list[float | None],
    steps: list[str] | None = None,
    prompt: str = "Tom has 3 apples and buys 4.",
) -> Any:
    """A small :class:`~prmkit.records.LabeledTrace` ``t{i}`` of problem ``p{i}``.

    Steps default to ``Step k: a + 1 = b`` lines, right where the label is 1 (or ``None``) and
    wrong (``= 9``) where it is below 0.5; ``first_error`` is the first label below 0.5.
    """
    from prmkit.records import LabeledTrace

    steps = steps or [
        f"Step {k + 1}: {3 + k} + 1 = {4 + k if (v is None or v >= 0.5) else 9}."
        for k, v in enumerate(labels)
    ]
    first = next((k for k, v in enumerate(labels) if v is not None and v < 0.5), -1)
    return LabeledTrace(
        id=f"t{i}",
        problem_id=f"p{i}",
        prompt=prompt,
        steps=steps,
        labels=labels,
        first_error=first,
        label_source="test",
    )


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


def build_tiny_tokcls(vocab_size: int, seed: int = 0) -> Any:
    """A tiny random-weight Llama 2-label token-classification model (a tokcls PRM backbone)."""
    import torch
    from transformers import LlamaConfig, LlamaForTokenClassification

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=2,
    )
    return LlamaForTokenClassification(config).eval()
