"""Lay encoded traces out for one forward pass: padded rows, or packed rows without padding.

* **padded** (:func:`padded_batch`): one trace per row, right-padded, with an attention mask.
* **packed** (:func:`packed_batch`): several traces share a row back to back; ``position_ids``
  restart at 0 for each trace and there is no attention mask, so transformers builds a
  block-causal mask (SDPA, eager) or runs varlen attention (flash-attention) and no trace sees
  another. The logits at a trace's positions equal its padded ones up to float rounding
  (tests/unit/test_packing.py pins 1e-5 in float32).

Every head reads the steps through the batch's step index (``step_rows``/``step_cols``, built on
the host with the batch), so training and scoring work on either layout.

Example:
    >>> batch = packed_batch(encs, pad_id=0, row_tokens=4096)  # doctest: +SKIP
    >>> logits = model(**batch.model_inputs()).logits  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from prmkit.errors import ConfigError
from prmkit.prm.formats import Encoded, length_buckets

__all__ = [
    "ModelBatch",
    "batch_groups",
    "pack_rows",
    "packed_batch",
    "padded_batch",
    "token_budget_groups",
]


@dataclass(frozen=True)
class ModelBatch:
    """Encoded traces laid out as one model input.

    Attributes:
        input_ids: ``(rows, width)`` token ids.
        attention_mask: ``(rows, width)`` 1 = real token (padded layout); ``None`` when packed.
        position_ids: ``(rows, width)`` positions restarting at each trace (packed layout);
            ``None`` when padded.
        encs: The traces, in the order the caller gave them.
        rows: The row of each trace.
        offsets: The column where each trace starts in its row.
        step_rows, step_cols: ``(n,)`` where every kept step of every trace is read, trace by
            trace (built on the host with the batch and moved with it: reading the steps never
            waits on a host-to-device copy).
        keep_cols: ``(k,)`` the sorted distinct ``step_cols`` (an LM head runs only there).
        step_keep: ``(n,)`` the index of each step's column in ``keep_cols``.
        step_counts: Kept steps per trace (``split`` sizes of the flat step tensors).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor | None
    position_ids: torch.Tensor | None
    encs: Sequence[Encoded]
    rows: list[int]
    offsets: list[int]
    step_rows: torch.Tensor
    step_cols: torch.Tensor
    keep_cols: torch.Tensor
    step_keep: torch.Tensor
    step_counts: list[int]

    @classmethod
    def build(
        cls,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        encs: Sequence[Encoded],
        rows: list[int],
        offsets: list[int],
    ) -> ModelBatch:
        """A batch with its step index computed from ``rows``/``offsets`` (host tensors)."""
        step_rows = [rows[b] for b, e in enumerate(encs) for _ in e.step_positions]
        step_cols = [offsets[b] + p for b, e in enumerate(encs) for p in e.step_positions]
        keep = sorted(set(step_cols))
        where = {c: i for i, c in enumerate(keep)}
        return cls(
            input_ids,
            attention_mask,
            position_ids,
            encs,
            rows,
            offsets,
            torch.tensor(step_rows, dtype=torch.long),
            torch.tensor(step_cols, dtype=torch.long),
            torch.tensor(keep, dtype=torch.long),
            torch.tensor([where[c] for c in step_cols], dtype=torch.long),
            [len(e.step_positions) for e in encs],
        )

    @property
    def packed(self) -> bool:
        return self.position_ids is not None

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens in the batch."""
        return sum(len(e.input_ids) for e in self.encs)

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments of the model's forward pass.

        ``use_cache=False`` always: no KV cache is wanted, and transformers reads packed
        ``position_ids`` as separate sequences only when there is no cache.
        """
        if self.packed:
            return {
                "input_ids": self.input_ids,
                "position_ids": self.position_ids,
                "use_cache": False,
            }
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "use_cache": False,
        }

    def span(self, b: int) -> tuple[int, int, int]:
        """``(row, start, end)``: the columns trace ``b`` occupies."""
        start = self.offsets[b]
        return self.rows[b], start, start + len(self.encs[b].input_ids)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> ModelBatch:
        """The same batch with ``fn`` applied to each tensor field."""
        mapped = {
            f.name: fn(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **mapped)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ModelBatch:
        """The same batch on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> ModelBatch:
        """The same batch in pinned host memory (for asynchronous copies to a GPU)."""
        return self._map(torch.Tensor.pin_memory)


def _place(batch: ModelBatch, device: torch.device | str, pin: bool) -> ModelBatch:
    if pin:
        batch = batch.pin_memory()
    return batch.to(device, non_blocking=pin)


def padded_batch(
    encs: Sequence[Encoded], pad_id: int, device: torch.device | str = "cpu", pin: bool = False
) -> ModelBatch:
    """One trace per row, right-padded to the longest (step positions stay valid)."""
    width = max(len(e.input_ids) for e in encs)
    ids = torch.full((len(encs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encs), width), dtype=torch.long)
    for i, e in enumerate(encs):
        ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids, dtype=torch.long)
        mask[i, : len(e.input_ids)] = 1
    batch = ModelBatch.build(ids, mask, None, encs, list(range(len(encs))), [0] * len(encs))
    return _place(batch, device, pin)


def pack_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """First-fit decreasing: indices into rows of at most ``row_tokens`` tokens each.

    A trace longer than ``row_tokens`` gets a row of its own. Rows come longest first.

    Example:
        >>> pack_rows([5, 3, 4, 2], row_tokens=7)
        [[0, 3], [2, 1]]
    """
    if row_tokens < 1:
        raise ConfigError(
            "row_tokens must be >= 1",
            got=row_tokens,
            expected="a positive token count",
            fix="e.g. row_tokens=4096",
        )
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        for r, room in enumerate(free):
            if lengths[i] <= room:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(row_tokens - lengths[i])
    return rows


def packed_batch(
    encs: Sequence[Encoded],
    pad_id: int,
    device: torch.device | str = "cpu",
    *,
    row_tokens: int | None = None,
    pin: bool = False,
) -> ModelBatch:
    """Traces back to back in rows of at most ``row_tokens`` tokens, without padding.

    Args:
        encs: The traces.
        pad_id: Fills the tail of rows shorter than the longest row (a segment of its own,
            positions from 0, never read).
        device: Where the tensors go.
        row_tokens: Row capacity; ``None``: the longest trace (packing then only fills the
            room padding would waste, so attention with a block mask costs no more than padding).
        pin: Pin the host tensors and copy them asynchronously (CUDA).
    """
    lengths = [len(e.input_ids) for e in encs]
    capacity = max(max(lengths), row_tokens or 0)
    layout = pack_rows(lengths, capacity)
    width = max(sum(lengths[i] for i in row) for row in layout)
    ids = torch.full((len(layout), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(layout), width), dtype=torch.long)
    rows, offsets = [0] * len(encs), [0] * len(encs)
    for r, members in enumerate(layout):
        at = 0
        for i in members:
            n = lengths[i]
            ids[r, at : at + n] = torch.tensor(encs[i].input_ids, dtype=torch.long)
            pos[r, at : at + n] = torch.arange(n)
            rows[i], offsets[i] = r, at
            at += n
        pos[r, at:] = torch.arange(width - at)
    return _place(ModelBatch.build(ids, None, pos, encs, rows, offsets), device, pin)


def token_budget_groups(
    lengths: Sequence[int], max_items: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Indices, longest first, in groups of at most ``max_items`` items and ``max_tokens`` real
    tokens (an item longer than the budget gets a group of its own): the batches of packing.

    Example:
        >>> token_budget_groups([5, 100, 6, 90], max_items=3, max_tokens=120)
        [[1], [3, 2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order:
        over = max_tokens is not None and current and used + lengths[i] > max_tokens
        if len(current) >= max_items or over:
            groups.append(current)
            current, used = [], 0
        current.append(i)
        used += lengths[i]
    if current:
        groups.append(current)
    return groups


def batch_groups(
    lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None, packing: bool
) -> list[list[int]]:
    """The indices of each forward pass, longest first: at most ``batch_size`` items and
    ``max_batch_tokens`` tokens, real tokens when packed (:func:`token_budget_groups`), padded
    ones otherwise (:func:`~prmkit.prm.formats.length_buckets`)."""
    if packing:
        return token_budget_groups(lengths, batch_size, max_batch_tokens)
    return length_buckets(lengths, batch_size, max_batch_tokens)
