"""Math-Shepherd: one text with a step tag ``ки`` after each step, and the same text with the
tags replaced by ``+`` (good step) or ``-`` (bad step).

One JSONL row::

    {"input": "Janet has 3 apples ... How many? Step 1: 3 + 2 = 5 ки\\nStep 2: The answer is: 5 ки",
     "label": "Janet has 3 apples ... How many? Step 1: 3 + 2 = 5 +\\nStep 2: The answer is: 5 +",
     "task": "GSM8K"}

Reading: the text between tags is a step (stripped); the prompt is the text before the first
``Step 1:`` marker (as in TRL's Math-Shepherd script); ``+`` -> 1.0, ``-`` -> 0.0; ``task`` goes to
``meta``. The label text must equal the input with each tag replaced by one sign.

Writing: ``input = prompt + " " + " ки\\n".join(steps) + " ки"``, each step starting with
``Step k:`` (added when missing, counted as a change). Labels become signs by ``threshold``
(soft labels counted as rounded); unknown labels end the steps (counted).

Example:
    >>> from prmkit.formats.math_shepherd import parse_tagged
    >>> parse_tagged("Q? Step 1: a ки\\nStep 2: b ки", "Q? Step 1: a +\\nStep 2: b -", "x")
    ('Q?', ['Step 1: a', 'Step 2: b'], ['+', '-'])
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prmkit.errors import RecordError
from prmkit.formats.common import (
    ConversionReport,
    check_threshold,
    known_hard_labels,
    labeled_record,
    own_report,
    problem_id_for,
    require,
    write_rows,
)
from prmkit.io import iter_jsonl
from prmkit.records import LabeledTrace, Trace

__all__ = [
    "NAME",
    "READ_OPTIONS",
    "STEP_TAG",
    "WRITE_OPTIONS",
    "parse_tagged",
    "read",
    "split_prompt",
    "tag_text",
    "write",
]

NAME = "math_shepherd"
READ_OPTIONS: tuple[str, ...] = ()
WRITE_OPTIONS: tuple[str, ...] = ("threshold",)

STEP_TAG = "ки"
_FIRST_STEP = re.compile(r"[Ss]tep 1:")


def split_prompt(head: str, where: str) -> tuple[str, str]:
    """Split the text before the first tag into (prompt, first step) at ``Step 1:``."""
    match = _FIRST_STEP.search(head)
    if match is None:
        raise RecordError(
            "cannot find where the first step starts",
            got=head,
            expected="'Step 1:' before the first step",
            fix="Math-Shepherd steps start with 'Step k:'; or give a 'prompt' field "
            "(OpenRLHF rows)",
            where=f"{where} field 'input'",
        )
    return head[: match.start()].strip(), head[match.start() :].strip()


def parse_tagged(
    text: str, signs: str, where: str, tag: str = STEP_TAG
) -> tuple[str, list[str], list[str]]:
    """Parse a Math-Shepherd (input, label) pair into (prompt, steps, signs).

    Raises:
        RecordError: no tag; the label text differs from the input outside the tags; a sign
            other than ``+``/``-``; non-blank text after the last tag.
    """
    pieces = text.split(tag)
    if len(pieces) < 2:
        raise RecordError(
            "no step tag in input",
            got=text,
            expected=f"{tag!r} after each step",
            fix="put the step tag after every step",
            where=f"{where} field 'input'",
        )
    found: list[str] = []
    pos = 0
    for k, piece in enumerate(pieces):
        if not signs.startswith(piece, pos):
            raise RecordError(
                "label text differs from input outside the step tags",
                got=signs[pos : pos + 40],
                expected=repr(piece[:40]),
                fix="'label' must be 'input' with each tag replaced by + or -",
                where=f"{where} field 'label' (near step {k + 1})",
            )
        pos += len(piece)
        if k < len(pieces) - 1:
            sign = signs[pos : pos + 1]
            if sign not in ("+", "-"):
                raise RecordError(
                    "bad step label",
                    got=sign,
                    expected="'+' or '-'",
                    fix="replace each step tag by + (good) or - (bad)",
                    where=f"{where} field 'label' (step {k + 1})",
                )
            found.append(sign)
            pos += 1
    if pos != len(signs):
        raise RecordError(
            "label text is longer than input",
            got=signs[pos : pos + 40],
            expected="nothing after the last sign",
            fix="check the row",
            where=f"{where} field 'label'",
        )
    if pieces[-1].strip():
        raise RecordError(
            "text after the last step tag",
            got=pieces[-1],
            expected="a step tag after every step",
            fix="end the last step with the step tag",
            where=f"{where} field 'input'",
        )
    prompt, first = split_prompt(pieces[0], where)
    steps = [first] + [piece.strip() for piece in pieces[1:-1]]
    return prompt, steps, found


def tag_text(prompt: str, steps: list[str], marks: list[str]) -> str:
    """``prompt``, then each step followed by a space and its mark, steps on separate lines.

    Example:
        >>> tag_text("Q?", ["Step 1: a", "Step 2: b"], ["ки", "ки"])
        'Q? Step 1: a ки\nStep 2: b ки'
    """
    body = "\n".join(f"{step} {mark}" for step, mark in zip(steps, marks, strict=True))
    return f"{prompt} {body}"


def read(
    path: str | os.PathLike[str], *, report: ConversionReport | None = None
) -> Iterator[LabeledTrace]:
    """Yield one LabeledTrace per Math-Shepherd row.

    Raises:
        DataFormatError: the file is not UTF-8 or a line is malformed JSON.
        RecordError: a missing key, wrong type, or a malformed input/label pair.
    """
    report, owned = own_report(report, src_format=NAME, in_path=str(path))
    path = Path(path)
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        text = require(row, "input", str, where)
        signs = require(row, "label", str, where)
        prompt, steps, marks = parse_tagged(text, signs, where)
        report.read += 1
        report.steps_read += len(steps)
        labels = [1.0 if m == "+" else 0.0 for m in marks]
        meta = {"task": row["task"]} if "task" in row else {}
        yield labeled_record(
            source=NAME,
            where=where,
            id=str(row.get("id", f"{path.stem}-{lineno}")),
            problem_id=problem_id_for(prompt),
            prompt=prompt,
            steps=steps,
            labels=labels,
            meta=meta,
        )
    if owned:
        report.warn()


def _numbered(steps: list[str], report: ConversionReport) -> list[str]:
    out = []
    for k, step in enumerate(steps, start=1):
        if re.match(rf"[Ss]tep {k}:", step):
            out.append(step)
        else:
            out.append(f"Step {k}: {step}")
            report.change("steps given a 'Step k:' prefix")
    return out


def write(
    path: str | os.PathLike[str],
    records: Iterable[Trace],
    *,
    report: ConversionReport | None = None,
    threshold: float = 0.5,
) -> int:
    """Write records as Math-Shepherd rows ``{"input", "label", "task"}`` (atomic)."""
    check_threshold(threshold)

    def row_of(record: LabeledTrace, report: ConversionReport) -> tuple[dict[str, Any], int] | None:
        hard = known_hard_labels(record, threshold, report, truncate_after_error=False)
        if hard is None:
            return None
        steps = [s.strip() for s in record.steps[: len(hard)]]
        for k, step in enumerate(steps):
            if STEP_TAG in step or STEP_TAG in record.prompt:
                raise RecordError(
                    "text contains the step tag",
                    got=STEP_TAG,
                    expected="no 'ки' inside prompt or steps",
                    fix="remove the tag from the text",
                    where=f"record {record.id!r} step {k}",
                )
        steps = _numbered(steps, report)
        row = {
            "input": tag_text(record.prompt, steps, [STEP_TAG] * len(steps)),
            "label": tag_text(record.prompt, steps, ["+" if ok else "-" for ok in hard]),
            "task": str(record.meta.get("task", "")),
        }
        return row, len(steps)

    return write_rows(path, records, report, dst_format=NAME, row_of=row_of)
