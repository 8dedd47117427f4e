"""Policy generation behind one protocol: in-process transformers or a remote OpenAI server.

:func:`generate` is the stage (``prmkit generate``): ``n`` sampled solutions per problem as
Trace records, from a :class:`GenerateConfig` whose ``policy`` and ``sampling`` groups name the
model and the sampling settings.

:class:`Generator` is the seam search and annotation depend on. The backends load lazily, so
importing this package does not import torch:

* :class:`~prmkit.generate.transformers_backend.TransformersGenerator`: batched sampling with
  prefix KV-cache reuse, step-boundary stops, per-sample seeds.
* :class:`~prmkit.generate.openai_backend.OpenAIGenerator`: any OpenAI-compatible server.

Example:
    >>> from prmkit.generate import GenerateConfig, SamplingParams, generate
    >>> from prmkit.models import PolicyConfig
    >>> cfg = GenerateConfig(problems="problems.jsonl", out="traces.jsonl", n=16,
    ...                      policy=PolicyConfig(adapter="adapters/warmup-0123"),
    ...                      sampling=SamplingParams(temperature=0.7, max_new_tokens=256))
    >>> traces = generate(cfg)  # doctest: +SKIP

    The generators alone:

    >>> from prmkit.generate import Prefix, SamplingParams, TransformersGenerator
    >>> gen = TransformersGenerator.from_pretrained("smollm2")  # doctest: +SKIP
    >>> gen.continue_from([Prefix("What is 2+3?")], 4, SamplingParams(), stop="step")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from prmkit._stages import callable_stage
from prmkit.generate.protocol import Completion, Generator, Prefix, SamplingParams, StopAt
from prmkit.generate.run import GenerateConfig, GenerateStats, generate, traces_for

__all__ = [
    "Completion",
    "GenerateConfig",
    "GenerateStats",
    "Generator",
    "OpenAIGenerator",
    "Prefix",
    "SamplingParams",
    "StopAt",
    "TransformersGenerator",
    "generate",
    "traces_for",
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


callable_stage(__name__, "generate")
