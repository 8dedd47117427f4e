"""A pool of Ray actors that many driver threads call, surviving worker deaths.

Each worker is a Ray actor created with ``max_restarts`` and ``max_task_retries``: when its process
dies (``kill -9``, out of memory, a lost node), Ray starts it again, rebuilds its model from the
same constructor arguments and reruns the calls that were cut short. A worker that is gone for
good (restarts used up, ``ray.kill(no_restart=True)``) is dropped and its call moves to another
worker. Ray runs a call at least once, so callers must make repeated calls harmless: annotation's
calls are seeded and their rollouts keyed, so a rerun call returns the same rollouts and the store
keeps one copy.

Example:
    >>> with ray_session("local"), WorkerPool(MyWorker, [(spec,), (spec,)], cfg=cfg) as pool:
    ...     pool.call("work", item)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prmkit.cluster.config import RayConfig
from prmkit.errors import ConfigError, PrmkitError

__all__ = [
    "Worker",
    "WorkerPool",
    "WorkerReport",
    "connect",
    "import_ray",
    "ray_session",
    "resolve_workers",
]

T = TypeVar("T")
R = TypeVar("R")

RETRY_UNAVAILABLE_S = 1.0
"""Wait before calling a worker again that Ray reports as restarting."""


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`ConfigError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "Ray is not installed",
            got="ray.address is set (--ray)",
            expected="the ray package (prmkit's optional extra)",
            fix="pip install 'prmkit[ray]', or drop --ray to run in one process",
        ) from None
    return ray


def connect(address: str) -> bool:
    """Connect this process to a Ray cluster; return whether it started a new local one.

    ``auto``: ``RAY_ADDRESS`` or a cluster started on this machine with ``ray start``, else a new
    local cluster. ``local``: a new local cluster. Anything else: that cluster's address.
    A process already connected keeps its connection.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": "WARNING"}
    if address == "auto":
        try:
            ray.init(address="auto", **quiet)
            return False
        except ConnectionError:
            pass
        address = "local"
    if address == "local":
        ray.init(address="local", include_dashboard=False, **quiet)
        return True
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(
            "cannot connect to the Ray cluster",
            got=f"ray.address={address}: {exc}",
            expected="a running cluster's address (ray://HEAD:10001 or HEAD:6379), auto or local",
            fix="start the cluster with `ray start --head`, or use --ray local",
        ) from None
    return False


@contextlib.contextmanager
def ray_session(address: str) -> Iterator[bool]:
    """Connected to ``address`` inside the block (see :func:`connect`); a local cluster started
    here is shut down at the end. Yields whether the workers share this machine's files (a
    local cluster), so paths can be checked here before workers load them."""
    started = connect(address)
    ray = import_ray()
    try:
        yield started or address == "local" or len(ray.nodes()) == 1
    finally:
        if started and ray.is_initialized():
            ray.shutdown()


