"""The default policy: LoRA warm-up of SmolLM2 on the built-in task, loading, evaluation.

Heavy modules load lazily, so importing this package does not import torch.

Example:
    >>> from prmkit.policy import evaluate_policy, heldout_problems, load_policy, warmup
    >>> adapter = warmup()  # trains once (a few minutes on CPU), then a cache hit  # doctest: +SKIP
    >>> policy = load_policy("smollm2", adapter=adapter)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["PolicyEval", "evaluate_policy", "heldout_problems", "load_policy", "warmup"]

_LAZY = {
    "warmup": "prmkit.policy.lora",
    "load_policy": "prmkit.policy.load",
    "evaluate_policy": "prmkit.policy.evaluate",
    "heldout_problems": "prmkit.policy.evaluate",
    "PolicyEval": "prmkit.policy.evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prmkit.policy' has no attribute {name!r}")
