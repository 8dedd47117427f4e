"""The ``prmkit`` command: ``prmkit <stage> [--config recipe.yaml] [key=value ...]``.

Stages are registered by module path and imported only when used, so ``prmkit --help`` is fast.
A stage module provides ``add_arguments(parser)`` and ``run(args) -> int``. Config-driven stages
use :func:`prmkit.config.add_config_arguments` and :func:`prmkit.config.stage_config` (re-exported
here for stage modules that still import them from this module).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from prmkit.config import add_config_arguments, stage_config
from prmkit.errors import PrmkitError

__all__ = ["add_config_arguments", "main", "stage_config"]

# stage name -> (module, one-line description)
STAGES: dict[str, tuple[str, str]] = {
    "convert": (
        "prmkit.formats.cli",
        "convert between ProcessBench, PRMBench, PRM800K, "
        "Math-Shepherd, TRL, OpenRLHF and prmkit records",
    ),
    "problems": ("prmkit.tasks.cli", "write Problem records: built-in arithmetic, GSM8K, MATH-500"),
    "generate": ("prmkit.generate.cli", "sample solutions from a policy and write Trace records"),
    "check": ("prmkit.tasks.check_cli", "exact-check traces of the built-in arithmetic task"),
    "annotate": (
        "prmkit.annotate.cli",
        "step labels: MC, binary search, OmegaPRM, judge, exact, consensus",
    ),
    "demo": ("prmkit.demo", "run the demo pipeline on the embedded SmolLM2"),
    "train": ("prmkit.train.cli", "train a PRM (tokcls, labeltok, probe, implicit head)"),
    "score": ("prmkit.score.cli", "score every step of traces with a PRM, one pass per trace"),
    "eval": ("prmkit.evaluate.cli", "evaluate: processbench, prmbench, steps, bon (best-of-N)"),
    "report": ("prmkit.evaluate.report_cli", "HTML page + Markdown summary of eval results"),
    "warmup": (
        "prmkit.policy.cli",
        "LoRA warm-up of the default policy on gold solutions (cached), then evaluate",
    ),
    "search": ("prmkit.search.cli", "PRM-guided search: beam, DVTS, greedy; vs best-of-N"),
    "serve": ("prmkit.serve.cli", "serve a PRM over HTTP (also vLLM /pooling, OpenRLHF)"),
    "serve-policy": ("prmkit.serve.policy_cli", "serve a policy over OpenAI's completions API"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<10} {desc}" for name, (_, desc) in STAGES.items()]
    return argparse.ArgumentParser(
        prog="prmkit",
        description="prmkit: process reward models from data to deployment.",
        epilog="stages:\n" + "\n".join(lines) + "\n\nrun `prmkit <stage> --help` for a stage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prmkit`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    top.add_argument("stage", choices=sorted(STAGES), help="the stage to run")
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STAGES:
        top.parse_args(argv or ["--help"])
        return 2
    stage, rest = argv[0], argv[1:]
    module = importlib.import_module(STAGES[stage][0])
    parser = argparse.ArgumentParser(prog=f"prmkit {stage}", description=STAGES[stage][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except PrmkitError as exc:
        print(f"prmkit {stage}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # permissions, a full disk, a path that vanished: no stack for these
        print(f"prmkit {stage}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
