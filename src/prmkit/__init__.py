"""prmkit: a toolkit for the whole life of process reward models.

``import prmkit`` gives the stages as functions and the main classes; the stages load on first
use, so importing prmkit stays fast. Each stage takes its config dataclass and records in memory
(or the paths in its config):

* ``prmkit.generate(GenerateConfig, problems)`` -> ``list[Trace]``
* ``prmkit.annotate(AnnotateConfig, traces, problems)`` -> ``AnnotateResult`` (``.records``)
* ``prmkit.train(TrainConfig, records=...)`` -> the training report (the checkpoint in ``out``)
* ``prmkit.score(ScoreConfig, traces)`` -> ``list[ScoredTrace]``
* ``prmkit.search(problems, generator, scorer, SearchConfig)`` -> ``list[SearchResult]``
* ``prmkit.evaluate.processbench(...)``, ``.prmbench(...)``, ``.step_metrics(...)``,
  ``.best_of_n(...)`` -> result dicts

A stage package is also its entry function (``prmkit.score(cfg)`` runs
``prmkit.score.score(cfg)``) and keeps its other names (``prmkit.score.PRMScorer``). The whole
life cycle in Python is in docs/python.md.

Example:
    >>> import prmkit
    >>> prmkit.Trace(id="t", problem_id="p", prompt="1+1?", steps=["1+1=2", "2"]).steps
    ['1+1=2', '2']
    >>> callable(prmkit.train), prmkit.TrainConfig.__name__
    (True, 'TrainConfig')
"""

from __future__ import annotations

import importlib
from typing import Any

from prmkit.errors import (
    CheckerError,
    ConfigError,
    DataFormatError,
    ModelLoadError,
    PrmkitError,
    RecordError,
)
from prmkit.records import (
    LabeledTrace,
    Problem,
    ScoredTrace,
    Trace,
    read_records,
    write_records,
)
from prmkit.steps import join, split, split_steps

__version__ = "0.1.0"

_STAGES = ("annotate", "evaluate", "formats", "generate", "score", "search", "tasks", "train")
"""Stage packages, loaded on first use (each is callable as its stage where it has one)."""

_NAMES = {
    "AnnotateConfig": "prmkit.annotate",
    "GenerateConfig": "prmkit.generate",
    "Generator": "prmkit.generate.protocol",
    "PolicyConfig": "prmkit.models",
    "PRMScorer": "prmkit.score",
    "PRMSpec": "prmkit.prm.spec",
    "SamplingParams": "prmkit.generate.protocol",
    "ScoreConfig": "prmkit.score",
    "SearchConfig": "prmkit.search",
    "TrainConfig": "prmkit.train",
    "TransformersGenerator": "prmkit.generate.transformers_backend",
    "load_prm": "prmkit.prm.checkpoint",
}
"""Main classes and functions of the stages, loaded on first use."""

__all__ = [
    "AnnotateConfig",
    "CheckerError",
    "ConfigError",
    "DataFormatError",
    "GenerateConfig",
    "Generator",
    "LabeledTrace",
    "ModelLoadError",
    "PRMScorer",
    "PRMSpec",
    "PolicyConfig",
    "PrmkitError",
    "Problem",
    "RecordError",
    "SamplingParams",
    "ScoreConfig",
    "ScoredTrace",
    "SearchConfig",
    "Trace",
    "TrainConfig",
    "TransformersGenerator",
    "annotate",
    "evaluate",
    "formats",
    "generate",
    "join",
    "load_prm",
    "read_records",
    "score",
    "search",
    "split",
    "split_steps",
    "tasks",
    "train",
    "write_records",
]


def __getattr__(name: str) -> Any:
    if name in _STAGES:
        return importlib.import_module(f"prmkit.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'prmkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
