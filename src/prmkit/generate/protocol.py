"""The policy seam: what search and annotation need from a generator, and nothing more.

An in-process transformers model and a remote OpenAI-compatible server implement the same
:class:`Generator` protocol, so every caller works with either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from prmkit.config import check_ranges, option

__all__ = ["Completion", "Generator", "Prefix", "SamplingParams", "StopAt"]

StopAt = Literal["step", "solution"]
"""Where a continuation ends: at the next step boundary, or at the end of the solution."""


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; ``seed`` makes a call reproducible (``None``: not seeded).

    ``temperature=0`` is greedy decoding. ``ignore_eos`` keeps sampling past the end-of-solution
    token up to ``max_new_tokens`` (for benchmarks with a fixed token count).
    """

    temperature: float = option(0.7, "sampling temperature (0 = greedy)", ge=0)
    top_p: float = option(1.0, "nucleus sampling mass", gt=0, le=1)
    top_k: int = option(0, "top-k sampling (0 = off)", ge=0)
    max_new_tokens: int = option(256, "most tokens generated per call", ge=1)
    seed: int | None = option(0, "sampling seed (null: not seeded)", ge=0)
    ignore_eos: bool = option(False, "keep sampling past the end token (benchmarks)")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class Prefix:
    """A problem plus the first ``len(steps)`` steps of a solution, to be continued."""

    prompt: str
    steps: tuple[str, ...] = ()


@dataclass
class Completion:
    """One sampled continuation.

    Attributes:
        text: The generated text only (without the prompt or the given steps).
        prompt_tokens: Tokens of the prompt/prefix this completion was conditioned on.
        completion_tokens: Tokens generated for this completion.
        finish_reason: ``"stop"`` (hit the step boundary / a stop string), ``"eos"`` (end of the
            solution) or ``"length"`` (hit ``max_new_tokens``).
        meta: Backend extras (e.g. the seed used).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "eos", "length"]
    meta: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """A policy that samples solutions and continues partial solutions."""

    def sample(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        """``n`` whole solutions for each prompt; ``out[i][j]`` is sample j of prompt i."""
        ...

    def continue_from(
        self, prefixes: Sequence[Prefix], n: int, params: SamplingParams, stop: StopAt = "solution"
    ) -> list[list[Completion]]:
        """``n`` continuations of each prefix, ending at the next step or the solution's end."""
        ...
