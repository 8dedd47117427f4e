"""The annotate stage: step labels for traces, from files or from records in memory.

:func:`annotate` reads (or takes) the traces and problems, builds the labeler the config asks
for (:class:`~prmkit.annotate.build.LabelerBuilder`), labels the traces a few problems at a time
(:func:`chunk_by_problem`), writes ``cfg.out`` atomically when it is set, and returns the records
with what the job used (:class:`AnnotateResult`; ``result.lines()`` is what ``prmkit annotate``
prints).

Every rollout (and judge verdict) is committed to the rollout store as its generator call
finishes, so a job run again after a crash reuses what was stored and ends with the same labels.

With ``ray.address`` set (``--ray auto``) the generator calls run on Ray workers
(:mod:`prmkit.annotate.distributed`) and several chunks are labelled at once by threads of this
process; the store, the labels and the output stay here, and equal a one-process run's.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prmkit.annotate.build import LabelerBuilder
from prmkit.annotate.config import METHODS, AnnotateConfig
from prmkit.annotate.consensus import ConsensusReport
from prmkit.annotate.rollouts import Drawn, Usage
from prmkit.errors import ConfigError
from prmkit.generate.protocol import Generator
from prmkit.io import check_distinct_output
from prmkit.records import LabeledTrace, Problem, Trace, read_nonempty, read_records, write_records
from prmkit.steps import check_segmentation
from prmkit.tasks.answers import VerifyStats

if TYPE_CHECKING:
    from prmkit.cluster.pool import WorkerPool, WorkerReport

__all__ = ["AnnotateResult", "annotate", "chunk_by_problem"]


@dataclass
class AnnotateResult:
    """The labelled records and what the job used.

    Attributes:
        method: The method that labelled them.
        records: One record per input trace in input order (labelled, or kept with ``null``
            labels), then ``omega``'s extra tree records; consensus's dropped records are not
            here.
        n_traces: Input traces (after ``limit``).
        n_labelled: Records of input traces in ``records``.
        dropped: Records a filter left out (consensus: members disagree or one gave no label).
        unlabeled: Ids of traces the judge gave no valid vote (left out).
        unsolvable_problems: Problems no root rollout solved (their searched traces: ``null``
            labels).
        used: Distinct rollouts the labelers used, drawn now or reused (``None``: no rollouts).
        judges_used: The same for each judge's verdicts.
        drawn: What this run drew from the policy (``None``: no rollouts).
        store: The rollout store's path (``None``: none opened).
        stored: ``(rollouts, generated tokens)`` in the store under this job's namespace.
        checks: The rollouts' answer checks (undecided ones counted).
        report: Consensus's agreement report.
        out: Where the records were written (``None``: not written).
        elapsed_s: Seconds spent labelling (models loaded before).
        workers: Who drew the rollouts on Ray (``None``: this process).
    """

    method: str
    records: list[LabeledTrace]
    n_traces: int
    n_labelled: int
    dropped: list[LabeledTrace] = field(default_factory=list)
    unlabeled: list[str] = field(default_factory=list)
    unsolvable_problems: list[str] = field(default_factory=list)
    used: Usage | None = None
    judges_used: list[Usage] = field(default_factory=list)
    drawn: Drawn | None = None
    store: str | None = None
    stored: tuple[int, int] | None = None
    checks: VerifyStats = field(default_factory=VerifyStats)
    report: ConsensusReport | None = None
    out: str | None = None
    elapsed_s: float = 0.0
    workers: WorkerReport | None = None

    def _flagged(self, key: str) -> list[LabeledTrace]:
        return [t for t in [*self.records, *self.dropped] if t.meta["annotation"].get(key)]

    def lines(self) -> list[str]:
        """What the job did, line by line: labelled, budget, attribution, filters, this run.

        Lines appear only when they apply (no budget lines for ``exact``).
        """
        extra = len(self.records) - self.n_labelled
        lines = [
            f"labelled {self.n_labelled}/{self.n_traces} traces with {self.method}"
            + (f" (+{extra} tree traces)" if extra else "")
            + (f" -> {self.out}" if self.out else "")
        ]
        if self.used is not None:
            used = self.used
            lines.append(
                f"budget used: {used.rollouts} rollouts ({used.drawn} drawn now, {used.reused} "
                f"reused from the store), {used.policy_tokens} policy tokens, "
                f"{used.rollouts / max(1, self.n_traces):.1f} rollouts/trace"
            )
        for used in self.judges_used:
            lines.append(
                f"judge: {used.rollouts} verdicts ({used.drawn} drawn now, {used.reused} reused "
                f"from the store), {used.policy_tokens} judge tokens"
            )
        if self.used is not None or self.judges_used:
            records = [*self.records, *self.dropped]
            charged = sum(t.meta["annotation"]["rollouts"] for t in records)
            tokens = sum(t.meta["annotation"]["policy_tokens"] for t in records)
            lines.append(
                f"per-trace attribution: {charged} rollouts, {tokens} policy tokens over "
                f"{len(records)} records before filters (a rollout read by several records is "
                f"charged to each); {len(self.dropped)} dropped by filters"
                + (" (consensus: members disagree or one gave no label)" if self.dropped else "")
            )
        if self.unsolvable_problems:
            lines.append(
                f"unsolvable: {len(self.unsolvable_problems)} problems "
                f"({len(self._flagged('unsolvable'))} traces) got null labels "
                "(no rollout from the bare problem was right)"
            )
        filtered = self._flagged("scan_filtered")
        if filtered:
            threshold = filtered[0].meta["annotation"]["sc_threshold"]
            lines.append(
                f"SCAN: {len({t.problem_id for t in filtered})} problems ({len(filtered)} "
                f"traces) below self-confidence {threshold} got null labels and no step rollouts"
            )
        if self.drawn is not None and self.stored is not None:
            drawn = self.drawn
            lines.append(
                f"drawn this run: {drawn.rollouts} rollouts, {drawn.policy_tokens} tokens in "
                f"{drawn.calls} calls, {self.elapsed_s:.1f}s; store {self.store}: "
                f"{self.stored[0]} rollouts, {self.stored[1]} tokens"
            )
        if self.checks.calls:
            lines.append(self.checks.summary())
        if self.report is not None:
            lines.append(self.report.format())
        if self.unlabeled:
            lines.append(f"judge: {len(self.unlabeled)} traces got no valid vote and were left out")
        if self.workers is not None:
            lines.append("ray: " + self.workers.line())
        return lines


def chunk_by_problem(traces: Sequence[Trace], size: int) -> list[list[Trace]]:
    """Chunks of about ``size`` traces that never split a problem's traces (OmegaPRM grows one
    tree per problem and call); problems in order of first appearance, traces in input order.

    Example:
        >>> ts = [Trace(id=f"t{i}", problem_id=p, prompt="q", steps=["s"]) for i, p in
        ...       enumerate("aabab")]
        >>> [[t.id for t in c] for c in chunk_by_problem(ts, 2)]
        [['t0', 't1', 't3'], ['t2', 't4']]
    """
    by_problem: dict[str, list[Trace]] = {}
    for trace in traces:
        by_problem.setdefault(trace.problem_id, []).append(trace)
    chunks: list[list[Trace]] = []
    current: list[Trace] = []
    for group in by_problem.values():
        current.extend(group)
        if len(current) >= size:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


def _inputs(
    cfg: AnnotateConfig,
    traces: Sequence[Trace] | None,
    problems: Mapping[str, Problem] | Sequence[Problem] | None,
) -> tuple[list[Trace], dict[str, Problem]]:
    """The traces (after ``limit``) and the problems by id, from the arguments or the files."""
    for key, given in (("traces", traces), ("problems", problems)):
        if given is not None and getattr(cfg, key) is not None:
            raise ConfigError(
                f"{key} given twice: as records and as {key}={getattr(cfg, key)}",
                got=getattr(cfg, key),
                expected=f"the {key} records or the {key} file, not both",
                fix=f"drop {key} from the config, or do not pass the records",
            )
    if traces is None:
        if cfg.traces is None:
            raise ConfigError(
                "no traces to label",
                got=None,
                expected="traces=FILE (--traces FILE), or Trace records passed to annotate()",
                fix="pass the traces file written by `prmkit generate`",
            )
        traces = read_nonempty(
            cfg.traces,
            Trace,
            noun="traces",
            fix="pass the traces file written by `prmkit generate`",
        )
    elif not traces:
        raise ConfigError(
            "0 traces given", got=[], expected="at least one Trace", fix="pass the traces to label"
        )
    if problems is None and cfg.problems is None and cfg.method != "judge":
        raise ConfigError(
            "problems are required for this method",
            got=cfg.method,
            expected="problems=problems.jsonl (--problems problems.jsonl), or Problem records",
            fix="pass the Problem records the traces were generated from",
        )
    if problems is None:
        problems = read_records(cfg.problems, Problem) if cfg.problems else []
    if not isinstance(problems, Mapping):
        problems = {p.id: p for p in problems}
    return list(traces[: cfg.limit]), dict(problems)


_ROLLOUT_METHODS = {"mc", "binary", "omega", "scan"}
"""Methods that continue a trace's prefix: they need blank-line steps (rollouts.State)."""


