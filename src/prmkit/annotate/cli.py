"""``prmkit annotate``: step labels for any Trace JSONL/Parquet, resumable from the rollout store.

Example:
    prmkit annotate --method mc --traces traces.jsonl --problems problems.jsonl \\
        --out labeled.jsonl --store rollouts.sqlite --k 8 --label soft

Every rollout (and judge verdict) is committed to ``--store`` as its generator call finishes.
Run the same command again after a crash or ``kill -9``: stored rollouts are reused, the missing
ones are drawn with the same seeds, and the labels equal those of an uninterrupted run. Changing
the policy, sampling settings or ``--seed`` starts a fresh namespace in the same store; changing
only the labelling (``--label``, ``--method binary`` after ``mc``...) reuses what is stored.
Several jobs may share one store; rollouts another job stored first are reused.

Before any work, annotate refuses out-of-range flags, an ``--out`` or ``--store`` path that is
also an input, and a traces file with no traces.

At the end it prints the budget the job used (distinct rollouts, drawn now or reused from the
store, and judge verdicts), the per-record attribution before any filter, and how many traces
were filtered or got null labels (SCAN's filter, problems the policy never solves).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prmkit.config import check_range
from prmkit.errors import ConfigError
from prmkit.io import check_distinct_output
from prmkit.records import (
    LabeledTrace,
    Problem,
    Trace,
    read_nonempty,
    read_records,
    write_records,
)

if TYPE_CHECKING:
    from prmkit.annotate.store import RolloutStore

__all__ = ["METHODS", "add_arguments", "run"]

METHODS = ("mc", "binary", "omega", "scan", "judge", "exact", "consensus")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``prmkit annotate`` options."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    io = parser.add_argument_group("input and output")
    io.add_argument("--method", choices=METHODS, required=True, help="how to label")
    io.add_argument("--traces", required=True, help="Trace records (.jsonl or .parquet)")
    io.add_argument(
        "--problems", help="Problem records the traces answer (needed except for judge)"
    )
    io.add_argument("--out", required=True, help="where the LabeledTrace records go")
    io.add_argument(
        "--store",
        help="rollout store (SQLite); default: <out>.rollouts.sqlite (not created by exact)",
    )
    io.add_argument("--limit", type=int, help="label only the first N traces")
    io.add_argument(
        "--batch-traces",
        type=int,
        default=8,
        help="traces labelled together (one progress tick; a problem's traces are never "
        "split, so a chunk may hold more); keep it fixed when resuming",
    )
    io.add_argument("--no-progress", action="store_true", help="no progress bar")

    policy = parser.add_argument_group("policy and sampling (rollout methods)")
    policy.add_argument("--policy", default="smollm2", help="'smollm2' or a local model dir")
    policy.add_argument("--adapter", help="a LoRA adapter dir to merge (e.g. from prmkit warmup)")
    policy.add_argument(
        "--seed", type=int, default=0, help="job seed; every call's seed derives from it"
    )
    policy.add_argument("--temperature", type=float, default=0.7, help="sampling temperature")
    policy.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling")
    policy.add_argument("--max-new-tokens", type=int, default=256, help="rollout length cap")
    policy.add_argument(
        "--gen-batch-size", type=int, default=64, help="rows the generator decodes together"
    )
    policy.add_argument(
        "--max-prefixes-per-call", type=int, default=8, help="step prefixes per generator call"
    )
    policy.add_argument(
        "--verify-timeout",
        type=int,
        default=5,
        help="seconds per math-verify call checking a rollout's answer (GSM8K, MATH-500); "
        "undecided checks count as wrong and are reported",
    )

    mc = parser.add_argument_group("Monte Carlo, binary search, OmegaPRM")
    mc.add_argument("--k", type=int, default=8, help="rollouts per step prefix")
    mc.add_argument(
        "--label",
        default="hard",
        choices=("hard", "soft", "rpe", "pav"),
        help="Monte Carlo label scheme (omega: hard or soft)",
    )
    mc.add_argument("--epsilon", type=float, default=0.8, help="rpe threshold")
    mc.add_argument(
        "--prover-k",
        type=int,
        default=1,
        help="pav: progress under Best-of-K of the rollouts' policy, Q = 1 - (1 - MC)^K "
        "(1: the policy itself)",
    )
    mc.add_argument(
        "--stop-at-zero", action="store_true", help="stop after the first step whose value is 0"
    )
    mc.add_argument(
        "--estimate-root",
        action="store_true",
        help="also estimate the problem's pass rate (values[0])",
    )
    mc.add_argument("--adaptive-k", action="store_true", help="choose k from the pass rate")
    mc.add_argument("--probe-k", type=int, default=8, help="adaptive: rollouts from the problem")
    mc.add_argument("--k-min", type=int, default=2, help="adaptive: fewest rollouts")
    mc.add_argument("--k-max", type=int, default=32, help="adaptive: most rollouts")
    # replaced by --method scan; kept hidden so that using it says so
    mc.add_argument("--scan-min-confidence", type=float, help=argparse.SUPPRESS)
    mc.add_argument(
        "--search-correct",
        action="store_true",
        help="binary: also search traces whose final answer is right",
    )
    mc.add_argument(
        "--min-root-value",
        type=float,
        default=0.0,
        help="binary, omega: search only problems whose pass rate (k rollouts) is above this; "
        "the others' searched traces get null labels",
    )
    mc.add_argument("--search-limit", type=int, default=8, help="omega: selections per tree")
    mc.add_argument(
        "--no-tree",
        action="store_true",
        help="omega: return only the input traces, not the tree's extra traces",
    )

    scan = parser.add_argument_group("SCAN (--k: rollouts per step of a wrong trace)")
    scan.add_argument(
        "--sc-samples", type=int, default=128, help="rollouts that estimate self-confidence"
    )
    scan.add_argument(
        "--sc-threshold",
        type=float,
        default=0.75,
        help="label only problems with self-confidence >= this (the rest: null labels)",
    )
    scan.add_argument(
        "--scan-tolerance", type=int, default=2, help="steps before the error with soft labels"
    )

    judge = parser.add_argument_group("judge")
    judge.add_argument(
        "--judge-model", default=None, help="judge model ('smollm2' or a dir; default: --policy)"
    )
    judge.add_argument("--judge-adapter", help="LoRA adapter for the judge")
    judge.add_argument("--votes", type=int, default=5, help="judge samples per trace")
    judge.add_argument("--judge-max-new-tokens", type=int, default=512, help="judge reply cap")
    judge.add_argument(
        "--judge-template",
        default="judge_processbench",
        help="prompt template name in prmkit/prompts",
    )
    parser.add_argument(
        "--members",
        default="mc,judge",
        help="consensus: comma-separated methods (the first one's labels are kept)",
    )


def _policy_name(model: str, adapter: str | None) -> str:
    def norm(p: str) -> str:
        return str(Path(p).resolve()) if Path(p).exists() else p

    return norm(model) + (f"+{norm(adapter)}" if adapter else "")


class _Build:
    """Builds labelers, loading each model at most once."""

    def __init__(self, args: argparse.Namespace, problems: dict[str, Problem]) -> None:
        from prmkit.annotate.checkers import TaskAnswerChecker

        self.args = args
        self.problems = problems
        self._store: RolloutStore | None = None
        self._generators: dict[tuple[str, str | None], Any] = {}
        self.engine: Any = None
        self.judges: list[Any] = []
        self.checker = TaskAnswerChecker(timeout_s=args.verify_timeout, lenient=True)

    @property
    def store(self) -> RolloutStore:
        """The rollout store, created on first use (``exact`` never creates one)."""
        if self._store is None:
            from prmkit.annotate.store import RolloutStore

            self._store = RolloutStore(self.args.store)
        return self._store

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()

    def generator(self, model: str, adapter: str | None) -> Any:
        key = (model, adapter)
        if key not in self._generators:
            from prmkit.generate.transformers_backend import TransformersGenerator

            self._generators[key] = TransformersGenerator.from_pretrained(
                model, adapter=adapter, batch_size=self.args.gen_batch_size
            )
        return self._generators[key]

    def rollout_engine(self) -> Any:
        if self.engine is None:
            from prmkit.annotate.rollouts import RolloutEngine
            from prmkit.generate.protocol import SamplingParams

            a = self.args
            params = SamplingParams(
                temperature=a.temperature, top_p=a.top_p, max_new_tokens=a.max_new_tokens
            )
            self.engine = RolloutEngine(
                self.generator(a.policy, a.adapter),
                self.store,
                self.checker,
                self.problems,
                seed=a.seed,
                params=params,
                policy=_policy_name(a.policy, a.adapter),
                max_prefixes_per_call=a.max_prefixes_per_call,
            )
        return self.engine

    def labeler(self, method: str) -> Any:
        a = self.args
        if method == "mc":
            from prmkit.annotate.montecarlo import AdaptiveK, MonteCarloLabeler

            adaptive = (
                AdaptiveK(probe_k=a.probe_k, k_min=a.k_min, k_max=a.k_max) if a.adaptive_k else None
            )
            return MonteCarloLabeler(
                self.rollout_engine(),
                k=a.k,
                label=a.label,
                epsilon=a.epsilon,
                prover_k=a.prover_k,
                stop_at_zero=a.stop_at_zero,
                adaptive=adaptive,
                estimate_root=a.estimate_root,
            )
        if method == "binary":
            from prmkit.annotate.binary_search import BinarySearchLabeler

            return BinarySearchLabeler(
                self.rollout_engine(),
                k=a.k,
                search_correct=a.search_correct,
                min_root_value=a.min_root_value,
            )
        if method == "scan":
            from prmkit.annotate.scan import ScanLabeler

            return ScanLabeler(
                self.rollout_engine(),
                k=a.k,
                sc_samples=a.sc_samples,
                sc_threshold=a.sc_threshold,
                tolerance=a.scan_tolerance,
            )
        if method == "omega":
            from prmkit.annotate.omega import OmegaPRMLabeler

            return OmegaPRMLabeler(
                self.rollout_engine(),
                k=a.k,
                search_limit=a.search_limit,
                emit_tree=not a.no_tree,
                label=a.label,
                min_root_value=a.min_root_value,
            )
        if method == "exact":
            from prmkit.annotate.checkers import ArithmeticStepChecker
            from prmkit.annotate.exact import ExactLabeler

            return ExactLabeler(ArithmeticStepChecker(), self.problems)
        if method == "judge":
            from prmkit.annotate.judge import JudgeLabeler
            from prmkit.generate.protocol import SamplingParams

            model = a.judge_model or a.policy
            adapter = a.judge_adapter if a.judge_model else (a.judge_adapter or a.adapter)
            params = SamplingParams(
                temperature=a.temperature, top_p=a.top_p, max_new_tokens=a.judge_max_new_tokens
            )
            judge = JudgeLabeler(
                self.generator(model, adapter),
                self.store,
                self.problems,
                votes=a.votes,
                params=params,
                seed=a.seed,
                judge=_policy_name(model, adapter),
                template=a.judge_template,
            )
            self.judges.append(judge)
            return judge
        from prmkit.annotate.consensus import ConsensusLabeler

        members = [m.strip() for m in a.members.split(",") if m.strip()]
        bad = [m for m in members if m not in METHODS or m == "consensus"]
        if bad:
            raise ConfigError(
                "unknown consensus member",
                got=bad,
                expected=f"methods from {list(METHODS[:-1])}",
                fix="e.g. --members mc,judge",
            )
        return ConsensusLabeler([self.labeler(m) for m in members])


_AT_LEAST_ONE = (
    "limit",
    "batch_traces",
    "max_new_tokens",
    "gen_batch_size",
    "max_prefixes_per_call",
    "verify_timeout",
    "k",
    "probe_k",
    "k_min",
    "k_max",
    "prover_k",
    "sc_samples",
    "search_limit",
    "votes",
    "judge_max_new_tokens",
)


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse out-of-range or contradictory flags before any work is done.

    Raises:
        ConfigError: naming the flag, the value and the allowed range.
    """

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    for name in _AT_LEAST_ONE:
        check_range(flag(name), getattr(args, name), ge=1)
    check_range("--seed", args.seed, ge=0)
    check_range("--scan-tolerance", args.scan_tolerance, ge=0)
    for name in ("epsilon", "sc_threshold"):
        check_range(flag(name), getattr(args, name), ge=0, le=1)
    check_range("--min-root-value", args.min_root_value, ge=0, lt=1)
    check_range("--temperature", args.temperature, ge=0)
    check_range("--top-p", args.top_p, gt=0, le=1)
    if args.k_min > args.k_max:
        raise ConfigError(
            "--k-min is above --k-max",
            got=(args.k_min, args.k_max),
            expected="--k-min <= --k-max",
            fix="e.g. --k-min 2 --k-max 32",
        )
    if args.scan_min_confidence is not None:
        raise ConfigError(
            "--scan-min-confidence was replaced by the SCAN method, which filters problems "
            "before any step rollout is drawn",
            got=f"--method {args.method} --scan-min-confidence {args.scan_min_confidence}",
            expected="--method scan --sc-threshold C",
            fix=f"use --method scan --sc-threshold {args.scan_min_confidence} "
            "(see docs/annotate.md, SCAN)",
        )
    if args.method == "omega" and args.label not in ("hard", "soft"):
        raise ConfigError(
            "omega labels are hard or soft",
            got=f"--label {args.label}",
            expected="--label hard or --label soft",
            fix="use --method mc for rpe and pav labels",
        )
    if args.prover_k != 1 and args.label != "pav":
        raise ConfigError(
            "--prover-k applies to --label pav only",
            got=f"--label {args.label} --prover-k {args.prover_k}",
            expected="--label pav",
            fix="add --label pav, or drop --prover-k",
        )


