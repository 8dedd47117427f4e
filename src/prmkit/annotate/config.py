"""The config of the annotate stage: :class:`AnnotateConfig`, every setting of ``prmkit annotate``.

Built in Python, from YAML (``--config``) or from ``key=value`` overrides, it checks the same rules:
types, ``Literal`` choices, ranges, and the settings that contradict each other. ``method`` has no
default; :func:`~prmkit.annotate.annotate` refuses to run without it.

Groups: ``policy`` (:class:`~prmkit.models.PolicyConfig`: the model that draws the rollouts, and
the judge's unless ``judge_model`` is set) and ``sampling``
(:class:`~prmkit.generate.protocol.SamplingParams`: the rollouts' temperature, top_p, length cap,
and ``sampling.seed``, the job seed every call's seed derives from). The judge's model keys stay
flat (``judge_model``, ``judge_adapter``): by default the judge *is* the policy, which a second
policy group could not say.

Example:
    >>> cfg = AnnotateConfig(method="binary", k=4)
    >>> cfg.policy.model, cfg.sampling.temperature, cfg.sampling.seed
    ('smollm2', 0.7, 0)
    >>> AnnotateConfig(method="mc", k_min=8, k_max=4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    prmkit.errors.ConfigError: k_min is above k_max; got (8, 4); expected k_min <= k_max. Fix: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from prmkit.cluster.config import RayConfig
from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError
from prmkit.generate.backends import Backend
from prmkit.generate.protocol import SamplingParams
from prmkit.models import PolicyConfig

__all__ = ["METHODS", "RAY_METHODS", "AnnotateConfig", "LabelScheme", "Method"]

Method = Literal["mc", "binary", "omega", "scan", "judge", "exact", "consensus"]
"""How to label: Monte Carlo, binary search, OmegaPRM, SCAN, judge, exact checker, consensus."""

METHODS: tuple[str, ...] = get_args(Method)

RAY_METHODS: tuple[str, ...] = ("mc", "binary", "omega", "scan")
"""The methods ``--ray`` spreads: their work is rollouts."""

LabelScheme = Literal["hard", "soft", "rpe", "pav"]
"""The Monte Carlo label schemes (omega: hard or soft)."""


@dataclass
class AnnotateConfig:
    """Every setting of the annotate stage (``prmkit annotate --help`` lists them as keys)."""

    method: Method | None = option(
        None,
        "how to label: mc, binary, omega, scan, judge, exact or consensus (required to run)",
    )
    # input and output
    traces: str | None = option(
        None, "Trace records (.jsonl or .parquet); from Python the traces may be given instead"
    )
    problems: str | None = option(
        None,
        "Problem records the traces answer (needed except for judge); from Python the problems "
        "may be given instead",
    )
    out: str | None = option(
        None, "where the LabeledTrace records go, written atomically (the command needs it)"
    )
    store: str | None = option(
        None,
        "rollout store (SQLite); default: <out>.rollouts.sqlite, or in memory when out is not "
        "set (not created by exact)",
    )
    limit: int | None = option(None, "label only the first N traces", ge=1)
    batch_traces: int = option(
        8,
        "traces labelled together (one progress tick; a problem's traces are never split, so a "
        "chunk may hold more); keep it fixed when resuming",
        ge=1,
    )
    no_progress: bool = option(False, "no progress bar on stderr")
    # policy and sampling (rollout methods)
    policy: PolicyConfig = field(
        default_factory=PolicyConfig,
        metadata={"help": "the policy that draws the rollouts (and, by default, judges)"},
    )
    sampling: SamplingParams = field(
        default_factory=SamplingParams,
        metadata={
            "help": "the rollouts' sampling; sampling.seed is the job seed every call's seed "
            "derives from"
        },
    )
    backend: Backend = option(
        "transformers",
        "the policy in process (transformers), or OpenAI-compatible servers (openai: vLLM, "
        "SGLang, prmkit serve-policy; policy.model is the served name)",
    )
    base_url: str = option(
        "http://localhost:8000/v1",
        "backend=openai: the server's API root; with --ray, several comma-separated roots, one "
        "worker each",
    )
    ray: RayConfig = field(
        default_factory=RayConfig,
        metadata={
            "help": "scale out on Ray: ray.address=auto (--ray auto) draws the rollouts on "
            "worker actors; the store and the labels stay in this process"
        },
    )
    gen_batch_size: int = option(64, "rows the generator decodes together", ge=1)
    max_prefixes_per_call: int = option(8, "step prefixes per generator call", ge=1)
    verify_timeout: int = option(
        5,
        "seconds per math-verify call checking a rollout's answer (GSM8K, MATH-500); undecided "
        "checks count as wrong and are reported",
        ge=1,
    )
    # Monte Carlo, binary search, OmegaPRM
    k: int = option(8, "rollouts per step prefix", ge=1)
    label: LabelScheme = option("hard", "Monte Carlo label scheme (omega: hard or soft)")
    epsilon: float = option(0.8, "rpe threshold", ge=0, le=1)
    prover_k: int = option(
        1,
        "pav: progress under Best-of-K of the rollouts' policy, Q = 1 - (1 - MC)^K "
        "(1: the policy itself)",
        ge=1,
    )
    stop_at_zero: bool = option(False, "mc: stop after the first step whose value is 0")
    estimate_root: bool = option(False, "mc: also estimate the problem's pass rate (values[0])")
    adaptive_k: bool = option(False, "mc: choose k per problem from its pass rate")
    probe_k: int = option(8, "adaptive: rollouts from the problem", ge=1)
    k_min: int = option(2, "adaptive: fewest rollouts", ge=1)
    k_max: int = option(32, "adaptive: most rollouts", ge=1)
    search_correct: bool = option(False, "binary: also search traces whose final answer is right")
    min_root_value: float = option(
        0.0,
        "binary, omega: search only problems whose pass rate (k rollouts) is above this; the "
        "others' searched traces get null labels",
        ge=0,
        lt=1,
    )
    search_limit: int = option(8, "omega: selections per tree", ge=1)
    no_tree: bool = option(
        False, "omega: return only the input traces, not the tree's extra traces"
    )
    # SCAN (k: rollouts per step of a wrong trace)
    sc_samples: int = option(128, "scan: rollouts that estimate self-confidence", ge=1)
    sc_threshold: float = option(
        0.75,
        "scan: label only problems with self-confidence >= this (the rest: null labels)",
        ge=0,
        le=1,
    )
    scan_tolerance: int = option(2, "scan: steps before the error with soft labels", ge=0)
    scan_min_confidence: float | None = option(
        None, "removed: setting it is an error; use method=scan sc_threshold=C", ge=0, le=1
    )
    # judge
    judge_model: str | None = option(
        None, "judge model ('smollm2' or a dir; null: the policy, with its adapter)"
    )
    judge_adapter: str | None = option(None, "LoRA adapter for the judge")
    votes: int = option(5, "judge samples per trace", ge=1)
    judge_max_new_tokens: int = option(512, "judge reply cap", ge=1)
    judge_template: str = option("judge_processbench", "prompt template name in prmkit/prompts")
    # consensus
    members: str = option(
        "mc,judge", "consensus: comma-separated methods (the first one's labels are kept)"
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        self._check_together()

    @property
    def base_urls(self) -> list[str]:
        """``base_url`` split at commas."""
        return [u.strip() for u in self.base_url.split(",") if u.strip()]

    @property
    def member_methods(self) -> list[str]:
        """The consensus members, in order."""
        return [m.strip() for m in self.members.split(",") if m.strip()]

    def _check_together(self) -> None:
        """Refuse settings that contradict each other.

        Raises:
            ConfigError: naming the keys and their values.
        """
        if self.scan_min_confidence is not None:
            raise ConfigError(
                "scan_min_confidence (--scan-min-confidence) was replaced by the SCAN method, "
                "which filters problems before any step rollout is drawn",
                got=f"method={self.method} scan_min_confidence={self.scan_min_confidence}",
                expected="method=scan sc_threshold=C (--method scan --sc-threshold C)",
                fix=f"use --method scan --sc-threshold {self.scan_min_confidence} "
                "(see docs/annotate.md, SCAN)",
            )
        if self.sampling.seed is None:
            raise ConfigError(
                "annotate needs a job seed: every generator call's seed derives from it",
                got="sampling.seed=null",
                expected="an integer >= 0",
                fix="set sampling.seed=0 (--seed 0)",
            )
        if len(self.base_urls) > 1 and not self.ray.enabled:
            raise ConfigError(
                "several servers need Ray workers, one per server",
                got=f"base_url={self.base_url}",
                expected="one API root without ray.address, or ray.address set",
                fix="add --ray auto, or pass one base_url",
            )
        if self.ray.enabled and self.method not in (None, *RAY_METHODS):
            raise ConfigError(
                "Ray spreads the rollout methods only (judge verdicts, exact checks and "
                "consensus run in one process)",
                got=f"method={self.method} ray.address={self.ray.address}",
                expected=f"one of {', '.join(RAY_METHODS)} with --ray",
                fix=f"drop --ray for method={self.method}",
            )
        if self.k_min > self.k_max:
            raise ConfigError(
                "k_min is above k_max",
                got=(self.k_min, self.k_max),
                expected="k_min <= k_max",
                fix="e.g. k_min=2 k_max=32",
            )
        if self.method == "omega" and self.label not in ("hard", "soft"):
            raise ConfigError(
                "omega labels are hard or soft",
                got=f"label={self.label}",
                expected="label=hard or label=soft",
                fix="use method=mc for rpe and pav labels",
            )
        if self.prover_k != 1 and self.label != "pav":
            raise ConfigError(
                "prover_k applies to label=pav only",
                got=f"label={self.label} prover_k={self.prover_k}",
                expected="label=pav",
                fix="add label=pav (--label pav), or drop prover_k",
            )
        bad = [m for m in self.member_methods if m not in METHODS or m == "consensus"]
        if bad:
            raise ConfigError(
                "unknown consensus member",
                got=bad,
                expected=f"methods from {[m for m in METHODS if m != 'consensus']}",
                fix="e.g. members=mc,judge (--members mc,judge)",
            )