def _check_segmentation(cfg: AnnotateConfig, traces: Sequence[Trace]) -> None:
    """Refuse traces split otherwise than rollouts split, before any model loads."""
    used = {m.strip() for m in cfg.members.split(",")} if cfg.method == "consensus" else set()
    if (used | {cfg.method}) & _ROLLOUT_METHODS:
        for trace in traces:
            check_segmentation(trace.meta, "double_newline", where=f"trace {trace.id}")


def annotate(
    cfg: AnnotateConfig,
    traces: Sequence[Trace] | None = None,
    problems: Mapping[str, Problem] | Sequence[Problem] | None = None,
    *,
    generator: Generator | None = None,
    judge: Generator | None = None,
) -> AnnotateResult:
    """Label traces step by step with ``cfg.method``; write ``cfg.out`` when it is set.

    Before any work it refuses an ``out`` or ``store`` path that is also an input, and no traces.
    The store defaults to ``<out>.rollouts.sqlite``, or to one in memory when ``out`` is not set.

    Args:
        cfg: The settings (method, policy, sampling, the method's own settings).
        traces: Trace records to label (default: read ``cfg.traces``).
        problems: The problems the traces answer, by id or as a list (default: read
            ``cfg.problems``); not needed by ``judge``.
        generator: The policy, already in memory (default: load ``cfg.policy``).
        judge: The judge, already in memory (default: ``generator`` unless ``judge_model`` or
            ``judge_adapter`` is set).

    Returns:
        The records (input traces' first, in input order) and the budget numbers.

    Raises:
        ConfigError: no method, a path that is also an input, missing traces or problems.

    Example:
        >>> from prmkit.annotate import AnnotateConfig, annotate
        >>> result = annotate(AnnotateConfig(method="mc", k=8, label="soft"),
        ...                   traces, problems)  # doctest: +SKIP
        >>> result.records[0].labels, result.used.rollouts  # doctest: +SKIP
        ([1.0, 0.625, 0.0], 112)
    """
    if cfg.method is None:
        raise ConfigError(
            "method is not set",
            got=None,
            expected=f"one of {', '.join(METHODS)}",
            fix="set method=mc (--method mc), or another method",
        )
    store = cfg.store or (f"{cfg.out}.rollouts.sqlite" if cfg.out else ":memory:")
    if cfg.out is not None:
        check_distinct_output(cfg.out, [cfg.traces, cfg.problems, store], name="out")
    check_distinct_output(store, [cfg.traces, cfg.problems], name="store")
    traces, by_id = _inputs(cfg, traces, problems)
    _check_segmentation(cfg, traces)
    if cfg.ray.enabled and (generator is not None or judge is not None):
        raise ConfigError(
            "a generator in memory cannot be sent to Ray workers",
            got=f"generator/judge objects with ray.address={cfg.ray.address}",
            expected="the policy named by the config (policy.*, backend, base_url)",
            fix="drop the generator argument, or unset ray.address",
        )
    with contextlib.ExitStack() as stack:
        pool = None
        if cfg.ray.enabled:
            from prmkit.annotate.distributed import rollout_pool

            pool = stack.enter_context(rollout_pool(cfg))
        build = stack.enter_context(
            LabelerBuilder(cfg, by_id, store=store, generator=generator, judge=judge, pool=pool)
        )
        labeler = build.labeler()
        started = time.monotonic()
        bar = None
        if not cfg.no_progress:
            from tqdm import tqdm

            bar = tqdm(
                total=len(traces), unit="trace", desc=f"annotate {cfg.method}", file=sys.stderr
            )
        chunks = chunk_by_problem(traces, cfg.batch_traces)
        if pool is None:
            done = [_label_chunk(labeler, chunk, build, bar) for chunk in chunks]
        else:
            done = _label_concurrently(build, chunks, bar, pool)
        if bar is not None:
            bar.close()
        ids = {t.id for t in traces}
        main: list[LabeledTrace] = []
        extra: list[LabeledTrace] = []
        unlabeled: list[str] = []
        dropped: list[LabeledTrace] = []
        unsolvable: dict[str, None] = {}
        for part in done:
            for record in part.records:
                (main if record.id in ids else extra).append(record)
            unlabeled.extend(part.unlabeled)
            dropped.extend(part.dropped)
            unsolvable.update(dict.fromkeys(part.unsolvable))
        order = {t.id: i for i, t in enumerate(traces)}
        main.sort(key=lambda record: order[record.id])
        records = main + extra
        if cfg.out is not None:
            write_records(cfg.out, records)
        engine = build.engine
        return AnnotateResult(
            method=str(cfg.method),
            records=records,
            n_traces=len(traces),
            n_labelled=len(main),
            dropped=dropped,
            unlabeled=unlabeled,
            unsolvable_problems=list(unsolvable),
            used=engine.used if engine is not None else None,
            judges_used=[j.used for j in build.judges],
            drawn=engine.drawn if engine is not None else None,
            store=store if engine is not None or build.judges else None,
            stored=build.store.total(engine.namespace) if engine is not None else None,
            checks=build.checker.stats,
            report=getattr(labeler, "report", None),
            out=cfg.out,
            elapsed_s=time.monotonic() - started,
            workers=pool.report() if pool is not None else None,
        )


