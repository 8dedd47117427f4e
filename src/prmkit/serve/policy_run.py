"""``serve_policy(cfg)``: load a policy and serve it over OpenAI's API until SIGTERM or SIGINT.

On start it prints one line to stdout (flushed), so a parent process can find the port::

    prmkit serve-policy: listening on http://127.0.0.1:8000 (model smollm2)

SIGTERM or SIGINT stops accepting connections, lets in-flight requests finish (at most
``graceful_shutdown_s``) and returns; ``prmkit serve-policy`` then exits 0.

Example:
    >>> from prmkit.serve.policy_run import PolicyServeConfig, serve_policy
    >>> serve_policy(PolicyServeConfig(model="smollm2", port=0))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from prmkit.serve.policy_config import PolicyServeConfig
from prmkit.serve.run import _bind, run_app

__all__ = ["PolicyServeConfig", "load_generator", "serve_policy"]

COMMAND = "prmkit serve-policy"


def load_generator(cfg: PolicyServeConfig) -> Any:
    """The :class:`~prmkit.generate.transformers_backend.TransformersGenerator` of ``cfg``.

    Raises:
        ModelLoadError: the model or the adapter cannot be found.
    """
    from prmkit.generate.transformers_backend import TransformersGenerator

    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    return TransformersGenerator.from_pretrained(
        cfg.model, adapter=cfg.adapter, dtype=cfg.dtype, device=cfg.device
    )


def serve_policy(cfg: PolicyServeConfig, generator: Any = None) -> None:
    """Load ``cfg.model`` (and ``cfg.adapter``) and serve it (blocks until SIGTERM/SIGINT).

    Args:
        cfg: The settings.
        generator: A loaded ``TransformersGenerator`` to serve instead of ``cfg.model``.

    Raises:
        ModelLoadError: the model or the adapter cannot be loaded.
        OSError: the address cannot be bound (e.g. the port is taken).
    """
    sock = _bind(cfg.host, cfg.port)  # a taken port fails before the model loads
    try:
        from prmkit.serve.policy_app import create_policy_app

        gen = generator if generator is not None else load_generator(cfg)
        run_app(
            sock,
            create_policy_app(gen, cfg),
            command=COMMAND,
            host=cfg.host,
            api_key=cfg.resolved_api_key(),
            log_level=cfg.log_level,
            access_log=cfg.access_log,
            graceful_shutdown_s=cfg.graceful_shutdown_s,
        )
    finally:
        sock.close()
