"""The eval stage: one config per benchmark, and :func:`run_eval`, which runs any of them.

``prmkit eval processbench|prmbench|steps|bon`` builds a :class:`ProcessBenchConfig`,
:class:`PRMBenchConfig`, :class:`StepsConfig` or :class:`BestOfNConfig` (defaults, then
``--config`` YAML, then flags and ``key=value``) and calls :func:`run_eval`. In Python, call the
entry functions directly (:func:`~prmkit.evaluate.processbench.evaluate_processbench`, ...) on
records or files, or :func:`run_eval` on a config.

Example:
    >>> cfg = BestOfNConfig(scores="samples_scored.jsonl", ns=[1, 4, 16], output="bon.json")
    >>> result = run_eval(cfg)  # doctest: +SKIP
    >>> print(format_result(cfg.benchmark, result))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError
from prmkit.evaluate.best_of_n import evaluate_best_of_n
from prmkit.evaluate.judge_eval import JUDGE_SAMPLING, judge_processbench
from prmkit.evaluate.prmbench import evaluate_prmbench
from prmkit.evaluate.processbench import evaluate_processbench, load_subset
from prmkit.evaluate.step_metrics import evaluate_steps
from prmkit.generate.protocol import Generator, SamplingParams
from prmkit.io import write_json
from prmkit.models.policy_config import PolicyConfig

__all__ = [
    "CONFIGS",
    "BestOfNConfig",
    "EvalConfig",
    "PRMBenchConfig",
    "ProcessBenchConfig",
    "StepsConfig",
    "run_eval",
]

_OUTPUT = "write the result as JSON, with a 'benchmark' key (null: not written)"
_SCORES = "ScoredTrace records (.jsonl or .parquet), the output of prmkit score"


def _need(key: str, value: Any, flag: str) -> None:
    if not value:
        raise ConfigError(f"missing '{key}'", got=value, expected="a path", fix=f"pass {flag}")


@dataclass
class ProcessBenchConfig:
    """``prmkit eval processbench``: first-error F1 per subset, from predictions, a PRM's step
    scores and a threshold, or an LLM judge (exactly one of ``predictions``, ``scores``,
    ``judge.model``)."""

    benchmark: ClassVar[str] = "processbench"

    data: list[str] = option(
        [],
        "subset files (ProcessBench JSON, or JSONL of labelled records); the subset name is the "
        "file name before the first dot",
    )
    predictions: str | None = option(None, 'JSONL of {"id", "prediction"} (-1 = no error)')
    scores: str | None = option(
        None, "ScoredTrace records; prediction = the first step scoring below the threshold"
    )
    threshold: float | None = option(
        None, "a given threshold for scores (in [0, 1] for probability scores)"
    )
    threshold_from: str | None = option(
        None,
        "labelled ScoredTrace records of a separate split: the threshold maximizing F1 there",
    )
    oracle_threshold: bool = option(
        False, "choose the threshold on the evaluated data itself (reported as oracle)"
    )
    allow_missing: bool = option(
        False, "count samples without a prediction as wrong instead of failing"
    )
    judge: PolicyConfig = field(
        default_factory=lambda: PolicyConfig(model=""),
        metadata={
            "help": "an LLM critic predicting each first error by the ProcessBench critic "
            "protocol (judge.model: 'smollm2', a local model dir, or a served model's name with "
            "judge_base_url; '' = no judge)"
        },
    )
    judge_base_url: str | None = option(
        None,
        "an OpenAI-compatible server (vLLM, SGLang) serving judge.model, e.g. "
        "http://localhost:8000/v1 (null: load judge.model in-process)",
    )
    judge_sampling: SamplingParams = field(
        default_factory=lambda: JUDGE_SAMPLING,
        metadata={
            "help": "the critic's sampling (default greedy, 2048 tokens, seed 42); with "
            "judge_votes > 1 a greedy temperature becomes temperature 1, top-p 0.9"
        },
    )
    judge_votes: int = option(
        1,
        "critiques per sample: 1 = greedy (ProcessBench's default); N > 1 = N samples, "
        "majority vote (ProcessBench --use_voting)",
        ge=1,
    )
    judge_template: str = option(
        "judge_processbench",
        "prompt template name under prmkit/prompts (slots {problem}, {paragraphs})",
    )
    judge_store: str | None = option(
        None,
        "SQLite file keeping every critique, so a rerun resumes (null: OUTPUT.judge.sqlite "
        "beside output, else a temporary file)",
    )
    judge_batch: int = option(8, "samples judged per generator call", ge=1)
    predictions_out: str | None = option(
        None,
        'write the judge\'s predictions as JSONL {"id", "prediction"} for predictions '
        "(null = no usable answer, counted as wrong)",
    )
    output: str | None = option(None, _OUTPUT)

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class PRMBenchConfig:
    """``prmkit eval prmbench``: PRMScore per error class and overall, by PRMBench's rules."""

    benchmark: ClassVar[str] = "prmbench"

    scores: str = option("", _SCORES + ", with labels and the class in meta")
    threshold: float = option(
        0.5,
        "a step scoring above it is predicted correct (in [0, 1] for probability scores, any "
        "finite number for log-ratio scores)",
    )
    class_key: str = option("classification", "the meta key holding the error class")
    repeated_pairs: Literal["first", "all"] = option(
        "first",
        "traces repeating an (idx, class) pair: score only the first, as PRMBench does, or all",
    )
    output: str | None = option(None, _OUTPUT)

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class StepsConfig:
    """``prmkit eval steps``: step AUROC, calibration error, last-step-minimum share."""

    benchmark: ClassVar[str] = "steps"

    scores: str = option("", _SCORES)
    n_bins: int = option(10, "calibration bins", ge=1)
    output: str | None = option(None, _OUTPUT)

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class BestOfNConfig:
    """``prmkit eval bon``: pass@N, maj@N, prm@N and the weighted vote vs N, by subsampling one
    sampling run, with bootstrap confidence intervals over problems."""

    benchmark: ClassVar[str] = "bon"

    scores: str = option(
        "", _SCORES + ": N_max solutions per problem, with answer and meta['correct']"
    )
    correct_from: Literal["meta", "labels"] = option(
        "meta", "read correctness from meta[correct_key], or from labels (first_error == -1)"
    )
    correct_key: str = option("correct", "the meta key of correctness")
    ns: list[int] | None = option(None, "the N values, e.g. [1, 4, 16] (null: 1, 2, 4, ..., N_max)")
    n_subsets: int = option(200, "subsets per problem and N (all of them when fewer)", ge=1)
    n_bootstrap: int = option(1000, "bootstrap resamples of the problems", ge=1)
    confidence: float = option(0.95, "central mass of the confidence intervals", gt=0, lt=1)
    seed: int = option(0, "seeds subset sampling and the bootstrap", ge=0)
    output: str | None = option(None, _OUTPUT)

    def __post_init__(self) -> None:
        check_ranges(self)


