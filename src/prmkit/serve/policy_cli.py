"""``prmkit serve-policy --model smollm2|DIR [adapter=DIR] [key=value ...]``: calls
:func:`~prmkit.serve.policy_run.serve_policy`.

Serves the policy over OpenAI's API (``/v1/completions``, ``/v1/chat/completions``,
``/v1/models``, ``/health``, ``/metrics``) until SIGTERM or SIGINT, then exits 0.
"""

from __future__ import annotations

import argparse

from prmkit.config import add_config_arguments, stage_config
from prmkit.serve.policy_config import PolicyServeConfig
from prmkit.serve.policy_run import serve_policy

__all__ = ["PolicyServeConfig", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``key=value`` overrides and the flags ``--model --adapter --host --port``."""
    add_config_arguments(parser, PolicyServeConfig, ["model", "adapter", "host", "port"])


def run(args: argparse.Namespace) -> int:
    """Load the policy and serve it until stopped."""
    serve_policy(stage_config(PolicyServeConfig, args))
    return 0
