"""Training PRMs: the ``train`` stage, its config, collation and the training engine.

* :func:`train` (``prmkit train``) with :class:`TrainConfig`: records (a file or in memory) in,
  a checkpoint and ``train_report.json`` out.
* Collation (torch-free): labels only at the step-tag positions (:func:`build_examples`,
  :func:`dense_labels`), a seeded eval split, length-bucketed batches.
* The engine (:mod:`prmkit.train.loop`, imported with torch on first use): :func:`build_prm`,
  :func:`fit` for every head, :func:`fit_probe` on cached :func:`step_features`.

Example:
    >>> from prmkit.train import TrainConfig, train
    >>> cfg = TrainConfig(out="runs/prm", base="smollm2", head="probe", lr=1e-3, epochs=20)
    >>> report = train(cfg, records=labeled_traces)  # doctest: +SKIP

    The engine alone, on examples built from records:

    >>> from prmkit.train import build_examples, build_prm, fit
    >>> prm = build_prm(cfg.spec(), cfg.base)  # doctest: +SKIP
    >>> examples, stats = build_examples(prm.spec, prm.tokenizer, labeled_traces)  # doctest: +SKIP
    >>> result = fit(prm, examples, lr=1e-3, epochs=20)  # doctest: +SKIP
"""

from typing import Any

from prmkit.train.collate import (
    IGNORE_INDEX,
    CollateStats,
    Example,
    batches,
    build_examples,
    dense_labels,
    split_eval,
)
from prmkit.train.run import TrainConfig, train

_ENGINE = ("FitResult", "build_prm", "fit", "fit_probe", "probe_features", "step_features")

__all__ = [
    "IGNORE_INDEX",
    "CollateStats",
    "Example",
    "FitResult",
    "TrainConfig",
    "batches",
    "build_examples",
    "build_prm",
    "dense_labels",
    "fit",
    "fit_probe",
    "probe_features",
    "split_eval",
    "step_features",
    "train",
]


def __getattr__(name: str) -> Any:
    """The engine's names, imported (with torch) on first use."""
    if name in _ENGINE:
        from prmkit.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'prmkit.train' has no attribute {name!r}")


from prmkit._stages import callable_stage  # noqa: E402

callable_stage(__name__, "train")
