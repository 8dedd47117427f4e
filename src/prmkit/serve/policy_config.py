"""``PolicyServeConfig``: the settings of ``prmkit serve-policy``.

Example:
    >>> cfg = PolicyServeConfig(model="runs/policy", port=0)
    >>> cfg.host, cfg.served_name()
    ('127.0.0.1', 'policy')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prmkit.config import Dtype, check_ranges, option
from prmkit.errors import ConfigError
from prmkit.serve.config import ServerSettings

__all__ = ["PolicyServeConfig"]


@dataclass
class PolicyServeConfig(ServerSettings):
    """Settings of ``prmkit serve-policy``: the policy, the socket and the request limits."""

    model: str = option("smollm2", "policy: 'smollm2' or a local Hugging Face model directory")
    adapter: str | None = option(None, "LoRA adapter directory merged into the model (peft)")
    model_name: str = option("", "the served model name ('' = 'smollm2' or the folder's name)")
    device: str = option("cpu", "torch device (cpu, cuda, cuda:1, ...)")
    dtype: Dtype = option("float32", "torch dtype of the policy")
    threads: int = option(0, "torch threads (0 = torch's default)", ge=0)
    batch_size: int = option(32, "sampled rows decoded together (bounds memory for large n)", ge=1)
    default_max_tokens: int = option(256, "max_tokens of a request that gives none", ge=1)
    max_tokens_limit: int = option(4096, "max_tokens a request may ask for, at most", ge=1)
    max_n: int = option(64, "samples per prompt (n), at most", ge=1)
    max_prompts_per_request: int = option(32, "prompts per /v1/completions request", ge=1)
    max_logprobs: int = option(20, "top logprobs per token a request may ask for", ge=0)
    max_queue: int = option(
        64, "requests waiting for the model, at most; more answers 429 Retry-After", ge=1
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.default_max_tokens > self.max_tokens_limit:
            raise ConfigError(
                "default_max_tokens is above max_tokens_limit",
                got={
                    "default_max_tokens": self.default_max_tokens,
                    "max_tokens_limit": self.max_tokens_limit,
                },
                expected="default_max_tokens <= max_tokens_limit",
                fix="lower default_max_tokens or raise max_tokens_limit",
            )

    def served_name(self) -> str:
        """``model_name``, or ``smollm2``, or the model folder's name."""
        if self.model_name:
            return self.model_name
        if self.model == "smollm2":
            return "smollm2"
        return Path(self.model).resolve().name
