"""The training rows of bench/gpu/run.py: prmkit's ``fit`` and a plain ``transformers.Trainer``
on the same model shape, the same seed and the same examples, timed the same way.

:class:`StepClock` times both: a global optimizer-step hook (any ``torch.optim`` optimizer,
whoever drives it) records the time after each step, the device synchronised, and a forward
pre-hook on the model counts the real tokens and the squared sequence lengths (for attention
FLOPs) of every forward pass, from the model inputs: the attention mask of padded rows, the
position ids of packed rows (a sequence starts at position 0; a row's trailing padding is a
segment of its own and is not counted). The timed window runs from the end of the first
(warm-up) step to the end of the last.

Example:
    >>> with StepClock(model, pad_id=2, device=device) as clock:  # doctest: +SKIP
    ...     trainer.train()
    >>> clock.window()  # doctest: +SKIP
    Window(steps=23, seconds=3.1, tokens=168204, squares=97216452)
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from prmkit.prm.batch import token_budget_groups
from prmkit.train.collate import Example

__all__ = ["StepClock", "TrainResult", "Window", "prmkit_fit", "trainer_baseline"]


@dataclass(frozen=True)
class Window:
    """Optimizer steps after the first: how many, their seconds, real tokens, sum of L^2."""

    steps: int
    seconds: float
    tokens: int
    squares: int


@dataclass(frozen=True)
class TrainResult:
    """One training row."""

    window: Window
    steps_recorded: int
    tokens_counted: int
    wall_seconds: float
    peak_memory_gib: float | None
    note: str = ""


def forward_work(
    args: tuple[Any, ...], kwargs: dict[str, Any], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(real tokens, sum of squared sequence lengths)`` of one forward call, as 0-d tensors
    on the inputs' device (no host sync)."""
    ids = kwargs.get("input_ids", args[0] if args else None)
    mask = kwargs.get("attention_mask")
    pos = kwargs.get("position_ids")
    if mask is not None and mask.dim() == 2:  # padded rows
        n = (mask != 0).sum(dim=1)  # (rows,)
        return n.sum(), (n * n).sum()
    if pos is not None:  # packed rows: a sequence starts where its position is 0
        flat = pos.reshape(-1)
        seg = torch.cumsum(flat == 0, 0) - 1  # (tokens,) the sequence of each token
        lengths = torch.zeros_like(flat).scatter_add_(0, seg, torch.ones_like(flat))
        is_pad = (ids == pad_id).flip(1).long()  # (rows, width), from the row's end
        tail = torch.cumprod(is_pad, dim=1).sum(dim=1)  # (rows,) trailing padding
        return lengths.sum() - tail.sum(), (lengths * lengths).sum() - (tail * tail).sum()
    rows, width = ids.shape  # full rows, no padding
    return ids.new_tensor(rows * width), ids.new_tensor(rows * width * width)


