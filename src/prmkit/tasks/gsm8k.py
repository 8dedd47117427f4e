"""GSM8K (grade-school math) as :class:`~prmkit.records.Problem` records.

Each line of ``gsm8k/{train,test}.jsonl`` holds ``question`` and ``answer``: a worked solution,
one step per line with ``<<a*b=c>>`` calculator annotations, ending in ``#### N``. The problem's
``answer`` is ``N`` without thousands commas; ``meta["gold_steps"]`` holds the solution lines
with the annotations removed (the gold steps in prmkit's step format).

Example:
    >>> problems = load_gsm8k("test", limit=2)  # doctest: +SKIP
    >>> problems[0].answer, problems[0].meta["gold_steps"][0]  # doctest: +SKIP
    ('18', 'Janet sells 16 - 3 - 4 = 9 duck eggs a day.')
"""

from __future__ import annotations

import os
import re
from typing import Any

from prmkit.errors import DataFormatError
from prmkit.io import iter_jsonl
from prmkit.records import Problem
from prmkit.tasks.data import data_file

__all__ = ["SPLITS", "gold_steps", "load_gsm8k", "parse_gsm8k"]

SPLITS = ("train", "test")
_CALC = re.compile(r"<<[^<>]*>>")


def gold_steps(solution: str) -> list[str]:
    """The lines of a GSM8K worked solution (before ``####``), calculator annotations removed."""
    body = solution.split("####")[0]
    return [line.strip() for line in _CALC.sub("", body).splitlines() if line.strip()]


def parse_gsm8k(obj: dict[str, Any], *, split: str, index: int, where: str) -> Problem:
    """One GSM8K record as a Problem (``where`` names the file and line for errors)."""
    question, answer = obj.get("question"), obj.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str) or "####" not in answer:
        raise DataFormatError(
            "not a GSM8K record",
            got=sorted(obj),
            where=where,
            expected="'question' and 'answer' text ending in '#### N'",
            fix="pass the original GSM8K JSONL file",
        )
    final = answer.rsplit("####", 1)[1].strip().replace(",", "")
    return Problem(
        id=f"gsm8k-{split}-{index}",
        prompt=question.strip(),
        answer=final,
        meta={"task": "gsm8k", "split": split, "index": index, "gold_steps": gold_steps(answer)},
    )


def load_gsm8k(
    split: str = "test", *, data_dir: str | os.PathLike[str] | None = None, limit: int | None = None
) -> list[Problem]:
    """Read GSM8K ``split`` (``train``: 7473 problems, ``test``: 1319) as Problems.

    Args:
        split: ``train`` or ``test``.
        data_dir: Folder holding ``gsm8k/``; default ``$PRMKIT_DATA_DIR`` or ``../shared/data``.
        limit: Keep only the first ``limit`` problems.

    Raises:
        DataFormatError: unknown split, missing file, or a malformed line (file:line named).
    """
    if split not in SPLITS:
        raise DataFormatError(
            "unknown GSM8K split",
            got=split,
            expected=f"one of {SPLITS}",
            fix="use split=train or split=test",
        )
    path = data_file(f"gsm8k/{split}.jsonl", data_dir)
    problems: list[Problem] = []
    for lineno, obj in iter_jsonl(path):
        if limit is not None and len(problems) >= limit:
            break
        problems.append(
            parse_gsm8k(obj, split=split, index=len(problems), where=f"{path}:{lineno}")
        )
    return problems
