"""OpenRLHF's process reward data: a text with a placeholder token after each step, and one
label per placeholder.

OpenRLHF's ``ProcessRewardDataset`` reads the text from ``--input_key`` and the labels from
``--label_key``; labels are reward tokens (``--reward_tokens + -``, the first one positive) or
floats (soft labels). Its PRM example trains on Math-Shepherd with ``--input_key input
--label_key value --placeholder_token ки --reward_tokens + -``; those are the defaults here::

    {"input": "Q? Step 1: 3 + 2 = 5 ки\\nStep 2: The answer is: 5 ки", "value": ["+", "-"],
     "prompt": "Q?", "id": "t1"}

Rows written here also carry ``prompt`` and ``id`` (OpenRLHF ignores other keys), so reading them
back splits prompt from steps exactly. Rows without ``prompt`` are split at ``Step 1:`` as in
Math-Shepherd.

Writing: hard reward tokens by ``threshold`` (soft labels counted as rounded), or the float labels
themselves with ``soft_values=True``; unknown labels end the steps (counted).
Train with: ``openrlhf.cli.train_prm --dataset out.jsonl --input_key input --label_key value
--placeholder_token ки --reward_tokens + -``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prmkit.errors import ConfigError, RecordError
from prmkit.formats.common import (
    ConversionReport,
    check_threshold,
    hard_labels,
    labeled_record,
    own_report,
    problem_id_for,
    require,
    write_rows,
)
from prmkit.formats.math_shepherd import split_prompt, tag_text
from prmkit.io import iter_jsonl
from prmkit.records import LabeledTrace, Trace

__all__ = ["DEFAULT_PLACEHOLDER", "NAME", "READ_OPTIONS", "WRITE_OPTIONS", "read", "write"]

NAME = "openrlhf"
DEFAULT_PLACEHOLDER = "ки"
READ_OPTIONS: tuple[str, ...] = ("input_key", "label_key", "placeholder", "reward_tokens")
WRITE_OPTIONS: tuple[str, ...] = (
    "threshold",
    "input_key",
    "label_key",
    "placeholder",
    "reward_tokens",
    "soft_values",
)


def _check_tokens(placeholder: str, reward_tokens: Sequence[str]) -> tuple[str, str]:
    if not isinstance(placeholder, str) or not placeholder.strip():
        raise ConfigError(
            "bad value for option 'placeholder'",
            got=placeholder,
            expected="a non-blank string",
            fix="use OpenRLHF's 'ки'",
        )
    tokens = list(reward_tokens)
    if (
        len(tokens) != 2
        or not all(isinstance(t, str) and t for t in tokens)
        or tokens[0] == tokens[1]
    ):
        raise ConfigError(
            "bad value for option 'reward_tokens'",
            got=reward_tokens,
            expected="two different strings: positive, negative",
            fix="use ['+', '-']",
        )
    return tokens[0], tokens[1]


def _label(value: Any, positive: str, negative: str, where: str) -> float:
    if isinstance(value, str):
        if value == positive:
            return 1.0
        if value == negative:
            return 0.0
        raise RecordError(
            "unknown reward token",
            got=value,
            expected=f"{positive!r} or {negative!r}",
            fix="set reward_tokens to the tokens the file uses",
            where=where,
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise RecordError(
            "bad label value",
            got=value,
            expected="a reward token or a number in [0, 1]",
            fix="store one label per placeholder",
            where=where,
        )
    return float(value)


def read(
    path: str | os.PathLike[str],
    *,
    report: ConversionReport | None = None,
    input_key: str = "input",
    label_key: str = "value",
    placeholder: str = DEFAULT_PLACEHOLDER,
    reward_tokens: Sequence[str] = ("+", "-"),
) -> Iterator[LabeledTrace]:
    """Yield one LabeledTrace per OpenRLHF row.

    Raises:
        DataFormatError: the file is not UTF-8 or a line is malformed JSON.
        RecordError: a missing key, a wrong type, placeholders count != labels count, an unknown
            reward token, or a prompt that does not start the input.
    """
    positive, negative = _check_tokens(placeholder, reward_tokens)
    report, owned = own_report(report, src_format=NAME, in_path=str(path))
    path = Path(path)
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        text = require(row, input_key, str, where)
        values = require(row, label_key, list, where, "a list of labels")
        pieces = text.split(placeholder)
        if len(pieces) - 1 != len(values) or not values:
            raise RecordError(
                "placeholders count != labels count",
                got=len(pieces) - 1,
                expected=f"{len(values)} placeholders (one per label), at least 1",
                fix="put the placeholder after every step",
                where=f"{where} field '{input_key}'",
            )
        if pieces[-1].strip():
            raise RecordError(
                "text after the last placeholder",
                got=pieces[-1],
                expected="a placeholder after every step",
                fix="end the last step with the placeholder",
                where=f"{where} field '{input_key}'",
            )
        prompt = row.get("prompt")
        if isinstance(prompt, str):
            if not pieces[0].startswith(prompt):
                raise RecordError(
                    "input does not start with the prompt",
                    got=pieces[0][:80],
                    expected=repr(prompt[:80]),
                    fix="check the row",
                    where=f"{where} field 'prompt'",
                )
            first = pieces[0][len(prompt) :].strip()
        else:
            prompt, first = split_prompt(pieces[0], where)
        steps = [first] + [piece.strip() for piece in pieces[1:-1]]
        labels = [
            _label(v, positive, negative, f"{where} field '{label_key}[{i}]'")
            for i, v in enumerate(values)
        ]
        report.read += 1
        report.steps_read += len(steps)
        yield labeled_record(
            source=NAME,
            where=where,
            id=str(row.get("id", f"{path.stem}-{lineno}")),
            problem_id=problem_id_for(prompt),
            prompt=prompt,
            steps=steps,
            labels=labels,
        )
    if owned:
        report.warn()


def write(
    path: str | os.PathLike[str],
    records: Iterable[Trace],
    *,
    report: ConversionReport | None = None,
    threshold: float = 0.5,
    input_key: str = "input",
    label_key: str = "value",
    placeholder: str = DEFAULT_PLACEHOLDER,
    reward_tokens: Sequence[str] = ("+", "-"),
    soft_values: bool = False,
) -> int:
    """Write records as OpenRLHF rows ``{input_key, label_key, "prompt", "id"}`` (atomic)."""
    check_threshold(threshold)
    positive, negative = _check_tokens(placeholder, reward_tokens)

    def row_of(record: LabeledTrace, report: ConversionReport) -> tuple[dict[str, Any], int] | None:
        if soft_values:
            n = next((i for i, v in enumerate(record.labels) if v is None), len(record.labels))
            report.lose("steps cut at an unknown (null) label", len(record.labels) - n)
            values: list[Any] = list(record.labels[:n])
        else:
            hard = hard_labels(record.labels, threshold, report, truncate_after_error=False)
            values = [positive if ok else negative for ok in hard]
        if not values:
            report.drop("records whose first label is unknown")
            return None
        steps = [s.strip() for s in record.steps[: len(values)]]
        if any(placeholder in s for s in [record.prompt, *steps]):
            raise RecordError(
                "text contains the placeholder",
                got=placeholder,
                expected="no placeholder inside prompt or steps",
                fix="choose another placeholder",
                where=f"record {record.id!r}",
            )
        row = {
            input_key: tag_text(record.prompt, steps, [placeholder] * len(steps)),
            label_key: values,
            "prompt": record.prompt,
            "id": record.id,
        }
        return row, len(steps)

    return write_rows(path, records, report, dst_format=NAME, row_of=row_of)
