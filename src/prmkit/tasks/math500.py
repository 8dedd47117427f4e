"""MATH-500 (the PRM800K test split of MATH) as :class:`~prmkit.records.Problem` records.

Each line of ``math500/test.jsonl`` holds ``problem``, ``solution``, ``answer`` (LaTeX),
``subject``, ``level`` and ``unique_id``; all but ``problem`` and ``answer`` go into ``meta``.
Check answers with :func:`prmkit.tasks.answers.check_answer` (math-verify).

Example:
    >>> p = load_math500(limit=1)[0]  # doctest: +SKIP
    >>> p.answer, p.meta["subject"]  # doctest: +SKIP
    ('\\\\left( 3, \\\\frac{\\\\pi}{2} \\\\right)', 'Precalculus')
"""

from __future__ import annotations

import os

from prmkit.errors import DataFormatError
from prmkit.io import iter_jsonl
from prmkit.records import Problem
from prmkit.tasks.data import data_file

__all__ = ["load_math500"]

_FIELDS = ("problem", "solution", "answer", "subject", "level", "unique_id")


def load_math500(
    *, data_dir: str | os.PathLike[str] | None = None, limit: int | None = None
) -> list[Problem]:
    """Read the 500 MATH-500 test problems.

    Args:
        data_dir: Folder holding ``math500/``; default ``$PRMKIT_DATA_DIR`` or ``../shared/data``.
        limit: Keep only the first ``limit`` problems.

    Raises:
        DataFormatError: missing file or a malformed line (file:line named).
    """
    path = data_file("math500/test.jsonl", data_dir)
    problems: list[Problem] = []
    for lineno, obj in iter_jsonl(path):
        if limit is not None and len(problems) >= limit:
            break
        missing = [k for k in _FIELDS if k not in obj]
        if missing or not isinstance(obj["problem"], str) or not isinstance(obj["answer"], str):
            raise DataFormatError(
                "not a MATH-500 record",
                got=sorted(obj),
                expected=f"keys {list(_FIELDS)} with text problem/answer",
                fix="pass the original MATH-500 test.jsonl",
                where=f"{path}:{lineno}",
            )
        index = len(problems)
        problems.append(
            Problem(
                id=f"math500-{index}",
                prompt=obj["problem"].strip(),
                answer=obj["answer"],
                meta={
                    "task": "math500",
                    "index": index,
                    "subject": obj["subject"],
                    "level": obj["level"],
                    "unique_id": obj["unique_id"],
                    "solution": obj["solution"],
                },
            )
        )
    return problems
