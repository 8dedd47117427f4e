"""Setting presets: prmkit's CPU-sized defaults, or search-and-learn's settings.

``prmkit`` is :class:`~prmkit.search.config.SearchConfig`'s own defaults (sized for a small
policy on CPU: 12 rounds of at most 96-token steps, a cut step kept and continued, 256 final
tokens, the PRM spec's aggregation, no duplicate filtering, the best ``n`` completed beams as
candidates). ``search-and-learn`` reproduces the settings of huggingface/search-and-learn
(``src/sal/config.py`` defaults and the published ``recipes/*/beam_search.yaml`` /
``dvts.yaml``); docs/search.md lists each with its source. A preset is a set of config keys
(``sampling.temperature`` for a key of a group); :func:`apply_preset` sets them, except the keys
the user gave.

Example:
    >>> preset("search-and-learn", "beam")["max_steps"]
    40
    >>> cfg = apply_preset(SearchConfig(preset="search-and-learn", n=16), given={"n"})
    >>> cfg.n, cfg.max_steps, cfg.sampling.max_new_tokens
    (16, 40, 2048)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from prmkit.errors import ConfigError
from prmkit.search.config import SearchConfig

__all__ = ["PRESETS", "apply_preset", "preset"]

PRESETS = ("prmkit", "search-and-learn")

_SAL_COMMON: dict[str, Any] = {
    "max_steps": 40,  # num_iterations
    "step_tokens": 2048,  # max_tokens (per step)
    "sampling.max_new_tokens": 2048,  # max_tokens (the last iteration, to EOS)
    "sampling.temperature": 0.8,
    "sampling.top_p": 1.0,
    "sampling.top_k": 0,  # vLLM's default -1: off
    "aggregation": "last",  # agg_strategy
    "prm_batch_size": 4,  # prm_batch_size: PRM rows per forward pass
}
_SAL: dict[str, dict[str, Any]] = {
    # n=4, beam_width=4 (config.py); filter_duplicates: true (every beam_search recipe; config.py
    # default False); sort_completed False; a length stop completes a beam
    "beam": {
        "n": 4,
        "m": 4,
        "filter_duplicates": True,
        "sort_completed": False,
        "cut_steps": "finish",
        **_SAL_COMMON,
    },
    # DVTS prunes a subtree on EOS, an empty step or a boxed answer, never on a length stop
    "dvts": {"n": 4, "m": 4, "cut_steps": "continue", **_SAL_COMMON},
    # no greedy in search-and-learn: DVTS with one subtree of width beam_width
    "greedy": {"k": 4, "cut_steps": "continue", **_SAL_COMMON},
}


def preset(name: str, method: str) -> dict[str, Any]:
    """The config keys preset ``name`` sets for ``method`` (``prmkit``: none, the defaults).

    Raises:
        ConfigError: an unknown preset or method.
    """
    if name not in PRESETS:
        raise ConfigError(
            "unknown preset", got=name, expected=f"one of {list(PRESETS)}", fix="pick one"
        )
    if method not in _SAL:
        raise ConfigError(
            "unknown search method", got=method, expected=f"one of {sorted(_SAL)}", fix="pick one"
        )
    return {} if name == "prmkit" else dict(_SAL[method])


def apply_preset(cfg: SearchConfig, given: Collection[str] = ()) -> SearchConfig:
    """``cfg`` with its preset's keys for its method set, except the keys in ``given``.

    ``given`` names the keys the user set (``"n"``, ``"sampling.temperature"``); they win over
    the preset. ``prmkit search`` passes the keys of ``--config``, the flags and the overrides.

    Raises:
        ConfigError: the resulting settings are invalid (e.g. ``m`` no longer divides ``n``).
    """
    values = {k: v for k, v in preset(cfg.preset, cfg.method).items() if k not in given}
    changes: dict[str, Any] = {k: v for k, v in values.items() if "." not in k}
    groups: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if "." in key:
            group, leaf = key.split(".", 1)
            groups.setdefault(group, {})[leaf] = value
    for group, inner in groups.items():
        changes[group] = dataclasses.replace(getattr(cfg, group), **inner)
    return dataclasses.replace(cfg, **changes) if changes else cfg
