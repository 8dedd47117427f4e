"""``serve(cfg)``: load a PRM checkpoint and serve it over HTTP until SIGTERM or SIGINT.

On start it prints one line to stdout (flushed), so a parent process can find the port::

    prmkit serve: listening on http://127.0.0.1:8000 (model prm)

SIGTERM or SIGINT stops accepting connections, lets in-flight requests finish (at most
``graceful_shutdown_s``), stops the batcher and returns; ``prmkit serve`` then exits 0.

Example:
    >>> from prmkit.serve import ServeConfig, serve
    >>> serve(ServeConfig(prm="runs/prm", port=0))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import threading
from typing import Any

from prmkit.errors import ConfigError
from prmkit.serve.config import ServeConfig
from prmkit.serve.errors import ServeError

__all__ = ["listening_line", "load_scorer", "run_app", "serve"]


def load_scorer(cfg: ServeConfig) -> Any:
    """The :class:`~prmkit.score.PRMScorer` of ``cfg.prm`` (with ``cfg.spec`` when given).

    Raises:
        ConfigError: no ``prm``; a bad spec file.
        ModelLoadError: the checkpoint cannot be loaded.
    """
    from prmkit.io import read_json
    from prmkit.prm.spec import PRMSpec
    from prmkit.score.distributed import ScorerSpec

    if not cfg.prm:
        raise ConfigError("missing 'prm'", got="", expected="a path", fix="pass --prm CKPT")
    spec = read_json(cfg.spec) if cfg.spec else None
    if cfg.spec:
        PRMSpec.from_dict(spec, where=cfg.spec)  # a bad spec file fails naming the file
    return ScorerSpec(
        prm=cfg.prm,
        spec=spec,
        device=cfg.device,
        dtype=cfg.dtype,
        attn_implementation=cfg.attn_implementation,
        trust_remote_code=cfg.trust_remote_code,
        batch_size=cfg.max_batch_traces,
        max_batch_tokens=cfg.max_batch_tokens,
        packing=cfg.packing,
    ).load()


def listening_line(host: str, port: int, name: str, command: str = "prmkit serve") -> str:
    """``prmkit serve: listening on http://HOST:PORT (model NAME)`` (``command`` first)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{command}: listening on http://{shown}:{port} (model {name})"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


def serve(cfg: ServeConfig, scorer: Any = None) -> None:
    """Load ``cfg.prm`` and serve it (blocks until SIGTERM/SIGINT, then returns).

    Args:
        cfg: The settings.
        scorer: A loaded :class:`~prmkit.score.PRMScorer` to serve instead of ``cfg.prm``.

    Raises:
        ConfigError: no ``prm`` (and no ``scorer``).
        ModelLoadError: the checkpoint cannot be loaded.
        OSError: the address cannot be bound (e.g. the port is taken).
    """
    if scorer is None and not cfg.prm:
        raise ConfigError("missing 'prm'", got="", expected="a path", fix="pass --prm CKPT")
    sock = _bind(cfg.host, cfg.port)  # a taken port fails before the model loads
    try:
        _serve_on(sock, cfg, scorer if scorer is not None else load_scorer(cfg))
    finally:
        sock.close()


def _serve_on(sock: socket.socket, cfg: ServeConfig, scorer: Any) -> None:
    from prmkit.serve.app import create_app

    run_app(
        sock,
        create_app(scorer, cfg),
        command="prmkit serve",
        host=cfg.host,
        api_key=cfg.resolved_api_key(),
        log_level=cfg.log_level,
        access_log=cfg.access_log,
        graceful_shutdown_s=cfg.graceful_shutdown_s,
    )


def run_app(
    sock: socket.socket,
    app: Any,
    *,
    command: str,
    host: str,
    api_key: str | None,
    log_level: str,
    access_log: bool,
    graceful_shutdown_s: float,
) -> None:
    """Serve ``app`` (whose ``state.served_name`` names the model) on the bound ``sock`` with
    uvicorn: print the listening line once started, stop gracefully on SIGTERM/SIGINT."""
    import uvicorn

    if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"{command}: warning: listening on {host} without an API key; anyone who "
            "can reach this port can use the model (set api_key or $PRMKIT_API_KEY)",
            file=sys.stderr,
        )
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=access_log,
            timeout_graceful_shutdown=graceful_shutdown_s,
            lifespan="on",
        )
    )
    line = listening_line(host, port, app.state.served_name, command)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            print(line, flush=True)
        await task
        if not server.started:
            raise ServeError(
                "the server did not start",
                url=f"{host}:{port}",
                fix="read the log above (stderr)",
            )

    # uvicorn re-raises the signal that stopped it once it has shut down; with these handlers
    # in place that re-raise is a no-op, so a graceful stop returns (and the CLI exits 0).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
        if main_thread
        else {}
    )
    try:
        asyncio.run(main())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
