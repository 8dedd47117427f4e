"""Labelers from an :class:`~prmkit.annotate.config.AnnotateConfig`: models, engine and store wired.

:class:`LabelerBuilder` loads each model at most once, opens the rollout store on first use
(``exact`` never opens one) and keeps the engine and judges it made, whose usage the stage reports.
The labelers themselves take plain keyword arguments; build them directly when a config is not
wanted (see ``docs/annotate.md``, Python).

Example:
    >>> cfg = AnnotateConfig(method="binary", k=4, store="rollouts.sqlite")  # doctest: +SKIP
    >>> with LabelerBuilder(cfg, problems_by_id) as build:  # doctest: +SKIP
    ...     labeled = build.labeler().label(traces)
    ...     print(build.engine.used.rollouts)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prmkit.annotate.checkers import TaskAnswerChecker
from prmkit.annotate.config import AnnotateConfig
from prmkit.annotate.protocol import Labeler
from prmkit.generate.protocol import Generator
from prmkit.records import Problem

if TYPE_CHECKING:
    from prmkit.annotate.judge import JudgeLabeler
    from prmkit.annotate.rollouts import RolloutEngine
    from prmkit.annotate.store import RolloutStore
    from prmkit.cluster.pool import WorkerPool

__all__ = ["LabelerBuilder", "policy_name"]


def policy_name(model: str, adapter: str | None, dtype: str = "float32") -> str:
    """The policy's name in the store's namespace: model (and adapter) paths resolved.

    A dtype other than float32 is part of the name (it samples a slightly different policy).

    Example:
        >>> policy_name("smollm2", None), policy_name("smollm2", None, "bfloat16")
        ('smollm2', 'smollm2@bfloat16')
    """

    def norm(p: str) -> str:
        return str(Path(p).resolve()) if Path(p).exists() else p

    name = norm(model) + (f"+{norm(adapter)}" if adapter else "")
    return name if dtype == "float32" else f"{name}@{dtype}"


class LabelerBuilder:
    """Builds the labelers a config asks for, loading each model at most once.

    Args:
        cfg: The annotate config (method, policy, sampling and the methods' settings).
        problems: Problems by id.
        store: The rollout store path (default: ``cfg.store``; ``":memory:"`` keeps it in memory).
        generator: The policy as a :class:`Generator` already in memory (an HTTP client, a model
            loaded elsewhere); default: ``cfg.policy`` loaded with transformers. ``cfg.policy``
            still names it in the store's namespace.
        judge: The judge as a :class:`Generator`; default: ``generator`` when ``judge_model``
            and ``judge_adapter`` are unset (the judge is the policy), else ``judge_model``
            loaded with transformers.
        pool: Started :class:`~prmkit.annotate.distributed.RolloutWorker` actors that draw the
            rollouts (``--ray``); the policy is then not loaded here.
    """

    def __init__(
        self,
        cfg: AnnotateConfig,
        problems: Mapping[str, Problem],
        *,
        store: str | None = None,
        generator: Generator | None = None,
        judge: Generator | None = None,
        pool: WorkerPool | None = None,
    ) -> None:
        self.cfg = cfg
        self.pool = pool
        self.problems = problems
        self.store_path = store or cfg.store or ":memory:"
        self._store: RolloutStore | None = None
        self._generators: dict[tuple[str, str | None], Any] = {}
        if generator is not None:
            self._generators[(cfg.policy.model, cfg.policy.adapter)] = generator
        self._judge = judge
        self.engine: RolloutEngine | None = None
        """The rollout engine, once a rollout method asked for it."""
        self.judges: list[JudgeLabeler] = []
        """The judges built so far."""
        self.checker = TaskAnswerChecker(timeout_s=cfg.verify_timeout, lenient=True)
        """Checks rollouts' final answers; ``checker.stats`` counts undecided checks."""

    def __enter__(self) -> LabelerBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> RolloutStore:
        """The rollout store, opened on first use (``exact`` never opens one)."""
        if self._store is None:
            from prmkit.annotate.store import RolloutStore

            self._store = RolloutStore(self.store_path)
        return self._store

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()

    def generator(self, model: str, adapter: str | None) -> Generator:
        """The model ``model`` (+ ``adapter``): in process in the policy's dtype and device, or
        the ``backend=openai`` server (the policy only; a judge model is loaded in process)."""
        key = (model, adapter)
        if key not in self._generators:
            from prmkit.generate.backends import make_generator

            cfg = self.cfg
            policy = dataclasses.replace(cfg.policy, model=model, adapter=adapter)
            is_policy = (model, adapter) == (cfg.policy.model, cfg.policy.adapter)
            self._generators[key] = make_generator(
                cfg.backend if is_policy else "transformers",
                policy,
                base_url=cfg.base_urls[0] if cfg.base_urls else cfg.base_url,
                batch_size=cfg.gen_batch_size,
            )
        return self._generators[key]

    def rollout_engine(self) -> RolloutEngine:
        """The engine every rollout method draws through (one per builder)."""
        if self.engine is None:
            from prmkit.annotate.rollouts import RolloutEngine

            cfg = self.cfg
            drawer = None
            if self.pool is not None:
                from prmkit.annotate.distributed import RayDrawer

                drawer = RayDrawer(self.pool, self.checker.stats)
            self.engine = RolloutEngine(
                None if drawer else self.generator(cfg.policy.model, cfg.policy.adapter),
                self.store,
                self.checker,
                self.problems,
                seed=cfg.sampling.seed,  # never None: AnnotateConfig refuses it
                params=cfg.sampling,
                policy=policy_name(cfg.policy.model, cfg.policy.adapter, cfg.policy.dtype),
                max_prefixes_per_call=cfg.max_prefixes_per_call,
                drawer=drawer,
            )
        return self.engine

    def labeler(self, method: str | None = None) -> Labeler:
        """The labeler of ``method`` (default: ``cfg.method``) with the config's settings."""
        cfg = self.cfg
        method = method or cfg.method
        if method == "mc":
            from prmkit.annotate.montecarlo import AdaptiveK, MonteCarloLabeler

            adaptive = (
                AdaptiveK(probe_k=cfg.probe_k, k_min=cfg.k_min, k_max=cfg.k_max)
                if cfg.adaptive_k
                else None
            )
            return MonteCarloLabeler(
                self.rollout_engine(),
                k=cfg.k,
                label=cfg.label,
                epsilon=cfg.epsilon,
                prover_k=cfg.prover_k,
                stop_at_zero=cfg.stop_at_zero,
                adaptive=adaptive,
                estimate_root=cfg.estimate_root,
            )
        if method == "binary":
            from prmkit.annotate.binary_search import BinarySearchLabeler

            return BinarySearchLabeler(
                self.rollout_engine(),
                k=cfg.k,
                search_correct=cfg.search_correct,
                min_root_value=cfg.min_root_value,
            )
        if method == "scan":
            from prmkit.annotate.scan import ScanLabeler

            return ScanLabeler(
                self.rollout_engine(),
                k=cfg.k,
                sc_samples=cfg.sc_samples,
                sc_threshold=cfg.sc_threshold,
                tolerance=cfg.scan_tolerance,
            )
        if method == "omega":
            from prmkit.annotate.omega import OmegaPRMLabeler

            return OmegaPRMLabeler(
                self.rollout_engine(),
                k=cfg.k,
                search_limit=cfg.search_limit,
                emit_tree=not cfg.no_tree,
                label=cfg.label,
                min_root_value=cfg.min_root_value,
            )
        if method == "exact":
            from prmkit.annotate.checkers import ArithmeticStepChecker
            from prmkit.annotate.exact import ExactLabeler

            return ExactLabeler(ArithmeticStepChecker(), self.problems)
        if method == "judge":
            return self._judge_labeler()
        from prmkit.annotate.consensus import ConsensusLabeler

        return ConsensusLabeler([self.labeler(m) for m in cfg.member_methods])

    def _judge_labeler(self) -> JudgeLabeler:
        from prmkit.annotate.judge import JudgeLabeler

        cfg = self.cfg
        model = cfg.judge_model or cfg.policy.model
        adapter = (
            cfg.judge_adapter if cfg.judge_model else (cfg.judge_adapter or cfg.policy.adapter)
        )
        generator = self._judge if self._judge is not None else self.generator(model, adapter)
        judge = JudgeLabeler(
            generator,
            self.store,
            self.problems,
            votes=cfg.votes,
            params=replace(cfg.sampling, max_new_tokens=cfg.judge_max_new_tokens),
            seed=cfg.sampling.seed,  # never None: AnnotateConfig refuses it
            judge=policy_name(model, adapter, cfg.policy.dtype),
            template=cfg.judge_template,
        )
        self.judges.append(judge)
        return judge
