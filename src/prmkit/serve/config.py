"""``ServeConfig``: the settings of ``prmkit serve`` and :func:`prmkit.serve.serve`.

Example:
    >>> cfg = ServeConfig(prm="runs/prm", port=0, max_wait_ms=5)
    >>> cfg.host, cfg.served_name()
    ('127.0.0.1', 'prm')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prmkit.config import Dtype, check_ranges, option
from prmkit.errors import ConfigError

__all__ = ["API_KEY_ENV", "ServeConfig", "ServerSettings"]

API_KEY_ENV = "PRMKIT_API_KEY"
"""The environment variable read for the bearer token when ``api_key`` is ''."""


@dataclass
class ServerSettings:
    """The socket, auth and shutdown keys both servers share (``prmkit serve`` and
    ``prmkit serve-policy``)."""

    host: str = option(
        "127.0.0.1", "address to bind (127.0.0.1 = this machine only; 0.0.0.0 = every interface)"
    )
    port: int = option(
        8000, "TCP port (0 = pick a free one; the listening line names it)", ge=0, le=65535
    )
    api_key: str = option(
        "",
        f"bearer token every route but /health requires ('' = ${API_KEY_ENV}, or none when "
        "that is unset too)",
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

    def resolved_api_key(self) -> str | None:
        """The bearer token clients must send (``None``: no token required)."""
        return self.api_key or os.environ.get(API_KEY_ENV) or None


@dataclass
class ServeConfig(ServerSettings):
    """Settings of ``prmkit serve``: the PRM, the socket, the batcher and the request limits."""

    prm: str = option("", "PRM checkpoint directory (with prm_spec.json)")
    spec: str = option(
        "",
        "a prm_spec.json to use instead of the checkpoint's own (for a plain local model "
        "directory such as a Math-Shepherd or Qwen2.5-Math-PRM copy)",
    )
    model_name: str = option("", "the served model name ('' = the checkpoint folder's name)")
    device: str = option("cpu", "torch device (cpu, cuda, cuda:1, ...)")
    dtype: Dtype = option(
        "auto", "torch dtype; auto = bfloat16 where the device computes it natively, else float32"
    )
    attn_implementation: str = option(
        "auto", "transformers attention: auto (flash_attention_2 on CUDA if installed, else sdpa)"
    )
    packing: bool | Literal["auto"] = option(
        "auto", "pack a batch's traces into rows without padding; auto = where the model can"
    )
    trust_remote_code: bool = option(False, "allow a checkpoint's own model code (opt-in)")
    max_batch_traces: int = option(32, "traces per forward pass, at most", ge=1)
    max_batch_tokens: int = option(
        16384, "tokens per forward pass, at most (real tokens when packed, padded otherwise)", ge=1
    )
    max_wait_ms: float = option(
        10.0, "how long the first waiting trace waits for others to fill a batch", ge=0
    )
    max_queue: int = option(
        1024, "traces waiting for a forward pass, at most; more answers 429 Retry-After", ge=1
    )
    max_steps: int = option(256, "steps (or step tags) per trace, at most", ge=1)
    max_traces_per_request: int = option(
        256, "traces (or inputs, or queries) per request, at most", ge=1
    )
    request_timeout_s: float = option(
        120.0, "seconds a request may wait for its scores (queue + forward pass); 504 beyond", gt=0
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.max_traces_per_request > self.max_queue:
            raise ConfigError(
                "a request may hold more traces than the queue",
                got={
                    "max_traces_per_request": self.max_traces_per_request,
                    "max_queue": self.max_queue,
                },
                expected="max_traces_per_request <= max_queue",
                fix="raise max_queue or lower max_traces_per_request",
            )

    def served_name(self) -> str:
        """``model_name``, or the checkpoint folder's name."""
        if self.model_name:
            return self.model_name
        return Path(self.prm).resolve().name if self.prm else "prm"
