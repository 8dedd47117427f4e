"""``prmkit convert --from FMT --to FMT IN OUT [key=value ...]``: convert PRM data formats.

The stage is :func:`prmkit.formats.convert`; this module only parses and calls it. Only the
options given (in ``--config`` or as ``key=value``) are passed on, so one that neither the reader
nor the writer uses is refused instead of silently ignored.

Example:
    prmkit convert --from processbench --to trl ../shared/data/processbench/math.json out.jsonl
    prmkit convert --from prm800k --to prmkit phase2_train.jsonl prm800k.parquet neutral=negative
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import yaml

from prmkit.config import add_config_arguments, stage_config
from prmkit.formats.common import LossyConversionWarning
from prmkit.formats.convert import FORMATS, ConvertOptions, convert, option_uses
from prmkit.io import check_distinct_output, write_json

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``prmkit convert``."""
    names = list(FORMATS)
    parser.add_argument(
        "--from",
        dest="src",
        required=True,
        choices=names,
        metavar="FMT",
        help=f"input format: {', '.join(names)}",
    )
    parser.add_argument(
        "--to",
        dest="dst",
        required=True,
        choices=names,
        metavar="FMT",
        help="output format (same choices)",
    )
    parser.add_argument("input", metavar="IN", help="input file (prmbench: a file or folder)")
    parser.add_argument(
        "output", metavar="OUT", help="output file (prmkit: .jsonl or .parquet), written atomically"
    )
    parser.add_argument(
        "--report", default=None, metavar="FILE", help="also write the conversion report as JSON"
    )
    add_config_arguments(parser, ConvertOptions)
    parser.epilog += (
        "\n\nwhere each option applies:\n"
        + "\n".join(
            f"  {name}: {', '.join(option_uses(name))}"
            for name in ConvertOptions.__dataclass_fields__
        )
        + "\n\nsee docs/formats.md for what maps to what and what each conversion loses"
    )


def _set_keys(args: argparse.Namespace) -> list[str]:
    """Option names given explicitly, in the YAML file or as key=value."""
    keys = []
    if args.config:
        loaded = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
        keys.extend(loaded)
    keys.extend(item.partition("=")[0].strip() for item in args.overrides)
    return list(dict.fromkeys(keys))


def run(args: argparse.Namespace) -> int:
    """Run the conversion; print the counts, and the lossy-conversion warning on stderr."""
    options = stage_config(ConvertOptions, args)
    if args.report:
        check_distinct_output(args.report, [args.input, args.output], name="--report")
    given = {key: getattr(options, key) for key in _set_keys(args)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LossyConversionWarning)
        report = convert(args.src, args.dst, args.input, args.output, progress=True, **given)
    for warning in caught:
        print(f"prmkit convert: warning: {warning.message}", file=sys.stderr)
    if args.report:
        write_json(args.report, report.to_dict())
    print(report.summary(losses=False))
    return 0