EvalConfig = ProcessBenchConfig | PRMBenchConfig | StepsConfig | BestOfNConfig
"""Any benchmark's config."""

CONFIGS: dict[str, type[EvalConfig]] = {
    c.benchmark: c for c in (ProcessBenchConfig, PRMBenchConfig, StepsConfig, BestOfNConfig)
}
"""The config class of each benchmark, by the name ``prmkit eval`` and the result use."""


def _judge_generator(cfg: ProcessBenchConfig) -> Generator:
    """The judge: a served model behind ``judge_base_url``, else ``judge`` loaded in-process."""
    if cfg.judge_base_url:
        from prmkit.generate.openai_backend import OpenAIGenerator

        return OpenAIGenerator(cfg.judge_base_url, cfg.judge.model)
    from prmkit.generate.transformers_backend import TransformersGenerator

    return TransformersGenerator.from_config(cfg.judge, batch_size=max(8, cfg.judge_batch))


def _processbench(cfg: ProcessBenchConfig) -> dict[str, Any]:
    sources = {
        "predictions": cfg.predictions,
        "scores": cfg.scores,
        "judge.model": cfg.judge.model,
    }
    given = [k for k, v in sources.items() if v]
    if len(given) != 1:
        raise ConfigError(
            "give exactly one source of predictions",
            got=given or "none",
            expected="one of predictions (--predictions FILE), scores (--scores FILE) or "
            "judge.model (--judge MODEL)",
            fix="pass one of them",
        )
    if not cfg.judge.model:
        return evaluate_processbench(
            cfg.data,
            predictions=cfg.predictions,
            scores=cfg.scores,
            threshold=cfg.threshold,
            threshold_from=cfg.threshold_from,
            oracle_threshold=cfg.oracle_threshold,
            allow_missing=cfg.allow_missing,
        )
    if cfg.threshold is not None or cfg.threshold_from is not None or cfg.oracle_threshold:
        raise ConfigError(
            "a threshold applies only to --scores",
            got="judge.model with a threshold option",
            expected="the judge alone",
            fix="drop the threshold option",
        )
    _need("data", cfg.data, "--data FILE")
    for path in cfg.data:  # the data's own checks first, before any model is loaded
        load_subset(path)
    name = cfg.judge.model + (f"+{cfg.judge.adapter}" if cfg.judge.adapter else "")
    predictions, judged = judge_processbench(
        cfg.data,
        _judge_generator(cfg),
        votes=cfg.judge_votes,
        sampling=cfg.judge_sampling,
        judge=name,
        template=cfg.judge_template,
        store=cfg.judge_store or (f"{cfg.output}.judge.sqlite" if cfg.output else None),
        batch=cfg.judge_batch,
        predictions_out=cfg.predictions_out,
    )
    result = evaluate_processbench(
        cfg.data, predictions=predictions, allow_missing=cfg.allow_missing
    )
    result["judge"] = judged
    result["notes"].append(
        f"judge {judged['judge']}: {judged['votes']} vote(s) per sample; "
        f"{judged['n_no_answer']} without a usable \\boxed{{}} answer and "
        f"{judged['n_out_of_range']} past the last step, counted as wrong; "
        f"{judged['prompt_tokens']} prompt + {judged['completion_tokens']} completion tokens"
    )
    return result


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Run the benchmark ``cfg`` configures; write ``cfg.output`` when set.

    Args:
        cfg: A :class:`ProcessBenchConfig`, :class:`PRMBenchConfig`, :class:`StepsConfig` or
            :class:`BestOfNConfig`.

    Returns:
        The entry function's result dict (the file adds ``"benchmark": cfg.benchmark``).

    Raises:
        ConfigError: a missing input file, or (ProcessBench) not exactly one source of
            predictions, or a threshold with the judge.
        PrmkitError: whatever the entry function refuses (see there).

    Example:
        >>> run_eval(StepsConfig(scores="scored.jsonl"))["auroc"]  # doctest: +SKIP
        0.71
    """
    if isinstance(cfg, ProcessBenchConfig):
        result = _processbench(cfg)
    elif isinstance(cfg, PRMBenchConfig):
        _need("scores", cfg.scores, "--scores FILE")
        result = evaluate_prmbench(cfg.scores, cfg.threshold, cfg.class_key, cfg.repeated_pairs)
    elif isinstance(cfg, StepsConfig):
        _need("scores", cfg.scores, "--scores FILE")
        result = evaluate_steps(cfg.scores, cfg.n_bins)
    elif isinstance(cfg, BestOfNConfig):
        _need("scores", cfg.scores, "--scores FILE")
        result = evaluate_best_of_n(
            cfg.scores,
            correct_key=cfg.correct_key,
            correct_from=cfg.correct_from,
            ns=cfg.ns,
            n_subsets=cfg.n_subsets,
            n_bootstrap=cfg.n_bootstrap,
            confidence=cfg.confidence,
            seed=cfg.seed,
        )
    else:
        raise ConfigError(
            "not an eval config",
            got=type(cfg).__name__,
            expected="one of " + ", ".join(c.__name__ for c in CONFIGS.values()),
            fix="build the config of the benchmark to run",
        )
    if cfg.output:
        write_json(cfg.output, {"benchmark": cfg.benchmark, **result})
    return result
