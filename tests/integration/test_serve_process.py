"""``prmkit serve`` as a real subprocess: the listening line, HTTPScorer against in-process
scores, the client's retries (before the server is up; never on a 4xx), and a graceful SIGTERM.

The PRM is a tiny random tokcls model saved with :func:`prmkit.prm.checkpoint.save_prm`.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from prmkit.prm import PRMSpec
from prmkit.prm.checkpoint import load_prm, save_prm
from prmkit.records import Trace
from prmkit.score import PRMScorer
from prmkit.serve import HTTPScorer, ServeError
from prmkit.train.loop import build_prm

pytestmark = pytest.mark.integration

TRACES = [
    Trace(
        id=f"t{i}",
        problem_id=f"p{i}",
        prompt=f"What is {i} + 4?",
        steps=[f"Step {k + 1}: {i} + {k} = {i + k}." for k in range(1 + i % 3)],
    )
    for i in range(5)
]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_model_dir) -> Path:
    prm = build_prm(PRMSpec.from_format("trl", head="tokcls"), str(tiny_model_dir))
    return save_prm(prm, tmp_path_factory.mktemp("serve") / "prm")


@pytest.fixture(scope="module")
def expected(ckpt) -> list[list[float]]:
    return PRMScorer(load_prm(ckpt, dtype="float32")).score(TRACES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_scores_equal_in_process_and_4xx_is_not_retried(ckpt, expected, serving):
    with serving("serve", ckpt, "max_wait_ms=5", "max_steps=2") as (url, proc):
        assert httpx.get(url + "/health").json()["model"] == "prm"
        with HTTPScorer(url, batch_size=3) as client:  # 2 requests
            got = client.score(TRACES[:2] + TRACES[3:])  # at most 2 steps each
            assert client.attempts == 2
        for g, w in zip(got, expected[:2] + expected[3:], strict=True):
            assert g == pytest.approx(w, abs=1e-6)
        with HTTPScorer(url, retries=5, backoff=0.01) as client:
            with pytest.raises(ServeError) as info:
                client.score([TRACES[2]])  # 3 steps > max_steps: 413
            assert info.value.status == 413 and "max_steps" in str(info.value)
            assert client.attempts == 1
        metrics = httpx.get(url + "/metrics").text
        assert 'prmkit_requests_total{route="/v1/score",status="413"} 1.0' in metrics
    assert proc.returncode == 0


def test_client_started_before_the_server_retries_until_it_is_up(ckpt, expected, serving):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    client = HTTPScorer(url, retries=400, backoff=0.05, max_backoff=0.25)

    def call() -> None:
        try:
            result["scores"] = client.score(TRACES)
        except Exception as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.5)  # the client is already failing to connect
    assert client.attempts >= 2
    with serving("serve", ckpt, port=port):
        thread.join(120)
    client.close()
    assert "error" not in result, result.get("error")
    for g, w in zip(result["scores"], expected, strict=True):
        assert g == pytest.approx(w, abs=1e-6)


def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(ckpt, expected, serving):
    # a lone trace waits 2 s for a batch: SIGTERM arrives while it is in flight
    with serving("serve", ckpt, "max_wait_ms=2000") as (url, proc):
        answer: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: answer.update(
                r=httpx.post(
                    url + "/v1/score",
                    json={"prompt": TRACES[1].prompt, "steps": TRACES[1].steps},
                    timeout=60,
                )
            )
        )
        thread.start()
        deadline = time.monotonic() + 10
        while "prmkit_queue_traces 1.0" not in httpx.get(url + "/metrics").text:
            assert time.monotonic() < deadline, "the request never reached the queue"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        thread.join(60)
        response = answer["r"]
        assert response.status_code == 200, response.text
        assert response.json()["traces"][0]["step_scores"] == pytest.approx(expected[1], abs=1e-6)
        assert proc.wait(30) == 0
        log = Path(proc.stderr_path).read_text()
        assert "Traceback" not in log
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health")


def test_a_taken_port_fails_before_the_model_loads(ckpt, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "prmkit", "serve", "--prm", str(ckpt), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "prmkit serve: error:" in done.stderr and "Traceback" not in done.stderr
