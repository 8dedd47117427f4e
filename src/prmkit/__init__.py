"""prmkit: a toolkit for the whole life of process reward models."""

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

__all__ = [
    "CheckerError",
    "ConfigError",
    "DataFormatError",
    "LabeledTrace",
    "ModelLoadError",
    "PrmkitError",
    "Problem",
    "RecordError",
    "ScoredTrace",
    "Trace",
    "join",
    "read_records",
    "split",
    "split_steps",
    "write_records",
]
