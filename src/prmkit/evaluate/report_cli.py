"""``prmkit report RUN_DIR``: parse a :class:`~prmkit.evaluate.report.ReportConfig`, call
:func:`~prmkit.evaluate.report.write_report`.

Example:
    prmkit eval bon --scores runs/demo/bon_scored.jsonl --output runs/demo/bon.json
    prmkit report runs/demo --n-traces 4
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from prmkit.config import add_config_arguments, stage_config
from prmkit.errors import ConfigError
from prmkit.evaluate.report import ReportConfig, write_report

__all__ = ["add_arguments", "run"]

_KEYS = {f.name for f in fields(ReportConfig)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``RUN_DIR`` (same as ``run_dir=``), ``--config``, ``key=value``, ``--traces FILE ...``,
    ``--n-traces``, ``--out-dir``."""
    parser.add_argument(
        "run_dir", nargs="?", default=None, metavar="RUN_DIR", help="same as run_dir=RUN_DIR"
    )
    add_config_arguments(parser, ReportConfig, ["traces", "n_traces", "out_dir"])


def run(args: argparse.Namespace) -> int:
    """Write ``report.html`` and ``report.md``."""
    if args.run_dir is not None:
        key = args.run_dir.partition("=")[0]
        given = [args.run_dir] if key in _KEYS else [f"run_dir={args.run_dir}"]
        args.overrides = [*given, *(args.overrides or [])]
    cfg = stage_config(ReportConfig, args)
    if not cfg.run_dir:
        raise ConfigError(
            "missing 'run_dir'", got="", expected="a folder", fix="pass RUN_DIR (or run_dir=DIR)"
        )
    html_path, md_path = write_report(cfg.run_dir, cfg.traces, cfg.n_traces, cfg.out_dir)
    print(f"wrote {html_path} and {md_path}")
    return 0
