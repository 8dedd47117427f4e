"""The policy group of a stage config: which model, adapter, dtype, device and threads.

Every stage that runs a policy (generate, annotate, search, the eval judge) holds one
:class:`PolicyConfig` as its ``policy`` group, so the keys are the same everywhere:
``policy.model=/models/qwen policy.dtype=bfloat16`` in ``key=value`` form, or a ``policy:``
mapping in YAML.

Example:
    >>> PolicyConfig().model, PolicyConfig(model="/models/qwen", threads=2).threads
    ('smollm2', 2)
"""

from __future__ import annotations

from dataclasses import dataclass

from prmkit.config import Dtype, check_ranges, option

__all__ = ["PolicyConfig"]


@dataclass
class PolicyConfig:
    """A policy model as a stage runs it (in process, through transformers)."""

    model: str = option("smollm2", "model: 'smollm2', a local HF directory, or a served name")
    adapter: str | None = option(None, "LoRA adapter directory merged into the model (peft)")
    dtype: Dtype = option("float32", "torch dtype of the in-process model")
    device: str = option("cpu", "torch device of the in-process model ('cuda', 'cuda:1', 'cpu')")
    threads: int = option(0, "torch threads (0 = torch's default)", ge=0)

    def __post_init__(self) -> None:
        check_ranges(self)
