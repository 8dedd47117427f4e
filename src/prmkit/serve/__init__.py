"""Serving a PRM over HTTP, and the clients that use such a server (or vLLM) as a Scorer.

:func:`serve` is the stage (``prmkit serve --prm CKPT``): it loads the checkpoint and runs
:func:`create_app` under uvicorn. Routes: prmkit's ``POST /v1/score``, vLLM's ``POST /pooling``,
OpenRLHF's ``POST /get_reward``, ``GET /health``, ``GET /metrics``, ``GET /v1/models`` and the
OpenAPI schema. Requests from many clients are batched into one forward pass
(:mod:`prmkit.serve.batcher`).

Clients (:mod:`prmkit.serve.client`): :class:`HTTPScorer` (a :class:`~prmkit.score.Scorer` over
a prmkit server, also an ``IncrementalScorer`` for search), :class:`AsyncHTTPScorer`
(``await ascore(traces)``) and :class:`VLLMPoolingScorer` (a vLLM PRM server as a Scorer).

The server needs the ``serve`` extra (fastapi, uvicorn, httpx, prometheus-client); importing
this package does not import them, the names below load them on first use.

Example:
    >>> from prmkit.serve import ServeConfig, serve
    >>> serve(ServeConfig(prm="runs/prm", port=8000))  # doctest: +SKIP

    From another process:

    >>> from prmkit.serve import HTTPScorer
    >>> HTTPScorer("http://127.0.0.1:8000").score([trace])  # doctest: +SKIP
    [[0.93, 0.12]]
"""

from __future__ import annotations

from typing import Any

from prmkit._stages import callable_stage
from prmkit.serve.config import ServeConfig
from prmkit.serve.errors import ServeError
from prmkit.serve.process import serve_in_thread, serve_process
from prmkit.serve.run import serve

__all__ = [
    "AsyncHTTPScorer",
    "HTTPScorer",
    "ServeConfig",
    "ServeError",
    "VLLMPoolingScorer",
    "create_app",
    "serve",
    "serve_in_thread",
    "serve_process",
]

_LAZY = {
    "create_app": "prmkit.serve.app",
    "HTTPScorer": "prmkit.serve.client",
    "AsyncHTTPScorer": "prmkit.serve.client",
    "VLLMPoolingScorer": "prmkit.serve.client",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prmkit.serve' has no attribute {name!r}")


callable_stage(__name__, "serve")
