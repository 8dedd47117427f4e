"""``PolicyServeConfig``: the settings of ``prmkit serve-policy``.

Example:
    >>> cfg = PolicyServeConfig(model="runs/policy", port=0)
    >>> cfg.host, cfg.served_name()
    ('127.0.0.1', 'policy')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prmkit.config import Dtype, check_ranges, option
from prmkit.errors import ConfigError
from prmkit.serve.config import API_KEY_ENV

__all__ = ["PolicyServeConfig"]


@dataclass
class PolicyServeConfig:
    """Settings of ``prmkit serve-policy``: the policy, the socket and the request limits."""

    model: str = option("smollm2", "policy: 'smollm2' or a local Hugging Face model directory")
    adapter: str | None = option(None, "LoRA adapter directory merged into the model (peft)")
    model_name: str = option("", "the served model name ('' = 'smollm2' or the folder's name)")
    host: str = option(
        "127.0.0.1", "address to bind (127.0.0.1 = this machine only; 0.0.0.0 = every interface)"
    )
    port: int = option(
        8000, "TCP port (0 = pick a free one; the listening line names it)", ge=0, le=65535
    )
    device: str = option("cpu", "torch device (cpu, cuda, cuda:1, ...)")
    dtype: Dtype = option("float32", "torch dtype of the policy")
    threads: int = option(0, "torch threads (0 = torch's default)", ge=0)
    batch_size: int = option(32, "sampled rows decoded together (bounds memory for large n)", ge=1)
    api_key: str = option(
        "",
        f"bearer token every route but /health requires ('' = ${API_KEY_ENV}, or none when "
        "that is unset too)",
    )
    default_max_tokens: int = option(256, "max_tokens of a request that gives none", ge=1)
    max_tokens_limit: int = option(4096, "max_tokens a request may ask for, at most", ge=1)
    max_n: int = option(64, "samples per prompt (n), at most", ge=1)
    max_prompts_per_request: int = option(32, "prompts per /v1/completions request", ge=1)
    max_logprobs: int = option(20, "top logprobs per token a request may ask for", ge=0)
    max_queue: int = option(
        64, "requests waiting for the model, at most; more answers 429 Retry-After", ge=1
    )
    max_body_bytes: int = option(
        8 * 1024 * 1024, "request body size, at most (checked before parsing; 413 beyond)", ge=1
    )
    graceful_shutdown_s: float = option(
        30.0, "on SIGTERM/SIGINT, seconds in-flight requests get to finish", ge=0
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = option(
        "info", "uvicorn's log level (logs go to stderr)"
    )
    access_log: bool = option(False, "log every request (uvicorn's access log, stderr)")

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

    def resolved_api_key(self) -> str | None:
        """The bearer token clients must send (``None``: no token required)."""
        return self.api_key or os.environ.get(API_KEY_ENV) or None
