"""Policy generation behind one protocol: in-process transformers or a remote OpenAI server.

:class:`Generator` is the seam search and annotation depend on. The backends load lazily, so
importing this package does not import torch:

* :class:`~prmkit.generate.transformers_backend.TransformersGenerator`: batched sampling with
  prefix KV-cache reuse, step-boundary stops, per-sample seeds.
* :class:`~prmkit.generate.openai_backend.OpenAIGenerator`: any OpenAI-compatible server.

Example:
    >>> from prmkit.generate import Prefix, SamplingParams, TransformersGenerator
    >>> gen = TransformersGenerator.from_pretrained("smollm2")  # doctest: +SKIP
    >>> gen.continue_from([Prefix("What is 2+3?")], 4, SamplingParams(), stop="step")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from prmkit.generate.protocol import Completion, Generator, Prefix, SamplingParams, StopAt

__all__ = [
    "Completion",
    "Generator",
    "OpenAIGenerator",
    "Prefix",
    "SamplingParams",
    "StopAt",
    "TransformersGenerator",
]

_LAZY = {
    "TransformersGenerator": "prmkit.generate.transformers_backend",
    "OpenAIGenerator": "prmkit.generate.openai_backend",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prmkit.generate' has no attribute {name!r}")
