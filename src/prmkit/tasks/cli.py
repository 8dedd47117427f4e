"""``prmkit problems``: write Problem records of the built-in task, GSM8K or MATH-500.

Example:
    prmkit problems task=arithmetic n=50 seed=0 out=problems.jsonl
    prmkit problems task=arithmetic n=20 n_steps=4 seed=1 out=heldout.jsonl
    prmkit problems task=gsm8k split=test limit=100 out=gsm8k.jsonl
    prmkit problems task=math500 out=math500.parquet
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from prmkit.cli import add_config_arguments, stage_config
from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError, DataFormatError
from prmkit.records import Problem, write_records

__all__ = ["ProblemsConfig", "add_arguments", "build_problems", "run"]


@dataclass
class ProblemsConfig:
    """Config of ``prmkit problems``."""

    task: Literal["arithmetic", "gsm8k", "math500"] = option(
        "arithmetic", "problem source: arithmetic (built-in, generated), gsm8k or math500"
    )
    out: str = option("problems.jsonl", "output file (.jsonl or .parquet)")
    n: int = option(50, "arithmetic: number of problems", ge=1)
    seed: int = option(0, "arithmetic: run seed (problem i depends only on seed and i)", ge=0)
    start_index: int = option(0, "arithmetic: index of the first problem (for held-out sets)", ge=0)
    n_steps: int | None = option(None, "arithmetic: fixed number of operations (else drawn)", ge=1)
    min_steps: int = option(2, "arithmetic: fewest operations", ge=1)
    max_steps: int = option(10, "arithmetic: most operations", ge=1)
    ops: str = option("+-*", "arithmetic: operations to use, any of + - * / (e.g. ops='+-*/')")
    start_range: list[int] = option([2, 30], "arithmetic: [low, high] of the start value")
    add_range: list[int] = option([1, 30], "arithmetic: [low, high] of + and - operands")
    mul_range: list[int] = option([2, 5], "arithmetic: [low, high] of * and / operands")
    max_value: int = option(300, "arithmetic: largest value allowed at any point", ge=1)
    split: Literal["train", "test"] = option("test", "gsm8k: train or test (math500: test)")
    limit: int | None = option(None, "gsm8k/math500: keep the first N problems", ge=1)
    data_dir: str | None = option(
        None,
        "gsm8k/math500: folder with gsm8k/ and math500/ (default $PRMKIT_DATA_DIR or "
        "../shared/data)",
    )

    def __post_init__(self) -> None:
        check_ranges(self)


def _pair(name: str, value: list[int]) -> tuple[int, int]:
    if len(value) != 2:
        raise ConfigError(
            f"'{name}' needs two numbers",
            got=value,
            expected="[low, high]",
            fix=f"write {name}=[low, high]",
        )
    return value[0], value[1]


def _nonempty(problems: list[Problem], relative: str, data_dir: str | None) -> list[Problem]:
    if not problems:
        from prmkit.tasks.data import data_file

        raise DataFormatError(
            f"0 problems in {data_file(relative, data_dir)}",
            expected="a data file with at least one problem",
            fix="restore the data file, or point data_dir at a complete copy",
        )
    return problems


def build_problems(cfg: ProblemsConfig) -> list[Problem]:
    """The problems a config asks for.

    Raises:
        DataFormatError: a GSM8K / MATH-500 data file holds no problems.
    """
    if cfg.task == "arithmetic":
        from prmkit.tasks.arithmetic import generate

        return generate(
            cfg.n,
            cfg.seed,
            start_index=cfg.start_index,
            n_steps=cfg.n_steps,
            ops=tuple(cfg.ops.replace(" ", "").replace(",", "")),
            min_steps=cfg.min_steps,
            max_steps=cfg.max_steps,
            start_range=_pair("start_range", cfg.start_range),
            add_range=_pair("add_range", cfg.add_range),
            mul_range=_pair("mul_range", cfg.mul_range),
            max_value=cfg.max_value,
        )
    if cfg.task == "gsm8k":
        from prmkit.tasks.gsm8k import load_gsm8k

        problems = load_gsm8k(cfg.split, data_dir=cfg.data_dir, limit=cfg.limit)
        return _nonempty(problems, f"gsm8k/{cfg.split}.jsonl", cfg.data_dir)
    if cfg.split != "test":
        raise ConfigError(
            "MATH-500 has only a test split",
            got=cfg.split,
            expected="test",
            fix="drop split=... for task=math500",
        )
    from prmkit.tasks.math500 import load_math500

    problems = load_math500(data_dir=cfg.data_dir, limit=cfg.limit)
    return _nonempty(problems, "math500/test.jsonl", cfg.data_dir)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--config`` and the ``key=value`` overrides."""
    add_config_arguments(parser, ProblemsConfig)


def run(args: argparse.Namespace) -> int:
    """Write the problems and print a one-paragraph summary."""
    cfg = stage_config(ProblemsConfig, args)
    problems = build_problems(cfg)
    count = write_records(cfg.out, problems)
    print(f"wrote {count} {cfg.task} problems to {cfg.out}")
    if cfg.task == "arithmetic" and problems:
        steps = Counter(p.meta["n_steps"] for p in problems)
        ops = Counter(op for p in problems for op in p.meta["ops"])
        print(
            "  operations per problem: " + ", ".join(f"{k}: {v}" for k, v in sorted(steps.items()))
        )
        print("  operations used: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    return 0
