"""``annotate --ray`` on a real local Ray cluster (2 CPU workers): kill a worker, lose nothing.

A tiny random-weight policy saved to disk is loaded by each worker. While the run draws rollouts,
the test kills one worker, with SIGKILL on its process or with ``ray.kill(no_restart=False)``; Ray
restarts it and reruns the cut-short call. The run must complete with exactly the rollouts (every
text, answer and seed) and the labels of a one-process run with the same seed, and more worker
processes than workers must have served calls (the restart happened).
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

ray = pytest.importorskip("ray")

from prmkit.annotate import AnnotateConfig, annotate  # noqa: E402
from prmkit.cluster import RayConfig  # noqa: E402
from prmkit.errors import ConfigError, PrmkitError  # noqa: E402
from prmkit.generate.protocol import SamplingParams  # noqa: E402
from prmkit.models import PolicyConfig  # noqa: E402
from prmkit.records import Trace  # noqa: E402
from prmkit.serve.policy_app import create_policy_app  # noqa: E402
from prmkit.serve.policy_config import PolicyServeConfig  # noqa: E402
from prmkit.serve.policy_run import load_generator  # noqa: E402
from prmkit.serve.process import serve_in_thread  # noqa: E402
from prmkit.tasks.arithmetic import gold_solution, make_problem  # noqa: E402
from prmkit.testing import store_count, store_rows  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_TRACES = 8
N_STEPS = 4  # 3 operations + the answer line: 3 inner prefixes per trace
K = 2


def _data():
    problems = [make_problem(17, i, n_steps=N_STEPS - 1) for i in range(N_TRACES)]
    traces = [
        Trace(id=f"t{i}", problem_id=p.id, prompt=p.prompt, steps=gold_solution(p), answer=p.answer)
        for i, p in enumerate(problems)
    ]
    return problems, traces


def _cfg(
    model_dir, store, method: str = "mc", ray_address: str | None = None, workers: int = 2, **kw
) -> AnnotateConfig:
    return AnnotateConfig(
        **kw,
        method=method,
        k=K,
        label="soft",
        store=str(store),
        policy=PolicyConfig(model=str(model_dir), threads=1),
        sampling=SamplingParams(max_new_tokens=12, seed=3),
        max_prefixes_per_call=1,
        batch_traces=2,
        no_progress=True,
        ray=RayConfig(address=ray_address, workers=workers, max_restarts=2, max_task_retries=2),
    )


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny_model_dir):
    """The one-process reference runs: ``{method: (result, store path)}``."""
    problems, traces = _data()
    out = {}
    for method in ("mc",):
        store = tmp_path_factory.mktemp("one") / f"{method}.sqlite"
        out[method] = (annotate(_cfg(tiny_model_dir, store, method), traces, problems), store)
    return out


def _wait_for(store, n: int, stop: threading.Event) -> bool:
    """Until ``n`` rollouts are stored; False if the run ended first."""
    while store_count(store) < n:
        if stop.wait(0.02):
            return False
    return True


def _kill_mid_run(store, how: str, killed: dict, stop: threading.Event) -> None:
    """Once some calls are stored (and many are left), kill one worker."""
    if not _wait_for(store, 6, stop):
        return
    names = sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("prmkit-rollout-")
    )
    actor = ray.get_actor(names[0])
    killed["at"] = store_count(store)
    if how == "sigkill":
        pid = ray.get(actor.ready.remote(), timeout=60)
        killed["pid"] = pid
        os.kill(pid, signal.SIGKILL)
    else:
        ray.kill(actor, no_restart=False)
        killed["pid"] = None


@pytest.mark.parametrize("how", ["sigkill", "ray.kill"])
def test_killed_worker_loses_and_duplicates_nothing(
    tmp_path, tiny_model_dir, ray_cluster, one_process, how
):
    problems, traces = _data()
    one, one_store = one_process["mc"]
    total = N_TRACES * (N_STEPS - 1) * K
    assert one.drawn.rollouts == total

    store = tmp_path / "ray.sqlite"
    killed: dict = {}
    stop = threading.Event()
    killer = threading.Thread(target=_kill_mid_run, args=(store, how, killed, stop))
    killer.start()
    try:
        result = annotate(_cfg(tiny_model_dir, store, ray_address="auto"), traces, problems)
    finally:
        stop.set()
        killer.join()

    assert 0 < killed["at"] < total, killed  # the kill fell mid-run
    assert store_rows(store) == store_rows(one_store)  # none lost, none twice, the same samples
    assert [r.labels for r in result.records] == [r.labels for r in one.records]
    assert result.drawn.rollouts == total
    report = result.workers
    assert report is not None and report.workers == 2
    assert report.processes >= 3, report  # the killed worker came back as a new process
    if killed["pid"] is not None:
        assert killed["pid"] in report.pids


def test_every_worker_gone_stops_with_the_work_kept(
    tmp_path, tiny_model_dir, ray_cluster, one_process
):
    problems, traces = _data()
    cfg = _cfg(tiny_model_dir, tmp_path / "ray.sqlite", ray_address="auto")
    cfg.ray.max_restarts = 0

    stop = threading.Event()

    def kill_all() -> None:
        if not _wait_for(tmp_path / "ray.sqlite", 4, stop):
            return
        for a in ray.util.list_named_actors(all_namespaces=True):
            if a["name"].startswith("prmkit-rollout-"):
                ray.kill(ray.get_actor(a["name"]), no_restart=True)

    killer = threading.Thread(target=kill_all)
    killer.start()
    try:
        with pytest.raises(PrmkitError, match=r"every rollout worker is gone|pool was closed"):
            annotate(cfg, traces, problems)
    finally:
        stop.set()
        killer.join()
    kept = store_count(tmp_path / "ray.sqlite")
    assert kept >= 4
    # a rerun resumes from the kept rollouts and ends like a one-process run
    again = annotate(_cfg(tiny_model_dir, tmp_path / "ray.sqlite"), traces, problems)
    one, one_store = one_process["mc"]
    assert again.drawn.rollouts == N_TRACES * (N_STEPS - 1) * K - kept
    assert [r.labels for r in again.records] == [r.labels for r in one.records]
    assert store_rows(tmp_path / "ray.sqlite") == store_rows(one_store)


def test_one_worker_per_policy_server(tmp_path, tiny_model_dir, ray_cluster):
    """backend=openai with two real ``prmkit serve-policy`` servers (HTTP on loopback, served
    from threads of this process): a worker each, and the rollouts of a one-process run
    against one server."""
    problems, traces = _data()
    cfg = PolicyServeConfig(model=str(tiny_model_dir), model_name=str(tiny_model_dir))
    with (
        serve_in_thread(create_policy_app(load_generator(cfg), cfg)) as one_url,
        serve_in_thread(create_policy_app(load_generator(cfg), cfg)) as two_url,
    ):
        served = {"backend": "openai", "gen_batch_size": 64}
        one = annotate(
            _cfg(tiny_model_dir, tmp_path / "one.sqlite", base_url=f"{one_url}/v1", **served),
            traces,
            problems,
        )
        both = f"{one_url}/v1,{two_url}/v1"
        two = annotate(
            _cfg(tiny_model_dir, tmp_path / "ray.sqlite", "mc", "auto", 0, base_url=both, **served),
            traces,
            problems,
        )
    assert two.workers is not None and two.workers.workers == 2  # one per server
    assert two.drawn.rollouts == N_TRACES * (N_STEPS - 1) * K
    assert store_rows(tmp_path / "ray.sqlite") == store_rows(tmp_path / "one.sqlite")
    assert [r.labels for r in two.records] == [r.labels for r in one.records]


def test_a_worker_no_node_can_hold_is_refused_at_once(tmp_path, tiny_model_dir, ray_cluster):
    problems, traces = _data()
    cfg = _cfg(tiny_model_dir, tmp_path / "ray.sqlite", ray_address="auto")
    cfg.ray.gpus_per_worker = 1  # the test cluster has no GPU
    with pytest.raises(ConfigError, match="more GPUs than the whole cluster has"):
        annotate(cfg, traces, problems)
