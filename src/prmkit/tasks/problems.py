"""The problems stage: Problem records of the built-in task, GSM8K or MATH-500, and reading them.

:func:`build_problems` is what ``prmkit problems`` runs; :func:`read_problems` reads a problems
file back (Problem records, or plain ``{prompt, answer?, id?}`` JSONL) for the stages after it.

Example:
    >>> problems = build_problems(ProblemsConfig(n=3, seed=0, out=None))
    >>> [p.id for p in problems]
    ['arith-s0-0', 'arith-s0-1', 'arith-s0-2']
    >>> print(summarize_problems(problems).splitlines()[0])
    operations per problem: 5: 1, 6: 1, 7: 1
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError, DataFormatError
from prmkit.io import iter_jsonl
from prmkit.records import Problem, read_records, write_records

__all__ = ["ProblemsConfig", "build_problems", "read_problems", "summarize_problems"]


@dataclass
class ProblemsConfig:
    """Config of ``prmkit problems``."""

    task: Literal["arithmetic", "gsm8k", "math500"] = option(
        "arithmetic", "problem source: arithmetic (built-in, generated), gsm8k or math500"
    )
    out: str | None = option(
        "problems.jsonl", "output file (.jsonl or .parquet; null: return them, write nothing)"
    )
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


def _load(cfg: ProblemsConfig) -> list[Problem]:
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


def build_problems(cfg: ProblemsConfig) -> list[Problem]:
    """The problems a config asks for, written atomically to ``cfg.out`` unless it is ``None``.

    Example:
        >>> len(build_problems(ProblemsConfig(n=5, n_steps=4, out=None)))
        5

    Raises:
        ConfigError: a range that is not two numbers, an unknown operation, a split the data
            set lacks.
        DataFormatError: a GSM8K / MATH-500 data file holds no problems.
    """
    problems = _load(cfg)
    if cfg.out is not None:
        write_records(cfg.out, problems)
    return problems


def summarize_problems(problems: list[Problem]) -> str:
    """Operations per problem and operations used, for built-in arithmetic problems ("" else)."""
    if not problems or any("n_steps" not in p.meta for p in problems):
        return ""
    steps = Counter(p.meta["n_steps"] for p in problems)
    ops = Counter(op for p in problems for op in p.meta["ops"])
    return (
        "operations per problem: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(steps.items()))
        + "\noperations used: "
        + ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
    )


def read_problems(path: str | Path, limit: int | None = None) -> list[Problem]:
    """Problem records, or ``{prompt, answer?, id?}`` JSONL objects turned into Problems.

    Example:
        >>> problems = read_problems("problems.jsonl", limit=10)  # doctest: +SKIP

    Raises:
        DataFormatError: a line is neither a Problem record nor has a ``prompt``; no problems.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        problems = read_records(path, Problem)[:limit]
    else:
        problems = _jsonl_problems(path, limit)
    if not problems:
        raise DataFormatError(
            f"0 problems in {path}",
            expected="at least one Problem record or object with 'prompt'",
            fix="pass the output of prmkit problems (did an earlier stage write nothing?)",
        )
    return problems


def _jsonl_problems(path: Path, limit: int | None) -> list[Problem]:
    problems: list[Problem] = []
    for lineno, obj in iter_jsonl(path):
        if limit is not None and len(problems) >= limit:
            break
        where = f"{path}:{lineno}"
        if "kind" in obj:
            problems.append(Problem.from_dict(obj, where=where))
            continue
        if not isinstance(obj.get("prompt"), str):
            raise DataFormatError(
                "line has no 'prompt' text",
                got=sorted(obj),
                where=where,
                expected="a Problem record or an object with 'prompt' (and 'answer', 'id')",
                fix="convert GSM8K/MATH-500 files with `prmkit problems` first",
            )
        answer = obj.get("answer", "")
        problems.append(
            Problem(
                id=str(obj.get("id", f"line{lineno}")),
                prompt=obj["prompt"],
                answer=answer if isinstance(answer, str) else str(answer),
                meta={},
            )
        )
    return problems