def _flagged(records: Sequence[LabeledTrace], key: str) -> list[LabeledTrace]:
    return [t for t in records if t.meta["annotation"].get(key)]


def _report(
    build: _Build,
    n_traces: int,
    labelled: Sequence[LabeledTrace],
    dropped: Sequence[LabeledTrace],
    unsolvable: Sequence[str],
) -> None:
    """Print what the job used, what each record was charged, and what was filtered."""
    if build.engine is not None:
        used = build.engine.used
        print(
            f"budget used: {used.rollouts} rollouts ({used.drawn} drawn now, {used.reused} "
            f"reused from the store), {used.policy_tokens} policy tokens, "
            f"{used.rollouts / max(1, n_traces):.1f} rollouts/trace"
        )
    for judge in build.judges:
        used = judge.used
        print(
            f"judge: {used.rollouts} verdicts ({used.drawn} drawn now, {used.reused} reused "
            f"from the store), {used.policy_tokens} judge tokens"
        )
    if build.engine is not None or build.judges:
        records = [*labelled, *dropped]
        charged = sum(t.meta["annotation"]["rollouts"] for t in records)
        tokens = sum(t.meta["annotation"]["policy_tokens"] for t in records)
        print(
            f"per-trace attribution: {charged} rollouts, {tokens} policy tokens over "
            f"{len(records)} records before filters (a rollout read by several records is "
            f"charged to each); {len(dropped)} dropped by filters"
            + (" (consensus: members disagree or one gave no label)" if dropped else "")
        )
    if unsolvable:
        traces = _flagged([*labelled, *dropped], "unsolvable")
        print(
            f"unsolvable: {len(unsolvable)} problems ({len(traces)} traces) got null labels "
            "(no rollout from the bare problem was right)"
        )
    filtered = _flagged([*labelled, *dropped], "scan_filtered")
    if filtered:
        threshold = filtered[0].meta["annotation"]["sc_threshold"]
        print(
            f"SCAN: {len({t.problem_id for t in filtered})} problems ({len(filtered)} traces) "
            f"below self-confidence {threshold} got null labels and no step rollouts"
        )


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


