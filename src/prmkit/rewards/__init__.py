"""RL reward adapters: PRM step scores as rewards for TRL and veRL, PRIME and PROF.

* :mod:`prmkit.rewards.trl`: :class:`PRMReward` (and :func:`async_prm_reward`), a reward
  function with TRL ``GRPOTrainer``'s contract (tested with trl 1.13.0).
* :mod:`prmkit.rewards.verl`: veRL's custom reward function (:func:`make_compute_score`,
  :func:`compute_score`) and dense step rewards (:func:`dense_step_rewards`);
  :mod:`prmkit.rewards.verl_manager` (imports veRL) holds the dense reward manager.
* :mod:`prmkit.rewards.prime`: PRIME's implicit token rewards and online PRM update.
* :mod:`prmkit.rewards.prof`: PROF's process-consistency filter of sample groups.

Nothing here imports trl or veRL: each name is imported from its module on first use, and no
module but :mod:`prmkit.rewards.verl_manager` needs the RL framework. See docs/rewards.md.

Example:
    >>> from prmkit.rewards import prof_select
    >>> prof_select([1, 0, 1], [[0.9], [0.8], [0.2]], n_remove=1)
    [0, 1]
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "PRMReward": "trl",
    "async_prm_reward": "trl",
    "compute_score": "verl",
    "dense_step_rewards": "verl",
    "make_async_compute_score": "verl",
    "make_compute_score": "verl",
    "place_at_tokens": "align",
    "step_token_ends": "align",
    "batch_norm": "prime",
    "implicit_rewards": "prime",
    "online_update": "prime",
    "prime_loss": "prime",
    "consistency_scores": "prof",
    "prof_filter": "prof",
    "prof_select": "prof",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    """Each public name, imported from its module on first use."""
    if name in _NAMES:
        return getattr(importlib.import_module(f"prmkit.rewards.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'prmkit.rewards' has no attribute {name!r}")
