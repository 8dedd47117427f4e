"""Training examples from LabeledTraces: labels only at the step-tag positions.

Built with :func:`prmkit.prm.formats.encode`, the same function scoring uses, so the positions
that receive labels are the positions read at inference. Soft labels stay floats. A label whose
step tag was cut off by ``max_length`` is an error, or (``on_truncation="drop"``) dropped and
counted in :class:`CollateStats`.

Example:
    >>> examples, stats = build_examples(spec, tokenizer, traces)  # doctest: +SKIP
    >>> dense_labels(examples[0])[:5]  # -100 everywhere except the tag positions  # doctest: +SKIP
    [-100.0, -100.0, -100.0, -100.0, -100.0]
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm.formats import Encoded, encode, length_buckets
from prmkit.prm.spec import PRMSpec
from prmkit.records import LabeledTrace

__all__ = [
    "IGNORE_INDEX",
    "CollateStats",
    "Example",
    "batches",
    "build_examples",
    "dense_labels",
    "split_eval",
]

IGNORE_INDEX = -100.0


@dataclass(frozen=True)
class Example:
    """One training trace.

    Attributes:
        trace_id: The trace's id.
        enc: Token ids and step positions (see :class:`~prmkit.prm.formats.Encoded`).
        label_steps: Indices into ``enc.step_positions`` of the steps that carry a label.
        targets: The labels of those steps (floats in [0, 1]; soft labels stay soft).
        outcome: 1.0 if the trace has no wrong step, else 0.0 (the implicit head's target).
    """

    trace_id: str
    enc: Encoded
    label_steps: list[int]
    targets: list[float]
    outcome: float

    def label_positions(self) -> list[int]:
        """Token positions that receive a label."""
        return [self.enc.step_positions[i] for i in self.label_steps]


@dataclass
class CollateStats:
    """Counts from :func:`build_examples`; shown in the training report."""

    traces_in: int = 0
    traces_kept: int = 0
    traces_dropped: int = 0
    steps_labeled: int = 0
    steps_unlabeled: int = 0
    steps_after_first_error: int = 0
    steps_dropped_truncation: int = 0
    dropped_ids: list[str] = field(default_factory=list)


def build_examples(
    spec: PRMSpec,
    tokenizer: Any,
    traces: Sequence[LabeledTrace],
    *,
    last_step_only: bool = False,
    until_first_error: bool = False,
    on_truncation: str = "error",
) -> tuple[list[Example], CollateStats]:
    """Encode labelled traces and place labels on the step-tag positions.

    Args:
        spec: The PRM's input format.
        tokenizer: Its tokenizer.
        traces: Labelled traces; ``None`` labels are not trained (counted as unlabeled).
        last_step_only: Train only on each trace's last step (as TRL's option does).
        until_first_error: Train only the steps up to and including the first error (the
            labels after it are not trained; counted as ``steps_after_first_error``), as the
            Qwen PRM recipe and ProcessBench's notion of an error do.
        on_truncation: ``"error"``: raise when ``max_length`` cuts off a labelled step's tag;
            ``"drop"``: drop those labels (and traces left with none), counting them.

    Raises:
        ConfigError: bad ``on_truncation``.
        DataFormatError: a labelled step was cut off and ``on_truncation="error"``.
    """
    if on_truncation not in ("error", "drop"):
        raise ConfigError(
            "unknown on_truncation",
            got=on_truncation,
            expected="'error' or 'drop'",
            fix="set on_truncation=error|drop",
        )
    stats = CollateStats(traces_in=len(traces))
    out: list[Example] = []
    for trace in traces:
        enc = encode(spec, tokenizer, trace.prompt, trace.steps, where=f"trace {trace.id!r}")
        wanted = [len(trace.steps) - 1] if last_step_only else list(range(len(trace.steps)))
        if until_first_error and trace.first_error >= 0:
            kept = [i for i in wanted if i <= trace.first_error]
            stats.steps_after_first_error += sum(
                trace.labels[i] is not None for i in wanted if i > trace.first_error
            )
            wanted = kept
        steps, targets, lost = [], [], 0
        for i in wanted:
            label = trace.labels[i]
            if label is None:
                stats.steps_unlabeled += 1
                continue
            if i >= len(enc.step_positions):
                lost += 1
                continue
            steps.append(i)
            targets.append(float(label))
        whole_needed = spec.head == "implicit" and enc.truncated_steps
        if lost or whole_needed:
            if on_truncation == "error":
                raise DataFormatError(
                    f"max_length {spec.max_length} cuts off {enc.truncated_steps} step tag(s) "
                    "that carry labels",
                    got=len(enc.input_ids),
                    expected="every labelled step within max_length",
                    fix="raise max_length, or set on_truncation=drop to drop (and count) them",
                    where=f"trace {trace.id!r}",
                )
            stats.steps_dropped_truncation += lost
        if not steps or whole_needed:
            stats.traces_dropped += 1
            stats.dropped_ids.append(trace.id)
            continue
        outcome = 1.0 if trace.first_error == -1 else 0.0
        out.append(
            Example(trace_id=trace.id, enc=enc, label_steps=steps, targets=targets, outcome=outcome)
        )
        stats.steps_labeled += len(steps)
    stats.traces_kept = len(out)
    return out, stats


def dense_labels(example: Example) -> list[float]:
    """Per-token labels: the step label at tag positions, ``-100`` elsewhere (TRL's layout)."""
    labels = [IGNORE_INDEX] * len(example.enc.input_ids)
    for pos, target in zip(example.label_positions(), example.targets, strict=True):
        labels[pos] = target
    return labels


def split_eval(
    examples: Sequence[Example], fraction: float, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """A seeded random split into ``(train, eval)``; ``fraction=0`` gives no eval set."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(
            "eval fraction out of range",
            got=fraction,
            expected="0 <= f < 1",
            fix="e.g. eval_fraction=0.1",
        )
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_eval = round(len(examples) * fraction)
    if fraction and len(examples) > 1:
        n_eval = max(1, n_eval)
    eval_idx = set(order[:n_eval])
    train = [e for i, e in enumerate(examples) if i not in eval_idx]
    held = [e for i, e in enumerate(examples) if i in eval_idx]
    return train, held


def batches(
    examples: Sequence[Example], batch_size: int, *, shuffle: bool, seed: int = 0
) -> list[list[Example]]:
    """Length-bucketed batches (similar lengths together); batch order shuffled if asked."""
    groups = length_buckets([len(e.enc.input_ids) for e in examples], batch_size)
    if shuffle:
        random.Random(seed).shuffle(groups)
    return [[examples[i] for i in g] for g in groups]
