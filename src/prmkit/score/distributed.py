"""Scoring on Ray: shards of traces scored by PRM replicas, kept as parts until the output is whole.

``prmkit score --ray auto`` splits the traces into shards of ``shard_traces`` (input order), sends
each to a :class:`ScoreWorker` (one PRM replica per worker) and writes the output once, in input
order. Scoring is a pure function of a trace, so a call Ray reruns after a worker's death gives
the same scores.

Resume: with ``out`` set, each finished shard is written atomically to ``<out>.parts/`` under a
name that hashes the job (PRM, spec, settings) and the shard's traces. A run started again after
a crash reads the finished parts instead of scoring them again. The folder is marked as prmkit's
(:data:`PARTS_MARKER`); prmkit refuses to use an unmarked one and deletes only its own part files
(and the folder, once empty) after the output is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prmkit.cluster.pool import Worker, WorkerPool, WorkerReport, ray_session, resolve_workers
from prmkit.errors import ConfigError
from prmkit.io import atomic_write
from prmkit.records import ScoredTrace, Trace, read_records, write_records

if TYPE_CHECKING:
    from prmkit.score.scorer import PRMScorer

__all__ = ["PARTS_MARKER", "ScoreWorker", "ScorerSpec", "score_on_ray"]

PARTS_MARKER = ".prmkit-score-parts"
"""The file that marks a ``<out>.parts`` folder as prmkit's."""


@dataclass(frozen=True)
class ScorerSpec:
    """What a scorer loads (the arguments of :meth:`PRMScorer.from_checkpoint`; a dict spec so
    that it pickles to Ray workers)."""

    prm: str
    spec: dict[str, Any] | None
    device: str
    dtype: str
    attn_implementation: str
    trust_remote_code: bool
    batch_size: int
    max_batch_tokens: int | None
    packing: bool | str

    def load(self) -> PRMScorer:
        """The scorer (loads the checkpoint)."""
        from prmkit.prm.spec import PRMSpec
        from prmkit.score.scorer import PRMScorer

        return PRMScorer.from_checkpoint(
            self.prm,
            spec=PRMSpec.from_dict(self.spec, where="score spec") if self.spec else None,
            device=self.device,
            dtype=self.dtype,
            trust_remote_code=self.trust_remote_code,
            attn_implementation=self.attn_implementation,
            batch_size=self.batch_size,
            max_batch_tokens=self.max_batch_tokens,
            packing=self.packing,
        )


class ScoreWorker(Worker):
    """A Ray actor holding one PRM replica."""

    def __init__(self, spec: ScorerSpec) -> None:
        self.scorer = spec.load()

    def score(self, traces: list[Trace], prm_name: str) -> tuple[int, list[ScoredTrace]]:
        """``(pid, scored records)`` of one shard."""
        return os.getpid(), self.scorer.score_records(traces, prm_name=prm_name)


@dataclass
class RayScoreResult:
    """What a Ray scoring run did.

    Attributes:
        records: The scored records, in input order.
        shards: Shards in the job.
        reused: Shards read back from ``<out>.parts`` (scored by an earlier, interrupted run).
        report: Who scored the other shards (``None`` when every shard was reused).
    """

    records: list[ScoredTrace]
    shards: int
    reused: int
    report: WorkerReport | None = None

    @property
    def processes(self) -> int:
        """Distinct worker processes that scored shards (above the workers: restarts)."""
        return self.report.processes if self.report is not None else 0

    def line(self) -> str:
        """One line for ``prmkit score``'s output."""
        who = self.report.line() if self.report is not None else "no workers started"
        return f"ray: {self.shards} shards, {self.reused} reused from an earlier run; {who}"


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _parts_dir(out: str) -> Path | None:
    """``<out>.parts``, created and marked if missing; refused if it exists unmarked."""
    if not out:
        return None
    folder = Path(f"{out}.parts")
    if folder.exists() and not (folder / PARTS_MARKER).is_file():
        raise ConfigError(
            "the parts folder of this output exists and was not made by prmkit",
            got=str(folder),
            expected=f"no such folder, or one holding {PARTS_MARKER}",
            fix="move that folder away, or choose another --out",
        )
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / PARTS_MARKER
    if not marker.exists():
        with atomic_write(marker) as handle:
            handle.write(
                "scored shards of prmkit score --ray; deleted once the output is written\n"
            )
    return folder


def _remove_parts(folder: Path) -> None:
    """Delete the part files prmkit wrote, the marker, and the folder if it is then empty."""
    for path in folder.glob("part-*.jsonl"):
        path.unlink()
    (folder / PARTS_MARKER).unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()


def score_on_ray(
    traces: list[Trace],
    spec: ScorerSpec,
    *,
    address: str,
    ray_cfg: Any,
    shard_traces: int,
    out: str = "",
) -> RayScoreResult:
    """Score ``traces`` on Ray workers, resuming from ``<out>.parts`` when ``out`` is set.

    Args:
        traces: The traces, in output order.
        spec: The PRM each worker loads.
        address: The Ray cluster (``auto``, ``local`` or an address).
        ray_cfg: The :class:`~prmkit.cluster.RayConfig` (workers, resources, retries).
        shard_traces: Traces per worker call.
        out: The output path (its parts folder enables resume; the caller writes ``out``).
    """
    job = _digest(asdict(spec))
    shards = [traces[i : i + shard_traces] for i in range(0, len(traces), shard_traces)]
    folder = _parts_dir(out)
    names = [
        f"part-{i:06d}-{_digest(job, [(t.id, t.prompt, t.steps) for t in shard])}.jsonl"
        for i, shard in enumerate(shards)
    ]
    done: dict[int, list[ScoredTrace]] = {}
    if folder is not None:
        for i, name in enumerate(names):
            if (folder / name).is_file():
                done[i] = read_records(folder / name, ScoredTrace)
    reused = len(done)
    todo = [i for i in range(len(shards)) if i not in done]
    report = None
    if todo:
        with ray_session(address) as local:
            if local:  # fail here, before workers print stacks
                from prmkit.prm.checkpoint import check_checkpoint_dir

                check_checkpoint_dir(spec.prm)
            count = min(resolve_workers(ray_cfg), len(todo))
            with WorkerPool(ScoreWorker, [(spec,)] * count, cfg=ray_cfg, name="score") as pool:

                def run(i: int) -> list[ScoredTrace]:
                    scored = pool.call("score", shards[i], spec.prm)
                    if folder is not None:
                        write_records(folder / names[i], scored)
                    return scored

                done.update(zip(todo, pool.map(run, todo), strict=True))
                report = pool.report()
    records = [r for i in range(len(shards)) for r in done[i]]
    return RayScoreResult(records, len(shards), reused, report)


def finish_parts(out: str) -> None:
    """After ``out`` is written: delete its parts folder (prmkit's files only)."""
    folder = Path(f"{out}.parts")
    if out and (folder / PARTS_MARKER).is_file():
        _remove_parts(folder)
