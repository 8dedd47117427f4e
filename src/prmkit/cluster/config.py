"""The ``ray`` settings group of the distributed stages (``ray.address=auto``, ``--ray auto``)."""

from __future__ import annotations

from dataclasses import dataclass

from prmkit.config import check_ranges, option

__all__ = ["RayConfig"]


@dataclass
class RayConfig:
    """Where the workers run and how failures are retried (``address`` unset: one process).

    Example:
        >>> RayConfig().enabled, RayConfig(address="auto").enabled
        (False, True)
    """

    address: str | None = option(
        None,
        "Ray cluster: auto (RAY_ADDRESS or a cluster started on this machine with `ray start`, "
        "else a new local one), local (always a new local one), or an address such as "
        "ray://head:10001; unset: no Ray, one process",
    )
    workers: int = option(
        0,
        "worker actors (0: one per generator endpoint with backend=openai, else as many as the "
        "cluster's CPUs (GPUs when gpus_per_worker > 0) allow)",
        ge=0,
    )
    cpus_per_worker: float = option(1.0, "CPUs Ray reserves per worker", ge=0)
    gpus_per_worker: float = option(
        0.0, "GPUs Ray reserves per worker (set it, e.g. 1, for device=cuda)", ge=0
    )
    max_restarts: int = option(
        3, "times Ray restarts a worker process that died (-1: without limit)", ge=-1
    )
    max_task_retries: int = option(
        3,
        "times Ray reruns a call cut short by its worker's death (-1: without limit); a call "
        "whose worker is gone for good moves to another worker",
        ge=-1,
    )
    in_flight: int = option(2, "calls queued per worker, so none waits between calls", ge=1)
    start_timeout_s: float = option(
        600.0,
        "seconds to wait for every worker to load (a busy cluster queues them); past it the run "
        "stops with what the cluster has",
        gt=0,
    )

    def __post_init__(self) -> None:
        check_ranges(self)

    @property
    def enabled(self) -> bool:
        """Whether the stage runs on Ray."""
        return bool(self.address)