def resolve_workers(cfg: RayConfig, endpoints: int = 0) -> int:
    """How many workers to start: ``cfg.workers``, else one per endpoint, else what the
    connected cluster's CPUs (GPUs when ``gpus_per_worker`` > 0) hold."""
    if cfg.workers:
        return cfg.workers
    if endpoints:
        return endpoints
    resources = import_ray().cluster_resources()
    if cfg.gpus_per_worker > 0:
        return int(resources.get("GPU", 0) // cfg.gpus_per_worker)
    if cfg.cpus_per_worker > 0:
        return int(resources.get("CPU", 0) // cfg.cpus_per_worker)
    return 1


class Worker:
    """Base of a pool's actor classes: ``ready`` answers once the constructor has run."""

    def ready(self) -> int:
        """The worker's process id (the constructor, e.g. a model load, has finished)."""
        return os.getpid()


@dataclass
class WorkerReport:
    """Who did the work of a pool.

    Attributes:
        workers: Workers started.
        calls: Calls they served.
        processes: Distinct worker processes that served calls (more than ``workers`` when Ray
            restarted one).
        moved: Calls moved to another worker after theirs was gone for good.
        pids: Calls served per process id.
    """

    workers: int
    calls: int
    processes: int
    moved: int
    pids: dict[int, int] = field(default_factory=dict, repr=False)

    def line(self) -> str:
        """One line for a command's output."""
        restarts = max(0, self.processes - self.workers)
        return (
            f"{self.workers} workers served {self.calls} calls from {self.processes} "
            f"processes ({restarts} restarted), {self.moved} calls moved to another worker"
        )


class WorkerPool:
    """Ray actors of ``cls``, one per entry of ``args``, called from any number of threads.

    The process must be connected to Ray (:func:`ray_session`).

    Args:
        cls: A :class:`Worker` subclass (a plain class; the pool makes it a Ray actor). Its
            methods return ``(os.getpid(), result)``.
        args: Each worker's constructor arguments (picklable; a restarted worker gets them
            again).
        cfg: Resources per worker and retry settings.
        name: A name for errors and actor names (``prmkit-<name>-<run>-<i>``).
    """

    def __init__(
        self,
        cls: type[Worker],
        args: Sequence[tuple[Any, ...]],
        *,
        cfg: RayConfig,
        name: str = "worker",
    ) -> None:
        if not cfg.enabled:
            raise ConfigError(
                "the worker pool needs a Ray address",
                got="ray.address unset",
                expected="ray.address=auto, local or a cluster address",
                fix="pass --ray auto",
            )
        self.cls = cls
        self.args = list(args)
        self.workers = len(self.args)
        self.cfg = cfg
        self.name = name
        self.run_id = uuid.uuid4().hex[:8]
        self._ray: Any = None
        self._actors: list[Any] = []
        self._alive: list[int] = []
        self._load: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.pids: Counter[int] = Counter()
        """Calls served, by worker process id (a restarted worker has a new one)."""
        self.moved = 0
        """Calls moved to another worker after theirs was gone for good."""
        self.closed = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Create the actors and wait until every one has loaded."""
        ray = self._ray = import_ray()
        if self.workers < 1:
            raise ConfigError(
                "no Ray workers to start",
                got=self.workers,
                expected="at least 1 worker",
                fix="set ray.workers=N, or give the cluster resources (ray.cpus_per_worker)",
            )
        self._check_resources(ray)
        remote = ray.remote(self.cls)
        self._actors = [
            remote.options(
                name=name,
                num_cpus=self.cfg.cpus_per_worker,
                num_gpus=self.cfg.gpus_per_worker,
                max_restarts=self.cfg.max_restarts,
                max_task_retries=self.cfg.max_task_retries,
            ).remote(*args)
            for name, args in zip(self.actor_names(), self.args, strict=True)
        ]
        self._alive = list(range(self.workers))
        try:
            ray.get([a.ready.remote() for a in self._actors], timeout=self.cfg.start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise PrmkitError(
                f"the {self.name} workers did not all start within {self.cfg.start_timeout_s} s",
                got=f"{self.workers} workers of {self._need()}; the cluster has {self._have(ray)}",
                expected="room for every worker (or a cluster that autoscales to it)",
                fix="start fewer workers (ray.workers), ask less per worker, add nodes, or "
                "raise ray.start_timeout_s",
            ) from None
        except ray.exceptions.RayError as exc:
            self.close()
            raise self._error(exc, "a Ray worker failed to start") from None

    def _need(self) -> str:
        return f"{self.cfg.cpus_per_worker:g} CPU, {self.cfg.gpus_per_worker:g} GPU each"

    @staticmethod
    def _have(ray: Any) -> str:
        total = ray.cluster_resources()
        return f"{total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU"

    def _check_resources(self, ray: Any) -> None:
        """Refuse a worker no node of the cluster could ever hold (it would wait forever)."""
        total = ray.cluster_resources()
        for key, want in (("CPU", self.cfg.cpus_per_worker), ("GPU", self.cfg.gpus_per_worker)):
            if want > total.get(key, 0):
                raise ConfigError(
                    f"one {self.name} worker asks for more {key}s than the whole cluster has",
                    got=f"{want:g} {key} per worker; the cluster has {self._have(ray)}",
                    expected=f"ray.{key.lower()}s_per_worker <= {total.get(key, 0):g}",
                    fix=f"lower ray.{key.lower()}s_per_worker, or join nodes with {key}s",
                )

    def close(self) -> None:
        """Stop the actors."""
        self.closed.set()
        ray = self._ray
        if ray is None:
            return
        for actor in self._actors:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor, no_restart=True)
        self._actors = []
        self._ray = None

    # -- calls ---------------------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """Calls worth keeping in flight: ``in_flight`` per live worker."""
        return max(1, len(self._alive)) * self.cfg.in_flight

    def report(self) -> WorkerReport:
        """Who served the calls so far."""
        pids = dict(self.pids)
        return WorkerReport(self.workers, sum(pids.values()), len(pids), self.moved, pids)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]`` on :attr:`concurrency` threads of this process
        (``fn`` makes the pool calls), results in order.

        On the first error the pool closes, so the other threads stop at their next call, and
        the error is raised; what they finished before is theirs to have kept.
        """
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"prmkit-{self.name}") as ex:
            futures = [ex.submit(fn, item) for item in items]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f.exception() for f in done if f.exception() is not None]
            if failed:
                for f in futures:
                    f.cancel()
                self.closed.set()
                raise failed[0]  # type: ignore[misc]
            return [f.result() for f in futures]

    def actor_names(self) -> list[str]:
        """The Ray names of this pool's actors (``ray.get_actor(name)`` finds one)."""
        return [f"prmkit-{self.name}-{self.run_id}-{i}" for i in range(self.workers)]

    def call(self, method: str, *args: Any) -> Any:
        """Run ``method(*args)`` on the least busy live worker and return its result.

        The worker method returns ``(pid, result)``; the pool counts the pid and returns the
        result. A worker's exception is raised here (a prmkit error as itself).

        Raises:
            PrmkitError: every worker is gone, or the pool was closed.
        """
        ray = self._ray
        last: Exception | None = None
        while True:
            if self.closed.is_set() or ray is None:
                raise PrmkitError(
                    f"the {self.name} pool was closed while a call was pending",
                    got=method,
                    expected="an open pool",
                    fix="a sibling call failed first; see that error",
                )
            with self._lock:
                if not self._alive:
                    raise self._error(last, f"every {self.name} worker is gone")
                index = min(self._alive, key=lambda i: self._load[i])
                self._load[index] += 1
            try:
                pid, result = ray.get(getattr(self._actors[index], method).remote(*args))
            except ray.exceptions.ActorUnavailableError as exc:  # restarting: try again
                last = exc
                time.sleep(RETRY_UNAVAILABLE_S)
                continue
            except ray.exceptions.RayActorError as exc:  # gone for good: move the call
                last = exc
                with self._lock:
                    if index in self._alive:
                        self._alive.remove(index)
                    self.moved += 1
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, PrmkitError):
                    raise cause from None
                raise self._error(exc, f"a {self.name} worker's call failed") from None
            finally:
                with self._lock:
                    self._load[index] -= 1
            with self._lock:
                self.pids[pid] += 1
            return result

    def _error(self, exc: BaseException | None, message: str) -> PrmkitError:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, PrmkitError):
            return cause
        text = str(cause if cause is not None else exc).strip().splitlines()
        return PrmkitError(
            message,
            got=text[-1] if text else repr(exc),
            expected=f"{self.workers} live {self.name} workers (each restarted up to "
            f"{self.cfg.max_restarts} times)",
            fix="fix the cause above (the worker's log is in the Ray session folder, "
            "/tmp/ray/session_latest/logs), then run the same command again: finished work is "
            "kept and not redone",
        )
