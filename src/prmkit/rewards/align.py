"""Step boundaries in a policy's own tokens: which response token ends each step.

A dense (per-token) reward puts each step's score on the last token of that step. The steps are
found in the decoded response text (character spans, :func:`prmkit.steps.split`); this module
maps each step's end back to the token that completes it.

* :func:`step_token_ends`: with the tokenizer's offset mapping when re-tokenizing the decoded
  text gives back the generated ids (the usual case); otherwise (a sampled, non-canonical
  tokenization) by a binary search over decoded prefixes, which works for any tokenizer.
* :func:`place_at_tokens`: a per-token list with each value at its token, zeros elsewhere.

Example:
    >>> text = "2 + 3 = 5.\\n\\nSo 5."
    >>> ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # doctest: +SKIP
    >>> step_token_ends(tokenizer, ids, [(0, 10), (12, 17)])  # doctest: +SKIP
    [7, 13]
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from prmkit.errors import DataFormatError

__all__ = ["place_at_tokens", "step_token_ends"]


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True)


def step_token_ends(
    tokenizer: Any,
    response_ids: Sequence[int],
    spans: Sequence[tuple[int, int]],
    *,
    text: str | None = None,
) -> list[int]:
    """For each step, the index in ``response_ids`` of the token that completes it.

    ``spans`` are ``(start, end)`` character spans in the decoded response
    (``tokenizer.decode(response_ids, skip_special_tokens=True)``, passed as ``text`` when the
    caller has it). The token that completes a step is the one that emits its last character; a
    token that also emits the following separator ("5.\\n\\n") still counts as this step's end.
    Special tokens (EOS) are never a step's end.

    Raises:
        DataFormatError: a span ends beyond the decoded text.
    """
    ids = [int(t) for t in response_ids]
    if text is None:
        text = _decode(tokenizer, ids)
    for start, end in spans:
        if not 0 <= start < end <= len(text):
            raise DataFormatError(
                "a step span falls outside the decoded response",
                got=(start, end),
                expected=f"0 <= start < end <= {len(text)}",
                fix="split the text decoded from the same response ids",
            )
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    kept = [i for i, t in enumerate(ids) if t not in special]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) == [ids[i] for i in kept]:
        starts = [s for s, _ in enc["offset_mapping"]]
        # the last token that starts before the step's end emits its last character
        return [kept[bisect.bisect_left(starts, end) - 1] for _, end in spans]
    return _ends_by_prefix(tokenizer, ids, text, [end for _, end in spans])


def _ends_by_prefix(tokenizer: Any, ids: list[int], text: str, ends: Sequence[int]) -> list[int]:
    """The smallest ``k`` whose decoded prefix ``ids[:k]`` holds ``text[:end]``, minus one."""
    out = []
    lo = 1
    for end in ends:
        want = text[:end]
        a, b = lo, len(ids)
        while a < b:  # the predicate is monotone in k: a longer prefix decodes to more text
            mid = (a + b) // 2
            if _decode(tokenizer, ids[:mid]).startswith(want):
                b = mid
            else:
                a = mid + 1
        out.append(a - 1)
        lo = a
    return out


def place_at_tokens(length: int, positions: Sequence[int], values: Sequence[float]) -> list[float]:
    """A list of ``length`` zeros with each value added at its position.

    Values that share a position add up, so the list's sum is always ``sum(values)``.

    Raises:
        DataFormatError: the counts differ or a position is outside ``[0, length)``.
    """
    if len(positions) != len(values):
        raise DataFormatError(
            "positions and values differ in length",
            got=(len(positions), len(values)),
            expected="one position per value",
            fix="pass one token index per step score",
        )
    out = [0.0] * length
    for p, v in zip(positions, values, strict=True):
        if not 0 <= p < length:
            raise DataFormatError(
                "a step ends outside the response",
                got=p,
                expected=f"a token index in [0, {length})",
                fix="use the response's valid length",
            )
        out[p] += float(v)
    return out
