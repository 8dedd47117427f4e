"""Convert between formats: ``convert(src_fmt, dst_fmt, in_path, out_path, **options)``.

Every format module has ``read(path, report=..., **read_options)`` yielding records and
``write(path, records, report=..., **write_options)``. :func:`convert` streams one into the other
and returns the :class:`~prmkit.formats.common.ConversionReport`. An option that neither the reader
nor the writer uses is an error, not a silent no-op.

Example:
    >>> from prmkit.formats import convert
    >>> report = convert("processbench", "trl", "math.json", "out.jsonl")  # doctest: +SKIP
    >>> report.written, report.lost  # doctest: +SKIP
    (1000, {'steps cut after the first wrong step': 2137})
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from prmkit.config import option
from prmkit.errors import ConfigError
from prmkit.formats import (
    math_shepherd,
    native,
    openrlhf,
    prm800k,
    prmbench,
    processbench,
    trl,
)
from prmkit.formats.common import ConversionReport
from prmkit.io import check_distinct_output
from prmkit.records import Trace

__all__ = ["FORMATS", "ConvertOptions", "convert", "option_uses", "read", "write"]

FORMATS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (processbench, prmbench, prm800k, math_shepherd, trl, openrlhf, native)
}


@dataclass
class ConvertOptions:
    """Every conversion option; each applies to reading or writing some formats only."""

    threshold: float = option(
        0.5,
        "writers of hard labels (trl, math_shepherd, openrlhf, "
        "prm800k, prmbench): a label >= threshold is a correct step",
    )
    with_id: bool = option(True, "trl writer: add an 'id' column beside prompt/completions/labels")
    neutral: Literal["positive", "negative"] = option(
        "positive",
        "prm800k reader: label of the neutral 0 rating (positive = 1.0, as in "
        "Qwen's PRM800K baseline; negative = 0.0)",
    )
    skip_finish_reasons: list[str] = option(
        ["bad_problem"], "prm800k reader: drop lines whose label.finish_reason is one of these"
    )
    on_repeated_pair: Literal["suffix", "first"] = option(
        "suffix",
        "prmbench reader: a row repeating an (idx, classification) pair with other "
        "content is kept as <id>#n (suffix) or dropped (first); exact duplicates always drop",
    )
    out_of_range: Literal["ignore", "drop", "error"] = option(
        "ignore",
        "prmbench reader: error_steps past the last step are ignored (as PRMBench's "
        "evaluation does), drop the row, or raise",
    )
    strip_numbering: bool = option(
        False, "prmbench reader: remove 'k. ' / 'Step k. ' prefixes that number the steps"
    )
    add_correct: bool = option(
        False, "prmbench reader: also yield each idx's unmodified solution as class 'correct'"
    )
    input_key: str = option("input", "openrlhf: the text column (OpenRLHF --input_key)")
    label_key: str = option("value", "openrlhf: the labels column (OpenRLHF --label_key)")
    placeholder: str = option(
        openrlhf.DEFAULT_PLACEHOLDER,
        "openrlhf: the token after each step (OpenRLHF --placeholder_token)",
    )
    reward_tokens: list[str] = option(
        ["+", "-"], "openrlhf: positive and negative label tokens (OpenRLHF --reward_tokens)"
    )
    soft_values: bool = option(False, "openrlhf writer: write float labels instead of tokens")


def option_uses(name: str) -> list[str]:
    """Where an option applies, e.g. ``['read prm800k']``."""
    uses = [f"read {fmt}" for fmt, m in FORMATS.items() if name in m.READ_OPTIONS]
    return uses + [f"write {fmt}" for fmt, m in FORMATS.items() if name in m.WRITE_OPTIONS]


def _module(fmt: str, role: str) -> ModuleType:
    if fmt not in FORMATS:
        raise ConfigError(
            f"unknown {role} format",
            got=fmt,
            expected=f"one of {list(FORMATS)}",
            fix="pick a format from the list",
        )
    return FORMATS[fmt]


def read(fmt: str, path: str | os.PathLike[str], **options: Any) -> Iterator[Trace]:
    """Stream the records of ``path`` read as format ``fmt`` (options: see the format's module).

    Example:
        >>> traces = list(read("processbench", "math.json"))  # doctest: +SKIP
    """
    return _module(fmt, "input").read(path, **options)


def write(fmt: str, path: str | os.PathLike[str], records: Iterable[Trace], **options: Any) -> int:
    """Write ``records`` to ``path`` as format ``fmt``; return the count written."""
    return _module(fmt, "output").write(path, records, **options)


def _check_output_path(in_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> None:
    """Refuse an output that is the input file, or lies inside an input folder (prmbench)."""
    check_distinct_output(out_path, [in_path])
    folder, target = Path(in_path).resolve(), Path(out_path).resolve()
    if folder.is_dir() and folder in target.parents:
        raise ConfigError(
            "the output path is inside the input folder",
            got=str(out_path),
            expected=f"a path outside {in_path} (its files are the input)",
            fix="write the output to another folder",
        )


def convert(
    src_fmt: str,
    dst_fmt: str,
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    progress: bool = False,
    **options: Any,
) -> ConversionReport:
    """Read ``in_path`` as ``src_fmt`` and write ``out_path`` as ``dst_fmt``, streaming.

    Args:
        src_fmt: One of :data:`FORMATS` (processbench, prmbench, prm800k, math_shepherd, trl,
            openrlhf, prmkit).
        dst_fmt: Likewise.
        in_path: Input file (a folder of JSONL files for prmbench).
        out_path: Output file, written atomically.
        progress: Show a progress bar (on a terminal).
        **options: Fields of :class:`ConvertOptions` that apply to this reader or writer.

    Returns:
        The report: records read/written/dropped, and what was lost or changed. If anything was,
        one :class:`~prmkit.formats.common.LossyConversionWarning` says so with the counts.

    Raises:
        ConfigError: an unknown format, an unknown option, or one neither side uses; an output
            path that is the input (or inside an input folder), which would replace the data
            being read.
        DataFormatError, RecordError: bad input, naming file, line/record and field.
    """
    _check_output_path(in_path, out_path)
    reader, writer = _module(src_fmt, "input"), _module(dst_fmt, "output")
    known = {f.name for f in fields(ConvertOptions)}
    for name in options:
        if name not in known:
            raise ConfigError(
                "unknown conversion option",
                got=name,
                expected=f"one of {sorted(known)}",
                fix="check the option name",
            )
        if name not in reader.READ_OPTIONS and name not in writer.WRITE_OPTIONS:
            raise ConfigError(
                f"option '{name}' is not used converting {src_fmt} -> {dst_fmt}",
                got=name,
                expected=f"an option of this reader/writer; "
                f"'{name}' applies to: {', '.join(option_uses(name))}",
                fix=f"remove '{name}'",
            )
    read_opts = {k: v for k, v in options.items() if k in reader.READ_OPTIONS}
    write_opts = {k: v for k, v in options.items() if k in writer.WRITE_OPTIONS}
    report = ConversionReport(
        src_format=src_fmt, dst_format=dst_fmt, in_path=str(in_path), out_path=str(out_path)
    )
    records = reader.read(in_path, report=report, **read_opts)
    if progress:
        from tqdm import tqdm

        records = tqdm(records, desc=f"{src_fmt} -> {dst_fmt}", unit=" records", disable=None)
    writer.write(out_path, records, report=report, **write_opts)
    report.warn(stacklevel=3)
    return report