class StepClock:
    """Times optimizer steps and counts the real tokens of the forward passes between them.

    Args:
        model: The module whose forward calls are counted.
        pad_id: The padding token id (packed rows' trailing padding is not counted).
        device: Synchronised before each time stamp (CUDA).
    """

    def __init__(self, model: Any, pad_id: int, device: torch.device) -> None:
        self.model, self.pad_id, self.device = model, pad_id, device
        self.marks: list[tuple[float, int, int]] = []  # (time, cumulative tokens, squares)
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._tokens = self._squares = 0
        self._handles: list[Any] = []

    def _on_forward(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if module.training:
            self._pending.append(forward_work(args, kwargs, self.pad_id))

    def _on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self._tokens += sum(int(t) for t, _ in self._pending)
        self._squares += sum(int(s) for _, s in self._pending)
        self._pending.clear()
        self.marks.append((now, self._tokens, self._squares))

    def __enter__(self) -> StepClock:
        self._handles = [
            self.model.register_forward_pre_hook(self._on_forward, with_kwargs=True),
            register_optimizer_step_post_hook(self._on_step),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()

    @property
    def tokens_counted(self) -> int:
        """Real tokens of every training forward pass seen, warm-up step included."""
        return self._tokens + sum(int(t) for t, _ in self._pending)

    def window(self) -> Window:
        """The steps after the first: from the end of step 1 to the end of the last step."""
        if len(self.marks) < 2:
            return Window(0, 0.0, 0, 0)
        (t0, n0, s0), (t1, n1, s1) = self.marks[0], self.marks[-1]
        return Window(len(self.marks) - 1, t1 - t0, n1 - n0, s1 - s0)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def prmkit_fit(
    make_prm: Callable[[], Any],
    examples: Sequence[Example],
    *,
    steps: int,
    batch_size: int,
    bf16: bool,
    device: torch.device,
    lr: float = 1e-5,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """prmkit's training engine, as a user calls it: ``prmkit.train.loop.fit``, packed rows."""
    from prmkit.train.loop import fit

    _free(device)
    prm = make_prm()
    start = time.perf_counter()
    with StepClock(prm.model, prm.pad_id(), device) as clock:
        result = fit(
            prm,
            examples,
            [],
            lr=lr,
            batch_size=batch_size,
            max_steps=steps,
            bf16=bf16,
            packing=True,
            optim="auto",
            log=log,
        )
    wall = time.perf_counter() - start
    own = getattr(result, "tokens_per_second", None)
    note = "wall time includes fit's end-of-run checkpoint (weights and optimizer state, temp dir)"
    if own:
        note += f"; fit's own tokens/s (its log windows): {own:,.0f}"
    out = TrainResult(
        clock.window(), len(clock.marks), clock.tokens_counted, wall, _peak_gib(device), note
    )
    del prm, result
    return out


class _InOrder(torch.utils.data.IterableDataset):
    """The examples in the given order: batches of ``batch_size`` are the groups we formed."""

    def __init__(self, items: Sequence[dict[str, list[int]]]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        return iter(self.items)


def _pad_collate(pad_id: int) -> Callable[[list[dict[str, list[int]]]], dict[str, torch.Tensor]]:
    def collate(features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(f["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return collate


def dense_item(example: Example) -> dict[str, list[int]]:
    """Token ids and dense labels: -100 everywhere except the labelled step tags (0/1)."""
    labels = [-100] * len(example.enc.input_ids)
    for pos, target in zip(example.label_positions(), example.targets, strict=True):
        labels[pos] = int(target >= 0.5)
    return {"input_ids": list(example.enc.input_ids), "labels": labels}


def trainer_baseline(
    make_model: Callable[[], Any],
    examples: Sequence[Example],
    *,
    pad_id: int,
    steps: int,
    batch_size: int,
    bf16: bool,
    device: torch.device,
    lr: float = 1e-5,
    seed: int = 0,
) -> TrainResult:
    """A plain ``transformers.Trainer`` on ``Qwen2ForTokenClassification``: padded batches of
    the same length-sorted groups of ``batch_size`` examples (in a seeded order), dense labels,
    fused AdamW, no checkpoints."""
    import random

    from transformers import PrinterCallback, Trainer, TrainingArguments

    groups = token_budget_groups([len(e.enc.input_ids) for e in examples], batch_size)
    random.Random(seed).shuffle(groups)
    items = [dense_item(examples[i]) for g in groups for i in g]
    _free(device)
    model = make_model()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-trainer-") as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=batch_size,
            max_steps=steps,
            learning_rate=lr,
            bf16=bf16,
            optim="adamw_torch_fused",
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            seed=seed,
            use_cpu=device.type == "cpu",
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=_InOrder(items),
            data_collator=_pad_collate(pad_id),
        )
        trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict
        with StepClock(model, pad_id, device) as clock:
            trainer.train()
    wall = time.perf_counter() - start
    out_result = TrainResult(
        clock.window(), len(clock.marks), clock.tokens_counted, wall, _peak_gib(device)
    )
    del trainer, model
    return out_result
