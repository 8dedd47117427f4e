"""``prmkit annotate``: step labels for any Trace JSONL/Parquet, resumable from the rollout store.

Example:
    prmkit annotate --method mc --traces traces.jsonl --problems problems.jsonl \\
        --out labeled.jsonl --store rollouts.sqlite --k 8 --label soft
    prmkit annotate --config recipe.yaml policy.adapter=runs/warmup k=16

Run the same command again after a crash or ``kill -9``: stored rollouts are reused and the labels
equal those of an uninterrupted run. Every flag is a shortcut for one key (``--policy X`` is
``policy.model=X``; ``--seed 3`` is ``sampling.seed=3``, the job seed every generator call's seed
derives from). The stage is :func:`prmkit.annotate.annotate`; see ``docs/annotate.md``.
"""

from __future__ import annotations

import argparse
import dataclasses

from prmkit.annotate.config import AnnotateConfig
from prmkit.annotate.stage import annotate
from prmkit.config import add_config_arguments, stage_config
from prmkit.errors import ConfigError

__all__ = ["SHORTCUTS", "add_arguments", "run"]

SHORTCUTS: dict[str, str] = {
    **{
        "--" + f.name.replace("_", "-"): f.name
        for f in dataclasses.fields(AnnotateConfig)
        if f.name not in ("policy", "sampling", "ray")
    },
    "--policy": "policy.model",
    "--adapter": "policy.adapter",
    "--seed": "sampling.seed",
    "--temperature": "sampling.temperature",
    "--top-p": "sampling.top_p",
    "--max-new-tokens": "sampling.max_new_tokens",
    "--ray": "ray.address",
    "--ray-workers": "ray.workers",
}
"""Every flag of ``prmkit annotate`` and the key it sets: ``--k-min`` sets ``k_min``, ``--policy``
sets ``policy.model``. Bool keys' flags take no value (``--stop-at-zero``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``prmkit annotate`` options: ``--config``, ``key=value`` and a flag per setting."""
    add_config_arguments(parser, AnnotateConfig, shortcuts=SHORTCUTS)
    parser.epilog = __doc__.split("\n\n", 1)[1] + "\n" + parser.epilog


def run(args: argparse.Namespace) -> int:
    """Label the traces, write ``out``, print what the job used."""
    cfg = stage_config(AnnotateConfig, args)
    if cfg.out is None:
        raise ConfigError(
            "prmkit annotate needs out", expected="--out FILE", fix="add --out labeled.jsonl"
        )
    print("\n".join(annotate(cfg).lines()))
    return 0
