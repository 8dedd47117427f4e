"""Annotation on Ray: rollouts drawn by worker actors, stored by the driver alone.

``prmkit annotate --ray auto`` keeps the labelers, the rollout engine and the store in the driver
and sends each generator call (a seeded, self-contained :class:`~prmkit.annotate.rollouts.DrawCall`)
to a :class:`RolloutWorker`: one per generator endpoint (``backend=openai``) or one model replica
each (``backend=transformers``). Workers sample and check answers; they never touch the store.

Exactly once, although Ray runs a call at least once: a call's seed is derived from its content,
so a rerun (after its worker was killed and restarted) returns the same rollouts, and the store's
key ``(namespace, state, idx)`` keeps one copy. The labels equal a one-process run's with the same
seed. Several chunks of traces (a problem's traces never split) are labelled at once, by threads
of the driver sharing one engine, so ``ray.in_flight`` calls wait at each worker.

Example:
    >>> cfg = AnnotateConfig(method="mc", k=8, ray=RayConfig(address="auto"))  # doctest: +SKIP
    >>> annotate(cfg, traces, problems).workers  # doctest: +SKIP
    WorkerReport(workers=2, calls=40, processes=2, moved=0)

:class:`~prmkit.cluster.pool.WorkerReport` is re-exported here (``AnnotateResult.workers``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prmkit.annotate.checkers import TaskAnswerChecker
from prmkit.annotate.config import AnnotateConfig
from prmkit.annotate.protocol import AnswerCheck
from prmkit.annotate.rollouts import DrawCall
from prmkit.annotate.store import Rollout
from prmkit.cluster.pool import Worker, WorkerPool, WorkerReport, ray_session, resolve_workers
from prmkit.generate.backends import Backend, make_generator
from prmkit.models import PolicyConfig
from prmkit.records import Problem
from prmkit.tasks.answers import VerifyStats

__all__ = [
    "PolicySpec",
    "RayDrawer",
    "RolloutWorker",
    "WorkerReport",
    "rollout_pool",
    "worker_specs",
]


@dataclass(frozen=True)
class PolicySpec:
    """What a worker loads: the policy and where it is served.

    Attributes:
        backend: ``transformers`` (a model replica in the worker) or ``openai`` (a server).
        policy: Model, adapter, dtype, device, threads.
        base_url: The server this worker calls (``backend=openai``).
        batch_size: Rows decoded together (``backend=transformers``).
        verify_timeout: Seconds per math-verify answer check.
    """

    backend: Backend
    policy: PolicyConfig
    base_url: str = ""
    batch_size: int = 64
    verify_timeout: int = 5


def worker_specs(
    backend: Backend,
    policy: PolicyConfig,
    base_urls: list[str],
    workers: int,
    *,
    batch_size: int,
    verify_timeout: int,
) -> list[PolicySpec]:
    """One spec per worker; with ``backend=openai`` the servers are dealt out in turn."""
    urls = base_urls if backend == "openai" else [""]
    return [
        PolicySpec(backend, policy, urls[i % len(urls)], batch_size, verify_timeout)
        for i in range(workers)
    ]


class RolloutWorker(Worker):
    """A Ray actor that draws rollouts: generator and answer checker, no store.

    Args:
        spec: The policy it loads (again, with the same spec, after a restart).
    """

    def __init__(self, spec: PolicySpec) -> None:
        self.generator = make_generator(
            spec.backend, spec.policy, base_url=spec.base_url, batch_size=spec.batch_size
        )
        self.checker = TaskAnswerChecker(timeout_s=spec.verify_timeout, lenient=True)

    def draw(self, call: DrawCall) -> tuple[int, tuple[list[Rollout], VerifyStats]]:
        """Run one call; ``(pid, (rows, this call's answer-check counts))``."""
        self.checker.stats = VerifyStats()
        rows = call.run(self.generator, self.checker)
        return os.getpid(), (rows, self.checker.stats)

    def check(self, problem: Problem, solution: str) -> tuple[int, tuple[AnswerCheck, VerifyStats]]:
        """Check one solution's final answer; ``(pid, (check, counts))``."""
        self.checker.stats = VerifyStats()
        return os.getpid(), (self.checker.check(problem, solution), self.checker.stats)


class RayDrawer:
    """The :class:`~prmkit.annotate.rollouts.Drawer` that sends calls to a :class:`WorkerPool`.

    Args:
        pool: Started :class:`RolloutWorker` actors.
        stats: Where the workers' answer-check counts are added (the driver checker's ``stats``).
    """

    def __init__(self, pool: WorkerPool, stats: VerifyStats) -> None:
        self.pool = pool
        self.stats = stats
        self._lock = threading.Lock()

    def draw(self, call: DrawCall) -> list[Rollout]:
        """Run the call on the least busy worker."""
        rows, stats = self.pool.call("draw", call)
        self._add(stats)
        return rows

    def check(self, problem: Problem, solution: str) -> AnswerCheck:
        """Check on a worker (its main thread, where math-verify's timeout works)."""
        check, stats = self.pool.call("check", problem, solution)
        self._add(stats)
        return check

    def _add(self, stats: VerifyStats) -> None:
        with self._lock:
            self.stats.add(stats)


@contextlib.contextmanager
def rollout_pool(cfg: AnnotateConfig) -> Iterator[WorkerPool]:
    """Connected to ``cfg.ray.address``, :class:`RolloutWorker` actors started and loaded.

    Workers: ``ray.workers``, else one per ``base_url`` root (``backend=openai``), else as many
    as the cluster's CPUs (GPUs) hold.
    """
    with ray_session(str(cfg.ray.address)) as local:
        if local and cfg.backend == "transformers":  # fail here, before workers print stacks
            from prmkit.models.loading import resolve_model_path

            resolve_model_path(cfg.policy.model)
        endpoints = len(cfg.base_urls) if cfg.backend == "openai" else 0
        specs = worker_specs(
            cfg.backend,
            cfg.policy,
            cfg.base_urls,
            resolve_workers(cfg.ray, endpoints),
            batch_size=cfg.gen_batch_size,
            verify_timeout=cfg.verify_timeout,
        )
        with WorkerPool(RolloutWorker, [(s,) for s in specs], cfg=cfg.ray, name="rollout") as pool:
            yield pool
