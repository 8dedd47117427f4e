"""``prmkit serve --prm CKPT [--host H] [--port P] [key=value ...]``: calls :func:`serve`.

Serves the PRM over HTTP (``/v1/score``, vLLM's ``/pooling``, OpenRLHF's ``/get_reward``,
``/health``, ``/metrics``) until SIGTERM or SIGINT, then exits 0.
"""

from __future__ import annotations

import argparse

from prmkit.config import add_config_arguments, stage_config
from prmkit.serve.config import ServeConfig
from prmkit.serve.run import serve

__all__ = ["ServeConfig", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``key=value`` overrides and the flags ``--prm --host --port``."""
    add_config_arguments(parser, ServeConfig, ["prm", "host", "port"])


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint and serve it until stopped."""
    serve(stage_config(ServeConfig, args))
    return 0
