"""``prmkit search``: PRM-guided search (beam, DVTS, greedy), optionally against best-of-N.

Parses a :class:`~prmkit.search.SearchConfig` (``--preset`` under the keys you give) and calls
:func:`~prmkit.search.run_search`.

Example:
    prmkit search --method beam --problems problems.jsonl --prm runs/prm --policy smollm2 \\
        --out runs/search/beam.jsonl n=8 m=4 policy.adapter=~/.cache/prmkit/adapters/xyz \\
        --compare-bon --compare-out runs/search/beam_vs_bon.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from prmkit.config import add_config_arguments, stage_config
from prmkit.search.config import SearchConfig
from prmkit.search.presets import apply_preset
from prmkit.search.run import run_search, summary_text

__all__ = ["SearchConfig", "add_arguments", "run"]

SHORTCUTS = {
    "--method": "method",
    "--preset": "preset",
    "--problems": "problems",
    "--prm": "prm",
    "--policy": "policy.model",
    "--out": "out",
    "--compare-bon": "compare_bon",
    "--compare-out": "compare_out",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``key=value`` overrides and the shortcut flags of :class:`SearchConfig`."""
    add_config_arguments(parser, SearchConfig, SHORTCUTS)


def _given_keys(args: argparse.Namespace) -> set[str]:
    """The keys the user set (``--config`` file, flags, overrides): the preset leaves them."""

    def flat(mapping: dict[str, Any], prefix: str = "") -> set[str]:
        return {
            k for key, value in mapping.items()
            for k in (flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key})
        }  # fmt: skip

    keys = {key for dest, key in args._config_shortcuts if getattr(args, dest) is not None}
    keys |= {item.partition("=")[0].strip() for item in args.overrides}
    if args.config:
        keys |= flat(yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {})
    return keys


def run(args: argparse.Namespace) -> int:
    """Run the stage; returns the exit code."""
    cfg = apply_preset(stage_config(SearchConfig, args), given=_given_keys(args))
    print(summary_text(run_search(cfg)))
    return 0