@dataclass
class _Chunk:
    """What labelling one chunk gave."""

    records: list[LabeledTrace]
    unlabeled: list[str]
    dropped: list[LabeledTrace]
    unsolvable: list[str]


def _label_chunk(labeler: Any, chunk: list[Trace], build: LabelerBuilder, bar: Any) -> _Chunk:
    records = labeler.label(chunk)
    part = _Chunk(
        records,
        list(getattr(labeler, "unlabeled", [])),
        list(getattr(labeler, "dropped", [])),
        list(getattr(labeler, "unsolvable_problems", [])),
    )
    if bar is not None:
        bar.update(len(chunk))
        if build.engine is not None:
            bar.set_postfix(drawn=build.engine.drawn.rollouts)
    return part


def _label_concurrently(
    build: LabelerBuilder, chunks: list[list[Trace]], bar: Any, pool: WorkerPool
) -> list[_Chunk]:
    """Label ``pool.concurrency`` chunks at a time, a labeler each, one shared engine; chunk
    order kept.

    Chunks never share a problem, so never a state: each chunk's rollouts and labels are those
    of a one-process run. On the first error the other chunks stop at their next call (the pool
    closes) and the error is raised; the rollouts already stored are kept.
    """
    return pool.map(lambda chunk: _label_chunk(build.labeler(), chunk, build, bar), chunks)
