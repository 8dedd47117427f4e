"""Scale-out on Ray: the settings every distributed stage shares and one pool of Ray actors.

``prmkit annotate --ray ADDRESS`` and ``prmkit score --ray ADDRESS`` run their model work in Ray
actors (:class:`WorkerPool`) while the driver keeps the one copy of the results: the rollout store
for annotation, the output parts for scoring. Ray is an optional extra (``pip install
'prmkit[ray]'``); nothing here imports it until a pool starts.
"""

from prmkit.cluster.config import RayConfig
from prmkit.cluster.pool import WorkerPool, WorkerReport, connect, ray_session, resolve_workers

__all__ = [
    "RayConfig",
    "WorkerPool",
    "WorkerReport",
    "connect",
    "ray_session",
    "resolve_workers",
]
