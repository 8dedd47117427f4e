"""Run a PRM server on loopback for demos, benchmarks and tests: ``prmkit serve`` as a child
process (:func:`serve_process`), or an app in a background thread of this process
(:func:`serve_in_thread`, no start-up cost).

Example:
    >>> with serve_process("runs/prm") as (url, proc):  # doctest: +SKIP
    ...     HTTPScorer(url).score(traces)
    >>> with serve_in_thread(create_app(PRMScorer(prm))) as url:  # doctest: +SKIP
    ...     HTTPScorer(url).score(traces)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from prmkit.serve.errors import ServeError

__all__ = ["serve_in_thread", "serve_process"]


@contextlib.contextmanager
def serve_process(
    prm: str,
    keys: Sequence[str] = (),
    *,
    stage: Literal["serve", "serve-policy"] = "serve",
    threads: int | None = None,
    stderr: Path | None = None,
    start_timeout: float = 180.0,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``prmkit serve --prm PRM port=0 KEYS...`` on 127.0.0.1; yields ``(base URL, process)``.

    ``stage="serve-policy"`` runs ``prmkit serve-policy --model PRM ...`` instead (a policy
    server; its OpenAI API root is ``URL/v1``).

    The server's stdout listening line gives the port. On exit the server gets SIGTERM (it
    finishes in-flight requests) and is waited for.

    Args:
        prm: The checkpoint to serve (``serve-policy``: the policy model).
        keys: More ``key=value`` settings (:class:`~prmkit.serve.ServeConfig`).
        threads: torch threads of the server (``OMP_NUM_THREADS``); ``None``: inherited.
        stderr: Where the server's log goes (default: discarded).
        start_timeout: Seconds to wait for the listening line.

    Raises:
        ServeError: the server exited or did not listen within ``start_timeout``.
    """
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    flag = "--prm" if stage == "serve" else "--model"
    cmd = [sys.executable, "-m", "prmkit", stage, flag, prm, "port=0", *keys]
    log = stderr.open("w") if stderr is not None else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + start_timeout
        url = None
        while url is None:
            line = proc.stdout.readline()
            if "listening on" in line:
                url = line.split("listening on", 1)[1].split()[0]
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise ServeError(
                    "the server did not start",
                    url=prm,
                    fix=f"run the command yourself to see why: {' '.join(cmd)}",
                )
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if stderr is not None:
            log.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def serve_in_thread(app: Any, *, start_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` (:func:`~prmkit.serve.create_app`) with uvicorn in a background thread
    on 127.0.0.1 and a free port; yields the base URL, stops the server on exit.

    Raises:
        ServeError: the server did not start within ``start_timeout``.
    """
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ServeError("the server did not start", fix="read the log above (stderr)")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(start_timeout)
        sock.close()
