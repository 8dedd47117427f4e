"""Build model inputs from a :class:`PRMSpec`: token ids and the position read for each step.

:func:`encode` is the single place where a trace becomes tokens, used by training (labels go on
``step_positions``) and by scoring (scores are read at ``step_positions``), so the two cannot
disagree.

Example:
    >>> enc = encode(spec, tokenizer, "1+1?", ["1+1=2", "So 2."])  # doctest: +SKIP
    >>> [enc.input_ids[p] for p in enc.step_positions]  # the tag's last token  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm.spec import PRMSpec

__all__ = ["Encoded", "encode", "length_buckets", "render", "resolve_label_token_ids"]


@dataclass(frozen=True)
class Encoded:
    """One trace as model input.

    Attributes:
        input_ids: Token ids, at most ``spec.max_length`` of them.
        step_positions: For each step that survived truncation, the index of the token whose
            output is read (the last token of the step's tag). Strictly increasing.
        content_start: Index of the first token of the first step (the implicit head sums
            log-ratios over ``(step_positions[k-1], step_positions[k]]``, starting here).
        n_steps: Number of steps in the trace (``len(step_positions) < n_steps`` when the
            input was cut to ``max_length``).
    """

    input_ids: list[int]
    step_positions: list[int]
    content_start: int
    n_steps: int

    @property
    def truncated_steps(self) -> int:
        """How many steps lost their read position to truncation."""
        return self.n_steps - len(self.step_positions)

    def step_token_spans(self) -> list[tuple[int, int]]:
        """``[start, end)`` token range of each kept step, tag included."""
        starts = [self.content_start, *[p + 1 for p in self.step_positions[:-1]]]
        return [(s, p + 1) for s, p in zip(starts, self.step_positions, strict=True)]


def _check_steps(steps: Sequence[str], where: str | None) -> None:
    if not steps:
        raise DataFormatError(
            "trace has no steps",
            got=list(steps),
            expected="at least one step",
            fix="drop empty traces before scoring or training",
            where=where,
        )


def render(
    spec: PRMSpec, tokenizer: Any, prompt: str, steps: Sequence[str]
) -> tuple[str, list[tuple[int, int]], int]:
    """Render a ``joined`` input as text.

    Returns:
        ``(text, tag_spans, content_offset)``: the full text, the character span of each step's
        tag in it, and the character offset where the first step starts.

    Raises:
        ConfigError: the chat template changes the assistant text, so tags cannot be located.
    """
    body_parts: list[str] = []
    rel_spans: list[tuple[int, int]] = []
    pos = 0
    for i, step in enumerate(steps):
        if i:
            body_parts.append(spec.step_join)
            pos += len(spec.step_join)
        body_parts.append(step)
        pos += len(step)
        body_parts.append(spec.step_tag)
        rel_spans.append((pos, pos + len(spec.step_tag)))
        pos += len(spec.step_tag)
    body = "".join(body_parts)
    if spec.use_chat_template:
        messages = []
        if spec.system_prompt is not None:
            messages.append({"role": "system", "content": spec.system_prompt})
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": body}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        offset = text.rfind(body)
        if offset < 0:
            raise ConfigError(
                "the chat template rewrites the assistant text",
                got=text[-200:],
                expected="the tagged steps verbatim in the rendered chat",
                fix="use a template that keeps assistant content as is, or set "
                "use_chat_template=false",
            )
    else:
        text = prompt + spec.prompt_join + body
        offset = len(prompt) + len(spec.prompt_join)
    return text, [(offset + s, offset + e) for s, e in rel_spans], offset


def _encode_joined(
    spec: PRMSpec, tokenizer: Any, prompt: str, steps: Sequence[str], where: str | None
) -> tuple[list[int], list[int], int]:
    text, tag_spans, content_offset = render(spec, tokenizer, prompt, steps)
    enc = tokenizer(text, add_special_tokens=spec.add_special_tokens, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    # char -> token index, from the offsets (each char belongs to at most one token).
    ends = [e for _, e in offsets]
    starts = [s for s, _ in offsets]

    def token_of(char: int) -> int:
        # the first token whose span ends after `char` and starts at or before it
        lo, hi = 0, len(ends)
        while lo < hi:
            mid = (lo + hi) // 2
            if ends[mid] <= char:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(ends) or starts[lo] > char:
            raise ConfigError(
                "a step tag character maps to no token",
                got=text[char],
                expected="the tag to be covered by a token",
                fix="use a step tag that is not stripped by the tokenizer",
                where=where,
            )
        return lo

    positions = [token_of(end - 1) for _, end in tag_spans]
    for a, b in itertools.pairwise(positions):
        if b <= a:
            raise ConfigError(
                "two step tags end in the same token",
                got=spec.step_tag,
                expected="one token per tag end",
                fix="use a tag the tokenizer does not merge with the text around "
                "it (e.g. add it as a special token)",
                where=where,
            )
    content_start = token_of(content_offset) if steps else len(ids)
    return ids, positions, content_start


def _encode_per_step(
    spec: PRMSpec, tokenizer: Any, prompt: str, steps: Sequence[str]
) -> tuple[list[int], list[int], int]:
    def tok(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    ids: list[int] = []
    if spec.add_bos and tokenizer.bos_token_id is not None:
        ids.append(tokenizer.bos_token_id)
    ids += tok(prompt)
    content_start = len(ids)
    tag = tok(spec.step_tag)
    positions = []
    for step in steps:
        ids += tok(step) + tag
        positions.append(len(ids) - 1)
    return ids, positions, content_start


def encode(
    spec: PRMSpec, tokenizer: Any, prompt: str, steps: Sequence[str], *, where: str | None = None
) -> Encoded:
    """Token ids for a trace and the position read for each step, cut to ``spec.max_length``.

    Raises:
        DataFormatError: the trace has no steps.
        ConfigError: the tags cannot be located in the tokens.
    """
    _check_steps(steps, where)
    if spec.tokenization == "per_step":
        ids, positions, content_start = _encode_per_step(spec, tokenizer, prompt, steps)
    else:
        ids, positions, content_start = _encode_joined(spec, tokenizer, prompt, steps, where)
    ids = ids[: spec.max_length]
    kept = [p for p in positions if p < len(ids)]
    return Encoded(
        input_ids=ids, step_positions=kept, content_start=content_start, n_steps=len(steps)
    )


def resolve_label_token_ids(spec: PRMSpec, tokenizer: Any) -> tuple[int, int]:
    """The ``(positive, negative)`` token ids of a ``labeltok`` spec.

    Raises:
        ConfigError: a label text is not exactly one token.
    """
    if spec.label_token_ids is not None:
        return spec.label_token_ids[0], spec.label_token_ids[1]
    if spec.label_tokens is None:
        raise ConfigError(
            "spec has no label_tokens",
            got=spec.head,
            expected="label_tokens=[pos, neg]",
            fix="set label_tokens",
        )
    out = []
    for text in spec.label_tokens:
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(ids) != 1:
            raise ConfigError(
                "label token is not a single token",
                got={text: ids},
                expected="exactly one token id",
                fix="pick label texts the tokenizer keeps whole, or add them as tokens",
            )
        out.append(ids[0])
    return out[0], out[1]


def length_buckets(
    lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None
) -> list[list[int]]:
    """Group indices into batches of similar length (longest first).

    A batch holds at most ``batch_size`` items and, if given, at most ``max_batch_tokens``
    padded tokens (a single longer item still gets a batch of its own).

    Example:
        >>> length_buckets([5, 100, 6, 90], batch_size=2)
        [[1, 3], [2, 0]]
    """
    if batch_size < 1:
        raise ConfigError(
            "batch_size must be >= 1",
            got=batch_size,
            expected="a positive integer",
            fix="set batch_size=8",
        )
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        full = len(current) >= batch_size or (
            max_batch_tokens is not None
            and current
            and width * (len(current) + 1) > max_batch_tokens
        )
        if full:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
