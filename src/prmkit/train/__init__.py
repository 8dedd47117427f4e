"""Training PRMs: collation with labels at step-tag positions, the training loop, the CLI stage.

Import :mod:`prmkit.train.loop` (torch) when training; collation is torch-free.
"""

from prmkit.train.collate import (
    IGNORE_INDEX,
    CollateStats,
    Example,
    batches,
    build_examples,
    dense_labels,
    split_eval,
)

__all__ = [
    "IGNORE_INDEX",
    "CollateStats",
    "Example",
    "batches",
    "build_examples",
    "dense_labels",
    "split_eval",
]