def run(args: argparse.Namespace) -> int:
    """Label the traces; print the budget; write ``--out``."""
    _check_flags(args)
    if args.store is None:
        args.store = str(args.out) + ".rollouts.sqlite"
    check_distinct_output(args.out, [args.traces, args.problems, args.store], name="--out")
    check_distinct_output(args.store, [args.traces, args.problems], name="--store")
    traces = read_nonempty(
        args.traces, Trace, noun="traces", fix="pass the traces file written by `prmkit generate`"
    )[: args.limit]
    if args.problems is None and args.method not in ("judge",):
        raise ConfigError(
            "--problems is required for this method",
            got=args.method,
            expected="--problems problems.jsonl",
            fix="pass the Problem records the traces were generated from",
        )
    problems = {p.id: p for p in read_records(args.problems, Problem)} if args.problems else {}
    build = _Build(args, problems)
    labeler = build.labeler(args.method)
    started = time.monotonic()
    main: list[LabeledTrace] = []
    extra: list[LabeledTrace] = []
    ids = {t.id for t in traces}
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(traces), unit="trace", desc=f"annotate {args.method}", file=sys.stderr)
    unlabeled: list[str] = []
    dropped: list[LabeledTrace] = []
    unsolvable: dict[str, None] = {}
    for chunk in chunk_by_problem(traces, args.batch_traces):
        for record in labeler.label(chunk):
            (main if record.id in ids else extra).append(record)
        unlabeled.extend(getattr(labeler, "unlabeled", []))
        dropped.extend(getattr(labeler, "dropped", []))
        unsolvable.update(dict.fromkeys(getattr(labeler, "unsolvable_problems", [])))
        if bar is not None:
            bar.update(len(chunk))
            if build.engine is not None:
                bar.set_postfix(drawn=build.engine.drawn.rollouts)
    if bar is not None:
        bar.close()
    order = {t.id: i for i, t in enumerate(traces)}
    main.sort(key=lambda record: order[record.id])
    out = main + extra
    write_records(args.out, out)
    elapsed = time.monotonic() - started
    print(
        f"labelled {len(main)}/{len(traces)} traces with {args.method}"
        + (f" (+{len(extra)} tree traces)" if extra else "")
        + f" -> {args.out}"
    )
    _report(build, len(traces), out, dropped, list(unsolvable))
    if build.engine is not None:
        drawn = build.engine.drawn
        stored, stored_tokens = build.store.total(build.engine.namespace)
        print(
            f"drawn this run: {drawn.rollouts} rollouts, {drawn.policy_tokens} tokens in "
            f"{drawn.calls} calls, {elapsed:.1f}s; store {args.store}: {stored} rollouts, "
            f"{stored_tokens} tokens"
        )
    if build.checker.stats.calls:
        print(build.checker.stats.summary())
    report = getattr(labeler, "report", None)
    if report is not None:
        print(report.format())
    if unlabeled:
        print(f"judge: {len(unlabeled)} traces got no valid vote and were left out")
    build.close()
    return 0


if __name__ == "__main__":
    from prmkit.cli import main

    raise SystemExit(main(["annotate", *sys.argv[1:]]))
