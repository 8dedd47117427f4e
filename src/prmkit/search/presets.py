"""Setting presets: prmkit's CPU-sized defaults, or search-and-learn's settings.

``prmkit`` is the functions' own defaults (sized for a small policy on CPU: 12 rounds of at most
96-token steps, a cut step kept and continued, 256 final tokens, ``min`` aggregation, no duplicate
filtering, the best ``n`` completed beams as candidates). ``search-and-learn`` reproduces the
settings of huggingface/search-and-learn (``src/sal/config.py`` defaults and the published
``recipes/*/beam_search.yaml`` / ``dvts.yaml``); docs/search.md lists each with its source.

Example:
    >>> preset("search-and-learn", "beam")["max_steps"]
    40
    >>> beam_search(problem, gen, scorer, **preset("search-and-learn", "beam"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import ConfigError

__all__ = ["PRESETS", "preset", "preset_config"]

PRESETS = ("prmkit", "search-and-learn")

_SAL_COMMON: dict[str, Any] = {
    "max_steps": 40,  # num_iterations
    "step_tokens": 2048,  # max_tokens (per step)
    "final_tokens": 2048,  # max_tokens (the last iteration, to EOS)
    "temperature": 0.8,
    "top_p": 1.0,
    "top_k": 0,  # vLLM's default -1: off
    "aggregation": "last",  # agg_strategy
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
_SAL_RUN = {"prm_batch_size": 4}  # prm_batch_size: PRM rows per forward pass


def _check(name: str, method: str) -> None:
    if name not in PRESETS:
        raise ConfigError(
            "unknown preset", got=name, expected=f"one of {list(PRESETS)}", fix="pick one"
        )
    if method not in _SAL:
        raise ConfigError(
            "unknown search method", got=method, expected=f"one of {sorted(_SAL)}", fix="pick one"
        )


def preset(name: str, method: str) -> dict[str, Any]:
    """Keyword arguments of ``method``'s function (beam_search, dvts, greedy_search).

    ``prmkit`` is empty (the functions' defaults).

    Raises:
        ConfigError: an unknown preset or method.
    """
    _check(name, method)
    return {} if name == "prmkit" else dict(_SAL[method])


def preset_config(name: str, method: str) -> dict[str, Any]:
    """The ``prmkit search`` config values of a preset: :func:`preset` plus run settings.

    Raises:
        ConfigError: an unknown preset or method.
    """
    values = preset(name, method)
    return values if name == "prmkit" else {**values, **_SAL_RUN}
