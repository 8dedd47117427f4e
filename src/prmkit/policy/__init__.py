"""The default policy: LoRA warm-up of SmolLM2 on the built-in task, and its evaluation.

:func:`run_warmup` is the ``prmkit warmup`` stage (train or fetch the adapter, then evaluate it);
:func:`warmup` trains or fetches the adapter alone. Loading a policy is
:func:`prmkit.models.load_policy` (still importable from here).

Heavy modules load lazily, so importing this package does not import torch.

Example:
    >>> from prmkit.policy import WarmupConfig, run_warmup, warmup
    >>> adapter = warmup()  # trains once (a few minutes on CPU), then a cache hit  # doctest: +SKIP
    >>> result = run_warmup(WarmupConfig(eval_problems=8))  # doctest: +SKIP
    >>> result.adapter, result.evaluation.summary()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PolicyEval",
    "WarmupConfig",
    "WarmupResult",
    "evaluate_policy",
    "heldout_problems",
    "load_policy",
    "run_warmup",
    "warmup",
    "warmup_from_config",
]

_LAZY = {
    "warmup": "prmkit.policy.lora",
    "WarmupConfig": "prmkit.policy.stage",
    "WarmupResult": "prmkit.policy.stage",
    "run_warmup": "prmkit.policy.stage",
    "warmup_from_config": "prmkit.policy.stage",
    "load_policy": "prmkit.models.policy",
    "evaluate_policy": "prmkit.policy.evaluate",
    "heldout_problems": "prmkit.policy.evaluate",
    "PolicyEval": "prmkit.policy.evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prmkit.policy' has no attribute {name!r}")
