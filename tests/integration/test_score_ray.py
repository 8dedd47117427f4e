"""``score --ray`` on a real local Ray cluster: a killed worker or a crashed run loses nothing.

A tiny random-weight tokcls PRM saved to disk is loaded by each of 2 CPU workers. Scores must equal
a one-process run's (1e-5: shards batch traces differently), whether a worker is SIGKILLed mid-run
(Ray restarts it and reruns its shard) or every worker is gone (the run stops; the finished shards
wait in ``<out>.parts`` and a rerun scores only the rest).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

pytest.importorskip("ray")

from prmkit.cluster import RayConfig
from prmkit.errors import ConfigError, PrmkitError
from prmkit.prm.checkpoint import save_prm
from prmkit.prm.spec import PRMSpec
from prmkit.records import Trace, write_records
from prmkit.score import ScoreConfig, score
from prmkit.score.distributed import PARTS_MARKER
from prmkit.score.run import score_with_report
from prmkit.train.loop import build_prm

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 48
SHARD = 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("score-ray")
    prm = build_prm(PRMSpec.from_format("trl", head="tokcls"), str(tiny_model_dir))
    ckpt = save_prm(prm, root / "prm")
    traces = [
        Trace(
            id=f"t{i}",
            problem_id=f"p{i}",
            prompt=f"What is {i} + 4?",
            steps=[f"{i} + {k} = {i + k}." for k in range(1 + i % 4)],
        )
        for i in range(N)
    ]
    write_records(root / "traces.jsonl", traces)
    ref = score(ScoreConfig(prm=str(ckpt), traces=str(root / "traces.jsonl"), dtype="float32"))
    return ckpt, root / "traces.jsonl", [r.step_scores for r in ref]


def _cfg(ckpt, traces, out, **ray) -> ScoreConfig:
    return ScoreConfig(
        prm=str(ckpt),
        traces=str(traces),
        out=str(out),
        dtype="float32",
        batch_size=2,
        shard_traces=SHARD,
        ray=RayConfig(address="auto", workers=2, **ray),
    )


def _parts(out: Path) -> int:
    folder = Path(f"{out}.parts")
    return len(list(folder.glob("part-*.jsonl"))) if folder.exists() else 0


def _close(a: list[list[float]], b: list[list[float]]) -> bool:
    return all(
        len(x) == len(y) and all(abs(u - v) < 1e-5 for u, v in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    ) and len(a) == len(b)


def _after_parts(out: Path, n: int, stop: threading.Event, action) -> None:
    while _parts(out) < n:
        if stop.wait(0.01):
            return
    action()


def _workers(ray) -> list:
    return [
        ray.get_actor(a["name"])
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("prmkit-score-")
    ]


def test_sigkilled_worker_gives_the_one_process_scores(tmp_path, setup, ray_cluster):
    ray = ray_cluster
    ckpt, traces, expected = setup
    out = tmp_path / "scored.jsonl"
    killed: dict = {}

    def kill() -> None:
        actor = _workers(ray)[0]
        killed["pid"] = ray.get(actor.ready.remote(), timeout=60)
        killed["at"] = _parts(out)
        os.kill(killed["pid"], signal.SIGKILL)

    stop = threading.Event()
    killer = threading.Thread(target=_after_parts, args=(out, 3, stop, kill))
    killer.start()
    try:
        scored, report = score_with_report(_cfg(ckpt, traces, out))
    finally:
        stop.set()
        killer.join()
    assert 0 < killed["at"] < N // SHARD, killed
    assert _close([r.step_scores for r in scored], expected)
    assert [r.id for r in scored] == [f"t{i}" for i in range(N)]
    assert report is not None and report.processes >= 3 and report.reused == 0
    assert out.exists() and not Path(f"{out}.parts").exists()  # parts removed once written


def test_a_run_that_lost_every_worker_resumes_from_its_parts(tmp_path, setup, ray_cluster):
    ray = ray_cluster
    ckpt, traces, expected = setup
    out = tmp_path / "scored.jsonl"

    def kill_all() -> None:
        for actor in _workers(ray):
            ray.kill(actor, no_restart=True)

    stop = threading.Event()
    killer = threading.Thread(target=_after_parts, args=(out, 4, stop, kill_all))
    killer.start()
    try:
        with pytest.raises(PrmkitError, match=r"every score worker is gone|pool was closed"):
            score_with_report(_cfg(ckpt, traces, out, max_restarts=0))
    finally:
        stop.set()
        killer.join()
    kept = _parts(out)
    assert kept >= 4 and not out.exists()
    scored, report = score_with_report(_cfg(ckpt, traces, out))
    assert report is not None and report.reused == kept
    assert _close([r.step_scores for r in scored], expected)
    assert not Path(f"{out}.parts").exists()


def test_an_unmarked_parts_folder_is_refused_and_kept(tmp_path, setup):
    ckpt, traces, _ = setup
    out = tmp_path / "scored.jsonl"
    folder = Path(f"{out}.parts")
    folder.mkdir()
    (folder / "mine.txt").write_text("user data")
    with pytest.raises(ConfigError, match="not made by prmkit"):
        score_with_report(_cfg(ckpt, traces, out))
    assert (folder / "mine.txt").read_text() == "user data"
    assert not (folder / PARTS_MARKER).exists()
