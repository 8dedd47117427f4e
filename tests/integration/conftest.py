"""Fixtures of the integration tier shared by several modules."""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_SCRIPT = Path(sys.executable).with_name("prmkit")  # the console script of this venv
PRMKIT = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "import sys; from prmkit.cli import main; sys.exit(main())"]
)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local 2-CPU Ray cluster for the session (``--ray auto`` connects to it)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@contextlib.contextmanager
def _serving(
    tmp_path: Path, stage: str, model: Path, *args: str, port: int = 0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``prmkit STAGE --prm|--model MODEL --port PORT ARGS`` as a child process.

    Yields ``(url, process)`` once the one listening line is read (its port checked); the
    process's stderr goes to a file (``process.stderr_path``). On exit: nothing more on stdout,
    then SIGTERM and a wait.
    """
    line = re.compile(
        rf"^prmkit {re.escape(stage)}: listening on (http://127\.0\.0\.1:(\d+)) \(model (\S+)\)$"
    )
    flag = "--prm" if stage == "serve" else "--model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PRMKIT_API_KEY": ""}
    stderr = (tmp_path / f"{stage}-{time.monotonic_ns()}.err").open("w")
    proc = subprocess.Popen(
        [*PRMKIT, stage, flag, str(model), "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        try:
            first = lines.get(timeout=180).rstrip("\n")
        except queue.Empty:
            pytest.fail(f"no listening line; stderr: {Path(stderr.name).read_text()[-2000:]}")
        match = line.match(first)
        assert match, first
        if port:
            assert int(match.group(2)) == port
        proc.stderr_path = stderr.name  # type: ignore[attr-defined]
        yield match.group(1), proc
        assert lines.empty(), "the server printed more than the listening line on stdout"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stderr.close()


@pytest.fixture
def serving(tmp_path):
    """``serving(stage, model, *key_values, port=0)``: ``prmkit serve`` or ``serve-policy`` as a
    real process on loopback (a context manager yielding ``(url, process)``)."""
    return functools.partial(_serving, tmp_path)
